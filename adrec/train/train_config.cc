#include "adrec/train/train_config.h"

#include <string>
#include <vector>

#include "adrec/core/config.h"

namespace adrec::train {

Status ReadSplitOptions(Config& cfg, data::SplitOptions* o) {
  o->method = "random_event";
  ADREC_RETURN_IF_ERROR(cfg.Get("data.split", &o->method));
  ADREC_RETURN_IF_ERROR(cfg.Get("data.seed", &o->seed));
  ADREC_RETURN_IF_ERROR(cfg.Get("data.train_fraction", &o->train_fraction));
  ADREC_RETURN_IF_ERROR(cfg.Get("data.valid_fraction", &o->valid_fraction));
  std::vector<std::string> positives;
  ADREC_RETURN_IF_ERROR(cfg.Get("data.positive_actions", &positives));
  for (const auto& p : positives) {
    ADREC_ASSIGN_OR_RETURN(data::Action a, data::ParseAction(p));
    o->positive_actions.push_back(a);
  }
  return Status::Ok();
}

}  // namespace adrec::train

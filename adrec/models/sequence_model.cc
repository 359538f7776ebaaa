#include "adrec/models/sequence_model.h"

#include <torch/torch.h>

#include <cmath>

#include "adrec/core/config.h"
#include "adrec/models/bsarec.h"
#include "adrec/models/hstu.h"
#include "adrec/models/layers.h"
#include "adrec/models/registry.h"
#include "adrec/models/sasrec.h"
#include "adrec/models/wearec.h"

namespace adrec::models {

Status ReadSequenceOptions(Config& cfg, std::string_view section, SequenceOptions* out) {
  ADREC_RETURN_IF_ERROR(ReadInt(cfg, section, "dim", 1, &out->dim));
  ADREC_RETURN_IF_ERROR(ReadInt(cfg, section, "blocks", 1, &out->blocks));
  ADREC_RETURN_IF_ERROR(ReadInt(cfg, section, "heads", 1, &out->heads));
  const std::string dropout = OptionKey(section, "dropout");
  ADREC_RETURN_IF_ERROR(cfg.Get(dropout, &out->dropout));
  if (!(out->dropout >= 0 && out->dropout < 1)) {
    return InvalidArgumentError(cfg.source() + ": key '" + dropout + "' must be in [0, 1), got " +
                                std::to_string(out->dropout));
  }
  return Status::Ok();
}

Status CheckHeadsDivideDim(const Config& cfg, std::string_view section, std::string_view kind, const SequenceOptions& o) {
  if (o.dim % o.heads == 0) return Status::Ok();
  return InvalidArgumentError(cfg.source() + ": " + std::string(kind) + " needs " + OptionKey(section, "dim") + " (" +
                              std::to_string(o.dim) + ") divisible by " + OptionKey(section, "heads") + " (" +
                              std::to_string(o.heads) + ")");
}

void InitSequenceEmbeddings(torch::Tensor item_table, torch::Tensor positions) {
  torch::NoGradGuard no_grad;
  const double dim = static_cast<double>(item_table.size(1));
  item_table.normal_(0, 0.02).clamp_(-0.04, 0.04);
  item_table[0].zero_();
  const double pos_std = std::sqrt(1.0 / dim);
  positions.normal_(0, pos_std).clamp_(-2 * pos_std, 2 * pos_std);
}

torch::Tensor CausalMask(int64_t length, const torch::Device& device) {
  return torch::ones({length, length}, torch::TensorOptions().dtype(torch::kBool).device(device)).tril();
}

StatusOr<std::shared_ptr<SequenceModel>> MakeSequenceModel(std::string_view name, const SequenceShape& shape,
                                                           Config& cfg, std::string_view section) {
  if (const ModelEntry* m = FindModel(name); m == nullptr || m->family != ModelFamily::kSequence) {
    return InvalidArgumentError("unknown sequence model '" + std::string(name) + "' (known: " +
                                ModelNames(ModelFamily::kSequence) + ")");
  }
  if (shape.num_items <= 0) return InvalidArgumentError(std::string(name) + ": the dataset has no items");
  if (shape.max_len <= 0) return InvalidArgumentError(std::string(name) + ": max_len must be > 0");
  if (name == "sasrec") {
    SequenceOptions o;
    ADREC_RETURN_IF_ERROR(ReadSequenceOptions(cfg, section, &o));
    ADREC_RETURN_IF_ERROR(CheckHeadsDivideDim(cfg, section, name, o));
    return std::shared_ptr<SequenceModel>(std::make_shared<SasRecModel>(shape, o));
  }
  if (name == "bsarec") {
    ADREC_ASSIGN_OR_RETURN(BsaRecOptions o, ReadBsaRecOptions(cfg, section));
    return std::shared_ptr<SequenceModel>(std::make_shared<BsaRecModel>(shape, o));
  }
  if (name == "wearec") {
    ADREC_ASSIGN_OR_RETURN(WeaRecOptions o, ReadWeaRecOptions(cfg, section));
    return std::shared_ptr<SequenceModel>(std::make_shared<WeaRecModel>(shape, o));
  }
  ADREC_ASSIGN_OR_RETURN(HstuOptions o, ReadHstuOptions(cfg, section));
  return std::shared_ptr<SequenceModel>(std::make_shared<HstuModel>(shape, o));
}

}  // namespace adrec::models

// `adrec train` and `adrec eval`: the model registry picks the trainer, the bundle's kind the
// evaluation.
#include "adrec/train/trainer.h"

#include "adrec/core/config.h"
#include "adrec/models/bundle.h"
#include "adrec/models/registry.h"
#include "adrec/train/hstu_ranker_trainer.h"
#include "adrec/train/sequence_trainer.h"

namespace adrec::train {

StatusOr<nlohmann::ordered_json> Train(const TrainOptions& options) {
  std::string name = options.model;
  if (name.empty()) {
    ADREC_ASSIGN_OR_RETURN(Config cfg, Config::LoadFile(options.config));
    ADREC_RETURN_IF_ERROR(cfg.Require("model.name", &name));
  }
  const models::ModelEntry* model = models::FindModel(name);
  if (model == nullptr) {
    std::string known;
    for (auto family : {models::ModelFamily::kRanking, models::ModelFamily::kSequence, models::ModelFamily::kSequenceRanker}) {
      known += std::string(known.empty() ? "" : "; ") + std::string(models::FamilyName(family)) + ": " + models::ModelNames(family);
    }
    return InvalidArgumentError((options.model.empty() ? options.config.string() + ": model.name" : std::string("--model")) +
                                " '" + name + "' is not a model adrec trains (" + known + ")");
  }
  switch (model->family) {
    case models::ModelFamily::kSequence: return TrainSequence(options);
    case models::ModelFamily::kSequenceRanker: return TrainSequenceRanker(options);
    case models::ModelFamily::kRanking: break;
  }
  return TrainRanking(options);
}

StatusOr<nlohmann::ordered_json> Evaluate(const EvalOptions& options) {
  ADREC_ASSIGN_OR_RETURN(nlohmann::json manifest, models::ReadBundleManifest(options.bundle, ""));
  const std::string kind = manifest["kind"].get<std::string>();
  if (kind == models::kSequenceBundle) return EvaluateSequence(options);
  if (kind == models::kSequenceRankingBundle) return EvaluateSequenceRanker(options);
  if (kind == models::kRankingBundle) {
    const bool retrieval = options.protocol == "retrieval" || (options.protocol.empty() && manifest.contains("retrieval"));
    return retrieval ? EvaluateRetrieval(options) : EvaluateRanking(options);
  }
  return InvalidArgumentError((options.bundle / models::kBundleManifestFile).string() + ": bundle kind '" + kind +
                              "' is not one this adrec evaluates (ranking, sequence, sequence_ranking)");
}

}  // namespace adrec::train

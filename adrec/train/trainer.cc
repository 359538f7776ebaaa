// `adrec train` and `adrec eval`: the model registry picks the trainer, the bundle's kind the
// evaluation.
#include "adrec/train/trainer.h"

#include "adrec/core/config.h"
#include "adrec/core/file.h"
#include "adrec/models/bundle.h"
#include "adrec/models/precision.h"
#include "adrec/models/registry.h"
#include "adrec/train/hstu_ranker_trainer.h"
#include "adrec/train/sequence_trainer.h"
#include "adrec/train/train_config.h"

namespace adrec::train {

StatusOr<nlohmann::ordered_json> Train(const TrainOptions& options) {
  std::string name = options.model;
  if (name.empty()) {
    ADREC_ASSIGN_OR_RETURN(std::string text, ReadFile(options.config));
    ADREC_ASSIGN_OR_RETURN(Config cfg, ParseTrainConfig(text, options.config.string(), "", options.settings));
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
  if (model->family != models::ModelFamily::kRanking &&
      (!options.scenes.empty() || options.max_train_samples > 0 || !options.init_from.empty() || options.finetune != "full" ||
       options.dp_epsilon > 0 || options.dp_delta > 0 || options.federated_clients > 0 || !options.teacher.empty())) {
    return InvalidArgumentError("--scenes, --max-train-samples, --init-from, --finetune, --dp-epsilon, --federated-clients and --teacher "
                                "apply to ranking models; " + name +
                                " is a " + std::string(models::FamilyName(model->family)) + " model");
  }
  switch (model->family) {
    case models::ModelFamily::kSequence: return TrainSequence(options);
    case models::ModelFamily::kSequenceRanker: return TrainSequenceRanker(options);
    case models::ModelFamily::kRanking: break;
  }
  return TrainRanking(options);
}

namespace {

// Sets the process-wide inference precision for one evaluation and puts the previous one back.
class PrecisionScope {
 public:
  explicit PrecisionScope(models::InferencePrecision p) : previous_(models::GetInferencePrecision()) {
    models::SetInferencePrecision(p);
  }
  ~PrecisionScope() { models::SetInferencePrecision(previous_); }

 private:
  models::InferencePrecision previous_;
};

}  // namespace

StatusOr<nlohmann::ordered_json> Evaluate(const EvalOptions& options) {
  ADREC_ASSIGN_OR_RETURN(nlohmann::json manifest, models::ReadBundleManifest(options.bundle, ""));
  StatusOr<models::InferencePrecision> precision = models::ParseInferencePrecision(options.precision);
  if (!precision.ok()) return precision.status().WithContext("--precision");
  PrecisionScope scope(*precision);
  const std::string kind = manifest["kind"].get<std::string>();
  StatusOr<nlohmann::ordered_json> report = InvalidArgumentError("");
  if (kind == models::kSequenceBundle) {
    report = EvaluateSequence(options);
  } else if (kind == models::kSequenceRankingBundle) {
    report = EvaluateSequenceRanker(options);
  } else if (kind == models::kRankingBundle) {
    const bool retrieval = options.protocol == "retrieval" || (options.protocol.empty() && manifest.contains("retrieval"));
    report = retrieval ? EvaluateRetrieval(options) : EvaluateRanking(options);
  } else {
    return InvalidArgumentError((options.bundle / models::kBundleManifestFile).string() + ": bundle kind '" + kind +
                                "' is not one this adrec evaluates (ranking, sequence, sequence_ranking)");
  }
  if (report.ok()) (*report)["precision"] = std::string(models::PrecisionName(*precision));
  return report;
}

}  // namespace adrec::train

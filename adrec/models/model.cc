#include "adrec/models/model.h"

#include <torch/torch.h>

#include <map>

#include "adrec/core/config.h"
#include "adrec/models/dcnv2.h"
#include "adrec/models/deepfm.h"
#include "adrec/models/fm.h"
#include "adrec/models/layers.h"
#include "adrec/models/lr.h"
#include "adrec/models/mmoe.h"
#include "adrec/models/ple.h"
#include "adrec/models/registry.h"
#include "adrec/models/split_moe.h"
#include "adrec/models/two_tower.h"

namespace adrec::models {

torch::Tensor RankingModel::represent(const embedding::ModelInput& input) { return ConcatFeatures(input); }

namespace {
Status CheckShape(const ModelShape& shape, std::string_view name) {
  const std::string m(name);
  if (shape.targets.empty()) return InvalidArgumentError(m + ": the model shape has no targets");
  if (shape.num_fields() == 0) return InvalidArgumentError(m + ": the model shape has no input fields");
  if (shape.num_scenes < 1) return InvalidArgumentError(m + ": num_scenes must be >= 1, got " + std::to_string(shape.num_scenes));
  if (!shape.sparse_names.empty() && shape.sparse_names.size() != shape.sparse_dims.size()) {
    return InvalidArgumentError(m + ": " + std::to_string(shape.sparse_names.size()) + " sparse names for " +
                                std::to_string(shape.sparse_dims.size()) + " sparse fields");
  }
  for (int d : shape.sparse_dims) {
    if (d <= 0) return InvalidArgumentError(m + ": sparse field dims must be > 0, got " + std::to_string(d));
  }
  for (int d : shape.text_dims) {
    if (d <= 0) return InvalidArgumentError(m + ": text field dims must be > 0, got " + std::to_string(d));
  }
  if (shape.dense_width < 0) return InvalidArgumentError(m + ": dense_width must be >= 0");
  return Status::Ok();
}

template <typename Model, typename Options>
std::shared_ptr<RankingModel> Make(const ModelShape& shape, const Options& options) {
  return std::make_shared<Model>(shape, options);
}

using Factory = StatusOr<std::shared_ptr<RankingModel>> (*)(const ModelShape&, Config&, std::string_view);

// One factory per ranking model of the registry (registry.h); model_test checks they match.
const std::map<std::string_view, Factory>& Factories() {
  static const std::map<std::string_view, Factory> factories = {
      {"lr", [](const ModelShape& shape, Config& cfg, std::string_view section) -> StatusOr<std::shared_ptr<RankingModel>> {
         ADREC_ASSIGN_OR_RETURN(LrOptions o, ReadLrOptions(cfg, section));
         return Make<LrModel>(shape, o);
       }},
      {"fm", [](const ModelShape& shape, Config& cfg, std::string_view section) -> StatusOr<std::shared_ptr<RankingModel>> {
         ADREC_ASSIGN_OR_RETURN(FmOptions o, ReadFmOptions(cfg, section));
         ADREC_RETURN_IF_ERROR(FmFieldDim(shape, "fm").status());
         return Make<FmModel>(shape, o);
       }},
      {"deepfm", [](const ModelShape& shape, Config& cfg, std::string_view section) -> StatusOr<std::shared_ptr<RankingModel>> {
         ADREC_ASSIGN_OR_RETURN(DeepFmOptions o, ReadDeepFmOptions(cfg, section));
         ADREC_RETURN_IF_ERROR(FmFieldDim(shape, "deepfm").status());
         return Make<DeepFmModel>(shape, o);
       }},
      {"dcnv2", [](const ModelShape& shape, Config& cfg, std::string_view section) -> StatusOr<std::shared_ptr<RankingModel>> {
         ADREC_ASSIGN_OR_RETURN(DcnV2Options o, ReadDcnV2Options(cfg, section));
         return Make<DcnV2Model>(shape, o);
       }},
      {"mmoe", [](const ModelShape& shape, Config& cfg, std::string_view section) -> StatusOr<std::shared_ptr<RankingModel>> {
         ADREC_ASSIGN_OR_RETURN(MmoeOptions o, ReadMmoeOptions(cfg, section));
         return Make<MmoeModel>(shape, o);
       }},
      {"ple", [](const ModelShape& shape, Config& cfg, std::string_view section) -> StatusOr<std::shared_ptr<RankingModel>> {
         ADREC_ASSIGN_OR_RETURN(PleOptions o, ReadPleOptions(cfg, section));
         return Make<PleModel>(shape, o);
       }},
      {"two_tower", [](const ModelShape& shape, Config& cfg, std::string_view section) -> StatusOr<std::shared_ptr<RankingModel>> {
         ADREC_ASSIGN_OR_RETURN(TwoTowerOptions o, ReadTwoTowerOptions(cfg, section));
         ADREC_RETURN_IF_ERROR(CheckTwoTowerShape(shape, o));
         return Make<TwoTowerModel>(shape, o);
       }},
      {"split_moe", [](const ModelShape& shape, Config& cfg, std::string_view section) -> StatusOr<std::shared_ptr<RankingModel>> {
         ADREC_ASSIGN_OR_RETURN(SplitMoeOptions o, ReadSplitMoeOptions(cfg, section));
         ADREC_ASSIGN_OR_RETURN(std::shared_ptr<SplitMoeModel> m, SplitMoeModel::Create(shape, o, section));
         return std::shared_ptr<RankingModel>(std::move(m));
       }},
  };
  return factories;
}
}  // namespace

bool HasRankingFactory(std::string_view name) { return Factories().count(name) > 0; }

StatusOr<std::shared_ptr<RankingModel>> MakeRankingModel(std::string_view name, const ModelShape& shape, Config& cfg,
                                                         std::string_view section) {
  const ModelEntry* entry = FindModel(name);
  const auto it = Factories().find(name);
  if (entry == nullptr || entry->family != ModelFamily::kRanking || it == Factories().end()) {
    return InvalidArgumentError("unknown ranking model '" + std::string(name) + "' (known: " +
                                ModelNames(ModelFamily::kRanking) + ")");
  }
  ADREC_RETURN_IF_ERROR(CheckShape(shape, name));
  return it->second(shape, cfg, section);
}

}  // namespace adrec::models

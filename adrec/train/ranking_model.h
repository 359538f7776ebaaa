// A ranking model with its embeddings, built from a feature spec and a config, saved to and
// loaded from a bundle (DESIGN.md: manifest.json + model.safetensors), and run over samples.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "adrec/core/status.h"
#include "adrec/data/features.h"
#include "adrec/eval/ctr_report.h"
#include "adrec/models/explain.h"
#include "adrec/models/model.h"
#include "adrec/embedding/embedding.h"

namespace adrec {
class Config;
}

namespace adrec::train {

struct RankingModel {
  data::FeatureSpec spec;  // bound (fixed-table rows, widths, normalisation filled)
  std::vector<std::string> scenes;
  std::shared_ptr<models::RankingModel> net;
  std::unique_ptr<embedding::EmbeddingCollection> embeddings;
  torch::Device device = torch::kCPU;
};

struct BuildOptions {
  torch::Device device = torch::kCPU;
  uint64_t seed = 42;
  embedding::SparseOptimizerOptions embedding_optimizer;
  std::string linear_optimizer;  // "" = embedding_optimizer.kind
  embedding::ShardingOptions sharding;  // a distributed run's tables across the ranks
};

// The model named by cfg "model.name" over the bound spec. Errors name the config key.
StatusOr<RankingModel> BuildRankingModel(const data::FeatureSpec& spec, std::vector<std::string> scenes, Config& cfg,
                                         const BuildOptions& options);

// Sets each target's output bias to the logit of its base rate (mean label where defined), so
// training starts at the prior instead of p = 0.5: with a 2% CTR a zero bias needs thousands
// of Adam steps to walk to -3.9 and the embeddings absorb the offset meanwhile. Looks for
// "out.bias" [targets] or "towers.<t>.out.bias" [1]; returns false when the model has neither.
bool InitOutputBias(torch::nn::Module& net, const std::vector<double>& base_rates);

// Each target's base rate: mean label over the samples where it is defined (0.5 where none
// is), over every sample, or over those `keep(i)` accepts.
std::vector<double> BaseRates(const data::SampleSet& samples, const std::function<bool(size_t)>& keep = {});

// Named tensors of the whole model: "dense/<parameter or buffer>", "emb/<table tensor>".
std::vector<std::pair<std::string, torch::Tensor>> ModelTensors(const RankingModel& m, bool with_optimizer);
// Restores ModelTensors' output. InvalidArgument naming the tensor when one is missing or has
// another shape (a bundle or checkpoint of another model or config).
Status LoadModelTensors(RankingModel& m, const std::map<std::string, torch::Tensor>& tensors, bool with_optimizer,
                        const std::string& source);

struct LoadedBundle {
  nlohmann::json manifest;
  RankingModel model;
};
// A ranking bundle (models/bundle.h) rebuilt into its model. NotFound naming the missing file;
// DataLoss or InvalidArgument naming the file for a corrupt manifest, an unknown format
// version, or weights that do not fit the manifest's model.
// `sparse`, when given, is the embedding rows' optimiser for further training (the online
// learner); the bundle keeps no optimiser state, so its default otherwise.
StatusOr<LoadedBundle> LoadBundle(const std::filesystem::path& dir, torch::Device device,
                                  const embedding::SparseOptimizerOptions* sparse = nullptr);

// What the sequence fields of a bundle read as history: the positives of the split it was
// trained with (the dataset's default positives when the manifest names none).
data::ActionMask BundleHistoryMask(const nlohmann::json& manifest, const data::Dataset& ds);
// The dataset must be the one the bundle was trained on (same numbers of users and items):
// InvalidArgument naming both otherwise.
Status CheckBundleData(const nlohmann::json& manifest, const std::filesystem::path& bundle, const data::Dataset& ds);

struct AdversarialOptions;

struct PredictOptions {
  size_t batch_size = 8192;
  // Scores the samples at adversarially perturbed embeddings (adversarial.h), against their own
  // labels: the AUC under perturbation. nullptr: clean.
  const AdversarialOptions* perturb = nullptr;
  size_t threads = 0;
  bool with_truth = false;  // copy the primary target's ground truth into the result
  int primary = 0;
};
// Runs the model over `samples` (no gradients, eval mode) and collects what CtrReport needs.
eval::CtrPredictions Predict(RankingModel& m, const data::Dataset& ds, const data::SampleSet& samples,
                             const PredictOptions& options);

// The samples of a split part ("test", "valid", "train" or "all") of `ds` as the bundle's spec
// builds them, with the split they came from (none for "all"): the bundle's recorded split, or
// the one in `split_dir`. InvalidArgument names an unknown part.
struct PartSamples {
  std::optional<data::Split> split;
  data::SampleSet samples;
};
StatusOr<PartSamples> SamplesOfPart(const nlohmann::json& manifest, const std::filesystem::path& split_dir,
                                    const data::Dataset& ds, const data::FeatureSpec& spec, const std::string& part);

// The first table a compressed bundle (adrec compress) stores as quantised codes, or nullptr:
// such a model serves, and whatever would train it refuses it.
const data::TableSpec* QuantizedTable(const data::FeatureSpec& spec);

// The names of what the model reads (models/explain.h): the spec's sparse, dense (with widths)
// and text fields in ModelInput order, and the first-order term when the model takes it.
models::InputGroups InputGroupsOf(const RankingModel& m);

// True when the primary target is the click that follows an impression, so the generator's
// truth column is the true probability of exactly that label.
bool TruthMatchesPrimary(const data::Dataset& ds, const data::FeatureSpec& spec, int primary);


}  // namespace adrec::train

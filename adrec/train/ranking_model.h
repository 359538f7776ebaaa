// A ranking model with its embeddings, built from a feature spec and a config, saved to and
// loaded from a bundle (DESIGN.md: manifest.json + model.safetensors), and run over samples.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "adrec/core/status.h"
#include "adrec/data/features.h"
#include "adrec/eval/ctr_report.h"
#include "adrec/models/model.h"
#include "adrec/nn/embedding.h"

namespace adrec {
class Config;
}

namespace adrec::train {

inline constexpr int kBundleFormatVersion = 1;
inline constexpr const char* kBundleWeightsFile = "model.safetensors";
inline constexpr const char* kBundleManifestFile = "manifest.json";

struct RankingModel {
  data::FeatureSpec spec;  // bound (fixed-table rows, widths, normalisation filled)
  std::vector<std::string> scenes;
  std::shared_ptr<models::RankingModel> net;
  std::unique_ptr<nn::EmbeddingCollection> embeddings;
  torch::Device device = torch::kCPU;
};

struct BuildOptions {
  torch::Device device = torch::kCPU;
  uint64_t seed = 42;
  nn::SparseOptimizerOptions embedding_optimizer;
  std::string linear_optimizer;  // "" = embedding_optimizer.kind
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

// Every parameter and buffer of `module` as "<prefix><name>" (the layout bundles and
// checkpoints store), and back: InvalidArgument naming the tensor when one is missing or has
// another shape (written by another model or config).
std::vector<std::pair<std::string, torch::Tensor>> ModuleTensors(torch::nn::Module& module, const std::string& prefix);
Status LoadModuleTensors(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& tensors,
                         const std::string& prefix, const std::string& source);

// Named tensors of the whole model: "dense/<parameter or buffer>", "emb/<table tensor>".
std::vector<std::pair<std::string, torch::Tensor>> ModelTensors(const RankingModel& m, bool with_optimizer);
// Restores ModelTensors' output. InvalidArgument naming the tensor when one is missing or has
// another shape (a bundle or checkpoint of another model or config).
Status LoadModelTensors(RankingModel& m, const std::map<std::string, torch::Tensor>& tensors, bool with_optimizer,
                        const std::string& source);

// Writes model.safetensors then manifest.json into `dir` (each atomically; the manifest last,
// so a reader never sees a manifest without its weights).
Status WriteBundle(const std::filesystem::path& dir, const RankingModel& m, const nlohmann::ordered_json& manifest);

// The parsed manifest.json of a bundle of `kind` ("ranking", "sequence"; "" = any kind).
// NotFound when there is none, DataLoss for bad JSON, InvalidArgument for another kind or an
// unknown format version, each naming the file.
StatusOr<nlohmann::json> ReadBundleManifest(const std::filesystem::path& dir, std::string_view kind);

struct LoadedBundle {
  nlohmann::json manifest;
  RankingModel model;
};
// NotFound naming the missing file; DataLoss or InvalidArgument naming the file for a corrupt
// manifest, an unknown format version, or weights that do not fit the manifest's model.
StatusOr<LoadedBundle> LoadBundle(const std::filesystem::path& dir, torch::Device device);

struct PredictOptions {
  size_t batch_size = 8192;
  size_t threads = 0;
  bool with_truth = false;  // copy the primary target's ground truth into the result
  int primary = 0;
};
// Runs the model over `samples` (no gradients, eval mode) and collects what CtrReport needs.
eval::CtrPredictions Predict(RankingModel& m, const data::Dataset& ds, const data::SampleSet& samples,
                             const PredictOptions& options);

// True when the primary target is the click that follows an impression, so the generator's
// truth column is the true probability of exactly that label.
bool TruthMatchesPrimary(const data::Dataset& ds, const data::FeatureSpec& spec, int primary);

StatusOr<torch::Device> ParseDevice(const std::string& name);

// "[3, 16]": tensor shapes in error messages.
std::string ShapeString(const torch::Tensor& t);

}  // namespace adrec::train

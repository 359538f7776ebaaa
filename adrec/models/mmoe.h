// MMoE (Ma et al. 2018, "Modeling Task Relationships in Multi-task Learning with Multi-gate
// Mixture-of-Experts"): shared experts over the concatenated features, one softmax gate per
// target, one tower per target. Each gate also reads a learned scene embedding, so the experts'
// mix differs between scenes (feed, search, splash…) as well as between targets.
// Config keys under the section: num_experts (default 4), expert_hidden (default [64]),
// tower_hidden (default [32]), scene_dim (default 8), norm (none|batch|layer), dropout.
#pragma once

#include <string_view>
#include <vector>

#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>

#include "adrec/models/layers.h"
#include "adrec/models/model.h"

namespace adrec::models {

struct MmoeOptions {
  int64_t num_experts = 4;
  MlpOptions expert{.hidden = {64}};
  MlpOptions tower{.hidden = {32}};
  int64_t scene_dim = 8;
};
StatusOr<MmoeOptions> ReadMmoeOptions(Config& cfg, std::string_view section);

// Parameters: "scene.weight" [num_scenes, scene_dim], "experts.<e>.*", "gates.<t>.weight/bias"
// (input: features ++ scene embedding), "towers.<t>.mlp.*", "towers.<t>.out.*".
class MmoeModel : public RankingModel {
 public:
  MmoeModel(const ModelShape& shape, const MmoeOptions& options);
  torch::Tensor forward(const embedding::ModelInput& input) override;
  std::string kind() const override { return "mmoe"; }
  // Per target, the gate's expert weights [B, num_experts] (for tests and explanations).
  std::vector<torch::Tensor> gate_weights(const embedding::ModelInput& input);

 private:
  // Per target, the softmax gate weights [B, E].
  std::vector<torch::Tensor> Gates(const embedding::ModelInput& input, const torch::Tensor& x);
  ModelShape shape_;
  torch::nn::Embedding scene_{nullptr};
  Experts experts_{nullptr};
  std::vector<torch::nn::Linear> gates_;
  std::vector<Tower> towers_;
};

// [B, scene_dim]: the scene embedding of each sample (shared by MMoE and PLE); checks the scene
// IDs' range on CPU.
torch::Tensor SceneEmbedding(torch::nn::Embedding& table, const embedding::ModelInput& input, std::string_view model);

}  // namespace adrec::models

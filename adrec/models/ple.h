// PLE (Tang et al. 2020, "Progressive Layered Extraction (PLE): A Novel Multi-Task Learning (MTL)
// Model for Personalized Recommendations"): stacked extraction levels (CGC), each with shared
// experts and experts specific to each target. Target t's gate mixes its own and the shared
// experts; at inner levels a shared gate mixes all experts into the next level's shared input.
// Every gate also reads a learned scene embedding (as MMoE here). One tower per target.
// Config keys under the section: levels (default 2), shared_experts (default 2),
// specific_experts (per target, default 2), expert_hidden (default [64]), tower_hidden
// (default [32]), scene_dim (default 8), norm (none|batch|layer), dropout.
#pragma once

#include <string_view>
#include <vector>

#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>

#include "adrec/models/layers.h"
#include "adrec/models/model.h"

namespace adrec::models {

struct PleOptions {
  int64_t levels = 2;
  int64_t shared_experts = 2;
  int64_t specific_experts = 2;
  MlpOptions expert{.hidden = {64}};
  MlpOptions tower{.hidden = {32}};
  int64_t scene_dim = 8;
};
StatusOr<PleOptions> ReadPleOptions(Config& cfg, std::string_view section);

// One extraction level. Parameters: "shared.<e>.*", "specific.<t>.<e>.*", "gates.<t>.*"
// (over [specific_t experts, shared experts]), and at inner levels "shared_gate.*" (over
// [specific_0 … specific_{T-1}, shared]).
class PleLevelImpl : public torch::nn::Module {
 public:
  PleLevelImpl(int64_t targets, int64_t in_dim, int64_t scene_dim, const PleOptions& options, bool inner);
  struct Output {
    std::vector<torch::Tensor> specific;  // per target [B, H]
    torch::Tensor shared;                 // [B, H]; undefined at the last level
    std::vector<torch::Tensor> gates;     // per target [B, S + specific]
  };
  // `specific_in` per target and `shared_in` are [B, in_dim]; `scene` [B, scene_dim].
  Output forward(const std::vector<torch::Tensor>& specific_in, const torch::Tensor& shared_in, const torch::Tensor& scene);
  int64_t out_dim() const { return shared_->out_dim(); }

 private:
  Experts shared_{nullptr};
  std::vector<Experts> specific_;
  std::vector<torch::nn::Linear> gates_;
  torch::nn::Linear shared_gate_{nullptr};
};
TORCH_MODULE(PleLevel);

// Parameters: "scene.weight", "levels.<l>.*", "towers.<t>.*".
class PleModel : public RankingModel {
 public:
  PleModel(const ModelShape& shape, const PleOptions& options);
  torch::Tensor forward(const embedding::ModelInput& input) override;
  std::string kind() const override { return "ple"; }
  // Per target, the last level's gate weights [B, shared + specific experts].
  std::vector<torch::Tensor> gate_weights(const embedding::ModelInput& input);

 private:
  PleLevel::Impl::Output Run(const embedding::ModelInput& input);
  ModelShape shape_;
  torch::nn::Embedding scene_{nullptr};
  std::vector<PleLevel> levels_;
  std::vector<Tower> towers_;
};

}  // namespace adrec::models

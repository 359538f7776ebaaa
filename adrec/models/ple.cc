#include "adrec/models/ple.h"

#include <torch/torch.h>

#include <string>

#include "adrec/models/mmoe.h"

namespace adrec::models {

StatusOr<PleOptions> ReadPleOptions(Config& cfg, std::string_view section) {
  PleOptions o;
  ADREC_RETURN_IF_ERROR(ReadInt(cfg, section, "levels", 1, &o.levels));
  ADREC_RETURN_IF_ERROR(ReadInt(cfg, section, "shared_experts", 1, &o.shared_experts));
  ADREC_RETURN_IF_ERROR(ReadInt(cfg, section, "specific_experts", 1, &o.specific_experts));
  ADREC_RETURN_IF_ERROR(ReadMlpOptions(cfg, section, "expert_hidden", &o.expert));
  ADREC_RETURN_IF_ERROR(ReadMlpOptions(cfg, section, "tower_hidden", &o.tower));
  ADREC_RETURN_IF_ERROR(ReadInt(cfg, section, "scene_dim", 1, &o.scene_dim));
  return o;
}

PleLevelImpl::PleLevelImpl(int64_t targets, int64_t in_dim, int64_t scene_dim, const PleOptions& options, bool inner) {
  shared_ = register_module("shared", Experts(options.shared_experts, in_dim, options.expert));
  auto specific = register_module("specific", torch::nn::ModuleList());
  auto gates = register_module("gates", torch::nn::ModuleList());
  for (int64_t t = 0; t < targets; ++t) {
    specific_.emplace_back(options.specific_experts, in_dim, options.expert);
    specific->push_back(specific_.back());
    gates_.emplace_back(in_dim + scene_dim, options.specific_experts + options.shared_experts);
    gates->push_back(gates_.back());
  }
  if (inner) {
    shared_gate_ = register_module(
        "shared_gate", torch::nn::Linear(in_dim + scene_dim, targets * options.specific_experts + options.shared_experts));
  }
}

PleLevelImpl::Output PleLevelImpl::forward(const std::vector<torch::Tensor>& specific_in, const torch::Tensor& shared_in,
                                           const torch::Tensor& scene) {
  Output out;
  torch::Tensor shared = shared_->forward(shared_in);  // [B, S, H]
  std::vector<torch::Tensor> all;                      // for the shared gate: every target's experts, then the shared
  for (size_t t = 0; t < specific_.size(); ++t) {
    torch::Tensor own = specific_[t]->forward(specific_in[t]);  // [B, E, H]
    torch::Tensor weights = GateWeights(gates_[t], torch::cat({specific_in[t], scene}, 1));
    out.specific.push_back(MixExperts(weights, torch::cat({own, shared}, 1)));
    out.gates.push_back(weights);
    if (shared_gate_) all.push_back(own);
  }
  if (shared_gate_) {
    all.push_back(shared);
    torch::Tensor weights = GateWeights(shared_gate_, torch::cat({shared_in, scene}, 1));
    out.shared = MixExperts(weights, torch::cat(all, 1));
  }
  return out;
}

PleModel::PleModel(const ModelShape& shape, const PleOptions& options) : shape_(shape) {
  const int64_t targets = static_cast<int64_t>(shape.targets.size());
  scene_ = register_module("scene", torch::nn::Embedding(std::max(1, shape.num_scenes), options.scene_dim));
  auto levels = register_module("levels", torch::nn::ModuleList());
  int64_t width = FeatureWidth(shape);
  for (int64_t l = 0; l < options.levels; ++l) {
    levels_.emplace_back(targets, width, options.scene_dim, options, /*inner=*/l + 1 < options.levels);
    levels->push_back(levels_.back());
    width = levels_.back()->out_dim();
  }
  auto towers = register_module("towers", torch::nn::ModuleList());
  for (int64_t t = 0; t < targets; ++t) {
    towers_.emplace_back(width, options.tower);
    towers->push_back(towers_.back());
  }
}

PleLevel::Impl::Output PleModel::Run(const embedding::ModelInput& input) {
  CheckInput(shape_, input, "ple");
  torch::Tensor x = ConcatFeatures(input);
  torch::Tensor scene = SceneEmbedding(scene_, input, "ple");
  std::vector<torch::Tensor> specific(towers_.size(), x);
  torch::Tensor shared = x;
  PleLevel::Impl::Output out;
  for (auto& level : levels_) {
    out = level->forward(specific, shared, scene);
    specific = out.specific;
    shared = out.shared;
  }
  return out;
}

std::vector<torch::Tensor> PleModel::gate_weights(const embedding::ModelInput& input) { return Run(input).gates; }

torch::Tensor PleModel::forward(const embedding::ModelInput& input) {
  PleLevel::Impl::Output out = Run(input);
  std::vector<torch::Tensor> logits;
  for (size_t t = 0; t < towers_.size(); ++t) logits.push_back(towers_[t]->forward(out.specific[t]));
  return torch::cat(logits, 1);
}

}  // namespace adrec::models

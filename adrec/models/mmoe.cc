#include "adrec/models/mmoe.h"

#include <torch/torch.h>

#include <string>

#include "adrec/models/per_sample.h"

namespace adrec::models {

StatusOr<MmoeOptions> ReadMmoeOptions(Config& cfg, std::string_view section) {
  MmoeOptions o;
  ADREC_RETURN_IF_ERROR(ReadInt(cfg, section, "num_experts", 1, &o.num_experts));
  ADREC_RETURN_IF_ERROR(ReadMlpOptions(cfg, section, "expert_hidden", &o.expert));
  ADREC_RETURN_IF_ERROR(ReadMlpOptions(cfg, section, "tower_hidden", &o.tower));
  ADREC_RETURN_IF_ERROR(ReadInt(cfg, section, "scene_dim", 1, &o.scene_dim));
  return o;
}

torch::Tensor SceneEmbedding(torch::nn::Embedding& table, const embedding::ModelInput& input, std::string_view model) {
  TORCH_CHECK(input.scene.defined() && input.scene.dim() == 1, model, ": ModelInput::scene must be int64 [B]");
  const int64_t scenes = table->weight.size(0);
  if (input.scene.numel() > 0 && input.scene.is_cpu()) {
    // Free on CPU; on CUDA it would cost a host sync per batch (the batch builder checks scenes).
    const int64_t lo = input.scene.min().item<int64_t>(), hi = input.scene.max().item<int64_t>();
    TORCH_CHECK(lo >= 0 && hi < scenes, model, ": scene IDs must be in [0, ", scenes, "), got [", lo, ", ", hi, "]");
  }
  torch::Tensor rows = table->forward(input.scene);
  if (PerSampleTape* tape = PerSampleTape::Current(); tape != nullptr && torch::GradMode::is_enabled()) {
    tape->Rows(rows, table->weight);
  }
  return rows;
}

MmoeModel::MmoeModel(const ModelShape& shape, const MmoeOptions& options) : shape_(shape) {
  const int64_t width = FeatureWidth(shape);
  scene_ = register_module("scene", torch::nn::Embedding(std::max(1, shape.num_scenes), options.scene_dim));
  experts_ = register_module("experts", Experts(options.num_experts, width, options.expert));
  auto gates = register_module("gates", torch::nn::ModuleList());
  auto towers = register_module("towers", torch::nn::ModuleList());
  for (size_t t = 0; t < shape.targets.size(); ++t) {
    gates_.emplace_back(width + options.scene_dim, options.num_experts);
    gates->push_back(gates_.back());
    towers_.emplace_back(experts_->out_dim(), options.tower);
    towers->push_back(towers_.back());
  }
}

std::vector<torch::Tensor> MmoeModel::Gates(const embedding::ModelInput& input, const torch::Tensor& x) {
  torch::Tensor gate_in = torch::cat({x, SceneEmbedding(scene_, input, "mmoe")}, 1);
  std::vector<torch::Tensor> weights;
  for (auto& gate : gates_) weights.push_back(GateWeights(gate, gate_in));
  return weights;
}

std::vector<torch::Tensor> MmoeModel::gate_weights(const embedding::ModelInput& input) {
  CheckInput(shape_, input, "mmoe");
  return Gates(input, ConcatFeatures(input));
}

torch::Tensor MmoeModel::forward(const embedding::ModelInput& input) {
  CheckInput(shape_, input, "mmoe");
  torch::Tensor x = ConcatFeatures(input);
  torch::Tensor experts = experts_->forward(x);
  std::vector<torch::Tensor> weights = Gates(input, x);
  std::vector<torch::Tensor> logits;
  for (size_t t = 0; t < towers_.size(); ++t) logits.push_back(towers_[t]->forward(MixExperts(weights[t], experts)));
  return torch::cat(logits, 1);
}

}  // namespace adrec::models

// DeepFM (Guo et al. 2017, "DeepFM: A Factorization-Machine based Neural Network for CTR
// Prediction"): an FM and an MLP that share the sparse embeddings; the MLP reads them
// concatenated with the dense and text inputs. Logit = linear + FM + MLP head.
// Config keys under the section: hidden (default [128, 64]), norm (none|batch|layer), dropout.
#pragma once

#include <string_view>

#include <torch/nn/modules/linear.h>

#include "adrec/models/layers.h"
#include "adrec/models/model.h"

namespace adrec::models {

struct DeepFmOptions {
  MlpOptions mlp{.hidden = {128, 64}};
};
StatusOr<DeepFmOptions> ReadDeepFmOptions(Config& cfg, std::string_view section);

// Parameters: "dense_proj.*" (with dense or text inputs; the FM's extra field), "mlp.*",
// "out.weight" [T, 1 + k + H] over [linear, FmBiInteraction, mlp] (the first 1 + k columns
// start at 1, so the logit starts as linear + FM + the deep part, as in the paper), "out.bias".
class DeepFmModel : public RankingModel {
 public:
  // `shape` must have passed FmFieldDim.
  DeepFmModel(const ModelShape& shape, const DeepFmOptions& options);
  torch::Tensor forward(const embedding::ModelInput& input) override;
  std::string kind() const override { return "deepfm"; }
  bool wants_linear_terms() const override { return true; }

 private:
  ModelShape shape_;
  torch::nn::Linear dense_proj_{nullptr};
  Mlp mlp_{nullptr};
  torch::nn::Linear out_{nullptr};
};

}  // namespace adrec::models

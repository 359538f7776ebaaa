// Logistic regression (the CTR baseline of McMahan et al. 2013, "Ad Click Prediction: a View
// from the Trenches"): the first-order weights of the sparse values (ModelInput::linear, summed
// by the embedding collection) plus a linear layer over the dense and text inputs.
// Config keys under the section: none.
#pragma once

#include <string_view>

#include <torch/nn/modules/linear.h>

#include "adrec/models/model.h"

namespace adrec::models {

struct LrOptions {};
StatusOr<LrOptions> ReadLrOptions(Config& cfg, std::string_view section);

// Parameters: "out.weight" [T, 1 + dense + Σ text] over [linear, dense, text], "out.bias" [T].
// Column 0 starts at 1 (the sparse weights' sum enters every target as in plain LR); the rest
// start at 0, as LR is usually started from zero.
class LrModel : public RankingModel {
 public:
  LrModel(const ModelShape& shape, const LrOptions& options);
  torch::Tensor forward(const embedding::ModelInput& input) override;
  std::string kind() const override { return "lr"; }
  bool wants_linear_terms() const override { return true; }

 private:
  ModelShape shape_;
  torch::nn::Linear out_{nullptr};
};

}  // namespace adrec::models

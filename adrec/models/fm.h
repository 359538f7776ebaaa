// Factorization machine (Rendle 2010, "Factorization Machines"): first-order weights plus the
// pairwise inner products of the sparse fields' embeddings, in O(F·k). The dense and text inputs
// are projected into one extra field of the same dim so they interact with every sparse field.
// Config keys under the section: none.
#pragma once

#include <string_view>

#include <torch/nn/modules/linear.h>

#include "adrec/models/model.h"

namespace adrec::models {

struct FmOptions {};
StatusOr<FmOptions> ReadFmOptions(Config& cfg, std::string_view section);

// The common embedding dim of the sparse fields; InvalidArgument naming the fields that differ
// (FM's inner products need equal dims) or when there is no sparse field. Shared with DeepFM.
StatusOr<int> FmFieldDim(const ModelShape& shape, std::string_view model);
// [B, F (+1), k]: the sparse embeddings stacked, plus the projected dense/text field when
// `dense_proj` is defined.
torch::Tensor FmFields(const embedding::ModelInput& input, torch::nn::Linear& dense_proj);

// Parameters: "dense_proj.weight/bias" (only with dense or text inputs), "out.weight" [T, 1 + k]
// over [linear, FmBiInteraction] started at 1 (so it starts as plain FM, linear + Σ_{i<j}
// <v_i, v_j>, for every target), "out.bias" [T]. The sparse first-order weights
// (ModelInput::linear) are one column shared by all targets.
class FmModel : public RankingModel {
 public:
  // `shape` must have passed FmFieldDim.
  FmModel(const ModelShape& shape, const FmOptions& options);
  torch::Tensor forward(const embedding::ModelInput& input) override;
  std::string kind() const override { return "fm"; }
  bool wants_linear_terms() const override { return true; }

 private:
  ModelShape shape_;
  torch::nn::Linear dense_proj_{nullptr};
  torch::nn::Linear out_{nullptr};
};

}  // namespace adrec::models

// DCN-V2 (Wang et al. 2021, "DCN V2: Improved Deep & Cross Network and Practical Lessons for
// Web-scale Learning to Rank Systems"): a cross network of explicit bounded-degree interactions
// and an MLP over the concatenated features, stacked (cross then MLP) or in parallel (outputs
// concatenated), then a linear head per target.
// Config keys under the section: structure ("stacked" | "parallel", default "stacked"),
// cross_layers (default 3), low_rank (0 = full-rank W; r > 0: W = U V^T of rank r),
// hidden (default [128, 64]), norm (none|batch|layer), dropout.
#pragma once

#include <string>
#include <string_view>

#include <torch/nn/modules/linear.h>

#include "adrec/models/layers.h"
#include "adrec/models/model.h"

namespace adrec::models {

struct DcnV2Options {
  std::string structure = "stacked";
  int64_t cross_layers = 3;
  int64_t low_rank = 0;
  MlpOptions mlp{.hidden = {128, 64}};
};
StatusOr<DcnV2Options> ReadDcnV2Options(Config& cfg, std::string_view section);

// Parameters: "cross.<l>.w" (or "cross.<l>.u", "cross.<l>.v"), "cross.<l>.b", "mlp.*", "out.*".
class DcnV2Model : public RankingModel {
 public:
  DcnV2Model(const ModelShape& shape, const DcnV2Options& options);
  torch::Tensor forward(const embedding::ModelInput& input) override;
  // The layer the heads read: the MLP output (stacked) or cross and MLP outputs side by side.
  torch::Tensor represent(const embedding::ModelInput& input) override;
  std::string kind() const override { return "dcnv2"; }
  CrossNetV2& cross() { return cross_; }

 private:
  ModelShape shape_;
  DcnV2Options options_;
  CrossNetV2 cross_{nullptr};
  Mlp mlp_{nullptr};
  torch::nn::Linear out_{nullptr};
};

}  // namespace adrec::models

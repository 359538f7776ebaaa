// Integrated gradients (Sundararajan, Taly, Yan 2017) of a ranking model's score over its input
// groups: each sparse field's embedding, each dense field's columns, each text field's vector
// and the first-order (linear) term. Attribution of group g for a sample: (x_g − 0) · the mean
// gradient of the target's logit along the straight path from the all-zero input to x, so the
// groups' attributions add up to logit(x) − logit(0) (completeness, up to the path's
// discretisation). The zero input is "no information": an embedding of zeros, a dense value at
// its normalised mean. What the model reads beyond ModelInput's tensors (the scene's index,
// which MMoE/PLE gates embed themselves) is not attributed.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "adrec/embedding/input.h"

namespace adrec::models {

class RankingModel;

// The names of ModelInput's parts, in its order: one per sparse field, (name, width) per dense
// field (their columns in the dense tensor, in order), one per text field; `linear` when the
// input carries first-order terms.
struct InputGroups {
  std::vector<std::string> sparse;
  std::vector<std::pair<std::string, int>> dense;
  std::vector<std::string> text;
  bool linear = false;
  std::vector<std::string> Names() const;  // sparse, dense, text, then "linear"
};

struct Attributions {
  std::vector<std::string> groups;
  torch::Tensor values;          // float [B, groups]
  torch::Tensor logit;           // float [B]: the target's logit at the input
  torch::Tensor baseline_logit;  // float [B]: at the all-zero input
};

// `steps` points of the path (midpoint rule), all samples in one forward and backward pass of
// B × steps rows. The model should be in eval mode (dropout off). Grad mode is turned on inside.
Attributions IntegratedGradients(RankingModel& model, const embedding::ModelInput& input, const InputGroups& groups,
                                 int target, int steps = 32);

// Group indices of one sample's attributions, largest magnitude first, at most `top`.
std::vector<int> TopGroups(const torch::Tensor& sample_values, int top);

}  // namespace adrec::models

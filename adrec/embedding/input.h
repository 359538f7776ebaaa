// What a ranking model reads: the tensors the embedding collection makes from one batch.
#pragma once

#include <vector>

#include <torch/types.h>

namespace adrec::embedding {

struct ModelInput {
  // One [B, dim_f] tensor per sparse field, in FeatureSpec::SparseFields() order (pooled for
  // multi-hot and sequence fields).
  std::vector<torch::Tensor> sparse;
  torch::Tensor dense;              // [B, DenseWidth()] float, normalised; [B, 0] when none
  std::vector<torch::Tensor> text;  // one [B, width] per text field
  // [B, 1]: the sum of first-order weights of every sparse value (LR, FM and DeepFM's linear
  // part); undefined unless the collection was built with linear terms.
  torch::Tensor linear;
  torch::Tensor scene;  // int64 [B]: the scene of each sample (gate input of multi-task models)
  int64_t batch_size() const { return scene.defined() ? scene.size(0) : 0; }

  // `f` of every feature tensor (sparse, dense, text, linear where defined); the scene as it is.
  template <typename F>
  ModelInput MapFeatures(F&& f) const {
    ModelInput out;
    for (const torch::Tensor& s : sparse) out.sparse.push_back(f(s));
    out.dense = f(dense);
    for (const torch::Tensor& t : text) out.text.push_back(f(t));
    if (linear.defined()) out.linear = f(linear);
    out.scene = scene;
    return out;
  }
};

}  // namespace adrec::embedding

// SASRec (Kang & McAuley 2018, "Self-Attentive Sequential Recommendation"): item embeddings
// scaled by sqrt(dim) plus learned positions, then `blocks` pre-norm blocks of causal multi-head
// softmax attention (queries from the normalised input, keys and values from the input, as the
// authors' code does) and a point-wise feed-forward network, padding zeroed after each block, and
// a final layer norm. Parameters: "item_emb.weight", "pos_emb.weight", "blocks.<i>.attn_norm.*",
// "blocks.<i>.qkv.*" ([3·dim, dim]: query, key, value), "blocks.<i>.attn_out.*",
// "blocks.<i>.ffn_norm.*", "blocks.<i>.ffn1.*", "blocks.<i>.ffn2.*", "final_norm.*" — the names of
// the twin in bench/reference/seq_models.py.
#pragma once

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "adrec/models/sequence_model.h"

namespace adrec::models {

class SasRecBlockImpl : public torch::nn::Module {
 public:
  SasRecBlockImpl(int64_t dim, int64_t heads, double dropout);
  // x [B, L, dim], keep [B, L, 1] (1 at real items).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& keep);

 private:
  int64_t dim_, heads_;
  double dropout_;
  torch::nn::LayerNorm attn_norm_{nullptr}, ffn_norm_{nullptr};
  torch::nn::Linear qkv_{nullptr}, attn_out_{nullptr}, ffn1_{nullptr}, ffn2_{nullptr};
};
TORCH_MODULE(SasRecBlock);

class SasRecModel : public SequenceModel {
 public:
  SasRecModel(const SequenceShape& shape, const SequenceOptions& options);
  torch::Tensor Encode(const SequenceInput& input) override;
  torch::Tensor ItemTable() override { return item_emb_->weight; }
  std::string kind() const override { return "sasrec"; }
  const SequenceShape& shape() const override { return shape_; }

 private:
  SequenceShape shape_;
  SequenceOptions options_;
  torch::nn::Embedding item_emb_{nullptr}, pos_emb_{nullptr};
  std::vector<SasRecBlock> blocks_;
  torch::nn::LayerNorm final_norm_{nullptr};
};

}  // namespace adrec::models

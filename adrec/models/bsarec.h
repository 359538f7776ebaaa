// BSARec (Shin et al. 2024, "An Attentive Inductive Bias for Sequential Recommendation beyond the
// Self-Attention"): each block mixes two views of the same window,
//   dsp = LN(x + dropout(low(x) + β² ⊙ (x − low(x))))   a frequency filter (FMLP-Rec's heir):
//         low(x) keeps the cutoff // 2 + 1 lowest frequencies of x along the sequence, β [dim]
//         rescales the rest (learned, started at N(0, 1))
//   gsp = LN(x + dropout(W_o · attention(x)))           causal softmax attention
//   h   = α · dsp + (1 − α) · gsp, then LN(h + dropout(W_2 · GELU(W_1 · h)))   (4 · dim inside)
// Post-norm blocks, LN(item + position) with dropout at the input, every weight N(0, 0.02), as
// the S3-Rec family of models. The filter sees the whole window, so the model is not causal: it is
// read at the last real position only and trains on prefixes. Rows are left-aligned into a
// window of max_len (the newest item at max_len − 1, positions count from the window's start)
// before the blocks: the filter depends on where the items sit, so every row and batch sees the
// same window. low(x) is the fixed real matrix P [max_len, max_len] of the rfft → cut → irfft
// chain (orthonormal), applied as one GEMM, which autocasts to bf16 where FFTs do not.
// Parameters: "item_emb.weight", "pos_emb.weight", "emb_norm.*", "blocks.<i>.beta",
// "blocks.<i>.filter_norm.*", "blocks.<i>.qkv.*" ([3·dim, dim]), "blocks.<i>.attn_out.*",
// "blocks.<i>.attn_norm.*", "blocks.<i>.ffn1.*", "blocks.<i>.ffn2.*", "blocks.<i>.ffn_norm.*";
// the buffer "low_pass" [max_len, max_len].
#pragma once

#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "adrec/models/sequence_model.h"
#include "adrec/models/window.h"

namespace adrec::models {

struct BsaRecOptions {
  SequenceOptions base;            // dim, blocks, heads, dropout (hidden states)
  double attention_dropout = 0.5;  // on the attention weights (model.attention_dropout; default model.dropout)
  double alpha = 0.7;              // weight of the filter view (model.alpha, in [0, 1])
  int64_t cutoff = 5;              // model.cutoff: the lowest cutoff // 2 + 1 frequencies are "low"
};
StatusOr<BsaRecOptions> ReadBsaRecOptions(Config& cfg, std::string_view section);

// The low-pass operator of a window of `length`: P · x keeps the `keep` lowest rfft frequencies
// of x (orthonormal transform), [length, length] float64.
torch::Tensor LowPassMatrix(int64_t length, int64_t keep);

class BsaRecBlockImpl : public torch::nn::Module {
 public:
  BsaRecBlockImpl(int64_t dim, const BsaRecOptions& options);
  // x [B, W, dim]; low_pass [W, W]; mask [B, 1, W, W] additive (0 where a query may attend).
  // Returns [B, W, dim], or the newest slot's state [B, dim] with newest_only.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& low_pass, const torch::Tensor& mask,
                        bool newest_only = false);

  torch::Tensor beta;

 private:
  int64_t dim_, heads_;
  double dropout_, attention_dropout_, alpha_;
  torch::nn::LayerNorm filter_norm_{nullptr}, attn_norm_{nullptr}, ffn_norm_{nullptr};
  torch::nn::Linear qkv_{nullptr}, attn_out_{nullptr}, ffn1_{nullptr}, ffn2_{nullptr};
};
TORCH_MODULE(BsaRecBlock);

class BsaRecModel : public SequenceModel {
 public:
  BsaRecModel(const SequenceShape& shape, const BsaRecOptions& options);
  // Right-padded input as every sequence model takes; each row's last real position holds its
  // state (see causal()), every other position is zero.
  torch::Tensor Encode(const SequenceInput& input) override;
  torch::Tensor ItemTable() override { return front_.items->weight; }
  std::string kind() const override { return "bsarec"; }
  bool causal() const override { return false; }
  const SequenceShape& shape() const override { return shape_; }

 private:
  SequenceShape shape_;
  BsaRecOptions options_;
  FamilyFront front_;
  std::vector<BsaRecBlock> blocks_;
  torch::Tensor low_pass_;
};

}  // namespace adrec::models

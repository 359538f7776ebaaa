// WEARec (AAAI 2026, "Wavelet Enhanced Adaptive Frequency Filter for Sequential Recommendation"):
// FMLP-Rec's filter-only blocks, no attention. Each block splits the window's states into `heads`
// groups of channels and mixes two views of them along the sequence:
//   global  irfft(F · f + b): F the orthonormal rfft of each group, f = base_filter ⊙ (1 + s) and
//           b = base_bias + t per group and frequency, where [s, t] = W_b · GELU(W_a · mean(x))
//           adapt the filter to the row (mean over the whole window, padding slots included);
//   local   one level of the Haar wavelet: slot pairs (2k, 2k+1) split into the mean a and half
//           the difference d, d rescaled by a learned weight per pair and channel, then rebuilt as
//           (a + d, a − d) (an odd window's last slot is 0 in this view);
//   h = LN(x + dropout((1 − α) · local + α · global)), then LN(h + dropout(W_2 · GELU(W_1 · h))).
// The embedding front, window and feed-forward are BSARec's (window.h): left-aligned in a window
// of max_len, read at the last real position only, trained on prefixes. The FFTs run in float32
// (under bf16 autocast too); the linear layers autocast.
// Parameters: "item_emb.weight", "pos_emb.weight", "emb_norm.*", "blocks.<i>.base_filter" [heads,
// K, 1] (ones; K = max_len / 2 + 1), "blocks.<i>.base_bias" [heads, K, 1] (−0.1),
// "blocks.<i>.detail_weight" [heads, max_len / 2, dim / heads] (N(0, 0.02)), "blocks.<i>.adapt1.*"
// [dim, dim], "blocks.<i>.adapt2.*" [heads · K · 2, dim] (row (h · K + k) · 2 + j: j = 0 the scale,
// 1 the bias), "blocks.<i>.filter_norm.*", "blocks.<i>.ffn1.*", "blocks.<i>.ffn2.*",
// "blocks.<i>.ffn_norm.*" — the names of the twin in bench/reference/seq_models.py.
#pragma once

#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "adrec/models/sequence_model.h"
#include "adrec/models/window.h"

namespace adrec::models {

struct WeaRecOptions {
  SequenceOptions base;  // dim, blocks, heads (groups of channels the filter adapts per), dropout
  double alpha = 0.3;    // weight of the global (Fourier) view against the wavelet (model.alpha, in [0, 1])
};
StatusOr<WeaRecOptions> ReadWeaRecOptions(Config& cfg, std::string_view section);

class WeaRecBlockImpl : public torch::nn::Module {
 public:
  WeaRecBlockImpl(int64_t dim, int64_t window, const WeaRecOptions& options);
  // x [B, window, dim] → [B, window, dim], or the newest slot's state [B, dim] with newest_only.
  torch::Tensor forward(const torch::Tensor& x, bool newest_only = false);

  torch::Tensor base_filter, base_bias, detail_weight;

 private:
  torch::Tensor Global(const torch::Tensor& groups, const torch::Tensor& x);
  torch::Tensor Local(const torch::Tensor& groups);

  int64_t dim_, heads_, window_, bins_;
  double dropout_, alpha_;
  torch::nn::Linear adapt1_{nullptr}, adapt2_{nullptr}, ffn1_{nullptr}, ffn2_{nullptr};
  torch::nn::LayerNorm filter_norm_{nullptr}, ffn_norm_{nullptr};
};
TORCH_MODULE(WeaRecBlock);

class WeaRecModel : public SequenceModel {
 public:
  WeaRecModel(const SequenceShape& shape, const WeaRecOptions& options);
  // Right-padded input as every sequence model takes; each row's last real position holds its
  // state (see causal()), every other position is zero.
  torch::Tensor Encode(const SequenceInput& input) override;
  torch::Tensor ItemTable() override { return front_.items->weight; }
  std::string kind() const override { return "wearec"; }
  bool causal() const override { return false; }
  const SequenceShape& shape() const override { return shape_; }

 private:
  SequenceShape shape_;
  WeaRecOptions options_;
  FamilyFront front_;
  std::vector<WeaRecBlock> blocks_;
};

}  // namespace adrec::models

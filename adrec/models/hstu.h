// HSTU (Zhai et al. 2024, "Actions Speak Louder than Words: Trillion-Parameter Sequential
// Transducers for Generative Recommendations"). Input as SASRec's (item embeddings · sqrt(dim)
// plus learned positions, dropout); each block, with LN an affine-free layer norm:
//   U, V, Q, K = split(SiLU(LN(x) · W_uvqk))                     (no bias, as the reference)
//   A = SiLU(Q Kᵀ + rab_pos(j − i) + rab_time(bucket(t_i − t_j))) / max_len, causal
//   x ← W_o · dropout(LN(A V) ⊙ U) + b_o + x
// Pointwise SiLU instead of softmax: attention weights do not compete, so the strength of a
// user's engagement survives aggregation. Time buckets: floor(ln(max(Δt, 1)) / 0.301), clamped
// to time_buckets. The /max_len normalisation is a constant (the reference divides by the
// batch's padded length): LN(A V) removes any per-row scale anyway, and a constant neither leaks
// the number of later items into earlier positions nor depends on the batch.
// Differences from the reference code, on purpose: the time bias of position i uses t_i (the
// reference uses the next event's time, the request time at serving).
// Parameters: "item_emb.weight", "pos_emb.weight", "blocks.<i>.uvqk" [dim, H·(2·dv + 2·dqk)],
// "blocks.<i>.out.*", "blocks.<i>.pos_w" [2·max_len − 1], "blocks.<i>.ts_w" [time_buckets + 1].
#pragma once

#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>

#include "adrec/models/sequence_model.h"

namespace adrec::models {

struct HstuOptions {
  SequenceOptions base;
  int64_t attention_dim = 0;  // per-head Q/K width (model.attention_dim); 0 = dim / heads
  int64_t linear_dim = 0;     // per-head U/V width (model.linear_dim); 0 = dim / heads
  int64_t time_buckets = 128; // model.time_buckets
};
StatusOr<HstuOptions> ReadHstuOptions(Config& cfg, std::string_view section);

// Bucket of a time gap in seconds (≥ 0 after the clamp): floor(ln(max(|Δt|, 1)) / 0.301).
torch::Tensor HstuTimeBuckets(const torch::Tensor& timestamps, int64_t time_buckets);

class HstuBlockImpl : public torch::nn::Module {
 public:
  HstuBlockImpl(int64_t dim, int64_t max_len, const HstuOptions& options);
  // x [B, L, dim]; buckets [B, L, L] int64 (query i, key j); mask [L, L] float (1 where j ≤ i).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& buckets, const torch::Tensor& mask);

  torch::Tensor uvqk, pos_w, ts_w;

 private:
  int64_t dim_, max_len_, heads_, dqk_, dv_;
  double dropout_;
  torch::nn::Linear out_{nullptr};
};
TORCH_MODULE(HstuBlock);

class HstuModel : public SequenceModel {
 public:
  HstuModel(const SequenceShape& shape, const HstuOptions& options);
  torch::Tensor Encode(const SequenceInput& input) override;
  torch::Tensor ItemTable() override { return item_emb_->weight; }
  std::string kind() const override { return "hstu"; }
  const SequenceShape& shape() const override { return shape_; }

 private:
  SequenceShape shape_;
  HstuOptions options_;
  torch::nn::Embedding item_emb_{nullptr}, pos_emb_{nullptr};
  std::vector<HstuBlock> blocks_;
};

}  // namespace adrec::models

#include "adrec/models/sasrec.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "adrec/models/layers.h"

namespace adrec::models {

namespace {
// The authors' code uses 1e-8 in every layer norm.
torch::nn::LayerNorm Norm(int64_t dim) { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-8)); }

// Causal softmax attention with dropout on the weights, for CPU training. libtorch's fused
// attention takes its math path there and draws a dropout mask for all L × L weights, a third of
// a SASRec step; the weights above the diagonal are zero anyway, so only the L(L+1)/2 below are
// drawn, as uniform < keep (cheaper than bernoulli_). Same distribution, fewer draws.
torch::Tensor CausalAttentionWithDropout(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double p) {
  const int64_t B = q.size(0), H = q.size(1), L = q.size(2);
  const auto opts = q.options();
  torch::Tensor scores = torch::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(q.size(3))));
  torch::Tensor above = torch::ones({L, L}, opts.dtype(torch::kBool)).triu(1);
  torch::Tensor w = torch::softmax(scores.masked_fill(above, -std::numeric_limits<float>::infinity()), -1);
  torch::Tensor tri = torch::tril_indices(L, L, 0, opts.dtype(torch::kLong));
  torch::Tensor flat = tri[0] * L + tri[1];
  const double keep_p = 1.0 - p;
  torch::Tensor draws = torch::rand({B, H, flat.size(0)}, opts).lt(keep_p).to(opts.dtype()).mul_(1.0 / keep_p);
  torch::Tensor keep = torch::zeros({B, H, L * L}, opts).index_copy_(2, flat, draws).view({B, H, L, L});
  return torch::matmul(w * keep, v);
}
}  // namespace

SasRecBlockImpl::SasRecBlockImpl(int64_t dim, int64_t heads, double dropout)
    : dim_(dim), heads_(heads), dropout_(dropout) {
  attn_norm_ = register_module("attn_norm", Norm(dim));
  qkv_ = register_module("qkv", torch::nn::Linear(dim, 3 * dim));
  attn_out_ = register_module("attn_out", torch::nn::Linear(dim, dim));
  ffn_norm_ = register_module("ffn_norm", Norm(dim));
  ffn1_ = register_module("ffn1", torch::nn::Linear(dim, dim));
  ffn2_ = register_module("ffn2", torch::nn::Linear(dim, dim));
}

torch::Tensor SasRecBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& keep) {
  const int64_t B = x.size(0), L = x.size(1), dh = dim_ / heads_;
  torch::Tensor q_in = attn_norm_->forward(x);
  const torch::Tensor& w = qkv_->weight;
  const torch::Tensor& b = qkv_->bias;
  auto heads = [&](const torch::Tensor& t) { return t.view({B, L, heads_, dh}).transpose(1, 2); };
  torch::Tensor q = heads(torch::linear(q_in, w.narrow(0, 0, dim_), b.narrow(0, 0, dim_)));
  // Keys and values both read x (queries read the normed x, as in the authors' code): one GEMM.
  std::vector<torch::Tensor> kv = torch::linear(x, w.narrow(0, dim_, 2 * dim_), b.narrow(0, dim_, 2 * dim_)).chunk(2, -1);
  torch::Tensor k = heads(kv[0]), v = heads(kv[1]);
  // Fused causal softmax attention (flash / memory-efficient kernels on CUDA, and everywhere
  // without dropout).
  const bool cpu_dropout = is_training() && dropout_ > 0 && !x.is_cuda();
  torch::Tensor a = cpu_dropout ? CausalAttentionWithDropout(q, k, v, dropout_)
                                : at::scaled_dot_product_attention(q, k, v, {}, is_training() ? dropout_ : 0.0,
                                                                   /*is_causal=*/true);
  torch::Tensor h = q_in + attn_out_->forward(a.transpose(1, 2).reshape({B, L, dim_}));
  h = ffn_norm_->forward(h);
  torch::Tensor f = Dropout(torch::relu(ffn1_->forward(h)), dropout_, is_training());
  h = Dropout(ffn2_->forward(f), dropout_, is_training()) + h;
  return h * keep;
}

SasRecModel::SasRecModel(const SequenceShape& shape, const SequenceOptions& options)
    : shape_(shape), options_(options) {
  item_emb_ = register_module("item_emb", torch::nn::Embedding(torch::nn::EmbeddingOptions(shape.num_items + 1, options.dim).padding_idx(0)));
  pos_emb_ = register_module("pos_emb", torch::nn::Embedding(shape.max_len, options.dim));
  InitSequenceEmbeddings(item_emb_->weight, pos_emb_->weight);
  blocks_ = RegisterBlocks<SasRecBlock>(*this, options.blocks,
                                        [&] { return SasRecBlock(options.dim, options.heads, options.dropout); });
  final_norm_ = register_module("final_norm", Norm(options.dim));
}

torch::Tensor SasRecModel::Encode(const SequenceInput& input) {
  const torch::Tensor& items = input.items;
  TORCH_CHECK(items.dim() == 2 && items.size(1) <= shape_.max_len, "sasrec: items are ", items.sizes(),
              ", want [B, L] with L <= max_len ", shape_.max_len);
  const int64_t L = items.size(1);
  torch::Tensor keep = items.ne(0).unsqueeze(-1).to(item_emb_->weight.scalar_type());
  torch::Tensor pos = torch::arange(L, items.options());
  torch::Tensor x = item_emb_->forward(items) * std::sqrt(static_cast<double>(options_.dim)) + pos_emb_->forward(pos);
  if (input.extra.defined()) x = x + input.extra;
  x = Dropout(x, options_.dropout, is_training()) * keep;
  for (auto& block : blocks_) x = block->forward(x, keep);
  return final_norm_->forward(x);
}

}  // namespace adrec::models

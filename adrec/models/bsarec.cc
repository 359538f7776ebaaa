#include "adrec/models/bsarec.h"

#include <torch/torch.h>

#include <cmath>

#include "adrec/core/config.h"
#include "adrec/models/layers.h"
#include "adrec/models/window.h"

namespace adrec::models {

namespace {
constexpr double kMasked = -10000.0;  // additive mask: a row with no key left stays finite
}  // namespace

StatusOr<BsaRecOptions> ReadBsaRecOptions(Config& cfg, std::string_view section) {
  BsaRecOptions o;
  o.base.dim = 64;  // BSARec's sizes; the twin in bench/reference/seq_models.py has the same defaults
  o.base.dropout = 0.5;
  ADREC_RETURN_IF_ERROR(ReadSequenceOptions(cfg, section, &o.base));
  o.attention_dropout = o.base.dropout;
  const std::string attn = OptionKey(section, "attention_dropout");
  ADREC_RETURN_IF_ERROR(cfg.Get(attn, &o.attention_dropout));
  ADREC_RETURN_IF_ERROR(ReadMixWeight(cfg, section, &o.alpha));
  ADREC_RETURN_IF_ERROR(ReadInt(cfg, section, "cutoff", 1, &o.cutoff));
  if (!(o.attention_dropout >= 0 && o.attention_dropout < 1)) {
    return InvalidArgumentError(cfg.source() + ": key '" + attn + "' must be in [0, 1), got " + std::to_string(o.attention_dropout));
  }
  ADREC_RETURN_IF_ERROR(CheckHeadsDivideDim(cfg, section, "bsarec", o.base));
  return o;
}

torch::Tensor LowPassMatrix(int64_t length, int64_t keep) {
  torch::NoGradGuard no_grad;
  // Column j of P is the filter applied to the unit impulse at j.
  torch::Tensor f = torch::fft::rfft(torch::eye(length, torch::kFloat64), length, 0, "ortho");
  if (keep < f.size(0)) f.narrow(0, keep, f.size(0) - keep).zero_();
  return torch::fft::irfft(f, length, 0, "ortho");
}

BsaRecBlockImpl::BsaRecBlockImpl(int64_t dim, const BsaRecOptions& options)
    : dim_(dim),
      heads_(options.base.heads),
      dropout_(options.base.dropout),
      attention_dropout_(options.attention_dropout),
      alpha_(options.alpha) {
  beta = register_parameter("beta", torch::randn({dim}));
  filter_norm_ = register_module("filter_norm", FamilyNorm(dim));
  qkv_ = register_module("qkv", FamilyDense(dim, 3 * dim));
  attn_out_ = register_module("attn_out", FamilyDense(dim, dim));
  attn_norm_ = register_module("attn_norm", FamilyNorm(dim));
  ffn1_ = register_module("ffn1", FamilyDense(dim, 4 * dim));
  ffn2_ = register_module("ffn2", FamilyDense(4 * dim, dim));
  ffn_norm_ = register_module("ffn_norm", FamilyNorm(dim));
}

torch::Tensor BsaRecBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& low_pass, const torch::Tensor& mask,
                                       bool newest_only) {
  const int64_t B = x.size(0), W = x.size(1), dh = dim_ / heads_;
  const bool train = is_training();
  // With newest_only the queries, and everything after the views, are the newest slot's alone:
  // the query axis `axis` of `t` cut to that slot.
  auto queries = [&](const torch::Tensor& t, int64_t axis) { return newest_only ? t.narrow(axis, W - 1, 1) : t; };
  torch::Tensor xq = queries(x, 1);  // [B, Q, dim]
  const int64_t Q = xq.size(1);
  torch::Tensor low = torch::matmul(queries(low_pass, 0).to(x.scalar_type()), x);
  torch::Tensor filtered = low + beta.square() * (xq - low);
  torch::Tensor dsp = filter_norm_->forward(xq + Dropout(filtered, dropout_, train));

  auto heads = [&](const torch::Tensor& t) { return t.view({B, t.size(1), heads_, dh}).transpose(1, 2); };
  std::vector<torch::Tensor> qkv = qkv_->forward(x).chunk(3, -1);
  torch::Tensor a = at::scaled_dot_product_attention(heads(queries(qkv[0], 1)), heads(qkv[1]), heads(qkv[2]),
                                                     queries(mask, 2).to(x.scalar_type()), train ? attention_dropout_ : 0.0);
  torch::Tensor attended = attn_out_->forward(a.transpose(1, 2).reshape({B, Q, dim_}));
  torch::Tensor gsp = attn_norm_->forward(xq + Dropout(attended, dropout_, train));

  torch::Tensor h = dsp * alpha_ + gsp * (1.0 - alpha_);
  torch::Tensor out = FamilyFeedForward(h, ffn1_, ffn2_, ffn_norm_, dropout_, train);
  return newest_only ? out.squeeze(1) : out;
}

BsaRecModel::BsaRecModel(const SequenceShape& shape, const BsaRecOptions& options) : shape_(shape), options_(options) {
  const int64_t dim = options.base.dim;
  front_ = FamilyFront(*this, shape, dim);
  blocks_ = RegisterBlocks<BsaRecBlock>(*this, options.base.blocks, [&] { return BsaRecBlock(dim, options); });
  low_pass_ = register_buffer("low_pass", LowPassMatrix(shape.max_len, options.cutoff / 2 + 1).to(torch::kFloat32));
}

torch::Tensor BsaRecModel::Encode(const SequenceInput& input) {
  LeftWindow window;
  torch::Tensor x = front_.Embed(input, kind(), options_.base.dropout, is_training(), &window);
  const int64_t B = x.size(0), W = shape_.max_len;
  // Query i attends to key j ≤ i when j holds an item.
  torch::Tensor allowed = CausalMask(W, x.device()).unsqueeze(0) & window.real.unsqueeze(1);  // [B, W, W]
  torch::Tensor mask = torch::zeros({B, 1, W, W}, x.options()).masked_fill_(allowed.logical_not().unsqueeze(1), kMasked);
  for (size_t b = 0; b + 1 < blocks_.size(); ++b) x = blocks_[b]->forward(x, low_pass_, mask);
  // Only the newest slot is read, so the last block's queries and feed-forward run there alone.
  return NewestAtLastPosition(blocks_.back()->forward(x, low_pass_, mask, /*newest_only=*/true), window,
                              input.items.size(1));
}

}  // namespace adrec::models

#include "adrec/models/wearec.h"

#include <torch/torch.h>

#include "adrec/core/config.h"
#include "adrec/models/layers.h"
#include "adrec/models/window.h"

namespace adrec::models {

namespace {
constexpr double kDetailInitStd = 0.02;
constexpr double kBaseBias = -0.1;
}  // namespace

StatusOr<WeaRecOptions> ReadWeaRecOptions(Config& cfg, std::string_view section) {
  WeaRecOptions o;
  o.base.dim = 64;  // WEARec's sizes; the twin in bench/reference/seq_models.py has the same defaults
  o.base.heads = 2;
  o.base.dropout = 0.5;
  ADREC_RETURN_IF_ERROR(ReadSequenceOptions(cfg, section, &o.base));
  ADREC_RETURN_IF_ERROR(ReadMixWeight(cfg, section, &o.alpha));
  ADREC_RETURN_IF_ERROR(CheckHeadsDivideDim(cfg, section, "wearec", o.base));
  return o;
}

WeaRecBlockImpl::WeaRecBlockImpl(int64_t dim, int64_t window, const WeaRecOptions& options)
    : dim_(dim),
      heads_(options.base.heads),
      window_(window),
      bins_(window / 2 + 1),
      dropout_(options.base.dropout),
      alpha_(options.alpha) {
  base_filter = register_parameter("base_filter", torch::ones({heads_, bins_, 1}));
  base_bias = register_parameter("base_bias", torch::full({heads_, bins_, 1}, kBaseBias));
  detail_weight = register_parameter("detail_weight", torch::randn({heads_, window / 2, dim / heads_}) * kDetailInitStd);
  adapt1_ = register_module("adapt1", FamilyDense(dim, dim));
  adapt2_ = register_module("adapt2", FamilyDense(dim, heads_ * bins_ * 2));
  filter_norm_ = register_module("filter_norm", FamilyNorm(dim));
  ffn1_ = register_module("ffn1", FamilyDense(dim, 4 * dim));
  ffn2_ = register_module("ffn2", FamilyDense(4 * dim, dim));
  ffn_norm_ = register_module("ffn_norm", FamilyNorm(dim));
}

torch::Tensor WeaRecBlockImpl::Global(const torch::Tensor& groups, const torch::Tensor& x) {
  const int64_t B = x.size(0);
  // float32: cuFFT in half precision takes powers of two only, and the window is max_len.
  torch::Tensor spectrum = torch::fft::rfft(groups.to(torch::kFloat32), window_, 2, "ortho");  // [B, H, K, dh]
  torch::Tensor adapt = adapt2_->forward(torch::gelu(adapt1_->forward(x.mean(1))))
                            .to(torch::kFloat32)
                            .view({B, heads_, bins_, 2});
  torch::Tensor scale = base_filter * (1 + adapt.select(-1, 0).unsqueeze(-1));  // [B, H, K, 1]
  torch::Tensor shift = base_bias + adapt.select(-1, 1).unsqueeze(-1);          // added to the real part
  return torch::fft::irfft(spectrum * scale + shift, window_, 2, "ortho");
}

torch::Tensor WeaRecBlockImpl::Local(const torch::Tensor& groups) {
  const int64_t B = groups.size(0), dh = dim_ / heads_, pairs = window_ / 2;
  torch::Tensor p = groups.narrow(2, 0, 2 * pairs).reshape({B, heads_, pairs, 2, dh});
  torch::Tensor even = p.select(3, 0), odd = p.select(3, 1);
  torch::Tensor approx = (even + odd) * 0.5;
  torch::Tensor detail = (even - odd) * 0.5 * detail_weight;
  torch::Tensor rebuilt = torch::stack({approx + detail, approx - detail}, 3).reshape({B, heads_, 2 * pairs, dh});
  if (2 * pairs == window_) return rebuilt;
  return torch::cat({rebuilt, torch::zeros({B, heads_, 1, dh}, rebuilt.options())}, 2);
}

torch::Tensor WeaRecBlockImpl::forward(const torch::Tensor& x, bool newest_only) {
  const int64_t B = x.size(0), dh = dim_ / heads_;
  const bool train = is_training();
  torch::Tensor groups = x.view({B, window_, heads_, dh}).permute({0, 2, 1, 3});  // [B, H, W, dh]
  torch::Tensor mixed = Local(groups) * (1.0 - alpha_) + Global(groups, x) * alpha_;
  torch::Tensor input = x;
  if (newest_only) {
    // The views mix the whole window; everything after them is per slot.
    mixed = mixed.select(2, window_ - 1).reshape({B, dim_});
    input = x.select(1, window_ - 1);
  } else {
    mixed = mixed.permute({0, 2, 1, 3}).reshape({B, window_, dim_});
  }
  torch::Tensor h = filter_norm_->forward(input + Dropout(mixed.to(x.scalar_type()), dropout_, train));
  return FamilyFeedForward(h, ffn1_, ffn2_, ffn_norm_, dropout_, train);
}

WeaRecModel::WeaRecModel(const SequenceShape& shape, const WeaRecOptions& options) : shape_(shape), options_(options) {
  const int64_t dim = options.base.dim;
  front_ = FamilyFront(*this, shape, dim);
  blocks_ = RegisterBlocks<WeaRecBlock>(*this, options.base.blocks, [&] { return WeaRecBlock(dim, shape.max_len, options); });
}

torch::Tensor WeaRecModel::Encode(const SequenceInput& input) {
  LeftWindow window;
  torch::Tensor x = front_.Embed(input, kind(), options_.base.dropout, is_training(), &window);
  for (size_t b = 0; b + 1 < blocks_.size(); ++b) x = blocks_[b]->forward(x);
  // Only the newest slot is read, so the last block runs there alone (Beauty CPU epochs 1.44x faster).
  return NewestAtLastPosition(blocks_.back()->forward(x, /*newest_only=*/true), window, input.items.size(1));
}

}  // namespace adrec::models

#include "adrec/models/hstu.h"

#include <torch/torch.h>

#include <cmath>

#include "adrec/core/config.h"
#include "adrec/models/layers.h"

namespace adrec::models {

namespace {
constexpr double kNormEps = 1e-6;       // the reference's layer-norm epsilon
constexpr double kTimeBucketLog = 0.301;  // ln-units per time bucket (the reference's log10(2))

torch::Tensor PlainNorm(const torch::Tensor& x) { return torch::layer_norm(x, {x.size(-1)}, {}, {}, kNormEps); }
}  // namespace

StatusOr<HstuOptions> ReadHstuOptions(Config& cfg, std::string_view section) {
  HstuOptions o;
  ADREC_RETURN_IF_ERROR(ReadSequenceOptions(cfg, section, &o.base));
  ADREC_RETURN_IF_ERROR(ReadInt(cfg, section, "attention_dim", 0, &o.attention_dim));
  ADREC_RETURN_IF_ERROR(ReadInt(cfg, section, "linear_dim", 0, &o.linear_dim));
  ADREC_RETURN_IF_ERROR(ReadInt(cfg, section, "time_buckets", 1, &o.time_buckets));
  if ((o.attention_dim == 0 || o.linear_dim == 0) && o.base.dim % o.base.heads != 0) {
    return InvalidArgumentError(cfg.source() + ": hstu needs " + OptionKey(section, "attention_dim") + " and " +
                                OptionKey(section, "linear_dim") + " when " + OptionKey(section, "dim") +
                                " is not divisible by " + OptionKey(section, "heads"));
  }
  return o;
}

torch::Tensor HstuTimeBuckets(const torch::Tensor& timestamps, int64_t time_buckets) {
  torch::Tensor t = timestamps.to(torch::kFloat64);
  torch::Tensor gap = (t.unsqueeze(2) - t.unsqueeze(1)).abs().clamp_min(1.0);  // [B, Lq, Lk]
  return (gap.log() / kTimeBucketLog).floor().to(torch::kInt64).clamp(0, time_buckets);
}

HstuBlockImpl::HstuBlockImpl(int64_t dim, int64_t max_len, const HstuOptions& options)
    : dim_(dim), max_len_(max_len), heads_(options.base.heads), dropout_(options.base.dropout) {
  dqk_ = options.attention_dim > 0 ? options.attention_dim : dim / heads_;
  dv_ = options.linear_dim > 0 ? options.linear_dim : dim / heads_;
  const int64_t width = heads_ * (2 * dv_ + 2 * dqk_);
  // Glorot for the joint projection, small normal biases (as the reference initialises them).
  uvqk = register_parameter("uvqk", torch::nn::init::xavier_uniform_(torch::empty({dim, width})));
  out_ = register_module("out", torch::nn::Linear(heads_ * dv_, dim));
  pos_w = register_parameter("pos_w", torch::empty({2 * max_len - 1}).normal_(0, 0.02));
  ts_w = register_parameter("ts_w", torch::empty({options.time_buckets + 1}).normal_(0, 0.02));
}

torch::Tensor HstuBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& buckets, const torch::Tensor& mask) {
  const int64_t B = x.size(0), L = x.size(1);
  torch::Tensor uvqk_out = torch::silu(torch::matmul(PlainNorm(x), uvqk));
  std::vector<torch::Tensor> parts = uvqk_out.split({heads_ * dv_, heads_ * dv_, heads_ * dqk_, heads_ * dqk_}, -1);
  auto heads = [&](const torch::Tensor& t, int64_t d) { return t.reshape({B, L, heads_, d}).transpose(1, 2); };
  torch::Tensor v = heads(parts[1], dv_), q = heads(parts[2], dqk_), k = heads(parts[3], dqk_);
  // Relative position j − i, offset into pos_w; [L, L] + time bias [B, L, L].
  torch::Tensor idx = torch::arange(L, buckets.options()).unsqueeze(0) - torch::arange(L, buckets.options()).unsqueeze(1);
  torch::Tensor rab = pos_w.index_select(0, (idx + (max_len_ - 1)).reshape(-1)).view({1, L, L}) +
                      ts_w.index_select(0, buckets.reshape(-1)).view({B, L, L});
  torch::Tensor scores = torch::matmul(q, k.transpose(-1, -2)) + rab.unsqueeze(1).to(q.scalar_type());
  torch::Tensor a = torch::silu(scores) * (mask.to(q.scalar_type()) / static_cast<double>(max_len_));
  torch::Tensor av = torch::matmul(a, v).transpose(1, 2).reshape({B, L, heads_ * dv_});
  torch::Tensor o = PlainNorm(av) * parts[0];
  return out_->forward(Dropout(o, dropout_, is_training())) + x;
}

HstuModel::HstuModel(const SequenceShape& shape, const HstuOptions& options) : shape_(shape), options_(options) {
  const int64_t dim = options.base.dim;
  item_emb_ = register_module("item_emb", torch::nn::Embedding(torch::nn::EmbeddingOptions(shape.num_items + 1, dim).padding_idx(0)));
  pos_emb_ = register_module("pos_emb", torch::nn::Embedding(shape.max_len, dim));
  InitSequenceEmbeddings(item_emb_->weight, pos_emb_->weight);
  blocks_ = RegisterBlocks<HstuBlock>(*this, options.base.blocks, [&] { return HstuBlock(dim, shape.max_len, options); });
}

torch::Tensor HstuModel::Encode(const SequenceInput& input) {
  const torch::Tensor& items = input.items;
  TORCH_CHECK(items.dim() == 2 && items.size(1) <= shape_.max_len, "hstu: items are ", items.sizes(),
              ", want [B, L] with L <= max_len ", shape_.max_len);
  TORCH_CHECK(input.timestamps.defined() && input.timestamps.sizes() == items.sizes(), "hstu: timestamps must be ",
              items.sizes(), " like the items");
  const int64_t L = items.size(1);
  const double scale = std::sqrt(static_cast<double>(options_.base.dim));
  torch::Tensor keep = items.ne(0).unsqueeze(-1).to(item_emb_->weight.scalar_type());
  torch::Tensor x = item_emb_->forward(items) * scale + pos_emb_->forward(torch::arange(L, items.options()));
  if (input.extra.defined()) x = x + input.extra;
  x = Dropout(x, options_.base.dropout, is_training()) * keep;
  torch::Tensor buckets = HstuTimeBuckets(input.timestamps, options_.time_buckets);
  torch::Tensor mask = CausalMask(L, items.device());
  for (auto& block : blocks_) x = block->forward(x, buckets, mask) * keep;
  return x;
}

}  // namespace adrec::models

#include "adrec/models/layers.h"

#include <torch/torch.h>

#include <string>

#include "adrec/core/config.h"
#include "adrec/models/fused_cross.h"
#include "adrec/models/model.h"
#include "adrec/models/per_sample.h"
#include "adrec/models/precision.h"

namespace adrec::models {
namespace {

// The legacy FBGEMM int8 operators warn that they are deprecated on every first call; the
// warning says nothing to a user of `--precision int8`, so it is dropped on this thread.
class QuietTorchWarnings {
 public:
  QuietTorchWarnings() : guard_(&handler_) {}

 private:
  struct Drop : c10::WarningHandler {
    void process(const c10::Warning&) override {}
  };
  static inline Drop handler_;
  c10::WarningUtils::WarningHandlerGuard guard_;
};

}  // namespace

torch::Tensor Dropout(const torch::Tensor& x, double p, bool train) {
  if (!train || p <= 0) return x;
  if (!x.device().is_cpu() || p >= 1) return torch::dropout(x, p, train);
  const double keep = 1.0 - p;
  return x * torch::rand_like(x).lt_(keep).mul_(1.0 / keep);
}

MlpImpl::MlpImpl(int64_t in_dim, MlpOptions options) : options_(std::move(options)), in_dim_(in_dim), out_dim_(in_dim) {
  if (options_.norm != "none") norms_ = register_module("norm", torch::nn::ModuleList());
  int64_t width = in_dim;
  for (size_t i = 0; i < options_.hidden.size(); ++i) {
    const int64_t h = options_.hidden[i];
    linears_.push_back(register_module(std::to_string(i), torch::nn::Linear(width, h)));
    if (options_.norm == "batch") {
      norms_->push_back(torch::nn::BatchNorm1d(h));
    } else if (options_.norm == "layer") {
      norms_->push_back(torch::nn::LayerNorm(torch::nn::LayerNormOptions({h})));
    }
    width = h;
    bf16_w_.emplace_back();
    bf16_b_.emplace_back();
    int8_.emplace_back();
  }
  out_dim_ = width;
}

torch::Tensor MlpImpl::forward(torch::Tensor x) {
  const bool bf16 = options_.norm == "none" && !(is_training() && options_.dropout > 0) && Bf16Applies(x);
  const bool int8 = Int8Applies(x);
  for (size_t i = 0; i < linears_.size(); ++i) {
    const int64_t pad = i == 0 ? x.size(-1) - in_dim_ : 0;
    TORCH_CHECK(pad >= 0, "Mlp: input is ", x.sizes(), ", want ", in_dim_, " columns or more (zero-padded)");
    const torch::Tensor& weight = linears_[i]->weight;
    if (bf16 && Bf16Pays(x.size(0), x.size(-1), weight.size(0))) {
      // ReLU rides in the GEMM; the activations cross to the next layer as bfloat16.
      x = Bf16Linear(x, weight, linears_[i]->bias, /*relu=*/true, bf16_w_[i], bf16_b_[i]);
      continue;
    }
    if (x.scalar_type() != weight.scalar_type()) x = x.to(weight.scalar_type());
    // A padded input meets a weight padded with zero columns: the same product, aligned.
    if (int8) {
      x = Int8Linear(x, pad == 0 ? weight : first_padded_.Padded(weight, weight.size(0), x.size(-1)), linears_[i]->bias,
                     int8_[i]);
    } else {
      x = pad == 0 ? TapedLinear(*linears_[i], x)
                   : TapedLinear(x, first_padded_.Padded(weight, weight.size(0), x.size(-1)), linears_[i]->bias,
                                 {weight, linears_[i]->bias});
    }
    if (options_.norm == "batch") {
      x = norms_[i]->as<torch::nn::BatchNorm1d>()->forward(x);
    } else if (options_.norm == "layer") {
      x = norms_[i]->as<torch::nn::LayerNorm>()->forward(x);
    }
    x = torch::relu(x);
    if (options_.dropout > 0) x = torch::dropout(x, options_.dropout, is_training());
  }
  // No layers: the identity, without the padding.
  if (linears_.empty() && x.size(-1) > in_dim_) x = x.narrow(-1, 0, in_dim_);
  if (x.scalar_type() == torch::kBFloat16 && bf16) x = x.to(torch::kFloat);
  return x;
}

CrossLayerImpl::CrossLayerImpl(int64_t dim, int64_t low_rank) : dim_(dim) {
  // Glorot init for the cross weights and zero bias, as the DCN-V2 reference code does.
  if (low_rank <= 0) {
    w = register_parameter("w", torch::nn::init::xavier_uniform_(torch::empty({dim, dim})));
  } else {
    u = register_parameter("u", torch::nn::init::xavier_uniform_(torch::empty({dim, low_rank})));
    v = register_parameter("v", torch::nn::init::xavier_uniform_(torch::empty({dim, low_rank})));
  }
  b = register_parameter("b", torch::zeros({dim}));
}

torch::Tensor CrossLayerImpl::forward(const torch::Tensor& x0, const torch::Tensor& x) {
  const int64_t pad = x.size(-1) - dim_;
  TORCH_CHECK(pad >= 0 && x0.size(-1) == x.size(-1), "CrossLayer: inputs ", x0.sizes(), " and ", x.sizes(),
              ", want ", dim_, " columns or more (zero-padded), both alike");
  // Row vectors: W x_l is x_l W^T; U (V^T x_l) is (x_l V) U^T. Padded rows and columns of the
  // weights are zero, so the padded output columns are x0 (zero) times something plus x (zero).
  const CrossWeights pw = Padded(x.size(-1));
  const torch::Tensor bias = pw.b;
  if (PerSampleTape::Current() != nullptr) {  // the same function, each product recorded
    const torch::Tensor xv = w.defined() ? x : TapedLinear(x, pw.v.t(), torch::Tensor(), {v});
    return torch::addcmul(x, x0, TapedLinear(xv, w.defined() ? pw.w : pw.u, bias, {w.defined() ? w : u, b}));
  }
  const torch::Tensor xv = w.defined() ? x : torch::matmul(x, pw.v);
  const torch::Tensor wt = w.defined() ? pw.w.t() : pw.u.t();
  // Fused where the shapes allow (2-D): the bias rides in the GEMM, x + x0 ⊙ wx is one pass.
  if (x.dim() == 2) return torch::addcmul(x, x0, torch::addmm(bias, xv, wt));
  return x0 * (torch::matmul(xv, wt) + bias) + x;
}

CrossWeights CrossLayerImpl::Padded(int64_t p) {
  CrossWeights out;
  if (w.defined()) out.w = pw_.Padded(w, p, p);
  if (u.defined()) out.u = pu_.Padded(u, p);
  if (v.defined()) out.v = pv_.Padded(v, p);
  out.b = pb_.Padded(b, p);
  return out;
}

torch::Tensor CrossLayerImpl::ForwardBf16(const torch::Tensor& x0, const torch::Tensor& x) {
  const int64_t p = x.size(-1);
  TORCH_CHECK(p >= dim_ && x0.sizes() == x.sizes() && x.dim() == 2, "CrossLayer: inputs ", x0.sizes(), " and ",
              x.sizes(), ", want [B, ", dim_, "+] (zero-padded), both alike");
  // Rows and columns past D are zero in every padded weight, so they stay zero in x.
  torch::Tensor wx;
  if (w.defined()) {
    wx = Bf16Linear(x, w, b, false, bw_, bb_, p);
  } else {  // U (V^T x): V^T [r, p] and U [p, r] as the two linears' weights
    const torch::Tensor vx = Bf16Linear(x, v, torch::Tensor(), false, bv_, none_, 0, /*transposed=*/true);
    wx = Bf16Linear(vx, u, b, false, bu_, bb_, p);
  }
  return torch::addcmul(x, x0, wx);  // float32 out: wx is promoted in the same pass
}

torch::Tensor CrossLayerImpl::ForwardInt8(const torch::Tensor& x0, const torch::Tensor& x) {
  TORCH_CHECK(w.defined() && x.size(-1) >= dim_ && x0.sizes() == x.sizes() && x.dim() == 2, "CrossLayer: inputs ",
              x0.sizes(), " and ", x.sizes(), " on the int8 path, want [B, ", dim_, "+] and a full-rank layer");
  const CrossWeights pw = Padded(x.size(-1));
  return torch::addcmul(x, x0, Int8Linear(x, pw.w, pw.b, iw_));
}

CrossNetV2Impl::CrossNetV2Impl(int64_t dim, int64_t layers, int64_t low_rank) {
  for (int64_t i = 0; i < layers; ++i) {
    layers_.push_back(register_module(std::to_string(i), CrossLayer(dim, low_rank)));
  }
}

torch::Tensor CrossNetV2Impl::forward(const torch::Tensor& x0) {
  const int64_t p = x0.size(-1);
  // Full rank: B × p by p × p; low rank: B × p by p × r twice.
  const int64_t width = layers_.empty() ? 0 : layers_[0]->w.defined() ? p : layers_[0]->u.size(1);
  if (!layers_.empty() && Bf16Applies(x0) && Bf16Pays(x0.size(0), p, width)) {
    torch::Tensor x = x0;
    for (auto& layer : layers_) x = layer->ForwardBf16(x0, x);
    return x;
  }
  // int8 for full-rank layers; the rank-r factors are too thin for int8 to pay.
  if (!layers_.empty() && layers_[0]->w.defined() && Int8Applies(x0)) {
    torch::Tensor x = x0;
    for (auto& layer : layers_) x = layer->ForwardInt8(x0, x);
    return x;
  }
  std::vector<CrossWeights> weights;
  // Under autograd the parameters themselves (FusedCrossNet pads them and routes their
  // gradients); otherwise their padded copies, kept between calls.
  const bool grad = torch::GradMode::is_enabled();
  for (auto& layer : layers_) {
    weights.push_back(grad ? CrossWeights{layer->w, layer->u, layer->v, layer->b} : layer->Padded(x0.size(-1)));
  }
  // On the CPU one autograd node for the stack: the same function, a third fewer backward passes.
  if (PerSampleTape::Current() == nullptr && FusedCrossApplies(x0, weights)) return FusedCrossNet(x0, weights);
  torch::Tensor x = x0;
  for (auto& layer : layers_) x = layer->forward(x0, x);
  return x;
}

torch::Tensor FmBiInteraction(const torch::Tensor& fields) {
  TORCH_CHECK(fields.dim() == 3, "FmInteraction: want [B, F, k], got ", fields.sizes());
  torch::Tensor sum = fields.sum(1);
  torch::Tensor sum_sq = (fields * fields).sum(1);
  return 0.5 * (sum * sum - sum_sq);
}

torch::Tensor FmInteraction(const torch::Tensor& fields) { return FmBiInteraction(fields).sum(1, /*keepdim=*/true); }

ExpertsImpl::ExpertsImpl(int64_t num_experts, int64_t in_dim, const MlpOptions& options) : out_dim_(in_dim) {
  for (int64_t i = 0; i < num_experts; ++i) {
    experts_.push_back(register_module(std::to_string(i), Mlp(in_dim, options)));
    out_dim_ = experts_.back()->out_dim();
  }
}

torch::Tensor ExpertsImpl::forward(const torch::Tensor& x) {
  std::vector<torch::Tensor> outs;
  outs.reserve(experts_.size());
  for (auto& e : experts_) outs.push_back(e->forward(x));
  return torch::stack(outs, 1);
}

torch::Tensor GateWeights(torch::nn::Linear& gate, const torch::Tensor& input) {
  return torch::softmax(TapedLinear(*gate, input), -1);
}

torch::Tensor MixExperts(const torch::Tensor& weights, const torch::Tensor& experts) {
  return (weights.unsqueeze(-1) * experts).sum(1);
}

TowerImpl::TowerImpl(int64_t in_dim, const MlpOptions& options) {
  mlp_ = register_module("mlp", Mlp(in_dim, options));
  out_ = register_module("out", torch::nn::Linear(mlp_->out_dim(), 1));
}

torch::Tensor TowerImpl::forward(const torch::Tensor& x) { return TapedLinear(*out_, mlp_->forward(x)); }

int64_t FeatureWidth(const ModelShape& shape) {
  int64_t width = shape.dense_width;
  for (int d : shape.sparse_dims) width += d;
  for (int d : shape.text_dims) width += d;
  return width;
}

int64_t SideWidth(const ModelShape& shape) {
  int64_t width = shape.dense_width;
  for (int d : shape.text_dims) width += d;
  return width;
}

namespace {
bool HasColumns(const torch::Tensor& t) { return t.defined() && t.dim() == 2 && t.size(1) > 0; }
}  // namespace

torch::Tensor ZeroPadTo(const torch::Tensor& t, int64_t rows, int64_t cols) {
  const int64_t extra_rows = rows - t.size(0);
  const int64_t extra_cols = t.dim() == 2 && cols > 0 ? cols - t.size(1) : 0;
  if (extra_rows == 0 && extra_cols == 0) return t;
  return t.dim() == 1 ? torch::constant_pad_nd(t, {0, extra_rows}) : torch::constant_pad_nd(t, {0, extra_cols, 0, extra_rows});
}

torch::Tensor WeightCache::Get(const torch::Tensor& t, std::array<int64_t, 2> key, const Make& make) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!derived_.defined() || !source_.is_same(t) || data_ != t.data_ptr() || version_ != t._version() || key_ != key) {
    torch::NoGradGuard no_grad;
    derived_ = make(t.detach());
    source_ = t;
    data_ = t.data_ptr();
    version_ = t._version();
    key_ = key;
  }
  return derived_;
}

torch::Tensor WeightCache::Padded(const torch::Tensor& t, int64_t rows, int64_t cols) {
  if (torch::GradMode::is_enabled() && t.requires_grad()) return ZeroPadTo(t, rows, cols);
  return Get(t, {rows, cols}, [&](const torch::Tensor& d) { return ZeroPadTo(d, rows, cols).contiguous(); });
}

bool Bf16Applies(const torch::Tensor& x) {
  return GetInferencePrecision() == InferencePrecision::kBf16 && !torch::GradMode::is_enabled() && x.is_cpu() &&
         x.dim() == 2;
}

bool Bf16Pays(int64_t rows, int64_t in, int64_t out) {
  return rows * in * out >= kBf16MinMacs && std::min(in, out) >= kBf16MinWidth;
}

torch::Tensor Bf16Linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, bool relu,
                         WeightCache& w_cache, WeightCache& b_cache, int64_t out_rows, bool transposed) {
  const int64_t in = x.size(1);
  const int64_t in_w = transposed ? w.size(0) : w.size(1), out_w = transposed ? w.size(1) : w.size(0);
  const int64_t out = std::max(out_rows, out_w);
  TORCH_CHECK(w.dim() == 2 && in >= in_w, "Bf16Linear: input ", x.sizes(), " for weight ", w.sizes());
  // No batch-size hint: one layout serves a 100-row request and an 800-row batch alike.
  static const auto reorder = c10::Dispatcher::singleton()
                                  .findSchemaOrThrow("mkldnn::_reorder_linear_weight", "")
                                  .typed<at::Tensor(const at::Tensor&, std::optional<int64_t>)>();
  static const auto linear =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("mkldnn::_linear_pointwise", "")
          .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&, std::string_view,
                            c10::List<std::optional<at::Scalar>>, std::optional<std::string_view>)>();
  const torch::Tensor packed = w_cache.Get(w, {out, in}, [&](const torch::Tensor& d) {
    const torch::Tensor oi = ZeroPadTo(transposed ? d.t() : d, out, in);
    return reorder.call(oi.to(torch::kBFloat16).contiguous(), std::nullopt);
  });
  std::optional<at::Tensor> bias;
  if (b.defined()) {
    bias = b_cache.Get(b, {out, 0}, [&](const torch::Tensor& d) { return ZeroPadTo(d, out).to(torch::kBFloat16); });
  }
  const torch::Tensor xb = x.scalar_type() == torch::kBFloat16 ? x.contiguous() : x.to(torch::kBFloat16);
  return linear.call(xb, packed, bias, relu ? "relu" : "none", c10::List<std::optional<at::Scalar>>(), std::nullopt);
}

bool Int8Applies(const torch::Tensor& x) {
  return GetInferencePrecision() == InferencePrecision::kInt8 && !torch::GradMode::is_enabled() && x.is_cpu() &&
         x.dim() == 2 && x.scalar_type() == torch::kFloat;
}

Int8Cache::Packed Int8Cache::Get(const torch::Tensor& w) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!packed_.q.defined() || !source_.is_same(w) || data_ != w.data_ptr() || version_ != w._version()) {
    torch::NoGradGuard no_grad;
    const QuietTorchWarnings quiet;
    auto [q, col_offsets, scale, zero_point] = at::fbgemm_linear_quantize_weight(w.detach().contiguous());
    packed_ = Packed{q, at::fbgemm_pack_quantized_matrix(q), col_offsets, scale, zero_point};
    source_ = w;
    data_ = w.data_ptr();
    version_ = w._version();
  }
  return packed_;
}

torch::Tensor Int8Linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, Int8Cache& cache) {
  const Int8Cache::Packed p = cache.Get(w);
  const QuietTorchWarnings quiet;
  const torch::Tensor bias = b.defined() ? b : torch::zeros({w.size(0)}, x.options());
  return at::fbgemm_linear_int8_weight_fp32_activation(x.contiguous(), p.q, p.packed, p.col_offsets, p.scale, p.zero_point,
                                                      bias);
}

int64_t AlignedWidth(int64_t width) { return (width + kGemmAlign - 1) / kGemmAlign * kGemmAlign; }

torch::Tensor ConcatFeatures(const embedding::ModelInput& input, int64_t padded_width) {
  std::vector<torch::Tensor> parts(input.sparse.begin(), input.sparse.end());
  if (HasColumns(input.dense)) parts.push_back(input.dense);
  for (const auto& t : input.text) parts.push_back(t);
  TORCH_CHECK(!parts.empty(), "ConcatFeatures: the input has no features");
  int64_t width = 0;
  for (const auto& t : parts) width += t.size(1);
  if (padded_width > width) parts.push_back(torch::zeros({parts[0].size(0), padded_width - width}, parts[0].options()));
  return torch::cat(parts, 1);
}

torch::Tensor ConcatDenseAndText(const embedding::ModelInput& input) {
  std::vector<torch::Tensor> parts;
  if (HasColumns(input.dense)) parts.push_back(input.dense);
  for (const auto& t : input.text) parts.push_back(t);
  if (parts.empty()) return {};
  return parts.size() == 1 ? parts[0] : torch::cat(parts, 1);
}

void CheckInput(const ModelShape& shape, const embedding::ModelInput& input, std::string_view model) {
  const std::string m(model);
  TORCH_CHECK(input.sparse.size() == shape.sparse_dims.size(), m, ": input has ", input.sparse.size(),
              " sparse fields, the model was built for ", shape.sparse_dims.size());
  for (size_t i = 0; i < input.sparse.size(); ++i) {
    const std::string name = i < shape.sparse_names.size() ? shape.sparse_names[i] : std::to_string(i);
    TORCH_CHECK(input.sparse[i].dim() == 2 && input.sparse[i].size(1) == shape.sparse_dims[i], m,
                ": sparse field '", name, "' is ", input.sparse[i].sizes(), ", want [B, ", shape.sparse_dims[i], "]");
  }
  const int64_t dense = HasColumns(input.dense) ? input.dense.size(1) : 0;
  TORCH_CHECK(dense == shape.dense_width, m, ": dense input has width ", dense, ", want ", shape.dense_width);
  TORCH_CHECK(input.text.size() == shape.text_dims.size(), m, ": input has ", input.text.size(),
              " text fields, want ", shape.text_dims.size());
  for (size_t i = 0; i < input.text.size(); ++i) {
    TORCH_CHECK(input.text[i].dim() == 2 && input.text[i].size(1) == shape.text_dims[i], m, ": text field ", i,
                " is ", input.text[i].sizes(), ", want [B, ", shape.text_dims[i], "]");
  }
}

std::string OptionKey(std::string_view section, std::string_view name) {
  return section.empty() ? std::string(name) : std::string(section) + "." + std::string(name);
}

Status ReadMlpOptions(Config& cfg, std::string_view section, std::string_view hidden_key, MlpOptions* out) {
  const std::string hidden = OptionKey(section, hidden_key);
  ADREC_RETURN_IF_ERROR(cfg.Get(hidden, &out->hidden));
  for (int64_t h : out->hidden) {
    if (h <= 0) return InvalidArgumentError(cfg.source() + ": key '" + hidden + "': widths must be > 0, got " + std::to_string(h));
  }
  const std::string norm = OptionKey(section, "norm");
  ADREC_RETURN_IF_ERROR(cfg.Get(norm, &out->norm));
  if (out->norm != "none" && out->norm != "batch" && out->norm != "layer") {
    return InvalidArgumentError(cfg.source() + ": key '" + norm + "' must be none, batch or layer, got '" + out->norm + "'");
  }
  const std::string dropout = OptionKey(section, "dropout");
  ADREC_RETURN_IF_ERROR(cfg.Get(dropout, &out->dropout));
  if (!(out->dropout >= 0.0 && out->dropout < 1.0)) {
    return InvalidArgumentError(cfg.source() + ": key '" + dropout + "' must be in [0, 1), got " + std::to_string(out->dropout));
  }
  return Status::Ok();
}

Status ReadInt(Config& cfg, std::string_view section, std::string_view name, int64_t min_value, int64_t* out) {
  const std::string key = OptionKey(section, name);
  ADREC_RETURN_IF_ERROR(cfg.Get(key, out));
  if (*out < min_value) {
    return InvalidArgumentError(cfg.source() + ": key '" + key + "' must be >= " + std::to_string(min_value) + ", got " +
                                std::to_string(*out));
  }
  return Status::Ok();
}

}  // namespace adrec::models

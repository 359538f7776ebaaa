#include "adrec/embedding/sparse_optimizer.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#include "adrec/embedding/embedding_table_internal.h"

namespace adrec::embedding {
namespace {

// Rows per parallel chunk: a 16-wide row update is ~50 ns, so smaller chunks cost more in
// scheduling than they save.
constexpr int64_t kRowGrain = 512;

// Rows ahead to prefetch: updates are bound by cache misses on random rows of a large table, and
// independent rows let those misses overlap.
constexpr int64_t kPrefetchAhead = 8;

// fn(i) updates unique row i; prefetch(i) touches what fn(i) will read, kPrefetchAhead early.
template <typename P, typename F>
void ForRows(int64_t n, P&& prefetch, F&& fn) {
  at::parallel_for(0, n, kRowGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < std::min(end, begin + kPrefetchAhead); ++i) prefetch(i);
    for (int64_t i = begin; i < end; ++i) {
      if (i + kPrefetchAhead < end) prefetch(i + kPrefetchAhead);
      fn(i);
    }
  });
}

inline void PrefetchRow(const float* row, int64_t dim) {
  for (int64_t j = 0; j < dim; j += 16) __builtin_prefetch(row + j, 1);  // 16 floats = one cache line
}

// Row-wise Adagrad: one accumulator per row, the mean of g² over the row (TorchRec/FBGEMM's
// EXACT_ROWWISE_ADAGRAD; Duchi et al. 2011 per row instead of per coordinate).
class RowWiseAdagrad final : public SparseOptimizer {
 public:
  explicit RowWiseAdagrad(SparseOptimizerOptions o) : SparseOptimizer(std::move(o)) {
    AddSlot("sum", /*per_coordinate=*/false, torch::kFloat, options_.initial_accumulator);
  }

 protected:
  void ApplyFused(torch::Tensor& weight, const torch::Tensor& rows, const torch::Tensor& grad) override {
    float* w = weight.data_ptr<float>();
    float* sum = slot(0).data_ptr<float>();
    const int64_t* r = rows.data_ptr<int64_t>();
    const float* g = grad.data_ptr<float>();
    const int64_t dim = dim_;
    const float lr = static_cast<float>(options_.lr), eps = static_cast<float>(options_.eps);
    const float wd = static_cast<float>(options_.weight_decay);
    auto prefetch = [&](int64_t i) {
      PrefetchRow(w + r[i] * dim, dim);
      __builtin_prefetch(sum + r[i], 1);
    };
    ForRows(rows.numel(), prefetch, [&](int64_t i) {
      float* wr = w + r[i] * dim;
      const float* gr = g + i * dim;
      float sq = 0.f;
      for (int64_t j = 0; j < dim; ++j) {
        const float gj = gr[j] + wd * wr[j];
        sq += gj * gj;
      }
      float& s = sum[r[i]];
      s += sq / static_cast<float>(dim);
      const float step = lr / (std::sqrt(s) + eps);
      for (int64_t j = 0; j < dim; ++j) wr[j] -= step * (gr[j] + wd * wr[j]);
    });
  }

  void ApplyTorch(torch::Tensor& weight, const torch::Tensor& rows, const torch::Tensor& grad) override {
    torch::Tensor w = weight.index_select(0, rows);
    torch::Tensor g = options_.weight_decay != 0 ? grad + options_.weight_decay * w : grad;
    torch::Tensor s = slot(0).index_select(0, rows) + g.square().mean(1);
    slot(0).index_copy_(0, rows, s);
    w.sub_(g * (options_.lr / (s.sqrt() + options_.eps)).unsqueeze(1));
    weight.index_copy_(0, rows, w);
  }
};

// Lazy Adam (Kingma & Ba 2015): moments move only for touched rows and each row counts its own
// steps for the bias correction, as TensorFlow's LazyAdam. The arithmetic follows
// torch::optim::Adam (L2 weight decay added to the gradient) so a fully touched table matches it.
class LazyAdam final : public SparseOptimizer {
 public:
  explicit LazyAdam(SparseOptimizerOptions o) : SparseOptimizer(std::move(o)) {
    AddSlot("m", true, torch::kFloat, 0.0);
    AddSlot("v", true, torch::kFloat, 0.0);
    AddSlot("step", false, torch::kLong, 0.0);
  }

 protected:
  void ApplyFused(torch::Tensor& weight, const torch::Tensor& rows, const torch::Tensor& grad) override {
    float* w = weight.data_ptr<float>();
    float* m = slot(0).data_ptr<float>();
    float* v = slot(1).data_ptr<float>();
    int64_t* steps = slot(2).data_ptr<int64_t>();
    const int64_t* r = rows.data_ptr<int64_t>();
    const float* g = grad.data_ptr<float>();
    const int64_t dim = dim_;
    const double b1 = options_.beta1, b2 = options_.beta2;
    const float fb1 = static_cast<float>(b1), fb2 = static_cast<float>(b2);
    const float eps = static_cast<float>(options_.eps), wd = static_cast<float>(options_.weight_decay);
    auto prefetch = [&](int64_t i) {
      PrefetchRow(w + r[i] * dim, dim);
      PrefetchRow(m + r[i] * dim, dim);
      PrefetchRow(v + r[i] * dim, dim);
      __builtin_prefetch(steps + r[i], 1);
    };
    ForRows(rows.numel(), prefetch, [&](int64_t i) {
      const int64_t row = r[i];
      const double t = static_cast<double>(++steps[row]);
      const float step_size = static_cast<float>(options_.lr / (1.0 - std::pow(b1, t)));
      const float sqrt_bc2 = static_cast<float>(std::sqrt(1.0 - std::pow(b2, t)));
      float* wr = w + row * dim;
      float* mr = m + row * dim;
      float* vr = v + row * dim;
      const float* gr = g + i * dim;
      for (int64_t j = 0; j < dim; ++j) {
        const float gj = gr[j] + wd * wr[j];
        mr[j] = mr[j] * fb1 + gj * (1.f - fb1);
        vr[j] = vr[j] * fb2 + (1.f - fb2) * gj * gj;
        const float denom = std::sqrt(vr[j]) / sqrt_bc2 + eps;
        wr[j] -= step_size * (mr[j] / denom);
      }
    });
  }

  void ApplyTorch(torch::Tensor& weight, const torch::Tensor& rows, const torch::Tensor& grad) override {
    torch::Tensor w = weight.index_select(0, rows);
    torch::Tensor g = options_.weight_decay != 0 ? grad + options_.weight_decay * w : grad;
    torch::Tensor t = slot(2).index_select(0, rows) + 1;
    slot(2).index_copy_(0, rows, t);
    torch::Tensor td = t.to(torch::kDouble);
    torch::Tensor step_size = (options_.lr / (1.0 - torch::pow(options_.beta1, td))).to(torch::kFloat).unsqueeze(1);
    torch::Tensor sqrt_bc2 = torch::sqrt(1.0 - torch::pow(options_.beta2, td)).to(torch::kFloat).unsqueeze(1);
    torch::Tensor m = slot(0).index_select(0, rows).mul_(options_.beta1).add_(g, 1.0 - options_.beta1);
    torch::Tensor v = slot(1).index_select(0, rows).mul_(options_.beta2).addcmul_(g, g, 1.0 - options_.beta2);
    slot(0).index_copy_(0, rows, m);
    slot(1).index_copy_(0, rows, v);
    w.sub_(step_size * (m / (v.sqrt() / sqrt_bc2 + options_.eps)));
    weight.index_copy_(0, rows, w);
  }
};

class Sgd final : public SparseOptimizer {
 public:
  explicit Sgd(SparseOptimizerOptions o) : SparseOptimizer(std::move(o)) {}

 protected:
  void ApplyFused(torch::Tensor& weight, const torch::Tensor& rows, const torch::Tensor& grad) override {
    float* w = weight.data_ptr<float>();
    const int64_t* r = rows.data_ptr<int64_t>();
    const float* g = grad.data_ptr<float>();
    const int64_t dim = dim_;
    const float lr = static_cast<float>(options_.lr), wd = static_cast<float>(options_.weight_decay);
    ForRows(rows.numel(), [&](int64_t i) { PrefetchRow(w + r[i] * dim, dim); }, [&](int64_t i) {
      float* wr = w + r[i] * dim;
      const float* gr = g + i * dim;
      for (int64_t j = 0; j < dim; ++j) wr[j] -= lr * (gr[j] + wd * wr[j]);
    });
  }

  void ApplyTorch(torch::Tensor& weight, const torch::Tensor& rows, const torch::Tensor& grad) override {
    torch::Tensor w = weight.index_select(0, rows);
    torch::Tensor g = options_.weight_decay != 0 ? grad + options_.weight_decay * w : grad;
    weight.index_copy_(0, rows, w - options_.lr * g);
  }
};

// FTRL-proximal per coordinate (McMahan et al. 2013, "Ad Click Prediction: a View from the
// Trenches", Algorithm 1): z and n per coordinate; the weight is the closed-form solution from
// (z, n), so L1 makes exact zeros. weight_decay is not used (l2 is FTRL's own).
class Ftrl final : public SparseOptimizer {
 public:
  explicit Ftrl(SparseOptimizerOptions o) : SparseOptimizer(std::move(o)) {
    AddSlot("z", true, torch::kFloat, 0.0);
    AddSlot("n", true, torch::kFloat, 0.0);
  }

 protected:
  void ApplyFused(torch::Tensor& weight, const torch::Tensor& rows, const torch::Tensor& grad) override {
    float* w = weight.data_ptr<float>();
    float* z = slot(0).data_ptr<float>();
    float* n = slot(1).data_ptr<float>();
    const int64_t* r = rows.data_ptr<int64_t>();
    const float* g = grad.data_ptr<float>();
    const int64_t dim = dim_;
    const float alpha = static_cast<float>(options_.ftrl_alpha), beta = static_cast<float>(options_.ftrl_beta);
    const float l1 = static_cast<float>(options_.ftrl_l1), l2 = static_cast<float>(options_.ftrl_l2);
    auto prefetch = [&](int64_t i) {
      PrefetchRow(w + r[i] * dim, dim);
      PrefetchRow(z + r[i] * dim, dim);
      PrefetchRow(n + r[i] * dim, dim);
    };
    ForRows(rows.numel(), prefetch, [&](int64_t i) {
      const int64_t off = r[i] * dim;
      const float* gr = g + i * dim;
      for (int64_t j = 0; j < dim; ++j) {
        const float gj = gr[j];
        const float n_old = n[off + j], n_new = n_old + gj * gj;
        const float sigma = (std::sqrt(n_new) - std::sqrt(n_old)) / alpha;
        const float zj = z[off + j] + gj - sigma * w[off + j];
        z[off + j] = zj;
        n[off + j] = n_new;
        w[off + j] = std::fabs(zj) <= l1
                         ? 0.f
                         : -(zj - std::copysign(l1, zj)) / ((beta + std::sqrt(n_new)) / alpha + l2);
      }
    });
  }

  void ApplyTorch(torch::Tensor& weight, const torch::Tensor& rows, const torch::Tensor& grad) override {
    const double alpha = options_.ftrl_alpha, l1 = options_.ftrl_l1;
    torch::Tensor w = weight.index_select(0, rows);
    torch::Tensor n_old = slot(1).index_select(0, rows);
    torch::Tensor n_new = n_old + grad.square();
    torch::Tensor sigma = (n_new.sqrt() - n_old.sqrt()) / alpha;
    torch::Tensor z = slot(0).index_select(0, rows) + grad - sigma * w;
    slot(0).index_copy_(0, rows, z);
    slot(1).index_copy_(0, rows, n_new);
    torch::Tensor shrunk = z - torch::sign(z) * l1;
    torch::Tensor solved = -shrunk / ((options_.ftrl_beta + n_new.sqrt()) / alpha + options_.ftrl_l2);
    weight.index_copy_(0, rows, torch::where(z.abs() <= l1, torch::zeros_like(z), solved));
  }
};

}  // namespace

StatusOr<std::unique_ptr<SparseOptimizer>> SparseOptimizer::Make(const SparseOptimizerOptions& options) {
  if (!(options.lr >= 0) || !(options.eps >= 0) || !(options.ftrl_alpha > 0)) {
    return InvalidArgumentError("sparse optimizer: lr and eps must be >= 0 and ftrl_alpha > 0");
  }
  std::unique_ptr<SparseOptimizer> opt;
  if (options.kind == "adagrad") opt.reset(new RowWiseAdagrad(options));
  else if (options.kind == "adam") opt.reset(new LazyAdam(options));
  else if (options.kind == "sgd") opt.reset(new Sgd(options));
  else if (options.kind == "ftrl") opt.reset(new Ftrl(options));
  else {
    return InvalidArgumentError("unknown sparse optimizer '" + options.kind + "' (expected one of: " +
                                kSparseOptimizerNames + ")");
  }
  return opt;
}

void SparseOptimizer::AddSlot(std::string name, bool per_coordinate, torch::ScalarType dtype, double initial) {
  slots_.push_back(Slot{std::move(name), per_coordinate, dtype, initial, torch::Tensor()});
}

void SparseOptimizer::Init(int64_t rows, int64_t dim, torch::Device device) {
  dim_ = dim;
  for (Slot& s : slots_) {
    std::vector<int64_t> shape = s.per_coordinate ? std::vector<int64_t>{rows, dim} : std::vector<int64_t>{rows};
    s.value = EmptyTable(shape, s.dtype, device).fill_(s.initial);
  }
}

void SparseOptimizer::Resize(int64_t rows) {
  for (Slot& s : slots_) {
    std::vector<int64_t> shape = s.value.sizes().vec();
    const int64_t keep = std::min(rows, shape[0]);
    shape[0] = rows;
    torch::Tensor grown = EmptyTable(shape, s.value.scalar_type(), s.value.device()).fill_(s.initial);
    grown.narrow(0, 0, keep).copy_(s.value.narrow(0, 0, keep));
    s.value = grown;
  }
}

void SparseOptimizer::ResetRows(const torch::Tensor& rows) {
  if (rows.numel() == 0) return;
  for (Slot& s : slots_) s.value.index_fill_(0, rows, s.initial);
}

void SparseOptimizer::Apply(torch::Tensor& weight, const torch::Tensor& rows, const torch::Tensor& grad, bool fused) {
  if (rows.numel() == 0) return;
  TORCH_CHECK(grad.dim() == 2 && grad.size(0) == rows.numel() && grad.size(1) == dim_,
              "sparse optimizer: gradient of shape ", grad.sizes(), " for ", rows.numel(), " rows of dim ", dim_);
  torch::Tensor r = rows.to(weight.device(), torch::kLong).contiguous();
  torch::Tensor g = grad.to(weight.device(), torch::kFloat).contiguous();
  if (fused && weight.device().is_cpu()) {
    ApplyFused(weight, r, g);
  } else {
    ApplyTorch(weight, r, g);
  }
}

std::vector<std::pair<std::string, torch::Tensor>> SparseOptimizer::State(int64_t rows) const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const Slot& s : slots_) {
    out.emplace_back(s.name, rows < 0 ? s.value : s.value.narrow(0, 0, rows));
  }
  return out;
}

Status SparseOptimizer::LoadState(const std::map<std::string, torch::Tensor>& tensors, const std::string& prefix,
                                  int64_t rows) {
  for (Slot& s : slots_) {
    const std::string name = prefix + s.name;
    auto it = tensors.find(name);
    if (it == tensors.end()) return InvalidArgumentError("missing tensor '" + name + "'");
    std::vector<int64_t> want = s.per_coordinate ? std::vector<int64_t>{rows, dim_} : std::vector<int64_t>{rows};
    if (it->second.sizes().vec() != want || rows > s.value.size(0)) {
      return InvalidArgumentError("tensor '" + name + "' has shape " + c10::str(it->second.sizes()) +
                                  ", expected " + c10::str(c10::IntArrayRef(want)));
    }
  }
  for (Slot& s : slots_) {
    s.value.narrow(0, 0, rows).copy_(tensors.at(prefix + s.name));
  }
  return Status::Ok();
}

uint64_t SparseOptimizer::StateBytes() const {
  uint64_t bytes = 0;
  for (const Slot& s : slots_) bytes += s.value.numel() * s.value.element_size();
  return bytes;
}

}  // namespace adrec::embedding

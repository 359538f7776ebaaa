#include "adrec/models/per_sample.h"

#include <torch/torch.h>

#include <map>

namespace adrec::models {
namespace {
thread_local PerSampleTape* current_tape = nullptr;
}  // namespace

PerSampleTape::PerSampleTape() : previous_(current_tape) { current_tape = this; }
PerSampleTape::~PerSampleTape() { current_tape = previous_; }
PerSampleTape* PerSampleTape::Current() { return current_tape; }

void PerSampleTape::Linear(const torch::Tensor& x, const torch::Tensor& y, bool bias, std::vector<torch::Tensor> params) {
  TORCH_CHECK((x.dim() == 2 || x.dim() == 3) && y.dim() == x.dim() && x.size(0) == y.size(0),
              "PerSampleTape: a linear layer from ", x.sizes(), " to ", y.sizes(), " is not [B, in] -> [B, out] or [B, T, *]");
  records_.push_back({x.detach(), y, bias, std::move(params)});
}

void PerSampleTape::Rows(const torch::Tensor& y, const torch::Tensor& table) {
  TORCH_CHECK(y.dim() == 2, "PerSampleTape: a row lookup gives ", y.sizes(), ", not [B, d]");
  records_.push_back({torch::Tensor(), y, false, {table}});
}

std::vector<torch::Tensor> PerSampleTape::outputs() const {
  std::vector<torch::Tensor> out;
  for (const Record& r : records_) out.push_back(r.y);
  return out;
}

torch::Tensor PerSampleTape::SquaredNorms(const std::vector<torch::Tensor>& output_grads) const {
  TORCH_CHECK(output_grads.size() == records_.size(), "PerSampleTape: ", output_grads.size(), " gradients for ",
              records_.size(), " records");
  torch::NoGradGuard no_grad;
  torch::Tensor sum;
  for (size_t k = 0; k < records_.size(); ++k) {
    const Record& r = records_[k];
    if (!output_grads[k].defined()) continue;  // the loss did not reach this layer
    const torch::Tensor g = output_grads[k].to(torch::kFloat);
    torch::Tensor sq;
    if (!r.x.defined()) {
      sq = g.pow(2).sum(1);
    } else if (g.dim() == 2) {
      const torch::Tensor x = r.x.to(torch::kFloat);
      sq = g.pow(2).sum(1) * (x.pow(2).sum(1) + (r.bias ? 1.0 : 0.0));
    } else {
      // Over positions t, s: ‖Σₜ gₜ xₜᵀ‖² = Σₜₛ (gₜ·gₛ)(xₜ·xₛ); the bias's part is ‖Σₜ gₜ‖².
      const torch::Tensor x = r.x.to(torch::kFloat);
      sq = (torch::bmm(g, g.transpose(1, 2)) * torch::bmm(x, x.transpose(1, 2))).sum({1, 2});
      if (r.bias) sq = sq + g.sum(1).pow(2).sum(1);
    }
    sum = sum.defined() ? sum + sq : sq;
  }
  return sum;
}

std::set<const void*> PerSampleTape::covered() const {
  std::set<const void*> out;
  for (const Record& r : records_) {
    for (const torch::Tensor& p : r.params) out.insert(p.unsafeGetTensorImpl());
  }
  return out;
}

std::vector<const void*> PerSampleTape::repeated() const {
  std::map<const void*, int> uses;
  std::vector<const void*> out;
  for (const Record& r : records_) {
    for (const torch::Tensor& p : r.params) {
      if (++uses[p.unsafeGetTensorImpl()] == 2) out.push_back(p.unsafeGetTensorImpl());
    }
  }
  return out;
}

torch::Tensor TapedLinear(torch::nn::LinearImpl& linear, const torch::Tensor& x) {
  return TapedLinear(x, linear.weight, linear.bias, {linear.weight, linear.bias});
}

torch::Tensor TapedLinear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                          std::vector<torch::Tensor> params) {
  torch::Tensor y = torch::linear(x, w, b);
  if (PerSampleTape* tape = PerSampleTape::Current(); tape != nullptr && torch::GradMode::is_enabled()) {
    std::erase_if(params, [](const torch::Tensor& p) { return !p.defined(); });
    tape->Linear(x, y, b.defined(), std::move(params));
  }
  return y;
}

}  // namespace adrec::models

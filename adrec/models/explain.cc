#include "adrec/models/explain.h"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>

#include "adrec/models/model.h"

namespace adrec::models {

std::vector<std::string> InputGroups::Names() const {
  std::vector<std::string> out = sparse;
  for (const auto& [name, width] : dense) out.push_back(name);
  out.insert(out.end(), text.begin(), text.end());
  if (linear) out.emplace_back("linear");
  return out;
}

namespace {

// [B, w] → [steps × B, w]: the path's points α x with α = (k + ½) / steps, as a leaf.
torch::Tensor PathPoints(const torch::Tensor& x, const torch::Tensor& alphas) {
  const torch::Tensor f = x.detach().to(torch::kFloat);
  return (alphas.view({-1, 1, 1}) * f.unsqueeze(0)).reshape({-1, f.size(1)}).requires_grad_(true);
}

// Σ over the group's columns of x · mean over the path of the gradient: [B].
torch::Tensor Attribute(const torch::Tensor& x, const torch::Tensor& grad, int64_t steps) {
  const torch::Tensor g = grad.view({steps, x.size(0), x.size(1)}).mean(0);
  return (x.detach().to(torch::kFloat) * g).sum(1);
}

}  // namespace

Attributions IntegratedGradients(RankingModel& model, const embedding::ModelInput& input, const InputGroups& groups,
                                 int target, int steps) {
  TORCH_CHECK(steps >= 1, "IntegratedGradients: steps must be >= 1");
  TORCH_CHECK(groups.sparse.size() == input.sparse.size() && groups.text.size() == input.text.size() &&
                  groups.linear == input.linear.defined(),
              "IntegratedGradients: the groups do not describe the input");
  int dense_width = 0;
  for (const auto& [name, w] : groups.dense) dense_width += w;
  TORCH_CHECK(input.dense.defined() && input.dense.size(1) == dense_width, "IntegratedGradients: dense groups span ",
              dense_width, " columns, the input has ", input.dense.defined() ? input.dense.size(1) : -1);
  torch::AutoGradMode grad(true);
  const int64_t B = input.batch_size(), S = steps;
  const torch::Device device = input.scene.device();
  const torch::Tensor alphas = (torch::arange(S, torch::TensorOptions().dtype(torch::kFloat)) + 0.5).div(S).to(device);

  embedding::ModelInput path = input.MapFeatures([&](const torch::Tensor& x) { return PathPoints(x, alphas); });
  path.scene = input.scene.repeat({S});
  const torch::Tensor logits = model.forward(path).to(torch::kFloat).select(1, target);
  // Gradients of the path's points only: the model's parameters keep no .grad.
  std::vector<torch::Tensor> wrt = path.sparse;
  wrt.push_back(path.dense);
  wrt.insert(wrt.end(), path.text.begin(), path.text.end());
  if (path.linear.defined()) wrt.push_back(path.linear);
  std::vector<torch::Tensor> grads = torch::autograd::grad({logits.sum()}, wrt, {}, false, false, /*allow_unused=*/true);
  for (size_t k = 0; k < grads.size(); ++k) {
    if (!grads[k].defined()) grads[k] = torch::zeros_like(wrt[k]);  // a part the model does not read
  }

  Attributions out;
  out.groups = groups.Names();
  std::vector<torch::Tensor> cols;
  size_t k = 0;
  for (const torch::Tensor& s : input.sparse) cols.push_back(Attribute(s, grads[k++], S));
  const torch::Tensor& dense_grad = grads[k++];
  int64_t at = 0;
  for (const auto& [name, w] : groups.dense) {
    cols.push_back(Attribute(input.dense.narrow(1, at, w), dense_grad.narrow(1, at, w), S));
    at += w;
  }
  for (const torch::Tensor& t : input.text) cols.push_back(Attribute(t, grads[k++], S));
  if (input.linear.defined()) cols.push_back(Attribute(input.linear, grads[k++], S));
  out.values = cols.empty() ? torch::zeros({B, 0}) : torch::stack(cols, 1).detach();

  torch::NoGradGuard no_grad;
  out.logit = model.forward(input).to(torch::kFloat).select(1, target).detach();
  const embedding::ModelInput zero = input.MapFeatures([](const torch::Tensor& x) { return torch::zeros_like(x); });
  out.baseline_logit = model.forward(zero).to(torch::kFloat).select(1, target).detach();
  return out;
}

std::vector<int> TopGroups(const torch::Tensor& sample_values, int top) {
  const torch::Tensor v = sample_values.detach().to(torch::kFloat).cpu().contiguous();
  const float* p = v.data_ptr<float>();
  std::vector<int> order(static_cast<size_t>(v.numel()));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return std::abs(p[a]) > std::abs(p[b]); });
  if (static_cast<int>(order.size()) > top) order.resize(static_cast<size_t>(std::max(0, top)));
  return order;
}

}  // namespace adrec::models

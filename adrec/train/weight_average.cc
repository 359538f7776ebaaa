#include "adrec/train/weight_average.h"

#include <torch/torch.h>

#include <algorithm>
#include <map>

namespace adrec::train {

WeightAverage::WeightAverage(std::vector<std::pair<std::string, torch::Tensor>> params, double decay)
    : params_(std::move(params)), decay_(decay) {
  torch::NoGradGuard no_grad;
  shadow_.reserve(params_.size());
  for (const auto& [name, p] : params_) shadow_.push_back(p.detach().clone());
}

void WeightAverage::Update() {
  torch::NoGradGuard no_grad;
  const double n = static_cast<double>(updates_);
  const double d = std::min(decay_, (1.0 + n) / (10.0 + n));
  for (size_t i = 0; i < params_.size(); ++i) shadow_[i].lerp_(params_[i].second.detach(), 1.0 - d);
  ++updates_;
}

void WeightAverage::Reset() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) shadow_[i].copy_(params_[i].second.detach());
  updates_ = 0;
}

void WeightAverage::Swap() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    torch::Tensor w = params_[i].second.detach();
    torch::Tensor raw = w.clone();
    w.copy_(shadow_[i]);
    shadow_[i].copy_(raw);
  }
}

std::vector<std::pair<std::string, torch::Tensor>> WeightAverage::State(const std::string& prefix) const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  out.reserve(params_.size() + 1);
  for (size_t i = 0; i < params_.size(); ++i) out.emplace_back(prefix + params_[i].first, shadow_[i]);
  out.emplace_back(prefix + "updates", torch::tensor({updates_}, torch::kInt64));
  return out;
}

Status WeightAverage::Restore(const std::map<std::string, torch::Tensor>& tensors, const std::string& prefix,
                              const std::string& source) {
  torch::NoGradGuard no_grad;
  auto find = [&](const std::string& name) -> const torch::Tensor* {
    auto it = tensors.find(prefix + name);
    return it == tensors.end() ? nullptr : &it->second;
  };
  const torch::Tensor* count = find("updates");
  if (count == nullptr || count->numel() != 1) {
    return InvalidArgumentError(source + ": no tensor '" + prefix + "updates' (a checkpoint written without train.ema?)");
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    const torch::Tensor* t = find(params_[i].first);
    if (t == nullptr || !t->sizes().equals(shadow_[i].sizes())) {
      return InvalidArgumentError(source + ": tensor '" + prefix + params_[i].first + "' is " +
                                  (t == nullptr ? "missing" : "of another shape") + " (the averaged weights of train.ema)");
    }
    shadow_[i].copy_(*t);
  }
  updates_ = count->to(torch::kCPU).item<int64_t>();
  return Status::Ok();
}

}  // namespace adrec::train

#include "adrec/train/dp_sgd.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <map>
#include <random>
#include <set>

#include "adrec/models/per_sample.h"
#include "adrec/train/dp_accountant.h"

namespace adrec::train {

StatusOr<DpPlan> PlanDpSgd(const DpSgdOptions& o, uint64_t num_samples, size_t batch_size, int epochs) {
  if (num_samples == 0) return FailedPreconditionError("DP-SGD: the train part has no samples");
  const double q = std::min(1.0, static_cast<double>(batch_size) / static_cast<double>(num_samples));
  const int64_t per_epoch = static_cast<int64_t>(std::ceil(1.0 / q - 1e-9));
  return PlanDp(o, q, per_epoch * epochs, num_samples);
}

StatusOr<DpPlan> PlanDp(const DpSgdOptions& o, double sample_rate, int64_t steps, uint64_t population) {
  if (!(o.clip > 0) || !std::isfinite(o.clip)) {
    return InvalidArgumentError("train.dp_clip must be a finite number > 0, got " + std::to_string(o.clip));
  }
  if (o.epsilon < 0 || std::isnan(o.epsilon)) {
    return InvalidArgumentError("train.dp_epsilon must be > 0 (0 = off), got " + std::to_string(o.epsilon));
  }
  if (o.epsilon > 0 && o.noise_multiplier >= 0) {
    return InvalidArgumentError("train.dp_epsilon and train.dp_noise_multiplier both set: give the budget or the noise, not both");
  }
  if (!(o.delta > 0 && o.delta < 1)) {
    return InvalidArgumentError("train.dp_delta must be in (0, 1), got " + std::to_string(o.delta));
  }
  if (!std::isfinite(o.noise_multiplier)) {
    return InvalidArgumentError("train.dp_noise_multiplier must be finite");
  }
  DpPlan plan;
  plan.sample_rate = sample_rate;
  plan.steps = steps;
  plan.expected_batch = plan.sample_rate * static_cast<double>(population);
  if (o.noise_multiplier >= 0) {
    plan.noise_multiplier = o.noise_multiplier;
  } else {
    StatusOr<double> sigma = NoiseMultiplierFor(o.epsilon, o.delta, plan.sample_rate, plan.steps);
    if (!sigma.ok()) return Status(sigma.status().code(), "train.dp_epsilon: " + sigma.status().message());
    plan.noise_multiplier = *sigma;
  }
  return plan;
}

std::vector<uint64_t> PoissonSample(uint64_t n, double q, uint64_t seed, int64_t step) {
  std::vector<uint64_t> out;
  if (n == 0 || !(q > 0)) return out;
  std::mt19937_64 rng(seed * 0xD1B54A32D192ED03ull + static_cast<uint64_t>(step) * 0x9E3779B97F4A7C15ull + 1);
  if (q >= 1) {
    out.resize(n);
    for (uint64_t i = 0; i < n; ++i) out[i] = i;
    return out;
  }
  // The gaps between chosen indices are geometric: O(qn) draws instead of n coin flips.
  std::geometric_distribution<uint64_t> gap(q);
  out.reserve(static_cast<size_t>(q * static_cast<double>(n) * 1.2) + 16);
  for (uint64_t i = gap(rng); i < n; i += gap(rng) + 1) out.push_back(i);
  return out;
}

namespace {

// Noise of one step, on the CPU from a generator seeded by (seed, step), then moved: the same
// noise on every device and after a resume.
class StepNoise {
 public:
  StepNoise(uint64_t seed, int64_t step)
      : gen_(at::detail::createCPUGenerator(seed * 0x9E3779B97F4A7C15ull ^ (static_cast<uint64_t>(step) + 0x51ED27ull))) {}
  torch::Tensor Normal(at::IntArrayRef sizes, double std, const torch::Device& device) {
    torch::Tensor z = at::normal(0.0, std, sizes, gen_, torch::TensorOptions().dtype(torch::kFloat));
    return z.to(device);
  }

 private:
  at::Generator gen_;
};

}  // namespace

DpGradients PrivateGradients(const torch::Tensor& sample_losses, const models::PerSampleTape& tape,
                             embedding::EmbeddingCollection& embeddings, const embedding::EmbeddingCollection::Lookup* lookup,
                             const std::vector<torch::Tensor>& params, const DpPlan& plan, double clip, uint64_t seed,
                             int64_t step) {
  DpGradients out;
  for (const torch::Tensor& p : params) {
    if (p.grad().defined()) p.mutable_grad().zero_();
  }
  const bool empty = lookup == nullptr || !sample_losses.defined() || sample_losses.numel() == 0;
  if (!empty) {
    // Pass 1: the gradients of the recorded activations and of the looked-up embeddings.
    std::vector<torch::Tensor> wrt = tape.outputs();
    const size_t dense_n = wrt.size();
    const embedding::ModelInput& in = lookup->input;
    // Autograd takes only tensors in the graph: the fields that require grad, by position.
    std::vector<int> field_at(in.sparse.size(), -1);
    for (size_t f = 0; f < in.sparse.size(); ++f) {
      if (in.sparse[f].requires_grad()) {
        field_at[f] = static_cast<int>(wrt.size());
        wrt.push_back(in.sparse[f]);
      }
    }
    const bool linear = in.linear.defined() && in.linear.requires_grad();
    if (linear) wrt.push_back(in.linear);
    const torch::Tensor total = sample_losses.sum();
    const std::vector<torch::Tensor> grads =
        torch::autograd::grad({total}, wrt, {}, /*retain_graph=*/true, /*create_graph=*/false, /*allow_unused=*/true);
    const std::vector<torch::Tensor> dense_grads(grads.begin(), grads.begin() + static_cast<int64_t>(dense_n));
    std::vector<torch::Tensor> sparse_grads(in.sparse.size());
    for (size_t f = 0; f < in.sparse.size(); ++f) {
      if (field_at[f] >= 0) sparse_grads[f] = grads[static_cast<size_t>(field_at[f])];
    }
    torch::Tensor sq = embedding::EmbeddingCollection::PerSampleSquaredNorms(*lookup, sparse_grads,
                                                                             linear ? grads.back() : torch::Tensor());
    if (dense_n > 0) {
      const torch::Tensor dense_sq = tape.SquaredNorms(dense_grads);
      if (dense_sq.defined()) sq = sq + dense_sq;
    }
    const torch::Tensor norm = sq.clamp_min(0).sqrt();
    const torch::Tensor factor = (clip / (norm + 1e-6)).clamp_max(1.0);
    out.stats.mean_norm = norm.mean().item<double>();
    out.stats.clipped_fraction = (norm > clip).to(torch::kFloat).mean().item<double>();
    // Pass 2: the gradient of Σᵢ cᵢ Lᵢ is the sum of the clipped per-sample gradients.
    (sample_losses * factor.detach()).sum().backward();
  }
  const double std = plan.noise_multiplier * clip, scale = 1.0 / std::max(plan.expected_batch, 1.0);
  StepNoise noise(seed, step);
  torch::NoGradGuard no_grad;
  for (const torch::Tensor& p : params) {
    torch::Tensor g = p.grad().defined() ? p.grad() : torch::zeros_like(p);
    if (std > 0) g = g + noise.Normal(p.sizes(), std, p.device());
    p.mutable_grad() = g * scale;
  }
  std::map<int, const embedding::EmbeddingCollection::Lookup::TableRows*> touched;
  if (!empty) {
    for (const auto& t : lookup->touched) touched[t.table] = &t;
  }
  for (size_t i = 0; i < embeddings.num_tables(); ++i) {
    const torch::Tensor w = embeddings.table(i).weight();
    torch::Tensor g = std > 0 ? noise.Normal(w.sizes(), std, w.device()) : torch::zeros_like(w);
    if (auto it = touched.find(static_cast<int>(i)); it != touched.end() && it->second->leaf.grad().defined()) {
      g.index_add_(0, it->second->rows, it->second->leaf.grad().to(g.dtype()));
    }
    out.tables.push_back(g * scale);
  }
  return out;
}

void ApplyTableGradients(embedding::EmbeddingCollection& embeddings, const DpGradients& g, int64_t step) {
  for (size_t i = 0; i < embeddings.num_tables() && i < g.tables.size(); ++i) {
    const torch::Tensor& grad = g.tables[i];
    const torch::Tensor rows = torch::arange(grad.size(0), torch::TensorOptions().dtype(torch::kLong).device(grad.device()));
    embeddings.table(i).ApplyGradient(rows, grad, step);
  }
}

Status CheckDpCoverage(const models::PerSampleTape& tape,
                       const std::vector<std::pair<std::string, torch::Tensor>>& named_params,
                       embedding::EmbeddingCollection& embeddings, const std::string& model) {
  const std::set<const void*> covered = tape.covered();
  const std::vector<const void*> repeated = tape.repeated();
  for (const auto& [name, p] : named_params) {
    if (!covered.count(p.unsafeGetTensorImpl())) {
      return FailedPreconditionError("DP-SGD: " + model + "'s parameter '" + name +
                                     "' has no per-sample gradient norm (batch and layer norms are not supported: set "
                                     "model.norm = \"none\")");
    }
    if (std::find(repeated.begin(), repeated.end(), p.unsafeGetTensorImpl()) != repeated.end()) {
      return FailedPreconditionError("DP-SGD: " + model + "'s parameter '" + name +
                                     "' is used twice in one forward pass; its per-sample norm is not the sum of two");
    }
  }
  for (size_t i = 0; i < embeddings.num_tables(); ++i) {
    const data::TableSpec& t = embeddings.table(i).spec();
    if (t.kind == data::TableKind::kDynamic) {
      return FailedPreconditionError("DP-SGD: table '" + t.name +
                                     "' is dynamic: the rows it allocates depend on which IDs were sampled; declare it "
                                     "hashed or fixed");
    }
  }
  return Status::Ok();
}

StatusOr<nlohmann::ordered_json> DpSummary(const DpSgdOptions& o, const DpPlan& plan, int64_t steps_taken) {
  nlohmann::ordered_json j;
  const DpSteps s{.noise_multiplier = plan.noise_multiplier, .sample_rate = plan.sample_rate, .steps = steps_taken};
  ADREC_ASSIGN_OR_RETURN(PrivacySpent spent, EpsilonOf(std::span<const DpSteps>(&s, 1), o.delta));
  // JSON has no infinity: clipping without noise spends an unbounded ε, written as null.
  j["epsilon"] = std::isfinite(spent.epsilon) ? nlohmann::ordered_json(spent.epsilon) : nlohmann::ordered_json(nullptr);
  if (o.epsilon > 0) j["target_epsilon"] = o.epsilon;
  j["delta"] = o.delta;
  j["noise_multiplier"] = plan.noise_multiplier;
  j["clip"] = o.clip;
  j["sample_rate"] = plan.sample_rate;
  j["steps"] = steps_taken;
  j["planned_steps"] = plan.steps;
  return j;
}

}  // namespace adrec::train

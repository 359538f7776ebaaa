#include "adrec/train/losses.h"

#include <torch/torch.h>

#include <limits>

namespace adrec::train {

torch::Tensor MaskedBce(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& mask,
                        const torch::Tensor& target_weights, const torch::Tensor& counts) {
  TORCH_CHECK(logits.dim() == 2 && logits.sizes() == labels.sizes() && labels.sizes() == mask.sizes() &&
                  target_weights.dim() == 1 && target_weights.size(0) == logits.size(1),
              "MaskedBce: logits ", logits.sizes(), ", labels ", labels.sizes(), ", mask ", mask.sizes(),
              " and target weights ", target_weights.sizes(), " do not match");
  torch::Tensor per = torch::binary_cross_entropy_with_logits(logits.to(torch::kFloat32), labels, mask, {},
                                                              at::Reduction::None);
  torch::Tensor per_target = per.sum(0) / (counts.defined() ? counts : mask.sum(0).clamp_min(1.0));
  return (per_target * target_weights).sum();
}

torch::Tensor DistillationLoss(const torch::Tensor& student_logits, const torch::Tensor& teacher_logits,
                               const torch::Tensor& mask, const torch::Tensor& target_weights, double temperature) {
  const torch::Tensor soft = torch::sigmoid(teacher_logits.to(torch::kFloat32) / temperature);
  // BCE against a soft label bottoms out at its entropy; subtracting that makes agreement zero.
  const torch::Tensor floor = MaskedBce(teacher_logits.to(torch::kFloat32) / temperature, soft, mask, target_weights);
  const double t2 = temperature * temperature;
  return t2 * (MaskedBce(student_logits.to(torch::kFloat32) / temperature, soft, mask, target_weights) - floor.detach());
}

torch::Tensor UniformNegatives(int64_t num_items, const SampledSoftmaxOptions& options, const torch::Device& device) {
  return torch::randint(1, num_items + 1, {options.num_negatives}, torch::TensorOptions().dtype(torch::kInt64).device(device));
}

torch::Tensor SampledSoftmaxLoss(const torch::Tensor& hidden, const torch::Tensor& targets, const torch::Tensor& table,
                                 const SampledSoftmaxOptions& options, const torch::Tensor& negatives,
                                 const torch::Tensor& log_p) {
  TORCH_CHECK(hidden.dim() == 2 && targets.dim() == 1 && hidden.size(0) == targets.size(0),
              "SampledSoftmaxLoss: hidden ", hidden.sizes(), " and targets ", targets.sizes(), " do not match");
  TORCH_CHECK(!options.logq || (log_p.defined() && log_p.size(0) == table.size(0)),
              "SampledSoftmaxLoss: logq needs log_p [", table.size(0), "]");
  auto norm = [&](const torch::Tensor& t) {
    return options.l2_normalize ? torch::nn::functional::normalize(t, torch::nn::functional::NormalizeFuncOptions().dim(-1).eps(1e-6)) : t;
  };
  torch::Tensor h = norm(hidden);
  torch::Tensor pos = norm(table.index_select(0, targets));
  // Candidates per row: its positive (column 0), then the shared negatives, then in-batch.
  torch::Tensor neg_ids = negatives;
  int64_t in_batch_count = 0;
  if (options.in_batch) {
    torch::Tensor in_batch = targets;
    if (targets.size(0) > options.in_batch_max) {
      in_batch = targets.index_select(0, torch::randperm(targets.size(0), targets.options()).narrow(0, 0, options.in_batch_max));
    }
    neg_ids = torch::cat({negatives, in_batch});
    in_batch_count = in_batch.size(0);
  }
  torch::Tensor neg = norm(table.index_select(0, neg_ids));
  const double inv_t = 1.0 / options.temperature;
  torch::Tensor pos_logit = (h * pos).sum(-1, /*keepdim=*/true) * inv_t;              // [N, 1]
  torch::Tensor neg_logit = torch::matmul(h, neg.t()) * inv_t;                       // [N, M]
  // A negative that is the row's own positive is no negative (and in-batch always has one).
  torch::Tensor hit = neg_ids.unsqueeze(0).eq(targets.unsqueeze(1));
  if (options.logq) {
    const double uniform = static_cast<double>(negatives.size(0)) / static_cast<double>(table.size(0) - 1);
    auto log_expected = [&](const torch::Tensor& ids) {
      return (log_p.index_select(0, ids).to(torch::kFloat32).exp() * static_cast<double>(in_batch_count) + uniform).log();
    };
    pos_logit = pos_logit - log_expected(targets).unsqueeze(1);
    neg_logit = neg_logit - log_expected(neg_ids).unsqueeze(0);
  }
  neg_logit = neg_logit.masked_fill(hit, -std::numeric_limits<float>::infinity());
  torch::Tensor logits = torch::cat({pos_logit, neg_logit}, 1);
  return -torch::log_softmax(logits.to(torch::kFloat32), 1).select(1, 0).mean();
}

torch::Tensor FullSoftmaxLoss(const torch::Tensor& hidden, const torch::Tensor& targets, const torch::Tensor& table,
                              const SampledSoftmaxOptions& options, const torch::Tensor& seen) {
  TORCH_CHECK(hidden.dim() == 2 && targets.dim() == 1 && hidden.size(0) == targets.size(0),
              "FullSoftmaxLoss: hidden ", hidden.sizes(), " and targets ", targets.sizes(), " do not match");
  torch::Tensor h = hidden.to(torch::kFloat32);
  torch::Tensor items = table.narrow(0, 1, table.size(0) - 1).to(torch::kFloat32);
  double scale = 1.0;
  if (options.l2_normalize) {
    const auto unit = torch::nn::functional::NormalizeFuncOptions().dim(-1).eps(1e-6);
    h = torch::nn::functional::normalize(h, unit);
    items = torch::nn::functional::normalize(items, unit);
    scale = 1.0 / options.temperature;
  }
  torch::Tensor logits = torch::matmul(h, items.t());
  if (scale != 1.0) logits = logits * scale;
  const torch::Tensor rows = targets - 1;
  if (!options.exclude_seen) {
    return torch::nn::functional::cross_entropy(
        logits, rows, torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(options.label_smoothing));
  }
  TORCH_CHECK(seen.dim() == 2 && seen.size(0) == targets.size(0), "FullSoftmaxLoss: seen ", seen.sizes(),
              " does not match targets ", targets.sizes());
  // Column 0 of the mask is the padding item: seen's zeros land there and are dropped.
  torch::Tensor out = torch::zeros({logits.size(0), logits.size(1) + 1}, logits.options().dtype(torch::kBool));
  out.scatter_(1, seen, true);
  out = out.narrow(1, 1, logits.size(1)).scatter(1, rows.unsqueeze(1), false);
  torch::Tensor logp = torch::log_softmax(logits.masked_fill(out, -std::numeric_limits<float>::infinity()), 1);
  torch::Tensor nll = -logp.gather(1, rows.unsqueeze(1)).squeeze(1);
  if (options.label_smoothing == 0) return nll.mean();
  // The smoothing's share goes to the candidates that are left, each alike.
  torch::Tensor left = out.logical_not();
  torch::Tensor spread = -logp.masked_fill(out, 0).sum(1) / left.sum(1).to(logp.scalar_type());
  return ((1 - options.label_smoothing) * nll + options.label_smoothing * spread).mean();
}

torch::Tensor BceOneNegativeLoss(const torch::Tensor& hidden, const torch::Tensor& targets, const torch::Tensor& table,
                                 const torch::Tensor& negatives) {
  torch::Tensor pos = (hidden * table.index_select(0, targets)).sum(-1);
  torch::Tensor neg = (hidden * table.index_select(0, negatives)).sum(-1);
  return -(torch::log_sigmoid(pos) + torch::log_sigmoid(-neg)).mean();
}

torch::Tensor InBatchSoftmaxLoss(const torch::Tensor& q_in, const torch::Tensor& v_in, const torch::Tensor& item_ids,
                                 const torch::Tensor& log_p, const torch::Tensor& neg_in, const torch::Tensor& neg_ids,
                                 int64_t num_items, const InBatchSoftmaxOptions& o) {
  auto norm = [&](const torch::Tensor& x) {
    torch::Tensor f = x.to(torch::kFloat32);
    return o.l2_normalize ? torch::nn::functional::normalize(f, torch::nn::functional::NormalizeFuncOptions().dim(-1)) : f;
  };
  const torch::Tensor q = norm(q_in), v = norm(v_in);
  const int64_t B = q.size(0);
  const double inv_t = 1.0 / o.temperature;
  torch::Tensor logits = torch::matmul(q, v.t()) * inv_t;  // [B, B]
  if (o.logq) logits = logits - (log_p.to(torch::kFloat32) + std::log(static_cast<double>(B))).unsqueeze(0);
  // The same item in another row is this row's positive too, not a negative.
  const torch::Tensor same = item_ids.unsqueeze(1) == item_ids.unsqueeze(0);
  const torch::Tensor diag = torch::eye(B, torch::TensorOptions().dtype(torch::kBool).device(q.device()));
  logits = logits.masked_fill(same & ~diag, -std::numeric_limits<float>::infinity());
  if (neg_in.defined() && neg_in.size(0) > 0) {
    const int64_t M = neg_in.size(0);
    torch::Tensor nl = torch::matmul(q, norm(neg_in).t()) * inv_t;  // [B, M]
    if (o.logq) nl = nl - std::log(static_cast<double>(M) / static_cast<double>(std::max<int64_t>(1, num_items)));
    nl = nl.masked_fill(item_ids.unsqueeze(1) == neg_ids.unsqueeze(0), -std::numeric_limits<float>::infinity());
    logits = torch::cat({logits, nl}, 1);
  }
  const torch::Tensor target = torch::arange(B, torch::TensorOptions().dtype(torch::kLong).device(q.device()));
  return torch::nn::functional::cross_entropy(logits, target);
}

}  // namespace adrec::train

#include "adrec/eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

namespace adrec::eval {

namespace {

Status CheckInputs(std::string_view what, std::span<const float> scores, std::span<const float> labels,
                   std::span<const float> weights, bool binary) {
  if (scores.size() != labels.size()) {
    return InvalidArgumentError(std::string(what) + ": " + std::to_string(scores.size()) + " scores but " +
                                std::to_string(labels.size()) + " labels");
  }
  if (!weights.empty() && weights.size() != scores.size()) {
    return InvalidArgumentError(std::string(what) + ": " + std::to_string(weights.size()) + " weights for " +
                                std::to_string(scores.size()) + " samples");
  }
  if (scores.empty()) return InvalidArgumentError(std::string(what) + ": no samples");
  for (size_t i = 0; i < scores.size(); ++i) {
    if (std::isnan(scores[i])) return InvalidArgumentError(std::string(what) + ": score " + std::to_string(i) + " is NaN");
    float y = labels[i];
    bool ok = binary ? (y == 0.f || y == 1.f) : (y >= 0.f && y <= 1.f);
    if (!ok) {
      return InvalidArgumentError(std::string(what) + ": label " + std::to_string(i) + " is " + std::to_string(y) +
                                  (binary ? " (want 0 or 1)" : " (want a value in [0, 1])"));
    }
    if (!weights.empty() && !(weights[i] >= 0.f && std::isfinite(weights[i]))) {
      return InvalidArgumentError(std::string(what) + ": weight " + std::to_string(i) + " is " +
                                  std::to_string(weights[i]) + " (want finite and >= 0)");
    }
  }
  return Status::Ok();
}

inline double W(std::span<const float> weights, size_t i) { return weights.empty() ? 1.0 : weights[i]; }

struct AucParts {
  double area = 0;  // weighted count of (pos, neg) pairs ordered correctly, ties one half
  double pos = 0, neg = 0;
};

// `idx` is reordered (sorted by score ascending).
AucParts AucOf(std::span<const float> scores, std::span<const float> labels, std::span<const float> weights,
               std::span<uint32_t> idx) {
  std::sort(idx.begin(), idx.end(), [&](uint32_t a, uint32_t b) { return scores[a] < scores[b]; });
  AucParts r;
  double neg_below = 0;
  for (size_t g = 0; g < idx.size();) {
    size_t e = g;
    double pos_g = 0, neg_g = 0;
    while (e < idx.size() && scores[idx[e]] == scores[idx[g]]) {
      double w = W(weights, idx[e]);
      (labels[idx[e]] == 1.f ? pos_g : neg_g) += w;
      ++e;
    }
    r.area += pos_g * (neg_below + 0.5 * neg_g);
    neg_below += neg_g;
    r.pos += pos_g;
    r.neg += neg_g;
    g = e;
  }
  return r;
}

}  // namespace

StatusOr<double> Auc(std::span<const float> scores, std::span<const float> labels, std::span<const float> weights) {
  ADREC_RETURN_IF_ERROR(CheckInputs("AUC", scores, labels, weights, /*binary=*/true));
  std::vector<uint32_t> idx(scores.size());
  std::iota(idx.begin(), idx.end(), 0u);
  AucParts p = AucOf(scores, labels, weights, idx);
  if (p.pos <= 0 || p.neg <= 0) {
    return InvalidArgumentError("AUC: only one class present (positive weight " + std::to_string(p.pos) +
                                ", negative weight " + std::to_string(p.neg) + "); AUC is undefined");
  }
  return p.area / (p.pos * p.neg);
}

StatusOr<GaucResult> Gauc(std::span<const float> scores, std::span<const float> labels,
                          std::span<const uint32_t> groups) {
  ADREC_RETURN_IF_ERROR(CheckInputs("GAUC", scores, labels, {}, /*binary=*/true));
  if (groups.size() != scores.size()) {
    return InvalidArgumentError("GAUC: " + std::to_string(groups.size()) + " group IDs for " +
                                std::to_string(scores.size()) + " samples");
  }
  std::vector<uint32_t> idx(scores.size());
  std::iota(idx.begin(), idx.end(), 0u);
  std::stable_sort(idx.begin(), idx.end(), [&](uint32_t a, uint32_t b) { return groups[a] < groups[b]; });
  GaucResult r;
  double num = 0;
  for (size_t b = 0; b < idx.size();) {
    size_t e = b;
    while (e < idx.size() && groups[idx[e]] == groups[idx[b]]) ++e;
    AucParts p = AucOf(scores, labels, {}, std::span<uint32_t>(idx.data() + b, e - b));
    if (p.pos > 0 && p.neg > 0) {
      double n = static_cast<double>(e - b);
      num += n * p.area / (p.pos * p.neg);
      r.samples_used += e - b;
      r.users_used++;
    } else {
      r.users_skipped++;
    }
    b = e;
  }
  if (r.users_used == 0) {
    return InvalidArgumentError("GAUC: none of " + std::to_string(r.users_skipped) +
                                " users has both a positive and a negative sample");
  }
  r.gauc = num / static_cast<double>(r.samples_used);
  return r;
}

StatusOr<double> LogLoss(std::span<const float> predictions, std::span<const float> labels,
                         std::span<const float> weights, double eps) {
  ADREC_RETURN_IF_ERROR(CheckInputs("log loss", predictions, labels, weights, /*binary=*/false));
  if (!(eps > 0 && eps < 0.5)) return InvalidArgumentError("log loss: eps must be in (0, 0.5)");
  double sum = 0, wsum = 0;
  for (size_t i = 0; i < predictions.size(); ++i) {
    double p = std::clamp(static_cast<double>(predictions[i]), eps, 1.0 - eps);
    double y = labels[i], w = W(weights, i);
    sum += -w * (y * std::log(p) + (1.0 - y) * std::log1p(-p));
    wsum += w;
  }
  if (wsum <= 0) return InvalidArgumentError("log loss: total weight is zero");
  return sum / wsum;
}

StatusOr<double> NormalizedEntropy(std::span<const float> predictions, std::span<const float> labels,
                                   std::span<const float> weights, double eps) {
  ADREC_ASSIGN_OR_RETURN(double ll, LogLoss(predictions, labels, weights, eps));
  double pos = 0, wsum = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    pos += W(weights, i) * labels[i];
    wsum += W(weights, i);
  }
  double p = pos / wsum;
  if (p <= 0 || p >= 1) {
    return InvalidArgumentError("normalised entropy: base rate is " + std::to_string(p) +
                                " (need both classes; the background entropy is zero)");
  }
  double h = -(p * std::log(p) + (1 - p) * std::log1p(-p));
  return ll / h;
}

StatusOr<double> Calibration(std::span<const float> predictions, std::span<const float> labels,
                             std::span<const float> weights) {
  ADREC_RETURN_IF_ERROR(CheckInputs("calibration", predictions, labels, weights, /*binary=*/false));
  double sp = 0, sy = 0;
  for (size_t i = 0; i < predictions.size(); ++i) {
    sp += W(weights, i) * predictions[i];
    sy += W(weights, i) * labels[i];
  }
  if (sy <= 0) return InvalidArgumentError("calibration: no positive labels (sum of labels is 0)");
  return sp / sy;
}

StatusOr<ReliabilityResult> ReliabilityBins(std::span<const float> predictions, std::span<const float> labels,
                                            const ReliabilityOptions& options, std::span<const float> weights) {
  ADREC_RETURN_IF_ERROR(CheckInputs("reliability", predictions, labels, weights, /*binary=*/false));
  if (options.bins < 1) return InvalidArgumentError("reliability: bins must be >= 1");
  for (size_t i = 0; i < predictions.size(); ++i) {
    if (!(predictions[i] >= 0.f && predictions[i] <= 1.f)) {
      return InvalidArgumentError("reliability: prediction " + std::to_string(i) + " is " +
                                  std::to_string(predictions[i]) + " (want a probability in [0, 1])");
    }
  }
  const size_t n = predictions.size();
  const size_t B = static_cast<size_t>(options.bins);
  ReliabilityResult r;
  std::vector<size_t> bin_of(n);
  if (options.binning == Binning::kEqualWidth) {
    r.bins.resize(B);
    for (size_t b = 0; b < B; ++b) {
      r.bins[b].lo = static_cast<double>(b) / B;
      r.bins[b].hi = static_cast<double>(b + 1) / B;
    }
    // A prediction of exactly 1 belongs to the last bin.
    for (size_t i = 0; i < n; ++i) bin_of[i] = std::min(B - 1, static_cast<size_t>(predictions[i] * B));
  } else {
    std::vector<uint32_t> idx(n);
    std::iota(idx.begin(), idx.end(), 0u);
    std::stable_sort(idx.begin(), idx.end(), [&](uint32_t a, uint32_t b) { return predictions[a] < predictions[b]; });
    size_t start = 0;
    for (size_t b = 0; b < B && start < n; ++b) {
      size_t end = std::max(start + 1, (b + 1) * n / B);
      end = std::min(end, n);
      // Extend over ties so equal predictions never straddle two bins.
      while (end < n && predictions[idx[end]] == predictions[idx[end - 1]]) ++end;
      ReliabilityBin bin;
      bin.lo = predictions[idx[start]];
      bin.hi = predictions[idx[end - 1]];
      for (size_t k = start; k < end; ++k) bin_of[idx[k]] = r.bins.size();
      r.bins.push_back(bin);
      start = end;
    }
  }
  double total = 0;
  for (size_t i = 0; i < n; ++i) {
    auto& bin = r.bins[bin_of[i]];
    double w = W(weights, i);
    bin.count++;
    bin.weight += w;
    bin.mean_prediction += w * predictions[i];
    bin.mean_label += w * labels[i];
    total += w;
  }
  for (auto& bin : r.bins) {
    if (bin.weight > 0) {
      bin.mean_prediction /= bin.weight;
      bin.mean_label /= bin.weight;
      r.ece += bin.weight * std::abs(bin.mean_prediction - bin.mean_label);
    }
  }
  if (total > 0) r.ece /= total;
  return r;
}

double Ndcg(uint64_t rank, uint64_t k) { return rank < k ? 1.0 / std::log2(static_cast<double>(rank) + 2.0) : 0.0; }

double ExpectedHitRate(uint64_t greater, uint64_t ties, uint64_t k) {
  if (greater >= k) return 0.0;
  uint64_t hits = std::min(k, greater + ties + 1) - greater;
  return static_cast<double>(hits) / static_cast<double>(ties + 1);
}

double ExpectedNdcg(uint64_t greater, uint64_t ties, uint64_t k) {
  double sum = 0;
  for (uint64_t p = greater; p <= greater + ties && p < k; ++p) sum += 1.0 / std::log2(static_cast<double>(p) + 2.0);
  return sum / static_cast<double>(ties + 1);
}

double ExpectedReciprocalRank(uint64_t greater, uint64_t ties) {
  double sum = 0;
  for (uint64_t p = greater; p <= greater + ties; ++p) sum += 1.0 / (static_cast<double>(p) + 1.0);
  return sum / static_cast<double>(ties + 1);
}

double CatalogCoverage(std::span<const uint32_t> recommended, uint32_t num_items) {
  if (num_items == 0) return 0.0;
  std::vector<uint8_t> seen(num_items, 0);
  uint64_t distinct = 0;
  for (uint32_t i : recommended) {
    if (i < num_items && !seen[i]) {
      seen[i] = 1;
      ++distinct;
    }
  }
  return static_cast<double>(distinct) / num_items;
}

}  // namespace adrec::eval

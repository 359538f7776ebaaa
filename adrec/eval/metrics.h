// Offline metrics: pointwise (AUC, GAUC, log loss, normalised entropy, calibration, reliability
// bins) over (score, label) pairs, and ranking metrics (HR@K, NDCG@K, MRR) over the 0-based rank
// of the single held-out positive of a query, plus catalog coverage.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "adrec/core/status.h"

namespace adrec::eval {

// Labels are 0 or 1 (AUC, GAUC) or in [0, 1] (log loss). Weights are optional (empty = all 1)
// and must be >= 0. Scores must not be NaN.

// Exact ROC AUC in O(n log n): the probability that a random positive outscores a random
// negative, ties counted one half (Mann-Whitney U with the tie correction); weighted pairs count
// w_pos * w_neg. InvalidArgument when sizes differ, a score is NaN, a label is not 0/1, or only
// one class (by weight) is present.
StatusOr<double> Auc(std::span<const float> scores, std::span<const float> labels,
                     std::span<const float> weights = {});

struct GaucResult {
  double gauc = 0;              // sum_u n_u * AUC_u / sum_u n_u over the users used
  uint64_t users_used = 0;      // users with both classes
  uint64_t users_skipped = 0;   // users with one class only (AUC undefined)
  uint64_t samples_used = 0;    // n_u summed over users used
};
// Group AUC (Zhou et al. 2018, DIN): per-user AUC weighted by the user's impression count.
// `groups` holds each sample's user; samples need not be grouped or sorted. InvalidArgument on
// size mismatch, NaN, bad labels or when no user has both classes.
StatusOr<GaucResult> Gauc(std::span<const float> scores, std::span<const float> labels,
                          std::span<const uint32_t> groups);

inline constexpr double kLogLossEps = 1e-7;
// Mean binary cross-entropy with predictions clipped to [eps, 1 - eps]. Predictions are
// probabilities; InvalidArgument when sizes differ, empty, NaN or a label outside [0, 1].
StatusOr<double> LogLoss(std::span<const float> predictions, std::span<const float> labels,
                         std::span<const float> weights = {}, double eps = kLogLossEps);
// Normalised entropy (He et al. 2014, "Practical lessons from predicting clicks on ads at
// Facebook"): log loss divided by the entropy of the (weighted) base rate p,
// -(p log p + (1-p) log(1-p)). < 1 means better than always predicting the base rate.
// InvalidArgument when the base rate is 0 or 1.
StatusOr<double> NormalizedEntropy(std::span<const float> predictions, std::span<const float> labels,
                                   std::span<const float> weights = {}, double eps = kLogLossEps);
// Calibration = sum of predictions / sum of labels (1 = calibrated; > 1 over-predicts).
// InvalidArgument when no positive label.
StatusOr<double> Calibration(std::span<const float> predictions, std::span<const float> labels,
                             std::span<const float> weights = {});

enum class Binning { kEqualWidth, kEqualMass };
struct ReliabilityOptions {
  int bins = 10;
  // Equal width: [k/B, (k+1)/B) over predictions in [0, 1]. Equal mass: bins of (as nearly as
  // possible) equal sample count by sorted prediction; tied predictions share a bin.
  Binning binning = Binning::kEqualWidth;
};
struct ReliabilityBin {
  double lo = 0, hi = 0;     // prediction range of the bin
  uint64_t count = 0;
  double weight = 0;         // sum of sample weights
  double mean_prediction = 0;
  double mean_label = 0;     // observed rate
};
struct ReliabilityResult {
  std::vector<ReliabilityBin> bins;  // empty bins are kept (count 0) for equal width
  double ece = 0;  // expected calibration error: sum_b weight_b/W * |mean_pred_b - mean_label_b|
};
StatusOr<ReliabilityResult> ReliabilityBins(std::span<const float> predictions, std::span<const float> labels,
                                            const ReliabilityOptions& options = {},
                                            std::span<const float> weights = {});

// Ranking metrics of one query with one relevant item at 0-based `rank`.
inline double HitRate(uint64_t rank, uint64_t k) { return rank < k ? 1.0 : 0.0; }
// 1 / log2(rank + 2): the ideal DCG of a single relevant item is 1.
double Ndcg(uint64_t rank, uint64_t k);
inline double ReciprocalRank(uint64_t rank) { return 1.0 / (static_cast<double>(rank) + 1.0); }

// Expected HR@K / NDCG@K / RR when the target ties with `ties` other items after `greater`
// items score strictly higher and the tied block is ordered uniformly at random (the target's
// rank is uniform on [greater, greater + ties]). This equals sklearn's tie-averaged DCG.
double ExpectedHitRate(uint64_t greater, uint64_t ties, uint64_t k);
double ExpectedNdcg(uint64_t greater, uint64_t ties, uint64_t k);
double ExpectedReciprocalRank(uint64_t greater, uint64_t ties);

// Fraction of the catalog's `num_items` items that appear at least once in `recommended`
// (the concatenated top-K lists). Items >= num_items are ignored.
double CatalogCoverage(std::span<const uint32_t> recommended, uint32_t num_items);

}  // namespace adrec::eval

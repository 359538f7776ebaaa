// Non-learned baselines every model must beat, behind one small interface: random, global
// popularity, per-scene popularity and item-kNN over co-occurrence; plus the one-call
// evaluation `adrec eval --baseline` uses (full ranking for leave-one-out style splits and
// pop-CTR AUC / log loss / NE / calibration for impression logs).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "adrec/core/status.h"
#include "adrec/data/dataset.h"
#include "adrec/data/split.h"
#include "adrec/eval/ranking.h"

namespace adrec::eval {

using data::Dataset;
using data::Split;

class Recommender {
 public:
  virtual ~Recommender() = default;
  // Learns from the split's train events only (positives as defined by split.positive_mask).
  virtual Status Fit(const Dataset& ds, const Split& split) = 0;
  // Writes a score for every item (higher = better) given the user's history (item IDs, oldest
  // first). Thread-safe: called concurrently by the evaluator.
  virtual void Score(uint32_t user, std::span<const uint32_t> history, std::span<float> scores) const = 0;
  virtual std::string name() const = 0;
};

struct ItemKnnOptions {
  uint32_t neighbours = 100;   // top-N most similar items kept per item (memory: N per item)
  uint32_t max_history = 50;   // most recent distinct positives per user used in Fit and Score
  double shrinkage = 0.0;      // sim = co / (sqrt(n_i n_j) + shrinkage) (Koren's shrunk cosine)
  size_t threads = 0;          // Fit; 0 = hardware concurrency
  // Items the neighbours leave unscored (and ties) are ordered by train popularity, scaled far
  // below any similarity so it never reorders scored items (popularity backfill).
  bool popularity_backfill = true;
};

struct BaselineOptions {
  uint64_t seed = 42;  // random
  ItemKnnOptions itemknn;
};

inline constexpr std::string_view kBaselineNames = "random, pop, pop_scene, itemknn";
// "random", "pop", "pop_scene", "itemknn"; anything else is InvalidArgument listing those.
StatusOr<std::unique_ptr<Recommender>> MakeBaseline(std::string_view name, const BaselineOptions& options = {});

// ---- Impression → click labels ------------------------------------------------------------

struct ClickLabelOptions {
  // A click counts for an impression only within this many seconds of it; 0 = no time limit.
  uint32_t window_s = 0;
  // Actions that count as a click on the impressed item.
  data::ActionMask click_actions = data::ActionBit(data::Action::kClick);
};
// Per event: -1 for events that are not impressions, else 0/1. Rule: walking a user's slice in
// order (time, then arrival), a click on item x labels the most recent still-open impression of
// x by that user with 1 (if within the window) and closes it; a new impression of x closes the
// previous one, so each click labels at most one impression and only the last impression
// before it. Clicks with no open impression are ignored.
std::vector<int8_t> ImpressionClickLabels(const Dataset& ds, const ClickLabelOptions& options = {});
std::string DescribeClickLabelRule(const ClickLabelOptions& options);
// True when the dataset has impressions and at least one click action.
bool HasImpressionsWithClicks(const Dataset& ds, const ClickLabelOptions& options = {});

// ---- One-call evaluation --------------------------------------------------------------------

struct BaselineEvalOptions {
  std::vector<uint32_t> hr_ks = {1, 5, 10, 20, 50, 200};
  std::vector<uint32_t> ndcg_ks = {5, 10, 20, 50, 200};
  std::vector<uint32_t> coverage_ks = {10};
  bool exclude_seen = true;  // the user's history items are removed from its ranking
  TieRule ties = TieRule::kPessimistic;
  data::SplitPart eval_part = data::SplitPart::kTest;
  uint32_t max_users = 0;  // 0 = every user with a target; else a seeded sample of users
  uint64_t seed = 42;
  size_t threads = 0;
  BaselineOptions baseline;
  ClickLabelOptions clicks;
  // pop-CTR: per-(item, scene) CTR smoothed toward the scene's train CTR with this many
  // pseudo-impressions (additive/Bayesian smoothing, as in Chapelle et al. 2014).
  double ctr_smoothing = 20.0;
};

// Keys: "method", "baseline", "split", "eval_part", "protocol", "hr@K" (hr_ks), "ndcg@K"
// (ndcg_ks), "mrr", "coverage@K", "users_evaluated", "num_items", "exclude_seen", "ties",
// "fit_seconds", "eval_seconds"; for impression logs with clicks also "ctr": {"predictor",
// "label_rule", "impressions", "clicks", "auc", "gauc", "gauc_users", "logloss", "ne",
// "calibration", and with generator ground truth "bayes_auc", "bayes_logloss"} (or
// {"skipped": reason}). Ranking queries: per user, the last positive event
// in eval_part is the target and the user's positive events before it are the history.
StatusOr<nlohmann::json> EvaluateBaseline(const Dataset& ds, const Split& split, std::string_view method,
                                          const BaselineEvalOptions& options = {});

}  // namespace adrec::eval

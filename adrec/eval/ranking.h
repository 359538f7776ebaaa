// Full-ranking evaluation (the leave-one-out protocol of SASRec/BERT4Rec/RecBole without
// sampled negatives): for each query (a user and one held-out target item) a model scores ALL
// items, items the user already interacted with are optionally excluded, and the 0-based rank
// of the target gives HR@K, NDCG@K and MRR; the top-K lists give catalog coverage@K.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "adrec/core/status.h"
#include "adrec/core/thread_pool.h"

namespace adrec::eval {

// How a target that ties with other items is ranked.
enum class TieRule {
  // Rank = items scoring strictly higher + items scoring equal (the target goes last among its
  // ties). A constant model gets rank num_items-1, never a lucky hit. Default: stricter than
  // RecBole (whose torch.topk breaks ties by position) and cannot be gamed by constant scores.
  kPessimistic,
  // Expected metrics under a uniformly random order of the tied block (sklearn's tie-averaged
  // DCG); MRR/HR/NDCG are averaged over the target's possible positions.
  kAverage,
};
std::string_view TieRuleName(TieRule t);

// Queries in CSR form, so millions of users do not cost millions of small vectors.
struct RankingTask {
  uint32_t num_items = 0;
  std::vector<uint32_t> users;    // query q is (users[q], targets[q])
  std::vector<uint32_t> targets;
  std::vector<uint64_t> exclude_offsets{0};  // query q excludes exclude_items[off[q], off[q+1])
  std::vector<uint32_t> exclude_items;

  size_t size() const { return users.size(); }
  // `exclude`: items the user already saw (its training history); duplicates are fine.
  void Add(uint32_t user, uint32_t target, std::span<const uint32_t> exclude = {});
  std::span<const uint32_t> ExcludeOf(size_t q) const {
    return {exclude_items.data() + exclude_offsets[q], exclude_items.data() + exclude_offsets[q + 1]};
  }
};

struct RankingOptions {
  std::vector<uint32_t> ks = {1, 5, 10, 20, 50, 200};  // HR@K and NDCG@K (papers report 5, 10, 20)
  std::vector<uint32_t> coverage_ks = {10};     // coverage@K; empty = skip the top-K lists
  // Drop each query's exclude items from the ranking (they can neither outrank the target nor
  // enter a top-K list). The target itself is never excluded, even when it is in the list.
  bool exclude_seen = true;
  TieRule ties = TieRule::kPessimistic;
  ThreadPool* pool = nullptr;  // null: a pool of `threads` is made for the call
  size_t threads = 0;          // 0 = hardware concurrency
  bool keep_ranks = false;     // fill RankingResult::greater / ties per query
};

struct RankingResult {
  uint64_t users_evaluated = 0;  // queries
  uint32_t num_items = 0;
  TieRule ties = TieRule::kPessimistic;
  bool exclude_seen = true;
  std::vector<uint32_t> ks;
  std::vector<double> hr, ndcg;  // aligned with ks
  double mrr = 0;
  std::vector<uint32_t> coverage_ks;
  std::vector<double> coverage;  // aligned with coverage_ks
  // Per query (keep_ranks): items ranked strictly above the target, and items tied with it.
  // The pessimistic rank is greater + ties.
  std::vector<uint64_t> greater, tied;

  // "hr@10", "ndcg@10", "mrr", "coverage@10", "users_evaluated".
  std::map<std::string, double> Metrics() const;
  nlohmann::json ToJson() const;
};

// Called concurrently from several threads, each with its own buffer of num_items floats
// (pre-filled with 0): must write a score for every item. Higher = better.
using ScoreFn = std::function<void(uint32_t user, std::span<float> scores)>;

// InvalidArgument for an empty task, a target or excluded item >= num_items, K == 0, or a NaN
// score of a target (other NaN scores rank below everything).
StatusOr<RankingResult> EvaluateFullRanking(const RankingTask& task, const ScoreFn& score,
                                            const RankingOptions& options = {});

// The metrics of ranks counted elsewhere (a scorer on the GPU): per query the items scoring
// strictly above its target and those tied with it, and for coverage the smallest top-K list
// position at which each item appeared (UINT32_MAX: never; empty without coverage_ks).
// InvalidArgument when the sizes disagree.
StatusOr<RankingResult> RankingResultFromRanks(std::vector<uint64_t> greater, std::vector<uint64_t> tied,
                                               std::span<const uint32_t> best_pos, uint32_t num_items,
                                               const RankingOptions& options);

}  // namespace adrec::eval

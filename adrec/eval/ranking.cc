#include "adrec/eval/ranking.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <memory>
#include <mutex>

#include "adrec/eval/metrics.h"

namespace adrec::eval {

std::string_view TieRuleName(TieRule t) { return t == TieRule::kPessimistic ? "pessimistic" : "average"; }

void RankingTask::Add(uint32_t user, uint32_t target, std::span<const uint32_t> exclude) {
  users.push_back(user);
  targets.push_back(target);
  exclude_items.insert(exclude_items.end(), exclude.begin(), exclude.end());
  exclude_offsets.push_back(exclude_items.size());
}

std::map<std::string, double> RankingResult::Metrics() const {
  std::map<std::string, double> m;
  for (size_t i = 0; i < ks.size(); ++i) {
    m["hr@" + std::to_string(ks[i])] = hr[i];
    m["ndcg@" + std::to_string(ks[i])] = ndcg[i];
  }
  m["mrr"] = mrr;
  for (size_t i = 0; i < coverage_ks.size(); ++i) m["coverage@" + std::to_string(coverage_ks[i])] = coverage[i];
  m["users_evaluated"] = static_cast<double>(users_evaluated);
  return m;
}

nlohmann::json RankingResult::ToJson() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : Metrics()) j[k] = v;
  j["users_evaluated"] = users_evaluated;
  j["num_items"] = num_items;
  j["ties"] = std::string(TieRuleName(ties));
  j["exclude_seen"] = exclude_seen;
  return j;
}

StatusOr<RankingResult> EvaluateFullRanking(const RankingTask& task, const ScoreFn& score,
                                            const RankingOptions& options) {
  const size_t nq = task.size();
  const uint32_t n_items = task.num_items;
  if (nq == 0) return InvalidArgumentError("full ranking: no queries to evaluate");
  if (n_items == 0) return InvalidArgumentError("full ranking: the catalog is empty");
  if (task.targets.size() != nq || task.exclude_offsets.size() != nq + 1 ||
      task.exclude_offsets.back() != task.exclude_items.size()) {
    return InvalidArgumentError("full ranking: malformed task (users, targets and exclude offsets disagree)");
  }
  for (size_t q = 0; q < nq; ++q) {
    if (task.targets[q] >= n_items) {
      return InvalidArgumentError("full ranking: query " + std::to_string(q) + " has target item " +
                                  std::to_string(task.targets[q]) + " >= " + std::to_string(n_items) + " items");
    }
  }
  for (uint32_t x : task.exclude_items) {
    if (x >= n_items) return InvalidArgumentError("full ranking: excluded item " + std::to_string(x) + " out of range");
  }
  for (uint32_t k : options.ks) if (k == 0) return InvalidArgumentError("full ranking: K must be >= 1");
  for (uint32_t k : options.coverage_ks) if (k == 0) return InvalidArgumentError("full ranking: coverage K must be >= 1");

  std::vector<uint64_t> greater(nq), tied(nq);
  uint32_t max_cov_k = 0;
  for (uint32_t k : options.coverage_ks) max_cov_k = std::max(max_cov_k, std::min(k, n_items));
  // Best (smallest) top-K position at which each item appeared in any query's list.
  std::vector<uint32_t> best_pos(max_cov_k > 0 ? n_items : 0, UINT32_MAX);
  std::mutex merge_mu;
  std::atomic<size_t> nan_query{SIZE_MAX};

  std::unique_ptr<ThreadPool> own_pool;
  ThreadPool* pool = options.pool;
  if (pool == nullptr) {
    own_pool = std::make_unique<ThreadPool>(options.threads);
    pool = own_pool.get();
  }
  const float kNaN = std::numeric_limits<float>::quiet_NaN();
  pool->ParallelFor(nq, [&](size_t b, size_t e) {
    std::vector<float> scores(n_items);
    std::vector<uint32_t> cand;
    std::vector<uint32_t> local_best(best_pos.size(), UINT32_MAX);
    for (size_t q = b; q < e; ++q) {
      std::fill(scores.begin(), scores.end(), 0.f);
      score(task.users[q], scores);
      const uint32_t target = task.targets[q];
      const float st = scores[target];
      if (std::isnan(st)) {
        size_t expected = SIZE_MAX;
        nan_query.compare_exchange_strong(expected, q);
        continue;
      }
      // NaN never compares greater or equal: excluded items drop out of both counts.
      if (options.exclude_seen) {
        for (uint32_t x : task.ExcludeOf(q)) if (x != target) scores[x] = kNaN;
      }
      uint64_t g = 0, t = 0;
      for (uint32_t j = 0; j < n_items; ++j) {
        g += scores[j] > st;
        t += scores[j] == st;
      }
      greater[q] = g;
      tied[q] = t - 1;  // the target ties with itself
      if (max_cov_k == 0) continue;
      cand.clear();
      for (uint32_t j = 0; j < n_items; ++j) if (!std::isnan(scores[j])) cand.push_back(j);
      size_t k = std::min<size_t>(max_cov_k, cand.size());
      // Deterministic lists: ties broken by the lower item ID.
      std::partial_sort(cand.begin(), cand.begin() + static_cast<ptrdiff_t>(k), cand.end(),
                        [&](uint32_t a, uint32_t c) { return scores[a] != scores[c] ? scores[a] > scores[c] : a < c; });
      for (size_t p = 0; p < k; ++p) local_best[cand[p]] = std::min<uint32_t>(local_best[cand[p]], static_cast<uint32_t>(p));
    }
    if (max_cov_k > 0) {
      std::lock_guard<std::mutex> lock(merge_mu);
      for (size_t i = 0; i < best_pos.size(); ++i) best_pos[i] = std::min(best_pos[i], local_best[i]);
    }
  });
  if (size_t q = nan_query.load(); q != SIZE_MAX) {
    return InvalidArgumentError("full ranking: the model scored the target of query " + std::to_string(q) +
                                " (user " + std::to_string(task.users[q]) + ", item " +
                                std::to_string(task.targets[q]) + ") as NaN");
  }

  return RankingResultFromRanks(std::move(greater), std::move(tied), best_pos, n_items, options);
}

StatusOr<RankingResult> RankingResultFromRanks(std::vector<uint64_t> greater, std::vector<uint64_t> tied,
                                               std::span<const uint32_t> best_pos, uint32_t num_items,
                                               const RankingOptions& options) {
  const size_t nq = greater.size();
  if (nq == 0 || tied.size() != nq) return InvalidArgumentError("full ranking: no ranks, or greater and tied disagree");
  if (!options.coverage_ks.empty() && best_pos.size() != num_items) {
    return InvalidArgumentError("full ranking: coverage needs a list position per item");
  }
  RankingResult r;
  r.users_evaluated = nq;
  r.num_items = num_items;
  r.ties = options.ties;
  r.exclude_seen = options.exclude_seen;
  r.ks = options.ks;
  r.hr.assign(r.ks.size(), 0.0);
  r.ndcg.assign(r.ks.size(), 0.0);
  // Reduced in query order: results do not depend on the thread count.
  for (size_t q = 0; q < nq; ++q) {
    const uint64_t g = greater[q], t = tied[q];
    if (options.ties == TieRule::kPessimistic) {
      const uint64_t rank = g + t;
      for (size_t i = 0; i < r.ks.size(); ++i) {
        r.hr[i] += HitRate(rank, r.ks[i]);
        r.ndcg[i] += Ndcg(rank, r.ks[i]);
      }
      r.mrr += ReciprocalRank(rank);
    } else {
      for (size_t i = 0; i < r.ks.size(); ++i) {
        r.hr[i] += ExpectedHitRate(g, t, r.ks[i]);
        r.ndcg[i] += ExpectedNdcg(g, t, r.ks[i]);
      }
      r.mrr += ExpectedReciprocalRank(g, t);
    }
  }
  const double inv = 1.0 / static_cast<double>(nq);
  for (size_t i = 0; i < r.ks.size(); ++i) {
    r.hr[i] *= inv;
    r.ndcg[i] *= inv;
  }
  r.mrr *= inv;
  r.coverage_ks = options.coverage_ks;
  for (uint32_t k : r.coverage_ks) {
    uint64_t covered = 0;
    for (uint32_t p : best_pos) covered += p < k;
    r.coverage.push_back(static_cast<double>(covered) / num_items);
  }
  if (options.keep_ranks) {
    r.greater = std::move(greater);
    r.tied = std::move(tied);
  }
  return r;
}

}  // namespace adrec::eval

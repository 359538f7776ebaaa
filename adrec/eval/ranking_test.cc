#include "adrec/eval/ranking.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "adrec/eval/metrics.h"

// Options structs are filled with designated initializers; unnamed fields keep their defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace adrec::eval {
namespace {

// Scores item i of every user as -i: item 0 is best, rank(item t) = t.
void Descending(uint32_t, std::span<float> s) {
  for (size_t i = 0; i < s.size(); ++i) s[i] = -static_cast<float>(i);
}

TEST(RankingTest, KnownRanks) {
  RankingTask task;
  task.num_items = 100;
  task.Add(0, 0);   // rank 0
  task.Add(1, 4);   // rank 4
  task.Add(2, 60);  // rank 60
  auto r = EvaluateFullRanking(task, Descending, {.ks = {1, 5, 50}, .coverage_ks = {}, .keep_ranks = true});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->users_evaluated, 3u);
  EXPECT_EQ(r->greater, (std::vector<uint64_t>{0, 4, 60}));
  EXPECT_EQ(r->tied, (std::vector<uint64_t>{0, 0, 0}));
  EXPECT_DOUBLE_EQ(r->hr[0], 1.0 / 3);
  EXPECT_DOUBLE_EQ(r->hr[1], 2.0 / 3);
  EXPECT_DOUBLE_EQ(r->hr[2], 2.0 / 3);
  EXPECT_DOUBLE_EQ(r->ndcg[1], (1.0 + 1.0 / std::log2(6.0)) / 3);
  EXPECT_DOUBLE_EQ(r->mrr, (1.0 + 1.0 / 5 + 1.0 / 61) / 3);
  auto m = r->Metrics();
  EXPECT_DOUBLE_EQ(m.at("hr@5"), 2.0 / 3);
  EXPECT_DOUBLE_EQ(m.at("ndcg@50"), r->ndcg[2]);
  EXPECT_DOUBLE_EQ(m.at("mrr"), r->mrr);
  auto j = r->ToJson();
  EXPECT_EQ(j["users_evaluated"], 3);
  EXPECT_EQ(j["ties"], "pessimistic");
  EXPECT_TRUE(j.contains("hr@1"));
}

TEST(RankingTest, ExcludeSeenRemovesHistoryButNeverTheTarget) {
  RankingTask task;
  task.num_items = 20;
  std::vector<uint32_t> seen = {0, 1, 2, 5};  // 5 is the target: never excluded
  task.Add(7, 5, seen);
  auto with = EvaluateFullRanking(task, Descending, {.ks = {3}, .coverage_ks = {3}, .keep_ranks = true});
  auto without = EvaluateFullRanking(task, Descending,
                                     {.ks = {3}, .coverage_ks = {3}, .exclude_seen = false, .keep_ranks = true});
  ASSERT_TRUE(with.ok() && without.ok());
  EXPECT_EQ(without->greater[0], 5u);  // items 0..4 above
  EXPECT_EQ(with->greater[0], 2u);     // only 3, 4 remain above
  EXPECT_DOUBLE_EQ(with->hr[0], 1.0);
  EXPECT_DOUBLE_EQ(without->hr[0], 0.0);
  EXPECT_DOUBLE_EQ(with->mrr, 1.0 / 3);
  EXPECT_DOUBLE_EQ(without->mrr, 1.0 / 6);
  // Top-3 with exclusion: 3, 4, 5; without: 0, 1, 2.
  EXPECT_DOUBLE_EQ(with->coverage[0], 3.0 / 20);
  EXPECT_DOUBLE_EQ(without->coverage[0], 3.0 / 20);
}

TEST(RankingTest, TiesPessimisticVersusAverage) {
  RankingTask task;
  task.num_items = 10;
  task.Add(0, 3);
  // Items 0, 1 score 2; items 2..6 (incl. target 3) score 1; the rest 0.
  auto fn = [](uint32_t, std::span<float> s) {
    for (size_t i = 0; i < s.size(); ++i) s[i] = i < 2 ? 2.f : i < 7 ? 1.f : 0.f;
  };
  auto pess = EvaluateFullRanking(task, fn, {.ks = {3}, .coverage_ks = {}, .keep_ranks = true});
  auto avg = EvaluateFullRanking(task, fn, {.ks = {3}, .coverage_ks = {}, .ties = TieRule::kAverage});
  ASSERT_TRUE(pess.ok() && avg.ok());
  EXPECT_EQ(pess->greater[0], 2u);
  EXPECT_EQ(pess->tied[0], 4u);
  EXPECT_DOUBLE_EQ(pess->hr[0], 0.0);  // pessimistic rank 6
  EXPECT_DOUBLE_EQ(pess->mrr, 1.0 / 7);
  EXPECT_DOUBLE_EQ(avg->hr[0], 1.0 / 5);  // positions 2..6, one of them < 3
  EXPECT_DOUBLE_EQ(avg->ndcg[0], (1 / std::log2(4.0)) / 5);
  EXPECT_DOUBLE_EQ(avg->mrr, (1.0 / 3 + 1.0 / 4 + 1.0 / 5 + 1.0 / 6 + 1.0 / 7) / 5);
  // A constant model never scores a hit under the pessimistic rule.
  auto constant = EvaluateFullRanking(task, [](uint32_t, std::span<float> s) { std::fill(s.begin(), s.end(), 1.f); },
                                      {.ks = {10}, .coverage_ks = {}});
  ASSERT_TRUE(constant.ok());
  EXPECT_DOUBLE_EQ(constant->hr[0], 1.0);  // K = num_items: rank 9 < 10
  auto constant5 = EvaluateFullRanking(task, [](uint32_t, std::span<float> s) { std::fill(s.begin(), s.end(), 1.f); },
                                       {.ks = {5}, .coverage_ks = {}});
  EXPECT_DOUBLE_EQ(constant5->hr[0], 0.0);
}

TEST(RankingTest, MatchesSerialBruteForceWithManyThreads) {
  std::mt19937_64 rng(3);
  const uint32_t n_items = 300, n_users = 500;
  RankingTask task;
  task.num_items = n_items;
  std::vector<std::vector<uint32_t>> seen(n_users);
  for (uint32_t u = 0; u < n_users; ++u) {
    for (int k = 0; k < 10; ++k) seen[u].push_back(static_cast<uint32_t>(rng() % n_items));
    task.Add(u, static_cast<uint32_t>(rng() % n_items), seen[u]);
  }
  // Deterministic pseudo-random scores with ties (20 levels).
  auto fn = [](uint32_t u, std::span<float> s) {
    for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<float>((u * 2654435761u + i * 40503u) % 20);
  };
  std::vector<float> s(n_items);
  double hr10 = 0, ndcg10 = 0, mrr = 0;
  for (uint32_t u = 0; u < n_users; ++u) {
    fn(u, s);
    uint32_t t = task.targets[u];
    uint64_t rank = 0;
    for (uint32_t j = 0; j < n_items; ++j) {
      if (j == t) continue;
      if (std::find(seen[u].begin(), seen[u].end(), j) != seen[u].end()) continue;
      rank += s[j] >= s[t];
    }
    hr10 += rank < 10;
    ndcg10 += rank < 10 ? 1 / std::log2(rank + 2.0) : 0;
    mrr += 1.0 / (rank + 1);
  }
  for (size_t threads : {size_t{1}, size_t{4}}) {
    auto r = EvaluateFullRanking(task, fn, {.ks = {10}, .threads = threads});
    ASSERT_TRUE(r.ok());
    EXPECT_NEAR(r->hr[0], hr10 / n_users, 1e-12) << threads;
    EXPECT_NEAR(r->ndcg[0], ndcg10 / n_users, 1e-12);
    EXPECT_NEAR(r->mrr, mrr / n_users, 1e-12);
    EXPECT_GT(r->coverage[0], 0.0);
    EXPECT_LE(r->coverage[0], 1.0);
  }
}

TEST(RankingTest, Errors) {
  RankingTask empty;
  empty.num_items = 5;
  EXPECT_EQ(EvaluateFullRanking(empty, Descending).status().code(), StatusCode::kInvalidArgument);
  RankingTask bad_target;
  bad_target.num_items = 5;
  bad_target.Add(0, 5);
  EXPECT_EQ(EvaluateFullRanking(bad_target, Descending).status().code(), StatusCode::kInvalidArgument);
  RankingTask ok;
  ok.num_items = 5;
  ok.Add(0, 1);
  auto nan = EvaluateFullRanking(ok, [](uint32_t, std::span<float> s) { s[1] = std::nanf(""); });
  ASSERT_FALSE(nan.ok());
  EXPECT_NE(nan.status().message().find("NaN"), std::string::npos);
  EXPECT_FALSE(EvaluateFullRanking(ok, Descending, {.ks = {0}}).ok());
}

}  // namespace
}  // namespace adrec::eval

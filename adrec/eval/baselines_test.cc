#include "adrec/eval/baselines.h"

#include "adrec/data/synthetic.h"
#include "adrec/data/testing.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace adrec::eval {
namespace {

using data::Action;
using data::Event;

Dataset Build(const std::vector<Event>& events, int users, int items, std::vector<std::string> scenes = {"default"}) {
  return data::testing::BuildDataset(events, users, items, scenes);
}

Split AllTrain(const Dataset& ds) {
  Split s;
  s.method = "all-train";
  s.positive_mask = data::DefaultPositiveMask(ds);
  s.part.assign(ds.num_events(), 0);
  return s;
}

// Clustered clicks: 10 clusters of 20 items; each user clicks 8 items of one cluster in a
// random order. Item-kNN should find the cluster; popularity cannot.
Dataset ClusteredDataset(int users, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Event> ev;
  for (int u = 0; u < users; ++u) {
    uint32_t cluster = static_cast<uint32_t>(rng() % 10);
    for (int k = 0; k < 8; ++k) {
      uint32_t item = cluster * 20 + static_cast<uint32_t>(rng() % 20);
      ev.push_back({.user = static_cast<uint32_t>(u), .item = item, .timestamp = k, .action = Action::kClick});
    }
  }
  return Build(ev, users, 200);
}

TEST(BaselinesTest, FactoryKnowsItsNames) {
  for (const char* n : {"random", "pop", "pop_scene", "itemknn"}) {
    auto m = MakeBaseline(n);
    ASSERT_TRUE(m.ok()) << n;
    EXPECT_EQ((*m)->name(), n);
  }
  auto bad = MakeBaseline("bpr");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("itemknn"), std::string::npos);
  EXPECT_NE(bad.status().message().find("pop_scene"), std::string::npos);
}

TEST(BaselinesTest, PopularityAndScenePopularityScores) {
  // Scene 0 (feed): item 0 clicked 3x, item 1 once. Scene 1 (search): item 2 clicked 2x.
  std::vector<Event> ev = {
      {.user = 0, .item = 0, .timestamp = 1, .scene = 0, .action = Action::kClick},
      {.user = 0, .item = 0, .timestamp = 2, .scene = 0, .action = Action::kClick},
      {.user = 1, .item = 0, .timestamp = 1, .scene = 0, .action = Action::kClick},
      {.user = 1, .item = 1, .timestamp = 2, .scene = 0, .action = Action::kClick},
      {.user = 2, .item = 2, .timestamp = 1, .scene = 1, .action = Action::kClick},
      {.user = 2, .item = 2, .timestamp = 2, .scene = 1, .action = Action::kClick},
      {.user = 2, .item = 1, .timestamp = 3, .scene = 1, .action = Action::kImpression},  // not positive
  };
  Dataset ds = Build(ev, 3, 4, {"feed", "search"});
  Split split = AllTrain(ds);
  auto pop = *MakeBaseline("pop");
  ASSERT_TRUE(pop->Fit(ds, split).ok());
  std::vector<float> s(4);
  pop->Score(0, {}, s);
  EXPECT_EQ(s, (std::vector<float>{3, 1, 2, 0}));
  auto ps = *MakeBaseline("pop_scene");
  ASSERT_TRUE(ps->Fit(ds, split).ok());
  ps->Score(2, {}, s);  // user 2 lives in search: item 2 first
  EXPECT_GT(s[2], s[0]);
  EXPECT_GT(s[0], s[3]);  // feed-popular item 0 still beats never-clicked item 3 (tie-break)
  ps->Score(0, {}, s);    // user 0 lives in feed
  EXPECT_GT(s[0], s[1]);
  EXPECT_GT(s[1], s[2]);
  Split wrong = split;
  wrong.part.pop_back();
  EXPECT_EQ(pop->Fit(ds, wrong).code(), StatusCode::kFailedPrecondition);
}

TEST(BaselinesTest, ItemKnnCosineSimilarity) {
  // Users 0,1 clicked {0, 1}; user 2 clicked {0, 2}; user 3 clicked {3}.
  std::vector<Event> ev = {
      {.user = 0, .item = 0, .timestamp = 1, .action = Action::kClick}, {.user = 0, .item = 1, .timestamp = 2, .action = Action::kClick},
      {.user = 1, .item = 0, .timestamp = 1, .action = Action::kClick}, {.user = 1, .item = 1, .timestamp = 2, .action = Action::kClick},
      {.user = 2, .item = 0, .timestamp = 1, .action = Action::kClick}, {.user = 2, .item = 2, .timestamp = 2, .action = Action::kClick},
      {.user = 3, .item = 3, .timestamp = 1, .action = Action::kClick},
  };
  Dataset ds = Build(ev, 4, 4);
  auto knn = *MakeBaseline("itemknn", {.itemknn = {.neighbours = 1, .popularity_backfill = false}});
  ASSERT_TRUE(knn->Fit(ds, AllTrain(ds)).ok());
  std::vector<float> s(4);
  std::vector<uint32_t> hist = {1};
  knn->Score(9, hist, s);
  // sim(1, 0) = 2 / sqrt(2 * 3).
  EXPECT_NEAR(s[0], 2 / std::sqrt(6.0), 1e-6);
  EXPECT_EQ(s[2], 0.f);
  EXPECT_EQ(s[3], 0.f);
  hist = {0};
  knn->Score(9, hist, s);
  // Item 0's single kept neighbour is item 1 (sim 2/sqrt(6) > 1/sqrt(3)).
  EXPECT_NEAR(s[1], 2 / std::sqrt(6.0), 1e-6);
  EXPECT_EQ(s[2], 0.f);
  auto knn_all = *MakeBaseline("itemknn");
  ASSERT_TRUE(knn_all->Fit(ds, AllTrain(ds)).ok());
  hist = {1, 2};
  knn_all->Score(9, hist, s);
  EXPECT_NEAR(s[0], 2 / std::sqrt(6.0) + 1 / std::sqrt(3.0), 1e-5);
  // Backfill: item 3 has no neighbour in common with the history, but it still outranks an
  // item nobody clicked, and never a scored item.
  hist = {3};
  knn_all->Score(9, hist, s);
  EXPECT_GT(s[0], s[3]) << "item 0 (3 clickers) above item 3 (1 clicker) when both are unscored";
  EXPECT_GT(s[3], 0.f);
  EXPECT_LT(s[0], 1e-5f);
  hist = {2};
  knn_all->Score(9, hist, s);
  EXPECT_GT(s[0], s[1]) << "scored neighbour 0 above unscored but popular item 1";
}

TEST(BaselinesTest, ImpressionClickLabelRule) {
  // User 0: imp A(t1), imp A(t2), click A(t3) -> only the second A impression is 1.
  //         imp B(t4), click B(t100) -> 1 without window, 0 with a 50 s window.
  //         imp C(t5), click A(t6) -> C stays 0; the stray A click labels nothing.
  // User 1: click D(t1) then imp D(t2) -> 0 (the click came before).
  std::vector<Event> ev = {
      {.user = 0, .item = 0, .timestamp = 1, .action = Action::kImpression},
      {.user = 0, .item = 0, .timestamp = 2, .action = Action::kImpression},
      {.user = 0, .item = 0, .timestamp = 3, .action = Action::kClick},
      {.user = 0, .item = 1, .timestamp = 4, .action = Action::kImpression},
      {.user = 0, .item = 2, .timestamp = 5, .action = Action::kImpression},
      {.user = 0, .item = 0, .timestamp = 6, .action = Action::kClick},
      {.user = 0, .item = 1, .timestamp = 100, .action = Action::kClick},
      {.user = 1, .item = 3, .timestamp = 1, .action = Action::kClick},
      {.user = 1, .item = 3, .timestamp = 2, .action = Action::kImpression},
  };
  Dataset ds = Build(ev, 2, 4);
  auto l = ImpressionClickLabels(ds);
  EXPECT_EQ(l, (std::vector<int8_t>{0, 1, -1, 1, 0, -1, -1, -1, 0}));
  auto w = ImpressionClickLabels(ds, {.window_s = 50});
  EXPECT_EQ(w, (std::vector<int8_t>{0, 1, -1, 0, 0, -1, -1, -1, 0}));
  EXPECT_TRUE(HasImpressionsWithClicks(ds));
  EXPECT_NE(DescribeClickLabelRule({.window_s = 50}).find("50 s"), std::string::npos);
}

TEST(BaselinesTest, EvaluateBaselineLeaveOneOutKeysAndQuality) {
  Dataset ds = ClusteredDataset(600, 1);
  auto split = data::MakeSplit(ds, {.method = "loo"});
  ASSERT_TRUE(split.ok());
  nlohmann::json knn, rnd, pop;
  for (auto [name, out] : {std::pair{"itemknn", &knn}, std::pair{"random", &rnd}, std::pair{"pop", &pop}}) {
    auto r = EvaluateBaseline(ds, *split, name, {.threads = 2});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    *out = *r;
  }
  for (const char* key : {"hr@1", "hr@10", "hr@50", "hr@200", "ndcg@10", "ndcg@50", "ndcg@200", "mrr", "coverage@10",
                          "users_evaluated", "protocol", "method", "split", "num_items", "exclude_seen", "ties"}) {
    EXPECT_TRUE(knn.contains(key)) << key;
  }
  EXPECT_FALSE(knn.contains("ndcg@1"));
  EXPECT_FALSE(knn.contains("ctr"));  // clicks only: no impressions to label
  EXPECT_EQ(knn["users_evaluated"], 600);
  EXPECT_EQ(knn["split"], "loo");
  // A user's cluster has 20 items, some already seen: kNN puts the target in the top 10 often.
  EXPECT_GT(knn["hr@10"].get<double>(), 0.4);
  EXPECT_LT(rnd["hr@10"].get<double>(), 0.15);  // ~10/190 expected
  EXPECT_GT(knn["ndcg@10"].get<double>(), pop["ndcg@10"].get<double>());
  EXPECT_GT(rnd["coverage@10"].get<double>(), 0.9);   // random lists cover the catalog
  EXPECT_LT(pop["coverage@10"].get<double>(), 0.25);  // popularity lists barely differ
  for (const auto& j : {knn, rnd, pop}) {
    EXPECT_LE(j["hr@1"].get<double>(), j["hr@10"].get<double>());
    EXPECT_LE(j["hr@10"].get<double>(), j["hr@200"].get<double>());
    EXPECT_DOUBLE_EQ(j["hr@200"].get<double>(), 1.0);  // 200 items: every target is in the top 200
  }
  // Subsampling users.
  auto sub = EvaluateBaseline(ds, *split, "pop", {.max_users = 100});
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ((*sub)["users_evaluated"], 100);
  EXPECT_EQ(EvaluateBaseline(ds, *split, "nope").status().code(), StatusCode::kInvalidArgument);
}

TEST(BaselinesTest, ExcludeSeenChangesPopularityResults) {
  // Item 0 is the most popular and every user's first click; targets are item 1.
  std::vector<Event> ev;
  for (uint32_t u = 0; u < 20; ++u) {
    ev.push_back({.user = u, .item = 0, .timestamp = 1, .action = Action::kClick});
    ev.push_back({.user = u, .item = 2 + u % 3, .timestamp = 2, .action = Action::kClick});
    ev.push_back({.user = u, .item = 1, .timestamp = 3, .action = Action::kClick});
  }
  ev.push_back({.user = 0, .item = 1, .timestamp = 0, .action = Action::kClick});  // make item 1 second in train
  ev.push_back({.user = 1, .item = 1, .timestamp = 0, .action = Action::kClick});
  Dataset ds = Build(ev, 20, 6);
  auto split = data::MakeSplit(ds, {.method = "loo"});
  ASSERT_TRUE(split.ok());
  auto with = EvaluateBaseline(ds, *split, "pop", {.exclude_seen = true});
  auto without = EvaluateBaseline(ds, *split, "pop", {.exclude_seen = false});
  ASSERT_TRUE(with.ok() && without.ok());
  // Item 0 (seen by everyone) outranks item 1 unless excluded.
  EXPECT_DOUBLE_EQ((*with)["hr@1"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ((*without)["hr@1"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ((*without)["mrr"].get<double>(), 0.5);
}

TEST(BaselinesTest, EvaluateBaselineCtrSection) {
  // 100 items with true CTR rising with the item ID; impressions followed by clicks.
  std::mt19937_64 rng(4);
  std::vector<Event> ev;
  for (uint32_t u = 0; u < 800; ++u) {
    for (int k = 0; k < 25; ++k) {
      uint32_t item = static_cast<uint32_t>(rng() % 100);
      int64_t t = k * 10;
      ev.push_back({.user = u, .item = item, .timestamp = t, .action = Action::kImpression});
      if (static_cast<double>(rng() % 10000) / 10000.0 < 0.02 + 0.4 * item / 100.0) {
        ev.push_back({.user = u, .item = item, .timestamp = t + 1, .action = Action::kClick});
      }
    }
  }
  Dataset ds = Build(ev, 800, 100);
  auto split = data::MakeSplit(ds, {.method = "random_event", .seed = 3});
  ASSERT_TRUE(split.ok());
  auto r = EvaluateBaseline(ds, *split, "pop", {.threads = 2});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->contains("ctr"));
  const auto& c = (*r)["ctr"];
  ASSERT_FALSE(c.contains("skipped")) << c.dump();
  for (const char* key : {"auc", "gauc", "gauc_users", "logloss", "ne", "calibration", "impressions", "clicks",
                          "label_rule", "predictor"}) {
    EXPECT_TRUE(c.contains(key)) << key;
  }
  EXPECT_GT(c["auc"].get<double>(), 0.65);
  EXPECT_LT(c["ne"].get<double>(), 1.0);  // better than the base rate
  EXPECT_NEAR(c["calibration"].get<double>(), 1.0, 0.15);
  EXPECT_GT(c["impressions"].get<int64_t>(), 1000);
  // Leave-one-out holds out clicks only: the CTR section explains why it is empty.
  auto loo = data::MakeSplit(ds, {.method = "loo"});
  ASSERT_TRUE(loo.ok());
  auto r2 = EvaluateBaseline(ds, *loo, "pop");
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_TRUE((*r2)["ctr"].contains("skipped"));
  EXPECT_GT((*r2)["users_evaluated"].get<int64_t>(), 0);
}

}  // namespace
}  // namespace adrec::eval

namespace adrec::eval {
namespace {

// On the synthetic world the generator's truth bounds what any predictor reaches: pop-CTR is
// well above chance and below the Bayes-optimal AUC on the same test impressions.
TEST(BaselinesTest, PopCtrSitsBetweenChanceAndBayesOnTheSyntheticWorld) {
  data::SyntheticOptions so;
  so.users = 1500;
  so.ads = 300;
  so.advertisers = 30;
  so.days = 7;
  so.show_progress = false;
  auto ds = data::GenerateSyntheticWorld(so);
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  auto split = data::MakeSplit(*ds, {.method = "temporal"});
  ASSERT_TRUE(split.ok()) << split.status().ToString();
  auto r = EvaluateBaseline(*ds, *split, "pop");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto& c = (*r)["ctr"];
  ASSERT_TRUE(c.contains("bayes_auc")) << c.dump();
  const double auc = c["auc"].get<double>(), bayes = c["bayes_auc"].get<double>();
  EXPECT_GT(auc, 0.55);
  EXPECT_LT(auc, bayes);
  EXPECT_GT(bayes, 0.7);
  EXPECT_LT(c["bayes_logloss"].get<double>(), c["logloss"].get<double>());
}

}  // namespace
}  // namespace adrec::eval

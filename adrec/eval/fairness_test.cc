#include "adrec/eval/fairness.h"

#include <gtest/gtest.h>

#include <cmath>

namespace adrec::eval {
namespace {

TEST(Fairness, ExposureIsPositionWeightedAndComparedWithRelevance) {
  // Advertisers 0, 1 (group "a") and 2 (group "b"); relevance 1, 1, 2: half the relevance each.
  const AdvertiserGrouping g{.name = "test", .names = {"a", "b"}, .group_of = {0, 0, 1}};
  // Two answers of two positions: weights 1 and 1/log2(3).
  const double w1 = 1.0 / std::log2(3.0);
  StatusOr<FairnessReport> r = ExposureFairness({{0, 2}, {1, 0}}, g, {1.0, 1.0, 2.0});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->groups.size(), 2u);
  const double total = 2 * (1 + w1);
  EXPECT_DOUBLE_EQ(r->exposure_total, total);
  EXPECT_DOUBLE_EQ(r->groups[0].exposure_share, (1 + 1 + w1) / total);
  EXPECT_DOUBLE_EQ(r->groups[1].exposure_share, w1 / total);
  EXPECT_DOUBLE_EQ(r->groups[0].relevance_share, 0.5);
  EXPECT_DOUBLE_EQ(r->groups[0].ratio, r->groups[0].exposure_share / 0.5);
  EXPECT_GT(r->groups[0].ratio, 1.0);  // over-exposed
  EXPECT_LT(r->groups[1].ratio, 1.0);
  EXPECT_EQ(r->groups[0].advertisers, 2u);
  EXPECT_DOUBLE_EQ(r->groups[0].exposure_share + r->groups[1].exposure_share, 1.0);
  // Bad input names what is wrong.
  EXPECT_NE(ExposureFairness({{0, 7}}, g, {1, 1, 2}).status().message().find("advertiser 7"), std::string::npos);
  EXPECT_FALSE(ExposureFairness({{0}}, g, {1, 1}).ok());
  EXPECT_FALSE(ExposureFairness({{0}}, g, {1, -1, 2}).ok());
}

TEST(Fairness, GroupsSplitAtTheMedianAndTheLowestQuarter) {
  const AdvertiserGrouping size = GroupBySize({1, 5, 3, 2});  // median (upper) 3
  EXPECT_EQ(size.group_of, (std::vector<int>{1, 0, 0, 1}));
  const AdvertiserGrouping history = GroupByHistory({100, 5, 40, 7, 900, 60, 3, 80});  // quarter mark: 7
  EXPECT_EQ(history.group_of, (std::vector<int>{0, 1, 0, 1, 0, 0, 1, 0}));
}

TEST(Fairness, AdvertiserStatsReadTheLogAndTheTruth) {
  data::DatasetBuilder b({.name = "t", .source_format = "test", .provenance = "", .with_truth = true});
  data::Table& items = b.item_table();
  items.Add(std::string(data::cols::kAdvertiser), data::ColumnType::kCategorical);
  const uint32_t i0 = b.ItemId("ad0"), i1 = b.ItemId("ad1"), i2 = b.ItemId("ad2");
  data::Column& adv = items.columns[0];
  for (const char* a : {"acme", "acme", "zeta"}) adv.PushCategorical(a);
  const uint32_t u = b.UserId("u");
  auto add = [&](uint32_t item, data::Action a, float truth) {
    ASSERT_TRUE(b.AddEvent({.user = u, .item = item, .timestamp = 1, .action = a, .truth = truth}).ok());
  };
  add(i0, data::Action::kImpression, 0.1f);
  add(i0, data::Action::kImpression, 0.3f);
  add(i1, data::Action::kImpression, 0.5f);
  add(i2, data::Action::kImpression, 0.2f);
  add(i2, data::Action::kClick, 0.f);
  data::Dataset ds = *std::move(b).Finish();
  StatusOr<AdvertiserStats> s = AdvertiserStatsOf(ds);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->names, (std::vector<std::string>{"acme", "zeta"}));
  EXPECT_EQ(s->codes, (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(s->ads, (std::vector<uint32_t>{2, 1}));
  EXPECT_EQ(s->impressions, (std::vector<uint64_t>{3, 1}));
  EXPECT_TRUE(s->from_truth);
  EXPECT_NEAR(s->relevance[0], 0.2 + 0.5, 1e-6);  // mean true CTR of ad0, plus ad1's
  EXPECT_NEAR(s->relevance[1], 0.2, 1e-6);
  EXPECT_EQ(s->advertiser_of_item, (std::vector<uint32_t>{0, 0, 1}));
}

}  // namespace
}  // namespace adrec::eval

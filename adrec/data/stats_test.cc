#include "adrec/data/stats.h"

#include <gtest/gtest.h>

namespace adrec::data {
namespace {

Dataset SmallDataset() {
  DatasetBuilder b({.name = "t", .source_format = "test", .provenance = "stats_test"});
  uint8_t feed = b.SceneId("feed"), search = b.SceneId("search");
  uint32_t u0 = b.UserId("alice"), u1 = b.UserId("bob");
  uint32_t i0 = b.ItemId("ad0"), i1 = b.ItemId("ad1");
  auto add = [&](uint32_t u, uint32_t i, int64_t t, uint8_t s, Action a) {
    ASSERT_TRUE(b.AddEvent({.user = u, .item = i, .timestamp = t, .scene = s, .action = a}).ok());
  };
  add(u0, i0, 100, feed, Action::kImpression);
  add(u0, i0, 101, feed, Action::kClick);
  add(u0, i1, 200, feed, Action::kImpression);
  add(u0, i1, 300, feed, Action::kImpression);
  add(u1, i1, 86500, search, Action::kImpression);
  auto& title = b.item_table().Add(std::string(cols::kTitle), ColumnType::kString);
  title.PushString("王者荣耀");
  auto ds = std::move(b).Finish();
  EXPECT_TRUE(ds.ok()) << ds.status().ToString();
  return std::move(ds).value();
}

TEST(StatsTest, CountsCtrAndSparsity) {
  Dataset ds = SmallDataset();
  nlohmann::ordered_json s = ComputeStats(ds);
  EXPECT_EQ(s["users"], 2);
  EXPECT_EQ(s["items"], 2);
  EXPECT_EQ(s["events"], 5);
  EXPECT_EQ(s["events_per_action"]["impression"], 4);
  EXPECT_EQ(s["events_per_action"]["click"], 1);
  EXPECT_EQ(s["events_per_scene"]["feed"], 4);
  EXPECT_DOUBLE_EQ(s["ctr_per_scene"]["feed"].get<double>(), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(s["ctr_per_scene"]["search"].get<double>(), 0.0);
  // 3 distinct pairs of 4 possible.
  EXPECT_DOUBLE_EQ(s["sparsity"].get<double>(), 0.25);
  EXPECT_EQ(s["sequence_length"]["max"], 4);
  EXPECT_EQ(s["sequence_length"]["min"], 1);
  EXPECT_EQ(s["time_range"]["min"], 100);
  EXPECT_EQ(s["time_range"]["min_utc"], "1970-01-01T00:01:40Z");
  EXPECT_EQ(s["items_with_text"], 1);
}

}  // namespace
}  // namespace adrec::data

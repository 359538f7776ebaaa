#include "adrec/data/samples.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <numeric>
#include <set>

#include "adrec/core/config.h"
#include "adrec/data/features_testing.h"
#include "adrec/data/synthetic.h"

// Options structs are filled with designated initializers; unnamed fields keep their defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace adrec::data {
namespace {

using ::testing::HasSubstr;
using namespace feature_testing;

TEST(FeatureSamplesTest, LabelsAndGivenMasksOnTheTinyDataset) {
  Dataset ds = TinyDataset();
  FeatureSpec spec = BoundTinySpec(ds);
  auto samples = MakeSamples(ds, spec, nullptr, SplitPart::kTrain);
  ASSERT_TRUE(samples.ok()) << samples.status().ToString();
  // Impressions in dataset order.
  const std::vector<uint64_t> want_events = {Ev(0), Ev(1), Ev(4), Ev(5), Ev(8), Ev(10), Ev(12), Ev(13), Ev(14)};
  ASSERT_EQ(samples->events, want_events);
  // Per sample: click, download, conversion, install_after_download, late (value >= 10), is_click.
  const std::vector<std::vector<float>> want_labels = {
      {1, 1, 0, 0, 0, 0},  // u0 imp i0: click, then download, before the next imp of i0
      {0, 0, 0, 0, 0, 0},  // u0 imp i1
      {0, 0, 0, 0, 1, 0},  // u0 imp i0 again: the earlier click is not after it; value 180 ≥ 10
      {1, 0, 1, 0, 1, 0},  // u0 imp i2: click, conversion
      {1, 0, 0, 0, 0, 0},  // u1 imp i1: click before the next imp of i1
      {1, 0, 0, 0, 0, 0},  // u1 imp i1 again: its own click
      {0, 0, 0, 0, 1, 0},  // u1 imp i0
      {0, 0, 0, 0, 0, 0},  // u2 first imp of i3: its window ends at the second impression
      {1, 0, 0, 0, 0, 0},  // u2 second imp of i3: both clicks follow it
  };
  const std::vector<std::vector<float>> want_mask = {
      {1, 1, 1, 1, 1, 1},  // download and conversion defined after a click; install after a download
      {1, 0, 0, 0, 1, 1},
      {1, 0, 0, 0, 1, 1},
      {1, 1, 1, 0, 1, 1},
      {1, 1, 1, 0, 1, 1},
      {1, 1, 1, 0, 1, 1},
      {1, 0, 0, 0, 1, 1},
      {1, 0, 0, 0, 1, 1},
      {1, 1, 1, 0, 1, 1},
  };
  const size_t T = spec.targets.size();
  ASSERT_EQ(samples->labels.size(), want_events.size() * T);
  for (size_t s = 0; s < want_events.size(); ++s) {
    for (size_t t = 0; t < T; ++t) {
      EXPECT_EQ(samples->labels[s * T + t], want_labels[s][t]) << "sample " << s << " target " << spec.targets[t].name;
      EXPECT_EQ(samples->mask[s * T + t], want_mask[s][t]) << "sample " << s << " target " << spec.targets[t].name;
    }
  }
}

TEST(FeatureSamplesTest, ActionRuleAndClickSamplesAndSplitParts) {
  Dataset ds = TinyDataset();
  // Criteo style: every event is a sample, the label is its own action.
  FeatureSpec spec = MustParse(R"(
[features]
samples = ["impression", "click"]
[[features.fields]]
name = "item"
kind = "categorical"
source = "item"
[[features.targets]]
name = "click"
rule = "action"
action = "click"
[[features.targets]]
name = "click_follows"
action = "click"
)");
  ASSERT_TRUE(spec.Bind(ds).ok());
  // Samples of the valid part only: events 2, 3 and 9.
  Split split;
  split.method = "manual";
  split.part.assign(ds.num_events(), static_cast<uint8_t>(SplitPart::kTrain));
  for (size_t e : {2, 3, 9, 10}) split.part[e] = static_cast<uint8_t>(SplitPart::kValid);
  auto valid = MakeSamples(ds, spec, &split, SplitPart::kValid);
  ASSERT_TRUE(valid.ok()) << valid.status().ToString();
  // Event 3 is a download: not a sample action.
  EXPECT_EQ(valid->events, (std::vector<uint64_t>{2, 9, 10}));
  EXPECT_EQ(valid->labels, (std::vector<float>{1, 0,    // click i0: no later click of i0
                                               1, 0,    // u1 click at 60: next sample of i1 is the imp at 70
                                               0, 1})); // u1 imp i1 at 70: the click at 80 follows
  // A click sample of the train part bounds the window of earlier samples in any part.
  auto train = MakeSamples(ds, spec, &split, SplitPart::kTrain);
  ASSERT_TRUE(train.ok());
  EXPECT_EQ(train->size() + valid->size(), 15u);  // 9 impressions + 6 clicks
  // The split must belong to the dataset.
  Split wrong = split;
  wrong.part.pop_back();
  EXPECT_FALSE(MakeSamples(ds, spec, &wrong, SplitPart::kTrain).ok());
}

TEST(FeatureSamplesTest, ClickFollowsMatchesNextStageLabelsOnTheSyntheticWorld) {
  auto world = GenerateSyntheticWorld(SmallWorld());
  ASSERT_TRUE(world.ok()) << world.status().ToString();
  const Dataset& ds = *world;
  const std::vector<uint8_t> next = NextStageLabels(ds);
  FeatureSpec spec = MustParse(R"(
[features]
samples = ["impression"]
[[features.fields]]
name = "item"
kind = "categorical"
source = "item"
[[features.targets]]
name = "click"
action = "click"
)");
  ASSERT_TRUE(spec.Bind(ds).ok());
  auto samples = MakeSamples(ds, spec, nullptr, SplitPart::kTrain);
  ASSERT_TRUE(samples.ok());
  ASSERT_GT(samples->size(), 1000u);
  size_t positives = 0, mismatches = 0;
  for (size_t s = 0; s < samples->size(); ++s) {
    const uint64_t e = samples->events[s];
    ASSERT_EQ(ds.events.action[e], static_cast<uint8_t>(Action::kImpression));
    positives += samples->labels[s] == 1.f;
    mismatches += samples->labels[s] != static_cast<float>(next[e]);
  }
  EXPECT_GT(positives, 10u);
  EXPECT_EQ(mismatches, 0u) << "of " << samples->size() << " impressions";

  // Clicks → downloads of app ads: the same label as NextStageLabels' click → download.
  FeatureSpec dl = MustParse(R"(
[features]
samples = ["click"]
[[features.fields]]
name = "item"
kind = "categorical"
source = "item"
[[features.targets]]
name = "download"
action = "download"
)");
  ASSERT_TRUE(dl.Bind(ds).ok());
  auto clicks = MakeSamples(ds, dl, nullptr, SplitPart::kTrain);
  ASSERT_TRUE(clicks.ok());
  const Column* objective = ds.item_table.Find(synthetic_cols::kObjective);
  ASSERT_NE(objective, nullptr);
  size_t app_clicks = 0;
  for (size_t s = 0; s < clicks->size(); ++s) {
    const uint64_t e = clicks->events[s];
    if (objective->vocab->Name(objective->u32[ds.events.item[e]]) != "app") continue;
    ++app_clicks;
    EXPECT_EQ(clicks->labels[s], static_cast<float>(next[e])) << "click event " << e;
  }
  EXPECT_GT(app_clicks, 5u);
}

TEST(FeatureSamplesTest, FollowsCreditsOnlyTheLastImpressionUnlikeNextStageLabels) {
  // The designed difference: NextStageLabels gives each click to the nearest earlier impression
  // not yet credited, so two impressions then two clicks credit both; "follows" reads the log as
  // serving sees it (a click belongs to the latest impression of the ad), so only the later one.
  Dataset ds = TinyDataset();
  const std::vector<uint8_t> next = NextStageLabels(ds);
  EXPECT_EQ(next[Ev(13)], 1);
  EXPECT_EQ(next[Ev(14)], 1);
  FeatureSpec spec = BoundTinySpec(ds);
  auto samples = MakeSamples(ds, spec, nullptr, SplitPart::kTrain);
  ASSERT_TRUE(samples.ok());
  const size_t T = spec.targets.size();
  EXPECT_EQ(samples->labels[7 * T], 0.f);  // Ev(13)
  EXPECT_EQ(samples->labels[8 * T], 1.f);  // Ev(14)
}

}  // namespace
}  // namespace adrec::data

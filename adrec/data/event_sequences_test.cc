#include "adrec/data/event_sequences.h"

#include <gtest/gtest.h>

#include "adrec/core/config.h"
#include "adrec/data/testing.h"

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace adrec::data {
namespace {

// One user with 23 impressions (a click after every third), one with 3: windows of 8.
struct Fixture {
  Dataset ds;
  FeatureSpec spec;
  Split split;
  SampleSet samples;
};

Fixture Make() {
  std::vector<Event> ev;
  for (int k = 0; k < 23; ++k) {
    ev.push_back({.user = 0, .item = static_cast<uint32_t>(k % 5), .timestamp = 100 + 10 * k, .action = Action::kImpression});
    if (k % 3 == 0) ev.push_back({.user = 0, .item = static_cast<uint32_t>(k % 5), .timestamp = 105 + 10 * k, .action = Action::kClick});
  }
  for (int k = 0; k < 3; ++k) ev.push_back({.user = 1, .item = 1, .timestamp = 100 + k, .action = Action::kImpression});
  Fixture f;
  f.ds = testing::BuildDataset(ev, 2, 5);
  auto cfg = Config::Parse(
      "[features]\nsamples = [\"impression\"]\n[[features.fields]]\nname = \"item\"\nsource = \"item\"\ndim = 4\n"
      "[[features.targets]]\nname = \"click\"\nrule = \"follows\"\naction = \"click\"\n");
  EXPECT_TRUE(cfg.ok());
  auto spec = FeatureSpec::FromConfig(*cfg);
  EXPECT_TRUE(spec.ok()) << spec.status().ToString();
  f.spec = *spec;
  EXPECT_TRUE(f.spec.Bind(f.ds).ok());
  f.split.method = "test";
  f.split.part.assign(f.ds.num_events(), static_cast<uint8_t>(SplitPart::kTrain));
  auto s = MakeSamples(f.ds, f.spec, nullptr, SplitPart::kTrain);
  EXPECT_TRUE(s.ok());
  f.samples = *s;
  return f;
}

TEST(EventWindows, EverySampleIsPredictedOnceWithHalfAWindowOfContext) {
  Fixture f = Make();
  ASSERT_EQ(f.samples.size(), 26u);
  auto windows = MakeEventWindows(f.ds, SampleIndexOfEvents(f.ds, f.samples), f.split, SplitPart::kTrain, 8);
  std::vector<int> predicted(f.ds.num_events(), 0);
  for (const EventWindow& w : windows) {
    EXPECT_LE(w.end - w.begin, 8u);
    const auto [b, e] = f.ds.UserRange(w.user);
    EXPECT_TRUE(w.predict_from == w.begin ? w.begin == b : w.predict_from - w.begin == 4);
    EXPECT_LE(w.end, e);
    for (uint64_t x = w.predict_from; x < w.end; ++x) ++predicted[x];
  }
  for (size_t e = 0; e < f.ds.num_events(); ++e) EXPECT_EQ(predicted[e], 1) << "event " << e;
}

TEST(EventWindows, BatchesCarryTokensAndLabelsOfPredictedImpressions) {
  Fixture f = Make();
  auto windows = MakeEventWindows(f.ds, SampleIndexOfEvents(f.ds, f.samples), f.split, SplitPart::kTrain, 64);
  ASSERT_EQ(windows.size(), 2u);  // one per user
  EventBatch b;
  BuildEventBatch(f.ds, f.samples, SampleIndexOfEvents(f.ds, f.samples), f.split, SplitPart::kTrain, windows, &b);
  ASSERT_EQ(b.length, 31);  // user 0: 23 impressions + 8 clicks
  EXPECT_EQ(b.targets, 1);
  EXPECT_EQ(b.actions[0], static_cast<int64_t>(Action::kImpression) + 1);
  EXPECT_EQ(b.actions[1], static_cast<int64_t>(Action::kClick) + 1);  // the click after impression 0
  EXPECT_EQ(b.labels[0], 1.f);   // impression 0 was clicked
  EXPECT_EQ(b.mask[1], 0.f);     // a click is no sample
  EXPECT_EQ(b.labels[2], 0.f);   // impression 1 was not
  EXPECT_EQ(b.items[31 + 3], 0);  // user 1's row is padded after 3 events
  EXPECT_EQ(b.sample[31 + 3], -1);
  // Another part predicts nothing: no windows.
  EXPECT_TRUE(MakeEventWindows(f.ds, SampleIndexOfEvents(f.ds, f.samples), f.split, SplitPart::kTest, 64).empty());
}

}  // namespace
}  // namespace adrec::data

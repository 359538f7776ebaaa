#include "adrec/online/replay.h"

#include <gtest/gtest.h>

#include <array>
#include <string>

#include "adrec/data/synthetic.h"

namespace adrec::online {
namespace {

// Replaying the parts of a temporal split one after the other walks the dataset's events in
// time order with positions that continue from part to part.
TEST(ReplayLog, PartsOfATemporalSplitContinueOneLog) {
  auto ds = data::GenerateSyntheticWorld({.users = 60, .ads = 20, .advertisers = 4, .days = 3, .seed = 4, .show_progress = false});
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  data::SplitOptions temporal;
  temporal.method = "temporal";
  temporal.train_fraction = 0.5;
  temporal.valid_fraction = 0.25;
  auto split = data::MakeSplit(*ds, temporal);
  ASSERT_TRUE(split.ok()) << split.status().ToString();
  auto valid = ReplayLog(*ds, *split, data::SplitPart::kValid, "dataset:w");
  auto test = ReplayLog(*ds, *split, data::SplitPart::kTest, "dataset:w");
  ASSERT_TRUE(valid.ok() && test.ok());
  auto first = (*valid)->ReadLog(0, 1000000);
  ASSERT_TRUE(first.ok());
  ASSERT_FALSE(first->empty());
  const auto counts = split->Counts();
  EXPECT_EQ(first->size(), counts[static_cast<size_t>(data::SplitPart::kValid)]) << "from 0: the part's own events";
  EXPECT_EQ(first->front().position, counts[static_cast<size_t>(data::SplitPart::kTrain)] + 1);
  std::array<size_t, 2> slots{};  // impressions on top, below
  for (size_t i = 0; i < first->size(); ++i) {
    const serve::StoredEvent& e = (*first)[i].event;
    if (i > 0) {
      EXPECT_EQ((*first)[i].position, (*first)[i - 1].position + 1);
      EXPECT_LE((*first)[i - 1].event.ts, e.ts);
    }
    const uint64_t row = std::stoull(e.event_id.substr(e.event_id.find('#') + 1));
    EXPECT_EQ(e.slot, ds->events.position[row]) << "the list position the ranker's rows read";
    if (e.action == data::Action::kImpression) ++slots[e.slot > 0];
  }
  EXPECT_GT(slots[0], 0u);
  EXPECT_GT(slots[1], 0u);
  EXPECT_TRUE((*valid)->ReadLog(first->back().position, 10)->empty()) << "the valid replay ends with its part";
  auto next = (*test)->ReadLog(first->back().position, 1000000);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->size(), counts[static_cast<size_t>(data::SplitPart::kTest)]);
  EXPECT_EQ(next->front().position, first->back().position + 1) << "the next part goes on from the last position";
  EXPECT_EQ((*valid)->Append({}).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReplayLog(*ds, data::Split{}, data::SplitPart::kValid, "x").status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace adrec::online

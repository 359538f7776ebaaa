#include "adrec/data/sequences.h"

#include <gtest/gtest.h>

#include "adrec/data/testing.h"

// Options structs are filled with designated initializers; unnamed fields keep their defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace adrec::data {
namespace {

Dataset Build(const std::vector<Event>& events, int users, int items) {
  return testing::BuildDataset(events, users, items);
}

Event Click(uint32_t user, uint32_t item, int64_t t) { return {.user = user, .item = item, .timestamp = t, .action = Action::kClick}; }
Event Shown(uint32_t user, uint32_t item, int64_t t) { return {.user = user, .item = item, .timestamp = t, .action = Action::kImpression}; }

// User 0 clicks items 1..6 at t = 10..60 (impressions between); user 1 clicks 7 and 8 only (too
// few for leave-one-out: all train); user 2 is only shown ads (no positives: no row).
Dataset Fixture() {
  std::vector<Event> ev;
  for (uint32_t k = 1; k <= 6; ++k) {
    ev.push_back(Click(0, k, 10 * k));
    ev.push_back(Shown(0, 9, 10 * k + 5));
  }
  ev.push_back(Click(1, 7, 100));
  ev.push_back(Click(1, 8, 200));
  ev.push_back(Shown(2, 3, 50));
  return Build(ev, 3, 10);
}

UserSequences MustBuild(const Dataset& ds) {
  auto split = MakeSplit(ds, {.method = "loo", .positive_actions = {Action::kClick}});
  EXPECT_TRUE(split.ok()) << split.status().ToString();
  auto seqs = BuildUserSequences(ds, *split);
  EXPECT_TRUE(seqs.ok()) << seqs.status().ToString();
  return std::move(seqs).value();
}

TEST(UserSequencesTest, TrainPositivesInOrderAndHeldOutItems) {
  Dataset ds = Fixture();
  UserSequences s = MustBuild(ds);
  ASSERT_EQ(s.size(), 2u);  // user 2 has no positives
  EXPECT_EQ(s.users, (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(std::vector<uint32_t>(s.items.begin(), s.items.begin() + 4), (std::vector<uint32_t>{1, 2, 3, 4}));
  EXPECT_EQ(s.times[0], 10);
  EXPECT_EQ(s.valid_item[0], 5u);
  EXPECT_EQ(s.test_item[0], 6u);
  EXPECT_EQ(s.test_time[0], 60);
  EXPECT_EQ(s.length(1), 2u);
  EXPECT_EQ(s.valid_item[1], kNoItem);
  EXPECT_EQ(EvalRows(s, SplitPart::kTest), (std::vector<uint32_t>{0}));
  EXPECT_EQ(EvalRows(s, SplitPart::kValid), (std::vector<uint32_t>{0}));
}

TEST(UserSequencesTest, TrainBatchShiftsTargetsAndPadsRight) {
  UserSequences s = MustBuild(Fixture());
  SequenceBatch b;
  const std::vector<uint32_t> rows = {0, 1};
  BuildTrainBatch(s, rows, 10, &b);
  ASSERT_EQ(b.batch, 2);
  ASSERT_EQ(b.length, 3);  // user 0: 4 train items → 3 inputs
  // 1-based IDs: user 0 inputs 1,2,3 → +1 = 2,3,4, targets 3,4,5.
  EXPECT_EQ(std::vector<int64_t>(b.items.begin(), b.items.begin() + 3), (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(std::vector<int64_t>(b.targets.begin(), b.targets.begin() + 3), (std::vector<int64_t>{3, 4, 5}));
  EXPECT_EQ(std::vector<int64_t>(b.times.begin(), b.times.begin() + 3), (std::vector<int64_t>{10, 20, 30}));
  // User 1: input 7 (→ 8), target 8 (→ 9), then padding.
  EXPECT_EQ(std::vector<int64_t>(b.items.begin() + 3, b.items.end()), (std::vector<int64_t>{8, 0, 0}));
  EXPECT_EQ(std::vector<int64_t>(b.targets.begin() + 3, b.targets.end()), (std::vector<int64_t>{9, 0, 0}));
  EXPECT_EQ(b.truncated, 0u);

  // max_len 2: user 0 keeps its newest inputs (2, 3 → 3, 4) with targets 4, 5.
  BuildTrainBatch(s, rows, 2, &b);
  ASSERT_EQ(b.length, 2);
  EXPECT_EQ(std::vector<int64_t>(b.items.begin(), b.items.begin() + 2), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(std::vector<int64_t>(b.targets.begin(), b.targets.begin() + 2), (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(b.truncated, 1u);
}

TEST(UserSequencesTest, PrefixBatchesHoldOneTargetAtTheLastRealPosition) {
  UserSequences s = MustBuild(Fixture());
  const std::vector<SequencePrefix> prefixes = TrainPrefixes(s);
  // User 0: 4 train items → 3 prefixes; user 1: 2 items → 1.
  ASSERT_EQ(prefixes.size(), 4u);
  EXPECT_EQ(prefixes[0].row, 0u);
  EXPECT_EQ(prefixes[2].end, 3u);
  EXPECT_EQ(prefixes[3].row, 1u);
  SequenceBatch b;
  const std::vector<SequencePrefix> pick = {prefixes[2], prefixes[0]};
  BuildPrefixBatch(s, pick, 10, &b);
  ASSERT_EQ(b.length, 3);
  // Items 1,2,3 (→ 2,3,4) predict item 4 (→ 5); item 1 alone predicts item 2 (→ 3).
  EXPECT_EQ(b.items, (std::vector<int64_t>{2, 3, 4, 2, 0, 0}));
  EXPECT_EQ(b.targets, (std::vector<int64_t>{0, 0, 5, 3, 0, 0}));
  EXPECT_EQ(b.times[2], 30);
  BuildPrefixBatch(s, pick, 2, &b);  // the newest 2 inputs
  EXPECT_EQ(b.items, (std::vector<int64_t>{3, 4, 2, 0}));
  EXPECT_EQ(b.targets, (std::vector<int64_t>{0, 5, 3, 0}));
  EXPECT_EQ(b.truncated, 1u);

  // With the empty prefixes: one more per user, first in its row, predicting the first item from
  // a row of padding.
  const std::vector<SequencePrefix> with_empty = TrainPrefixes(s, /*empty=*/true);
  ASSERT_EQ(with_empty.size(), 6u);
  EXPECT_EQ(with_empty[0].end, 0u);
  EXPECT_EQ(with_empty[4].row, 1u);
  EXPECT_EQ(with_empty[4].end, 0u);
  const std::vector<SequencePrefix> empty_first = {with_empty[0], with_empty[1]};
  BuildPrefixBatch(s, empty_first, 10, &b);
  ASSERT_EQ(b.length, 1);
  EXPECT_EQ(b.items, (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(b.targets, (std::vector<int64_t>{2, 3}));  // item 1 from nothing, item 2 from item 1
  EXPECT_EQ(b.truncated, 0u);
}

TEST(UserSequencesTest, EvalBatchesAddTheValidItemForTest) {
  UserSequences s = MustBuild(Fixture());
  SequenceBatch b;
  const std::vector<uint32_t> rows = EvalRows(s, SplitPart::kTest);
  BuildEvalBatch(s, rows, SplitPart::kValid, 10, &b);
  EXPECT_EQ(b.items, (std::vector<int64_t>{2, 3, 4, 5}));  // train items 1..4
  EXPECT_EQ(b.targets, (std::vector<int64_t>{6}));         // valid item 5
  BuildEvalBatch(s, rows, SplitPart::kTest, 10, &b);
  EXPECT_EQ(b.items, (std::vector<int64_t>{2, 3, 4, 5, 6}));  // + the valid item
  EXPECT_EQ(b.times.back(), 50);
  EXPECT_EQ(b.targets, (std::vector<int64_t>{7}));           // test item 6
  BuildEvalBatch(s, rows, SplitPart::kTest, 3, &b);
  EXPECT_EQ(b.items, (std::vector<int64_t>{4, 5, 6}));  // the newest 3
  EXPECT_EQ(b.truncated, 1u);
}

TEST(UserSequencesTest, ErrorsNameTheProblem) {
  Dataset shown = Build({Shown(0, 1, 1), Shown(0, 2, 2)}, 1, 3);
  auto split = MakeSplit(shown, {.method = "loo", .positive_actions = {Action::kClick}});
  ASSERT_TRUE(split.ok());
  auto seqs = BuildUserSequences(shown, *split);
  ASSERT_FALSE(seqs.ok());
  EXPECT_NE(seqs.status().message().find("click"), std::string::npos) << seqs.status().message();
  Dataset other = Fixture();
  EXPECT_FALSE(BuildUserSequences(other, *split).ok());  // a split of another dataset
}

}  // namespace
}  // namespace adrec::data

#include "adrec/data/split.h"

#include <gtest/gtest.h>

#include <random>

#include <fstream>

#include "adrec/core/file.h"
#include "adrec/data/testing.h"

// Options structs are filled with designated initializers; unnamed fields keep their defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace adrec::data {
namespace {

Dataset Build(const std::vector<Event>& events, int users, int items) {
  return testing::BuildDataset(events, users, items);
}

// A larger random-ish dataset: `users` users with 5..24 events each, mixed actions.
Dataset RandomDataset(int users, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Event> ev;
  for (int u = 0; u < users; ++u) {
    int n = 5 + static_cast<int>(rng() % 20);
    for (int k = 0; k < n; ++k) {
      ev.push_back({.user = static_cast<uint32_t>(u), .item = static_cast<uint32_t>(rng() % 50),
                    .timestamp = static_cast<int64_t>(rng() % 100000),
                    .action = (rng() % 3 == 0) ? Action::kClick : Action::kImpression});
    }
  }
  return Build(ev, users, 50);
}

TEST(SplitTest, DefaultPositivesAreNonImpressionsOrTheOnlyAction) {
  Dataset mixed = Build({{.user = 0, .item = 0, .timestamp = 1, .action = Action::kImpression},
                         {.user = 0, .item = 0, .timestamp = 2, .action = Action::kClick},
                         {.user = 0, .item = 1, .timestamp = 3, .action = Action::kDownload}},
                        1, 2);
  EXPECT_EQ(DefaultPositiveMask(mixed), ActionBit(Action::kClick) | ActionBit(Action::kDownload));
  Dataset ratings = Build({{.user = 0, .item = 0, .timestamp = 1, .action = Action::kRating}}, 1, 1);
  EXPECT_EQ(DefaultPositiveMask(ratings), ActionBit(Action::kRating));
  Dataset impressions = Build({{.user = 0, .item = 0, .timestamp = 1, .action = Action::kImpression}}, 1, 1);
  EXPECT_EQ(DefaultPositiveMask(impressions), ActionBit(Action::kImpression));
}

TEST(SplitTest, LeaveOneOutPicksLastPositivesByTime) {
  // User 0: clicks at t=10 (i0), 30 (i1), 50 (i2), 20 (i3), impression at t=60 (after all clicks).
  // Events arrive out of order; the builder sorts by time.
  Dataset ds = Build({{.user = 0, .item = 2, .timestamp = 50, .action = Action::kClick},
                      {.user = 0, .item = 0, .timestamp = 10, .action = Action::kClick},
                      {.user = 0, .item = 4, .timestamp = 60, .action = Action::kImpression},
                      {.user = 0, .item = 1, .timestamp = 30, .action = Action::kClick},
                      {.user = 0, .item = 3, .timestamp = 20, .action = Action::kClick},
                      // User 1 has only two positives: everything stays in train.
                      {.user = 1, .item = 0, .timestamp = 5, .action = Action::kClick},
                      {.user = 1, .item = 1, .timestamp = 6, .action = Action::kClick},
                      {.user = 1, .item = 2, .timestamp = 7, .action = Action::kImpression}},
                     2, 5);
  auto s = MakeSplit(ds, {.method = "loo"});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->size(), ds.num_events());
  for (size_t i = 0; i < ds.num_events(); ++i) {
    SplitPart p = s->PartOf(i);
    if (ds.events.user[i] == 1) {
      EXPECT_EQ(p, SplitPart::kTrain);
      continue;
    }
    uint32_t item = ds.events.item[i];
    SplitPart want = item == 2 ? SplitPart::kTest : item == 1 ? SplitPart::kValid : SplitPart::kTrain;
    EXPECT_EQ(p, want) << "item " << item << " (want test = last click t=50, valid = t=30)";
  }
  auto c = s->Counts();
  EXPECT_EQ(c[0], 6u);
  EXPECT_EQ(c[1], 1u);
  EXPECT_EQ(c[2], 1u);
  auto s2 = MakeSplit(ds, {.method = "loo", .positive_actions = {Action::kImpression}, .min_positives = 1});
  EXPECT_FALSE(s2.ok());  // min_positives < 2 is rejected
  // Counting impressions as positives too, the impression at t=60 (t=7 for user 1) becomes test.
  auto s3 = MakeSplit(ds, {.method = "loo", .positive_actions = {Action::kImpression, Action::kClick}});
  ASSERT_TRUE(s3.ok());
  for (size_t i = 0; i < ds.num_events(); ++i) {
    bool last = (ds.events.user[i] == 0 && ds.events.item[i] == 4) || (ds.events.user[i] == 1 && ds.events.item[i] == 2);
    if (last) {
      EXPECT_EQ(s3->PartOf(i), SplitPart::kTest) << "event " << i;
    }
  }
}

TEST(SplitTest, TemporalRespectsTheCut) {
  Dataset ds = RandomDataset(200, 7);
  auto s = MakeSplit(ds, {.method = "temporal"});
  ASSERT_TRUE(s.ok());
  uint32_t max_part_time[3] = {0, 0, 0}, min_part_time[3] = {UINT32_MAX, UINT32_MAX, UINT32_MAX};
  for (size_t i = 0; i < ds.num_events(); ++i) {
    int p = s->part[i];
    max_part_time[p] = std::max(max_part_time[p], ds.events.time[i]);
    min_part_time[p] = std::min(min_part_time[p], ds.events.time[i]);
  }
  EXPECT_LT(max_part_time[0], min_part_time[1]);
  EXPECT_LT(max_part_time[1], min_part_time[2]);
  auto c = s->Counts();
  double n = static_cast<double>(ds.num_events());
  EXPECT_NEAR(c[0] / n, 0.8, 0.02);
  EXPECT_NEAR(c[1] / n, 0.1, 0.02);
  EXPECT_NEAR(c[2] / n, 0.1, 0.02);
  EXPECT_FALSE(MakeSplit(ds, {.method = "temporal", .train_fraction = 0.9, .valid_fraction = 0.2}).ok());
}

TEST(SplitTest, RandomByUserIsDeterministicAndNearTheFractions) {
  Dataset ds = RandomDataset(3000, 11);
  auto a = MakeSplit(ds, {.method = "random", .seed = 5});
  auto b = MakeSplit(ds, {.method = "random", .seed = 5});
  auto c = MakeSplit(ds, {.method = "random", .seed = 6});
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->part, b->part);
  EXPECT_NE(a->part, c->part);
  int users_in[3] = {0, 0, 0};
  for (uint32_t u = 0; u < ds.num_users(); ++u) {
    auto [beg, end] = ds.UserRange(u);
    for (uint64_t i = beg; i < end; ++i) ASSERT_EQ(a->part[i], a->part[beg]) << "user " << u << " split across parts";
    users_in[a->part[beg]]++;
  }
  EXPECT_NEAR(users_in[0] / 3000.0, 0.8, 0.03);
  EXPECT_NEAR(users_in[1] / 3000.0, 0.1, 0.03);
  EXPECT_NEAR(users_in[2] / 3000.0, 0.1, 0.03);
}

TEST(SplitTest, RandomByEventIsDeterministicAndNearTheFractions) {
  Dataset ds = RandomDataset(1000, 3);
  auto a = MakeSplit(ds, {.method = "random_event", .seed = 1, .train_fraction = 0.6, .valid_fraction = 0.3});
  auto b = MakeSplit(ds, {.method = "random_event", .seed = 1, .train_fraction = 0.6, .valid_fraction = 0.3});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->part, b->part);
  auto c = a->Counts();
  double n = static_cast<double>(ds.num_events());
  EXPECT_NEAR(c[0] / n, 0.6, 0.02);
  EXPECT_NEAR(c[1] / n, 0.3, 0.02);
  EXPECT_NEAR(c[2] / n, 0.1, 0.02);
}

TEST(SplitTest, UnknownMethodIsInvalidArgument) {
  Dataset ds = RandomDataset(3, 1);
  auto s = MakeSplit(ds, {.method = "kfold"});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("random_event"), std::string::npos);
}

TEST(SplitTest, WriteReadRoundTrip) {
  Dataset ds = RandomDataset(100, 9);
  ScopedTempDir tmp("split");
  for (bool compress : {true, false}) {
    auto s = MakeSplit(ds, {.method = "random_event", .seed = 77});
    ASSERT_TRUE(s.ok());
    auto dir = tmp.path() / (compress ? "z" : "raw");
    ASSERT_TRUE(WriteSplit(*s, dir, {.compress = compress}).ok());
    auto r = ReadSplit(dir, ds);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->part, s->part);
    EXPECT_EQ(r->method, "random_event");
    EXPECT_EQ(r->seed, 77u);
    EXPECT_EQ(r->positive_mask, s->positive_mask);
    auto toml = ReadFile(dir / "split.toml");
    ASSERT_TRUE(toml.ok());
    EXPECT_NE(toml->find("method = \"random_event\""), std::string::npos);
    EXPECT_NE(toml->find("train = " + std::to_string(s->Counts()[0])), std::string::npos);
    // Refuses to overwrite by default.
    EXPECT_EQ(WriteSplit(*s, dir).code(), StatusCode::kAlreadyExists);
  }
}

TEST(SplitTest, CorruptOrTruncatedFileIsDataLossNamingTheFile) {
  Dataset ds = RandomDataset(50, 2);
  auto s = MakeSplit(ds, {.method = "loo"});
  ASSERT_TRUE(s.ok());
  ScopedTempDir tmp("split");
  ASSERT_TRUE(WriteSplit(*s, tmp.path(), {.compress = false}).ok());
  auto bin = tmp.path() / "split.bin";
  auto good = ReadFile(bin);
  ASSERT_TRUE(good.ok());

  std::string flipped = *good;
  flipped[flipped.size() / 2] ^= 0x01;
  ASSERT_TRUE(AtomicWriteFile(bin, flipped).ok());
  auto r = ReadSplit(tmp.path());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("split.bin"), std::string::npos) << r.status().ToString();

  for (size_t len : {size_t{0}, size_t{10}, good->size() - 1}) {
    ASSERT_TRUE(AtomicWriteFile(bin, good->substr(0, len)).ok());
    r = ReadSplit(tmp.path());
    ASSERT_FALSE(r.ok()) << "length " << len;
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(r.status().message().find("split.bin"), std::string::npos);
  }
  EXPECT_FALSE(ReadSplit(tmp.path() / "missing").ok());
}

TEST(SplitTest, SizeMismatchWithDatasetIsFailedPrecondition) {
  Dataset small = RandomDataset(10, 1);
  Dataset big = RandomDataset(20, 1);
  auto s = MakeSplit(small, {.method = "temporal"});
  ASSERT_TRUE(s.ok());
  ScopedTempDir tmp("split");
  ASSERT_TRUE(WriteSplit(*s, tmp.path()).ok());
  auto r = ReadSplit(tmp.path(), big);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(ReadSplit(tmp.path(), small).ok());
}

}  // namespace
}  // namespace adrec::data

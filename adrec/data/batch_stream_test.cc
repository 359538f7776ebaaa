#include "adrec/data/batch_stream.h"

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

std::vector<Batch> Drain(BatchStream& stream) {
  std::vector<Batch> out;
  Batch b;
  while (stream.Next(&b)) out.push_back(b);
  return out;
}

struct StreamWorld {
  Dataset ds;
  FeatureSpec spec;
  SampleSet samples;
};

const StreamWorld& World() {
  static const StreamWorld* w = [] {
    auto world = GenerateSyntheticWorld(SmallWorld());
    EXPECT_TRUE(world.ok());
    auto* sw = new StreamWorld{std::move(world).value(), MustParse(R"(
[features]
[[features.fields]]
name = "user"
kind = "categorical"
source = "user"
[[features.fields]]
name = "item"
kind = "categorical"
source = "item"
[[features.fields]]
name = "hist"
kind = "sequence"
source = "history.item"
table = "item"
max_len = 8
[[features.fields]]
name = "bid"
kind = "dense"
source = "item.bid"
normalize = "log1p"
[[features.targets]]
name = "click"
action = "click"
)"), {}};
    EXPECT_TRUE(sw->spec.Bind(sw->ds).ok());
    auto s = MakeSamples(sw->ds, sw->spec, nullptr, SplitPart::kTrain);
    EXPECT_TRUE(s.ok());
    sw->samples = std::move(s).value();
    return sw;
  }();
  return *w;
}

TEST(BatchStreamTest, SameBatchesWhateverTheThreadsAndPrefetch) {
  const StreamWorld& w = World();
  ASSERT_GT(w.samples.size(), 2000u);
  BatchStream one(w.ds, w.spec, w.samples, {.batch_size = 500, .seed = 3, .prefetch = 1, .threads = 1});
  BatchStream many(w.ds, w.spec, w.samples, {.batch_size = 500, .seed = 3, .prefetch = 5, .threads = 3});
  EXPECT_EQ(one.batches_per_epoch(), (w.samples.size() + 499) / 500);
  for (uint64_t epoch : {0, 1}) {
    one.StartEpoch(epoch);
    many.StartEpoch(epoch);
    auto a = Drain(one), b = Drain(many);
    ASSERT_EQ(a.size(), one.batches_per_epoch());
    ASSERT_EQ(a.size(), b.size());
    std::vector<uint64_t> seen;
    for (size_t i = 0; i < a.size(); ++i) {
      ExpectSameBatch(a[i], b[i], "epoch " + std::to_string(epoch) + " batch " + std::to_string(i));
      seen.insert(seen.end(), a[i].event.begin(), a[i].event.end());
    }
    // Each sample exactly once per epoch, shuffled.
    EXPECT_NE(seen, w.samples.events);
    std::vector<uint64_t> sorted = seen;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, w.samples.events);
  }
  // Epochs differ, and the same (seed, epoch) repeats after other epochs ran.
  one.StartEpoch(0);
  Batch first0;
  ASSERT_TRUE(one.Next(&first0));
  one.StartEpoch(1);
  Batch first1;
  ASSERT_TRUE(one.Next(&first1));
  EXPECT_NE(first0.event, first1.event);
  one.StartEpoch(0);
  Batch again;
  ASSERT_TRUE(one.Next(&again));
  ExpectSameBatch(first0, again, "epoch 0 restarted");
}

TEST(BatchStreamTest, SkipEqualsSkippingByHand) {
  const StreamWorld& w = World();
  BatchStream a(w.ds, w.spec, w.samples, {.batch_size = 300, .seed = 9, .prefetch = 3, .threads = 2});
  BatchStream b(w.ds, w.spec, w.samples, {.batch_size = 300, .seed = 9, .prefetch = 2, .threads = 1});
  a.StartEpoch(4);
  Batch tmp;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(a.Next(&tmp));
  b.StartEpoch(4, 3);
  auto rest_a = Drain(a), rest_b = Drain(b);
  ASSERT_EQ(rest_a.size(), a.batches_per_epoch() - 3);
  ASSERT_EQ(rest_a.size(), rest_b.size());
  for (size_t i = 0; i < rest_a.size(); ++i) ExpectSameBatch(rest_a[i], rest_b[i], "batch " + std::to_string(i + 3));
  // Skipping past the end leaves an empty epoch.
  b.StartEpoch(4, 1000);
  EXPECT_FALSE(b.Next(&tmp));
}

TEST(BatchStreamTest, DropLastUnshuffledAndNextWithoutStart) {
  const StreamWorld& w = World();
  BatchStream s(w.ds, w.spec, w.samples, {.batch_size = 1000, .shuffle = false, .drop_last = true, .threads = 2});
  EXPECT_EQ(s.batches_per_epoch(), w.samples.size() / 1000);
  auto batches = Drain(s);  // no StartEpoch: epoch 0
  ASSERT_EQ(batches.size(), s.batches_per_epoch());
  for (size_t i = 0; i < batches.size(); ++i) {
    ASSERT_EQ(batches[i].size, 1000u);
    EXPECT_EQ(batches[i].event.front(), w.samples.events[i * 1000]);  // dataset order
  }
  Batch b;
  EXPECT_FALSE(s.Next(&b));  // stays at the end until the next StartEpoch
}

TEST(BatchStreamTest, EarlyDestructionWithBatchesInFlight) {
  const StreamWorld& w = World();
  for (int round = 0; round < 5; ++round) {
    {
      BatchStream s(w.ds, w.spec, w.samples, {.batch_size = 64, .prefetch = 8, .threads = 3});
      s.StartEpoch(static_cast<uint64_t>(round));
      Batch b;
      if (round % 2) {
        ASSERT_TRUE(s.Next(&b));
      }
    }  // destroyed with up to 8 batches queued or running
    {
      BatchStream s(w.ds, w.spec, w.samples, {.batch_size = 64, .prefetch = 8, .threads = 2});
    }  // never started
  }
}

}  // namespace
}  // namespace adrec::data

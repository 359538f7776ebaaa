#include "adrec/data/ranking_data.h"

#include <gtest/gtest.h>

#include "adrec/core/config.h"
#include "adrec/core/file.h"
#include "adrec/data/dataset_io.h"
#include "adrec/data/synthetic.h"

// Options structs are filled with designated initializers; unnamed fields keep their defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace adrec::data {
namespace {

constexpr const char* kSpec = R"(
[features]
[[features.fields]]
name = "item"
source = "item"
dim = 8
[[features.fields]]
name = "bid"
kind = "dense"
source = "item.bid"
normalize = "standard"
[[features.targets]]
name = "click"
action = "click"
)";

FeatureSpec Spec() {
  auto cfg = Config::Parse(kSpec, "spec.toml");
  EXPECT_TRUE(cfg.ok()) << cfg.status().ToString();
  auto spec = FeatureSpec::FromConfig(*cfg);
  EXPECT_TRUE(spec.ok()) << spec.status().ToString();
  return *spec;
}

class RankingDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto world = GenerateSyntheticWorld({.users = 200, .ads = 60, .advertisers = 10, .days = 3, .seed = 3,
                                         .show_progress = false});
    ASSERT_TRUE(world.ok()) << world.status().ToString();
    ASSERT_TRUE(WriteDataset(*world, dir_.path() / "world").ok());
    ds_ = std::move(world).value();
  }
  ScopedTempDir dir_{"ranking-data"};
  Dataset ds_;
};

TEST_F(RankingDataTest, PartsAreTheSplitsSamplesAndNormalisationComesFromTrain) {
  RankingDataOptions o;
  o.data = dir_.path() / "world";
  o.split.method = "temporal";
  auto d = PrepareRankingData(Spec(), o);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->ds.num_events(), ds_.num_events());
  EXPECT_EQ(d->split.method, "temporal");
  for (auto [part, samples] : {std::pair{SplitPart::kTrain, &d->train}, std::pair{SplitPart::kValid, &d->valid},
                               std::pair{SplitPart::kTest, &d->test}}) {
    auto want = MakeSamples(d->ds, d->spec, &d->split, part);
    ASSERT_TRUE(want.ok());
    EXPECT_EQ(samples->events, want->events) << SplitPartName(part);
    EXPECT_EQ(samples->labels, want->labels) << SplitPartName(part);
  }
  EXPECT_GT(d->valid.size() + d->test.size(), 0u);
  // The same spec fitted by hand on the train samples: the same statistics.
  FeatureSpec by_hand = Spec();
  ASSERT_TRUE(by_hand.Bind(d->ds).ok());
  by_hand.FitNormalization(d->ds, d->train.events);
  EXPECT_EQ(by_hand.ToJson(), d->spec.ToJson());
}

TEST_F(RankingDataTest, AnEmptyTrainPartNamesTheDatasetAndTheSampleActions) {
  FeatureSpec spec = Spec();
  spec.sample_actions = ActionBit(Action::kRating);  // the world has no ratings
  RankingDataOptions o;
  o.data = dir_.path() / "world";
  auto d = PrepareRankingData(spec, o);
  ASSERT_EQ(d.status().code(), StatusCode::kFailedPrecondition) << d.status().ToString();
  EXPECT_NE(d.status().message().find("world"), std::string::npos) << d.status().message();
  EXPECT_NE(d.status().message().find("rating"), std::string::npos) << d.status().message();
  o.data = dir_.path() / "no-such-dataset";
  EXPECT_EQ(PrepareRankingData(Spec(), o).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace adrec::data

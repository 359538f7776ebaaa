#include "adrec/creative/simulate.h"

#include <gtest/gtest.h>

#include "adrec/data/synthetic.h"

namespace adrec::creative {
namespace {

// The generator's creative terms: a hook phrase in the title carries its appeal; colour and
// orientation read the viewer.
TEST(SyntheticCreativeTruth, TitleWordsAndLooksMoveTheLogit) {
  auto viewer = data::SyntheticViewerOf("18-24", "female", "tablet", "feed");
  ASSERT_TRUE(viewer.ok()) << viewer.status().ToString();
  auto plain = data::SyntheticCreativeTraitsOf("Star Quest: raids", "red", "landscape", "benefit");
  auto hooked = data::SyntheticCreativeTraitsOf("Star Quest: raids — today only", "red", "landscape", "benefit");
  ASSERT_TRUE(plain.ok() && hooked.ok());
  EXPECT_EQ(plain->appeal, 0);
  EXPECT_GT(hooked->appeal, 0.3);
  EXPECT_GT(data::SyntheticCreativeLogit(*hooked, *viewer), data::SyntheticCreativeLogit(*plain, *viewer));
  auto portrait = data::SyntheticCreativeTraitsOf("Star Quest: raids", "red", "portrait", "benefit");
  ASSERT_TRUE(portrait.ok());
  EXPECT_NE(data::SyntheticCreativeLogit(*portrait, *viewer), data::SyntheticCreativeLogit(*plain, *viewer));
  EXPECT_NE(data::SyntheticViewerOf("18-24", "female", "fridge", "feed").status().message().find("unknown device 'fridge'"),
            std::string::npos);
  EXPECT_NE(data::SyntheticCreativeTraitsOf("x", "mauve", "square", "benefit").status().message().find("unknown colour 'mauve'"),
            std::string::npos);
}

struct World {
  data::Dataset ds;
  std::vector<CreativeVariant> variants;
};
const World& SmallWorld() {
  static const World* w = [] {
    auto ds = data::GenerateSyntheticWorld({.users = 400, .ads = 60, .advertisers = 8, .days = 3, .seed = 5, .show_progress = false});
    EXPECT_TRUE(ds.ok());
    auto v = GenerateTemplateVariants(*ds, SyntheticPhraseBook(), TemplateOptions{.per_ad = 4, .seed = 1, .filter = {}});
    EXPECT_TRUE(v.ok());
    return new World{std::move(*ds), std::move(*v)};
  }();
  return *w;
}

SimulateReport RunPolicy(const std::string& policy) {
  SimulateOptions o;
  o.days = 6;
  o.impressions_per_day = 20000;
  o.ads = 5;
  o.policy = policy;
  auto r = Simulate(SmallWorld().ds, SmallWorld().variants, o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : SimulateReport{};
}

// The closed loop: bandits learn which variant each viewer clicks, so their regret grows slower
// than random's and shrinks day by day. (At this volume, ~1,000 impressions per variant a day,
// they are still behind the best static variant, which knows the truth from the start.)
TEST(Simulate, BanditsBeatRandomAndLearnOverTime) {
  const SimulateReport random = RunPolicy("random"), thompson = RunPolicy("thompson"), linucb = RunPolicy("linucb"),
                       fixed = RunPolicy("static");
  ASSERT_EQ(thompson.days.size(), 6u);
  EXPECT_EQ(thompson.ads, 5u);
  EXPECT_LT(thompson.cumulative_regret, 0.8 * random.cumulative_regret);
  EXPECT_LT(linucb.cumulative_regret, 0.8 * random.cumulative_regret);
  EXPECT_LT(thompson.days.back().regret, 0.7 * random.days.back().regret);
  EXPECT_LT(linucb.days.back().regret, 0.7 * random.days.back().regret);
  EXPECT_LT(fixed.cumulative_regret, random.cumulative_regret);
  // Learning: the last day's regret is below the first's.
  EXPECT_LT(thompson.days.back().regret, thompson.days.front().regret);
  EXPECT_LT(linucb.days.back().regret, linucb.days.front().regret);
  EXPECT_GT(linucb.days.back().expected_ctr, random.days.back().expected_ctr);
  EXPECT_LE(linucb.expected_ctr, linucb.oracle_ctr);
  EXPECT_NEAR(random.cumulative_regret, random.days.back().cumulative_regret, 1e-9);
}

// The context encoder: segment and one-hot features from the user table, then a user's vector.
TEST(CreativeContext, EncodesDemographicsSceneAndAUserVector) {
  const data::Dataset& ds = SmallWorld().ds;
  auto enc = ContextEncoder::Create(ds, {});
  ASSERT_TRUE(enc.ok()) << enc.status().ToString();
  const uint32_t dim = enc->dim();
  const BanditContext known = enc->Encode(3, 1), unknown = enc->Encode(std::nullopt, 1);
  ASSERT_EQ(known.features.size(), 5u);  // bias, age, gender, device, scene
  EXPECT_EQ(known.features[0], 0u);
  EXPECT_NE(known.features[1], unknown.features[1]) << "a known user's age is not the missing value";
  EXPECT_EQ(known.features.back(), unknown.features.back()) << "the same scene";
  EXPECT_TRUE(known.dense.empty());
  std::vector<float> v(ds.users.size() * 2, 0.f);
  v[3 * 2] = 0.6f;
  v[3 * 2 + 1] = 0.8f;
  ASSERT_TRUE(enc->SetUserVectors(v, 2).ok());
  EXPECT_EQ(enc->dim(), dim + 2);
  EXPECT_EQ(enc->Encode(3, 1).dense, (std::vector<float>{0.6f, 0.8f}));
  EXPECT_EQ(enc->Encode(std::nullopt, 1).dense, (std::vector<float>{0.f, 0.f}));
  EXPECT_EQ(enc->SetUserVectors({1.f}, 2).code(), StatusCode::kInvalidArgument);
  data::Dataset no_age = ds;
  no_age.user_table.columns.clear();
  EXPECT_NE(ContextEncoder::Create(no_age, {}).status().message().find("no user column 'age'"), std::string::npos);
}

TEST(Simulate, NeedsAWorldWithGroundTruthAndKnownAds) {
  data::Dataset no_truth = SmallWorld().ds;
  no_truth.events.truth.clear();
  EXPECT_EQ(Simulate(no_truth, SmallWorld().variants, {}).status().code(), StatusCode::kFailedPrecondition);
  std::vector<CreativeVariant> v = SmallWorld().variants;
  v.push_back({"nope~0", "nope", "en", "A title", "red", "square", "catalogue", ""});
  EXPECT_NE(Simulate(SmallWorld().ds, v, {}).status().message().find("names ad 'nope'"), std::string::npos);
  SimulateOptions o;
  o.policy = "ucb9";
  EXPECT_EQ(Simulate(SmallWorld().ds, SmallWorld().variants, o).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace adrec::creative

#include "adrec/creative/bandit.h"

#include <gtest/gtest.h>

#include <array>
#include <random>

namespace adrec::creative {
namespace {

// Three arms with known click rates: a learning policy ends up showing the best one most.
double ShareOfBest(std::string_view name, uint32_t segment_best_flip) {
  BanditOptions o;
  o.dim = 3;
  auto p = MakeCreativePolicy(name, o);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  const std::array<uint32_t, 3> arms = {0, 1, 2};
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0, 1);
  size_t best = 0, late = 0;
  for (int i = 0; i < 20000; ++i) {
    // Two segments; in segment 1 the best arm is `segment_best_flip`.
    const uint32_t seg = i % 2;
    BanditContext ctx{seg, {0, 1 + seg}, {}};
    const uint32_t good = seg == 1 ? segment_best_flip : 0;
    const uint32_t a = (*p)->Choose(arms, ctx, 0.05);
    const double rate = a == good ? 0.12 : 0.04;
    (*p)->Update(a, ctx, u(rng) < rate ? 1 : 0);
    if (i >= 15000) {
      ++late;
      best += a == good;
    }
  }
  return static_cast<double>(best) / static_cast<double>(late);
}

TEST(CreativeBandit, LearningPoliciesFindTheBestArmPerContext) {
  EXPECT_GT(ShareOfBest("thompson", 2), 0.85);
  EXPECT_GT(ShareOfBest("linucb", 2), 0.85);
  EXPECT_LT(ShareOfBest("random", 2), 0.45);
  EXPECT_NEAR(ShareOfBest("first", 0), 1.0, 1e-9);
}

// LinUCB on a dense context (a user embedding): the best arm follows the sign of the vector.
TEST(CreativeBandit, LinUcbLearnsFromADenseUserVector) {
  BanditOptions o;
  o.dim = 3;  // bias, two dense
  auto p = MakeCreativePolicy("linucb", o);
  ASSERT_TRUE(p.ok());
  const std::array<uint32_t, 2> arms = {0, 1};
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(0, 1);
  size_t right = 0, late = 0;
  for (int i = 0; i < 20000; ++i) {
    const float s = (i % 2) ? 0.8f : -0.8f;
    BanditContext ctx{0, {0}, {s, 0.6f}};
    const uint32_t good = s > 0 ? 1 : 0;
    const uint32_t a = (*p)->Choose(arms, ctx, 0.05);
    (*p)->Update(a, ctx, u(rng) < (a == good ? 0.12 : 0.04) ? 1 : 0);
    if (i >= 15000) ++late, right += a == good;
  }
  EXPECT_GT(static_cast<double>(right) / static_cast<double>(late), 0.85);
}

TEST(CreativeBandit, ColdArmsAreShownWithinTheLimit) {
  BanditOptions o;
  o.warm_impressions = 1000;
  o.max_cold_share = 0.1;
  o.prior_strength = 1000;  // a confident prior: every arm starts at pCTR
  auto p = MakeCreativePolicy("thompson", o);
  ASSERT_TRUE(p.ok());
  const std::array<uint32_t, 1> old = {0};
  const std::array<uint32_t, 2> both = {0, 1};
  BanditContext ctx;
  for (int i = 0; i < 1000; ++i) (*p)->Update((*p)->Choose(old, ctx, 0.05), ctx, i % 20 == 0);
  // Arm 1 is new and, with a prior as good as arm 0's, would take about half the traffic.
  int cold = 0;
  for (int i = 0; i < 4000; ++i) cold += (*p)->Choose(both, ctx, 0.05) == 1;
  EXPECT_LT(cold, 4000 * 0.1);
  EXPECT_GT(cold, 4000 * 0.02);
}

TEST(CreativeBandit, UnknownPoliciesAndBadOptionsAreNamed) {
  EXPECT_NE(MakeCreativePolicy("ucb9", {}).status().message().find("unknown creative policy 'ucb9'"), std::string::npos);
  BanditOptions bad;
  bad.max_cold_share = 2;
  EXPECT_EQ(MakeCreativePolicy("thompson", bad).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace adrec::creative

#include "adrec/data/negatives.h"

#include <gtest/gtest.h>

#include <cmath>

// Options structs are filled with designated initializers; unnamed fields keep their defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace adrec::data {
namespace {

// Pearson chi-square of observed counts against expected probabilities (cells with p > 0).
double ChiSquare(const std::vector<uint64_t>& counts, const std::vector<double>& p, uint64_t n) {
  double chi = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (p[i] <= 0) continue;
    double e = p[i] * static_cast<double>(n);
    chi += (counts[i] - e) * (counts[i] - e) / e;
  }
  return chi;
}

std::vector<uint64_t> Histogram(const NegativeSampler& s, uint32_t n, uint64_t seed,
                                std::span<const uint32_t> exclude = {}) {
  SamplerRng rng(seed);
  std::vector<uint32_t> out(n);
  Status st = s.Sample(n, out, rng, exclude);
  EXPECT_TRUE(st.ok()) << st.ToString();
  std::vector<uint64_t> h(s.num_items(), 0);
  for (uint32_t x : out) {
    EXPECT_LT(x, s.num_items());
    if (x < s.num_items()) h[x]++;
  }
  return h;
}

TEST(NegativeSamplerTest, UniformIsUniform) {
  UniformSampler s(20);
  const uint32_t n = 200000;
  auto h = Histogram(s, n, 1);
  std::vector<double> p(20, 1.0 / 20);
  // 19 degrees of freedom: mean 19, sd ~6.2; 60 is far beyond any honest fluctuation.
  EXPECT_LT(ChiSquare(h, p, n), 60.0);
}

TEST(NegativeSamplerTest, PopularityFollowsWeights) {
  std::vector<double> w = {1, 2, 3, 4, 0, 10, 0.5, 100, 7, 7};
  auto s = PopularitySampler::Create(w);
  ASSERT_TRUE(s.ok());
  const uint32_t n = 300000;
  auto h = Histogram(**s, n, 2);
  double total = 0;
  for (double x : w) total += x;
  std::vector<double> p;
  for (double x : w) p.push_back(x / total);
  EXPECT_EQ(h[4], 0u) << "zero-weight item drawn";
  // 8 degrees of freedom (9 non-zero cells).
  EXPECT_LT(ChiSquare(h, p, n), 40.0);
  for (size_t i = 0; i < w.size(); ++i) EXPECT_DOUBLE_EQ((*s)->Probability(i), p[i]);
}

TEST(NegativeSamplerTest, ExclusionIsRespectedAndRenormalises) {
  std::vector<double> w = {50, 1, 1, 1, 1, 50, 1, 1};
  auto pop = PopularitySampler::Create(w);
  ASSERT_TRUE(pop.ok());
  std::vector<uint32_t> exclude = {0, 5};  // ~93% of the mass: exercises the complement fallback too
  const uint32_t n = 60000;
  auto h = Histogram(**pop, n, 3, exclude);
  EXPECT_EQ(h[0], 0u);
  EXPECT_EQ(h[5], 0u);
  std::vector<double> p = {0, 1.0 / 6, 1.0 / 6, 1.0 / 6, 1.0 / 6, 0, 1.0 / 6, 1.0 / 6};
  EXPECT_LT(ChiSquare(h, p, n), 35.0);

  UniformSampler uni(10);
  std::vector<uint32_t> ex2 = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  auto hu = Histogram(uni, 1000, 4, ex2);
  EXPECT_EQ(hu[0], 1000u);
}

TEST(NegativeSamplerTest, SeededDrawsAreReproducible) {
  UniformSampler s(1000);
  std::vector<uint32_t> a(100), b(100), c(100);
  SamplerRng r1(9), r2(9), r3(10);
  ASSERT_TRUE(s.Sample(100, a, r1).ok());
  ASSERT_TRUE(s.Sample(100, b, r2).ok());
  ASSERT_TRUE(s.Sample(100, c, r3).ok());
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(NegativeSamplerTest, Errors) {
  UniformSampler s(3);
  SamplerRng rng(1);
  std::vector<uint32_t> out(2);
  EXPECT_EQ(s.Sample(3, out, rng).code(), StatusCode::kInvalidArgument);
  std::vector<uint32_t> unsorted = {2, 1};
  EXPECT_EQ(s.Sample(2, out, rng, unsorted).code(), StatusCode::kInvalidArgument);
  std::vector<uint32_t> all = {0, 1, 2};
  EXPECT_EQ(s.Sample(2, out, rng, all).code(), StatusCode::kFailedPrecondition);
  std::vector<double> zero = {0, 0};
  EXPECT_FALSE(PopularitySampler::Create(zero).ok());
  std::vector<double> neg = {1, -1};
  EXPECT_FALSE(PopularitySampler::Create(neg).ok());
  std::vector<double> nan = {1, std::nan("")};
  EXPECT_FALSE(PopularitySampler::Create(nan).ok());
}

TEST(NegativeSamplerTest, FromDatasetCountsTrainPositives) {
  DatasetBuilder b({.name = "t"});
  uint32_t u0 = b.UserId("a"), u1 = b.UserId("b");
  uint32_t i0 = b.ItemId("x"), i1 = b.ItemId("y"), i2 = b.ItemId("z");
  auto add = [&](uint32_t u, uint32_t i, int64_t t, Action a) {
    ASSERT_TRUE(b.AddEvent({.user = u, .item = i, .timestamp = t, .action = a}).ok());
  };
  add(u0, i0, 1, Action::kClick);
  add(u0, i0, 2, Action::kClick);
  add(u0, i1, 3, Action::kClick);
  add(u0, i2, 4, Action::kImpression);  // not a positive
  add(u1, i0, 1, Action::kClick);
  auto ds = std::move(b).Finish();
  ASSERT_TRUE(ds.ok());
  Split split;
  split.method = "all-train";
  split.positive_mask = DefaultPositiveMask(*ds);
  split.part.assign(ds->num_events(), 0);
  auto s = PopularitySampler::FromDataset(*ds, split);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_DOUBLE_EQ((*s)->Probability(i0), 0.75);
  EXPECT_DOUBLE_EQ((*s)->Probability(i1), 0.25);
  EXPECT_DOUBLE_EQ((*s)->Probability(i2), 0.0);
  split.part.pop_back();
  EXPECT_EQ(PopularitySampler::FromDataset(*ds, split).status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace adrec::data

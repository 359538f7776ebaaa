#include "adrec/eval/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace adrec::eval {
namespace {

// O(n^2) definition: weighted fraction of (pos, neg) pairs ordered correctly, ties one half.
double BruteAuc(const std::vector<float>& s, const std::vector<float>& y, const std::vector<float>& w) {
  double num = 0, den = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (y[i] != 1.f) continue;
    for (size_t j = 0; j < s.size(); ++j) {
      if (y[j] != 0.f) continue;
      double ww = (w.empty() ? 1.0 : w[i]) * (w.empty() ? 1.0 : w[j]);
      num += ww * (s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0);
      den += ww;
    }
  }
  return num / den;
}

TEST(MetricsTest, AucMatchesPairCountingWithTiesAndWeights) {
  std::mt19937_64 rng(1);
  for (int trial = 0; trial < 50; ++trial) {
    const size_t n = 2 + rng() % 300;
    std::vector<float> s(n), y(n), w(n);
    for (size_t i = 0; i < n; ++i) {
      s[i] = static_cast<float>(rng() % 20) / 20.f;  // coarse scores: many ties
      y[i] = static_cast<float>(rng() % 3 == 0);
      w[i] = static_cast<float>(rng() % 5) * 0.5f;
    }
    y[0] = 1.f;
    y[1] = 0.f;
    w[0] = w[1] = 1.f;
    auto a = Auc(s, y);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    EXPECT_NEAR(*a, BruteAuc(s, y, {}), 1e-12);
    auto aw = Auc(s, y, w);
    ASSERT_TRUE(aw.ok());
    EXPECT_NEAR(*aw, BruteAuc(s, y, w), 1e-12);
  }
}

TEST(MetricsTest, AucHandComputed) {
  // Positives 0.8, 0.4; negatives 0.4, 0.1: pairs (0.8>0.4)=1 (0.8>0.1)=1 (0.4=0.4)=.5 (0.4>0.1)=1.
  std::vector<float> s = {0.8f, 0.4f, 0.4f, 0.1f}, y = {1, 1, 0, 0};
  EXPECT_DOUBLE_EQ(*Auc(s, y), 3.5 / 4);
  std::vector<float> perfect = {0.1f, 0.2f, 0.9f, 0.95f}, y2 = {0, 0, 1, 1};
  EXPECT_DOUBLE_EQ(*Auc(perfect, y2), 1.0);
  std::vector<float> constant = {0.5f, 0.5f, 0.5f}, y3 = {1, 0, 0};
  EXPECT_DOUBLE_EQ(*Auc(constant, y3), 0.5);
}

TEST(MetricsTest, AucErrors) {
  std::vector<float> s = {0.1f, 0.2f}, one_class = {1, 1}, ok = {1, 0}, bad = {1, 2}, short_y = {1};
  EXPECT_EQ(Auc(s, one_class).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Auc(s, short_y).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Auc(s, bad).status().code(), StatusCode::kInvalidArgument);
  std::vector<float> nan = {0.1f, std::nanf("")};
  auto r = Auc(nan, ok);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("NaN"), std::string::npos);
  std::vector<float> zero_neg_weight = {1, 0};
  EXPECT_FALSE(Auc(s, ok, zero_neg_weight).ok());  // the only negative has weight 0
  EXPECT_FALSE(Auc({}, {}).ok());
}

TEST(MetricsTest, GaucWeightsUsersByImpressions) {
  // User 7: 4 samples, AUC 1. User 3: 2 samples, AUC 0. User 9: one class only, skipped.
  std::vector<float> s = {0.9f, 0.1f, 0.8f, 0.2f, 0.1f, 0.9f, 0.5f, 0.6f};
  std::vector<float> y = {1, 0, 1, 0, 1, 0, 1, 1};
  std::vector<uint32_t> g = {7, 7, 7, 7, 3, 3, 9, 9};
  auto r = Gauc(s, y, g);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_DOUBLE_EQ(r->gauc, (4 * 1.0 + 2 * 0.0) / 6);
  EXPECT_EQ(r->users_used, 2u);
  EXPECT_EQ(r->users_skipped, 1u);
  EXPECT_EQ(r->samples_used, 6u);
  // Interleaved groups give the same result.
  std::vector<float> s2 = {0.9f, 0.1f, 0.1f, 0.8f, 0.9f, 0.2f}, y2 = {1, 1, 0, 1, 0, 0};
  std::vector<uint32_t> g2 = {7, 3, 7, 7, 3, 7};
  EXPECT_DOUBLE_EQ(Gauc(s2, y2, g2)->gauc, (4 * 1.0 + 2 * 0.0) / 6);
  std::vector<float> yy = {1, 1};
  std::vector<float> ss = {0.1f, 0.2f};
  std::vector<uint32_t> gg = {1, 2};
  EXPECT_EQ(Gauc(ss, yy, gg).status().code(), StatusCode::kInvalidArgument);
  std::vector<uint32_t> g_short = {1};
  EXPECT_FALSE(Gauc(ss, yy, g_short).ok());
}

TEST(MetricsTest, GaucMatchesPerUserBruteForce) {
  std::mt19937_64 rng(5);
  const size_t n = 2000;
  std::vector<float> s(n), y(n);
  std::vector<uint32_t> g(n);
  for (size_t i = 0; i < n; ++i) {
    s[i] = static_cast<float>(rng() % 50);
    y[i] = static_cast<float>(rng() % 4 == 0);
    g[i] = static_cast<uint32_t>(rng() % 40);
  }
  double num = 0, den = 0;
  uint64_t used = 0;
  for (uint32_t u = 0; u < 40; ++u) {
    std::vector<float> su, yu;
    for (size_t i = 0; i < n; ++i) if (g[i] == u) { su.push_back(s[i]); yu.push_back(y[i]); }
    bool pos = false, neg = false;
    for (float v : yu) (v == 1.f ? pos : neg) = true;
    if (!pos || !neg) continue;
    num += su.size() * BruteAuc(su, yu, {});
    den += su.size();
    ++used;
  }
  auto r = Gauc(s, y, g);
  ASSERT_TRUE(r.ok());
  EXPECT_NEAR(r->gauc, num / den, 1e-12);
  EXPECT_EQ(r->users_used, used);
}

TEST(MetricsTest, LogLossNeAndCalibration) {
  std::vector<float> p = {0.9f, 0.2f, 0.6f, 0.1f}, y = {1, 0, 1, 0};
  auto d = [](float f) { return static_cast<double>(f); };  // the metric works in double
  double want = -(std::log(d(0.9f)) + std::log(1 - d(0.2f)) + std::log(d(0.6f)) + std::log(1 - d(0.1f))) / 4;
  EXPECT_NEAR(*LogLoss(p, y), want, 1e-12);
  // Base rate 0.5: entropy ln 2.
  EXPECT_NEAR(*NormalizedEntropy(p, y), want / std::log(2.0), 1e-12);
  EXPECT_NEAR(*Calibration(p, y), (0.9 + 0.2 + 0.6 + 0.1) / 2, 1e-6);
  // Predicting the base rate gives NE == 1 exactly.
  std::vector<float> base = {0.25f, 0.25f, 0.25f, 0.25f}, y1 = {1, 0, 0, 0};
  EXPECT_NEAR(*NormalizedEntropy(base, y1), 1.0, 1e-12);
  EXPECT_NEAR(*Calibration(base, y1), 1.0, 1e-12);
  // Clipping: a confident wrong prediction costs -log(1e-7), not infinity.
  std::vector<float> wrong = {0.f}, pos = {1};
  EXPECT_NEAR(*LogLoss(wrong, pos), -std::log(1e-7), 1e-9);
  // Weights: weighting a sample 2 equals repeating it.
  std::vector<float> w = {2, 1, 1, 1};
  std::vector<float> p_rep = {0.9f, 0.9f, 0.2f, 0.6f, 0.1f}, y_rep = {1, 1, 0, 1, 0};
  EXPECT_NEAR(*LogLoss(p, y, w), *LogLoss(p_rep, y_rep), 1e-12);
  // Errors.
  std::vector<float> all_neg = {0, 0, 0, 0};
  EXPECT_FALSE(NormalizedEntropy(p, all_neg).ok());
  EXPECT_FALSE(Calibration(p, all_neg).ok());
  std::vector<float> bad_label = {1, 0, 2, 0};
  EXPECT_FALSE(LogLoss(p, bad_label).ok());
  std::vector<float> nan = {0.5f, std::nanf(""), 0.5f, 0.5f};
  EXPECT_FALSE(LogLoss(nan, y).ok());
}

TEST(MetricsTest, ReliabilityBinsEqualWidthAndEqualMass) {
  std::vector<float> p = {0.05f, 0.15f, 0.15f, 0.55f, 0.95f, 1.0f}, y = {0, 0, 1, 1, 1, 1};
  auto r = ReliabilityBins(p, y, {.bins = 10, .binning = Binning::kEqualWidth});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->bins.size(), 10u);
  EXPECT_EQ(r->bins[0].count, 1u);
  EXPECT_EQ(r->bins[1].count, 2u);
  EXPECT_NEAR(r->bins[1].mean_label, 0.5, 1e-12);
  EXPECT_NEAR(r->bins[1].mean_prediction, 0.15, 1e-6);
  EXPECT_EQ(r->bins[5].count, 1u);
  EXPECT_EQ(r->bins[9].count, 2u);  // 0.95 and 1.0 (the closed upper end)
  double ece = (1 * 0.05 + 2 * std::abs(0.15 - 0.5) + 1 * 0.45 + 2 * std::abs(0.975 - 1.0)) / 6;
  EXPECT_NEAR(r->ece, ece, 1e-6);

  std::vector<float> p2 = {0.5f, 0.05f, 1.0f, 0.1f, 0.9f, 0.3f};
  auto m = ReliabilityBins(p2, y, {.bins = 3, .binning = Binning::kEqualMass});
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->bins.size(), 3u);
  for (const auto& b : m->bins) EXPECT_EQ(b.count, 2u);
  EXPECT_FLOAT_EQ(static_cast<float>(m->bins[0].lo), 0.05f);
  EXPECT_FLOAT_EQ(static_cast<float>(m->bins[0].hi), 0.1f);
  EXPECT_FLOAT_EQ(static_cast<float>(m->bins[1].lo), 0.3f);
  EXPECT_FLOAT_EQ(static_cast<float>(m->bins[2].hi), 1.0f);
  // Bin 0 holds 0.05 (label 0) and 0.1 (label 1).
  EXPECT_NEAR(m->bins[0].mean_label, 0.5, 1e-12);
  // Ties never straddle bins: four equal predictions in 2 bins end up in one.
  std::vector<float> tied = {0.3f, 0.3f, 0.3f, 0.3f}, yt = {0, 1, 0, 1};
  auto t = ReliabilityBins(tied, yt, {.bins = 2, .binning = Binning::kEqualMass});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->bins.size(), 1u);
  EXPECT_EQ(t->bins[0].count, 4u);
  std::vector<float> out_of_range = {1.5f, 0.2f, 0.2f, 0.2f};
  EXPECT_FALSE(ReliabilityBins(out_of_range, yt).ok());
}

TEST(MetricsTest, RankMetrics) {
  EXPECT_EQ(HitRate(0, 1), 1.0);
  EXPECT_EQ(HitRate(9, 10), 1.0);
  EXPECT_EQ(HitRate(10, 10), 0.0);
  EXPECT_DOUBLE_EQ(Ndcg(0, 10), 1.0);
  EXPECT_DOUBLE_EQ(Ndcg(2, 10), 0.5);  // 1 / log2(4)
  EXPECT_DOUBLE_EQ(Ndcg(10, 10), 0.0);
  EXPECT_DOUBLE_EQ(ReciprocalRank(3), 0.25);
  // No ties: expected metrics equal the plain ones.
  EXPECT_DOUBLE_EQ(ExpectedNdcg(5, 0, 10), Ndcg(5, 10));
  EXPECT_DOUBLE_EQ(ExpectedReciprocalRank(5, 0), ReciprocalRank(5));
  // Target tied with 3 others after 8 higher: positions 8..11, K = 10 hits 2 of 4.
  EXPECT_DOUBLE_EQ(ExpectedHitRate(8, 3, 10), 0.5);
  EXPECT_DOUBLE_EQ(ExpectedNdcg(8, 3, 10), (1 / std::log2(10.0) + 1 / std::log2(11.0)) / 4);
  EXPECT_DOUBLE_EQ(ExpectedReciprocalRank(0, 1), (1.0 + 0.5) / 2);
}

TEST(MetricsTest, CatalogCoverage) {
  std::vector<uint32_t> recs = {0, 1, 1, 3, 3, 3, 99};
  EXPECT_DOUBLE_EQ(CatalogCoverage(recs, 10), 0.3);
  EXPECT_DOUBLE_EQ(CatalogCoverage({}, 10), 0.0);
  EXPECT_DOUBLE_EQ(CatalogCoverage(recs, 0), 0.0);
}

}  // namespace
}  // namespace adrec::eval

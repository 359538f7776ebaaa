// Compares adrec's AUC, log loss and NDCG with scikit-learn on the same random data: the cases
// go to adrec/eval/testdata/sklearn_metrics.py through the project venv's python
// (core/python_reference.h) and must agree to 1e-9.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <random>

#include <nlohmann/json.hpp>

#include "adrec/core/build_paths.h"
#include "adrec/core/python_reference.h"
#include "adrec/core/testing.h"
#include "adrec/eval/metrics.h"
#include "adrec/eval/ranking.h"

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace adrec::eval {
namespace {

struct AucCase { std::vector<float> y, s, w; };
struct LogLossCase { std::vector<float> y, p, w; };
struct NdcgCase { std::vector<float> scores; uint32_t target; uint32_t k; };

TEST(SklearnReferenceTest, AucLogLossNdcgAgreeWithScikitLearn) {
  const std::filesystem::path python = adrec::build_paths::Python();
  const std::filesystem::path script = std::filesystem::path(adrec::build_paths::SourceDir()) / "adrec/eval/testdata/sklearn_metrics.py";
  if (!std::filesystem::exists(python)) {
    ADREC_SKIP_WITHOUT_REFERENCE("project venv python " + python.string() + " not found (run the setup script to create .venv)");
  }
  ASSERT_TRUE(std::filesystem::exists(script)) << script;

  std::mt19937_64 rng(2024);
  std::uniform_real_distribution<float> unit(0.f, 1.f);
  std::vector<AucCase> aucs;
  for (int c = 0; c < 12; ++c) {
    AucCase a;
    const size_t n = 20 + rng() % 500;
    const bool coarse = c % 2 == 0;  // coarse scores: heavy ties
    for (size_t i = 0; i < n; ++i) {
      float s = coarse ? static_cast<float>(rng() % 8) / 8.f : unit(rng);
      a.s.push_back(s);
      a.y.push_back(unit(rng) < 0.2f + 0.6f * s ? 1.f : 0.f);
      if (c % 3 == 0) a.w.push_back(0.25f + static_cast<float>(rng() % 8) * 0.5f);
    }
    a.y[0] = 1.f;
    a.y[1] = 0.f;
    aucs.push_back(std::move(a));
  }
  std::vector<LogLossCase> lls;
  for (int c = 0; c < 8; ++c) {
    LogLossCase l;
    const size_t n = 10 + rng() % 300;
    for (size_t i = 0; i < n; ++i) {
      float p = unit(rng);
      if (c == 0 && i < 4) p = i % 2 ? 0.f : 1.f;  // exercises the 1e-7 clipping
      l.p.push_back(p);
      l.y.push_back(unit(rng) < p ? 1.f : 0.f);
      if (c % 2 == 1) l.w.push_back(static_cast<float>(1 + rng() % 4));
    }
    l.y[0] = 1.f;
    l.y[1] = 0.f;
    lls.push_back(std::move(l));
  }
  std::vector<NdcgCase> ndcgs;
  for (int c = 0; c < 20; ++c) {
    NdcgCase d;
    const size_t n = 5 + rng() % 200;
    const bool coarse = c % 2 == 0;
    for (size_t i = 0; i < n; ++i) d.scores.push_back(coarse ? static_cast<float>(rng() % 6) : unit(rng));
    d.target = static_cast<uint32_t>(rng() % n);
    d.k = static_cast<uint32_t>(1 + rng() % n);
    ndcgs.push_back(std::move(d));
  }

  nlohmann::json in;
  auto weights = [](const std::vector<float>& w) { return w.empty() ? nlohmann::json(nullptr) : nlohmann::json(w); };
  for (const auto& a : aucs) in["auc"].push_back({{"y", a.y}, {"s", a.s}, {"w", weights(a.w)}});
  for (const auto& l : lls) in["logloss"].push_back({{"y", l.y}, {"p", l.p}, {"w", weights(l.w)}});
  for (const auto& d : ndcgs) in["ndcg"].push_back({{"scores", d.scores}, {"target", d.target}, {"k", d.k}});

  StatusOr<nlohmann::json> reference = adrec::testing::RunPythonReference("adrec/eval/testdata/sklearn_metrics.py", in);
  ASSERT_TRUE(reference.ok()) << reference.status().ToString();
  const nlohmann::json& ref = *reference;
  ASSERT_EQ(ref["auc"].size(), aucs.size());
  ASSERT_EQ(ref["logloss"].size(), lls.size());
  ASSERT_EQ(ref["ndcg"].size(), ndcgs.size());

  for (size_t c = 0; c < aucs.size(); ++c) {
    auto ours = Auc(aucs[c].s, aucs[c].y, aucs[c].w);
    ASSERT_TRUE(ours.ok()) << ours.status().ToString();
    EXPECT_NEAR(*ours, ref["auc"][c].get<double>(), 1e-9) << "AUC case " << c;
  }
  for (size_t c = 0; c < lls.size(); ++c) {
    auto ours = LogLoss(lls[c].p, lls[c].y, lls[c].w);
    ASSERT_TRUE(ours.ok()) << ours.status().ToString();
    EXPECT_NEAR(*ours, ref["logloss"][c].get<double>(), 1e-9) << "log loss case " << c;
  }
  for (size_t c = 0; c < ndcgs.size(); ++c) {
    const auto& d = ndcgs[c];
    RankingTask task;
    task.num_items = static_cast<uint32_t>(d.scores.size());
    task.Add(0, d.target);
    auto r = EvaluateFullRanking(
        task, [&](uint32_t, std::span<float> s) { std::copy(d.scores.begin(), d.scores.end(), s.begin()); },
        {.ks = {d.k}, .coverage_ks = {}, .ties = TieRule::kAverage, .threads = 1});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_NEAR(r->ndcg[0], ref["ndcg"][c].get<double>(), 1e-9) << "NDCG case " << c << " k=" << d.k;
  }
  std::cerr << "compared with scikit-learn " << ref["sklearn"].get<std::string>() << "\n";
}

}  // namespace
}  // namespace adrec::eval

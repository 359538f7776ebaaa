// The RDP accountant against Opacus (adrec/train/testdata/opacus_accountant.py, the project
// venv's opacus) on a grid of sample rates, noise multipliers, steps and δ, plus the closed forms
// and the errors a user sees.
#include "adrec/train/dp_accountant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>

#include <nlohmann/json.hpp>

#include "adrec/core/build_paths.h"
#include "adrec/core/python_reference.h"
#include "adrec/core/testing.h"

namespace adrec::train {
namespace {

TEST(DpAccountant, ClosedFormsAndMonotonicity) {
  // Without subsampling the Gaussian mechanism's RDP is α / (2σ²).
  EXPECT_DOUBLE_EQ(*SubsampledGaussianRdp(1.0, 2.0, 5.0), 5.0 / 8.0);
  EXPECT_EQ(*SubsampledGaussianRdp(0.0, 1.0, 5.0), 0.0);
  EXPECT_TRUE(std::isinf(*SubsampledGaussianRdp(0.1, 0.0, 5.0)));
  // Subsampling amplifies privacy: q < 1 costs less than q = 1 at every order.
  for (double alpha : {1.5, 2.0, 8.0, 32.0}) {
    EXPECT_LT(*SubsampledGaussianRdp(0.01, 1.0, alpha), *SubsampledGaussianRdp(1.0, 1.0, alpha)) << alpha;
  }
  auto eps = [](double sigma, double q, int64_t steps) {
    const DpSteps s{.noise_multiplier = sigma, .sample_rate = q, .steps = steps};
    return EpsilonOf(std::span<const DpSteps>(&s, 1), 1e-5)->epsilon;
  };
  EXPECT_LT(eps(1.0, 0.01, 100), eps(1.0, 0.01, 1000));  // more steps spend more
  EXPECT_GT(eps(0.8, 0.01, 1000), eps(1.6, 0.01, 1000));  // more noise spends less
  EXPECT_GT(eps(1.0, 0.02, 1000), eps(1.0, 0.01, 1000));  // bigger batches spend more
  // Phases compose: one history of two phases equals the same steps as one phase.
  const DpSteps halves[] = {{.noise_multiplier = 1.1, .sample_rate = 0.01, .steps = 500},
                            {.noise_multiplier = 1.1, .sample_rate = 0.01, .steps = 500}};
  EXPECT_NEAR(EpsilonOf(halves, 1e-5)->epsilon, eps(1.1, 0.01, 1000), 1e-12);
  EXPECT_EQ(EpsilonOf({}, 1e-5)->epsilon, 0.0);
  // The noise multiplier found for a budget spends at most that budget, and not much less.
  const double sigma = *NoiseMultiplierFor(2.0, 1e-5, 0.01, 2000);
  EXPECT_LE(eps(sigma, 0.01, 2000), 2.0);
  EXPECT_GT(eps(sigma, 0.01, 2000), 2.0 - 0.01);
  EXPECT_EQ(*NoiseMultiplierFor(2.0, 1e-5, 0.01, 0), 0.0);
}

TEST(DpAccountant, BadInputIsAnErrorThatNamesIt) {
  const DpSteps ok{.noise_multiplier = 1.0, .sample_rate = 0.01, .steps = 10};
  auto message = [](const Status& s) { return s.message(); };
  EXPECT_NE(message(EpsilonOf(std::span<const DpSteps>(&ok, 1), 0.0).status()).find("δ"), std::string::npos);
  EXPECT_NE(message(EpsilonOf(std::span<const DpSteps>(&ok, 1), 1.5).status()).find("δ"), std::string::npos);
  const DpSteps big_q{.noise_multiplier = 1.0, .sample_rate = 1.5, .steps = 10};
  EXPECT_NE(message(EpsilonOf(std::span<const DpSteps>(&big_q, 1), 1e-5).status()).find("sample rate"),
            std::string::npos);
  const DpSteps negative{.noise_multiplier = -1.0, .sample_rate = 0.1, .steps = 10};
  EXPECT_NE(message(EpsilonOf(std::span<const DpSteps>(&negative, 1), 1e-5).status()).find("noise multiplier"),
            std::string::npos);
  const DpSteps no_steps{.noise_multiplier = 1.0, .sample_rate = 0.1, .steps = -3};
  EXPECT_NE(message(EpsilonOf(std::span<const DpSteps>(&no_steps, 1), 1e-5).status()).find("steps"),
            std::string::npos);
  EXPECT_FALSE(SubsampledGaussianRdp(0.1, 1.0, 1.0).ok());  // orders are > 1
  // A budget too small to train: no noise multiplier reaches it.
  StatusOr<double> tiny = NoiseMultiplierFor(1e-9, 1e-5, 0.5, 100000);
  ASSERT_FALSE(tiny.ok());
  EXPECT_NE(tiny.status().message().find("too small a budget"), std::string::npos) << tiny.status().ToString();
  EXPECT_FALSE(NoiseMultiplierFor(0.0, 1e-5, 0.01, 100).ok());
  EXPECT_FALSE(NoiseMultiplierFor(std::numeric_limits<double>::infinity(), 1e-5, 0.01, 100).ok());
}

TEST(DpAccountant, EpsilonAndNoiseEqualOpacus) {
  const std::filesystem::path python = build_paths::Python();
  if (!std::filesystem::exists(python)) {
    ADREC_SKIP_WITHOUT_REFERENCE("project venv python " + python.string() + " not found (run the setup script)");
  }
  if (std::system(("'" + python.string() + "' -c 'import opacus' 2>/dev/null").c_str()) != 0) {
    ADREC_SKIP_WITHOUT_REFERENCE("opacus is not installed in the project venv (requirements/test.txt)");
  }
  nlohmann::json cases;
  std::vector<std::vector<DpSteps>> histories;
  std::vector<double> deltas;
  for (double q : {0.001, 0.004, 0.01, 0.05, 0.2, 1.0}) {
    for (double sigma : {0.5, 0.8, 1.1, 2.0, 5.0}) {
      for (int64_t steps : {1, 100, 10000}) {
        for (double delta : {1e-5, 1e-3}) {
          histories.push_back({{.noise_multiplier = sigma, .sample_rate = q, .steps = steps}});
          deltas.push_back(delta);
        }
      }
    }
  }
  histories.push_back({{.noise_multiplier = 1.0, .sample_rate = 0.01, .steps = 300},
                       {.noise_multiplier = 2.0, .sample_rate = 0.05, .steps = 700}});  // two phases
  deltas.push_back(1e-6);
  for (size_t c = 0; c < histories.size(); ++c) {
    nlohmann::json h = nlohmann::json::array();
    for (const DpSteps& s : histories[c]) h.push_back({{"sigma", s.noise_multiplier}, {"q", s.sample_rate}, {"steps", s.steps}});
    cases["epsilon"].push_back({{"history", h}, {"delta", deltas[c]}});
  }
  struct RdpCase { double q, sigma, alpha; };
  std::vector<RdpCase> rdps;
  for (double q : {0.001, 0.02, 0.3}) {
    for (double sigma : {0.6, 1.0, 3.0}) {
      for (double alpha : {1.1, 1.5, 2.0, 3.7, 10.9, 12.0, 63.0}) rdps.push_back({q, sigma, alpha});
    }
  }
  for (const RdpCase& r : rdps) cases["rdp"].push_back({{"q", r.q}, {"sigma", r.sigma}, {"alpha", r.alpha}});
  struct NoiseCase { double epsilon, delta, q; int64_t steps; };
  const std::vector<NoiseCase> noises = {{0.5, 1e-5, 0.01, 1000}, {1, 1e-5, 0.004, 5000}, {2, 1e-5, 0.01, 2000},
                                         {4, 1e-6, 0.02, 3000},   {8, 1e-5, 0.05, 1000}};
  for (const NoiseCase& n : noises) {
    cases["noise"].push_back({{"epsilon", n.epsilon}, {"delta", n.delta}, {"q", n.q}, {"steps", n.steps}});
  }

  StatusOr<nlohmann::json> reference = adrec::testing::RunPythonReference("adrec/train/testdata/opacus_accountant.py", cases);
  ASSERT_TRUE(reference.ok()) << reference.status().ToString();
  const nlohmann::json& ref = *reference;
  ASSERT_EQ(ref["epsilon"].size(), histories.size());
  for (size_t c = 0; c < histories.size(); ++c) {
    StatusOr<PrivacySpent> ours = EpsilonOf(histories[c], deltas[c]);
    ASSERT_TRUE(ours.ok()) << ours.status().ToString();
    const double theirs = ref["epsilon"][c]["epsilon"].get<double>();
    // The bar is 1e-3; the same formulas agree far closer (relative, for ε in the hundreds).
    EXPECT_NEAR(ours->epsilon, theirs, 1e-3) << "case " << c;
    EXPECT_NEAR(ours->epsilon, theirs, 1e-9 * std::max(1.0, theirs)) << "case " << c;
    EXPECT_EQ(ours->order, ref["epsilon"][c]["order"].get<double>()) << "case " << c;
  }
  for (size_t c = 0; c < rdps.size(); ++c) {
    const double ours = *SubsampledGaussianRdp(rdps[c].q, rdps[c].sigma, rdps[c].alpha);
    const double theirs = ref["rdp"][c].get<double>();
    EXPECT_NEAR(ours, theirs, 1e-9 * std::max(1.0, std::fabs(theirs)))
        << "q " << rdps[c].q << " σ " << rdps[c].sigma << " α " << rdps[c].alpha;
  }
  for (size_t c = 0; c < noises.size(); ++c) {
    const double ours = *NoiseMultiplierFor(noises[c].epsilon, noises[c].delta, noises[c].q, noises[c].steps);
    EXPECT_NEAR(ours, ref["noise"][c].get<double>(), 1e-9) << "target ε " << noises[c].epsilon;
  }
  std::cerr << "compared with opacus " << ref["opacus"].get<std::string>() << "\n";
}

}  // namespace
}  // namespace adrec::train

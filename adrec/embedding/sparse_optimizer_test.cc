#include "adrec/embedding/sparse_optimizer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace adrec::embedding {
namespace {

constexpr int64_t kRows = 12, kDim = 5;

// One step's gradient, as a batch produces it: occurrences of rows (with repeats; some rows
// missing) with a gradient each. The sparse optimiser gets the per-row sums over unique rows,
// the dense reference the full [rows, dim] gradient (zero for missing rows).
struct StepGrad {
  torch::Tensor unique_rows, unique_grad, dense_grad, touched;  // touched: bool [rows]
};

StepGrad MakeStepGrad(int step, bool all_rows) {
  torch::manual_seed(100 + step);
  torch::Tensor occ = all_rows ? torch::cat({torch::arange(kRows), torch::randint(kRows, {6})})
                               : torch::randint(kRows / 2, {9}) * 2 + (step % 2);  // half the rows, repeated
  torch::Tensor g = torch::randn({occ.size(0), kDim});
  StepGrad s;
  s.dense_grad = torch::zeros({kRows, kDim}).index_add_(0, occ, g);
  auto [uniq, inverse] = at::_unique(occ, /*sorted=*/false, /*return_inverse=*/true);
  s.unique_rows = uniq;
  s.unique_grad = torch::zeros({uniq.size(0), kDim}).index_add_(0, inverse, g);
  s.touched = torch::zeros({kRows}, torch::kBool).index_fill_(0, uniq, true);
  return s;
}

std::unique_ptr<SparseOptimizer> MakeOpt(const SparseOptimizerOptions& o) {
  auto opt = SparseOptimizer::Make(o);
  EXPECT_TRUE(opt.ok()) << opt.status().ToString();
  (*opt)->Init(kRows, kDim, torch::kCPU);
  return std::move(*opt);
}

// Runs both the fused CPU loop and the torch-ops (CUDA) path.
class SparseOptimizerTest : public ::testing::TestWithParam<bool> {
 protected:
  bool fused() const { return GetParam(); }
};

TEST_P(SparseOptimizerTest, RowWiseAdagradMatchesFormulaOnDenseTensor) {
  SparseOptimizerOptions o;
  o.kind = "adagrad";
  o.lr = 0.1;
  o.eps = 1e-6;
  o.weight_decay = 0.01;
  o.initial_accumulator = 0.05;
  auto opt = MakeOpt(o);
  torch::manual_seed(1);
  torch::Tensor w = torch::randn({kRows, kDim});
  torch::Tensor ref = w.clone();
  torch::Tensor acc = torch::full({kRows}, o.initial_accumulator);
  for (int step = 0; step < 6; ++step) {
    StepGrad s = MakeStepGrad(step, /*all_rows=*/false);
    opt->Apply(w, s.unique_rows, s.unique_grad, fused());
    // Dense reference: state[r] += mean(g_r²); w_r -= lr g_r / (sqrt(state[r]) + eps), touched rows only.
    torch::Tensor mask = s.touched.unsqueeze(1).to(torch::kFloat);
    torch::Tensor g = (s.dense_grad + o.weight_decay * ref) * mask;
    acc += g.square().mean(1);
    ref -= o.lr * g / (acc.sqrt() + o.eps).unsqueeze(1);
  }
  EXPECT_TRUE(torch::allclose(w, ref, 1e-5, 1e-6)) << (w - ref).abs().max();
  EXPECT_TRUE(torch::allclose(opt->State()[0].second, acc, 1e-5, 1e-6));
}

TEST_P(SparseOptimizerTest, LazyAdamMatchesTorchAdamWhenEveryRowIsTouched) {
  SparseOptimizerOptions o;
  o.kind = "adam";
  o.lr = 0.05;
  o.weight_decay = 0.02;
  auto opt = MakeOpt(o);
  torch::manual_seed(2);
  torch::Tensor w = torch::randn({kRows, kDim});
  torch::Tensor param = w.clone().requires_grad_(true);
  torch::optim::Adam ref({param}, torch::optim::AdamOptions(o.lr).betas({o.beta1, o.beta2}).eps(o.eps).weight_decay(
                                      o.weight_decay));
  for (int step = 0; step < 8; ++step) {
    StepGrad s = MakeStepGrad(step, /*all_rows=*/true);
    opt->Apply(w, s.unique_rows, s.unique_grad, fused());
    param.mutable_grad() = s.dense_grad.clone();
    ref.step();
  }
  EXPECT_TRUE(torch::allclose(w, param.detach(), 1e-5, 1e-5)) << (w - param.detach()).abs().max();
}

TEST_P(SparseOptimizerTest, LazyAdamLeavesUntouchedRowsAndCountsStepsPerRow) {
  SparseOptimizerOptions o;
  o.kind = "adam";
  o.lr = 0.05;
  auto opt = MakeOpt(o);
  torch::manual_seed(3);
  torch::Tensor w = torch::randn({kRows, kDim});
  // Per-row reference: each row runs its own Adam over the steps that touched it.
  torch::Tensor ref = w.clone(), m = torch::zeros_like(w), v = torch::zeros_like(w);
  std::vector<int> t(kRows, 0);
  for (int step = 0; step < 7; ++step) {
    StepGrad s = MakeStepGrad(step, /*all_rows=*/false);
    torch::Tensor before = w.clone();
    opt->Apply(w, s.unique_rows, s.unique_grad, fused());
    for (int64_t r = 0; r < kRows; ++r) {
      if (!s.touched[r].item<bool>()) {
        EXPECT_TRUE(torch::equal(w[r], before[r])) << "untouched row " << r << " moved at step " << step;
        continue;
      }
      ++t[r];
      torch::Tensor g = s.dense_grad[r];
      m[r] = o.beta1 * m[r] + (1 - o.beta1) * g;
      v[r] = o.beta2 * v[r] + (1 - o.beta2) * g * g;
      const double bc1 = 1 - std::pow(o.beta1, t[r]), bc2 = 1 - std::pow(o.beta2, t[r]);
      ref[r] -= o.lr * (m[r] / bc1) / ((v[r] / bc2).sqrt() + o.eps);
    }
  }
  EXPECT_TRUE(torch::allclose(w, ref, 1e-5, 1e-5)) << (w - ref).abs().max();
  torch::Tensor steps = opt->State()[2].second;
  int partial = 0;
  for (int64_t r = 0; r < kRows; ++r) {
    EXPECT_EQ(steps[r].item<int64_t>(), t[r]) << "row " << r;
    partial += t[r] > 0 && t[r] < 4;
  }
  EXPECT_GT(partial, 0) << "the workload should skip rows on some steps";
}

TEST_P(SparseOptimizerTest, SgdMatchesTorchSgd) {
  for (bool all_rows : {false, true}) {
    SparseOptimizerOptions o;
    o.kind = "sgd";
    o.lr = 0.3;
    o.weight_decay = all_rows ? 0.1 : 0.0;  // torch's SGD decays untouched rows too
    auto opt = MakeOpt(o);
    torch::manual_seed(4);
    torch::Tensor w = torch::randn({kRows, kDim});
    torch::Tensor param = w.clone().requires_grad_(true);
    torch::optim::SGD ref({param}, torch::optim::SGDOptions(o.lr).weight_decay(o.weight_decay));
    for (int step = 0; step < 5; ++step) {
      StepGrad s = MakeStepGrad(step, all_rows);
      opt->Apply(w, s.unique_rows, s.unique_grad, fused());
      param.mutable_grad() = s.dense_grad.clone();
      ref.step();
    }
    EXPECT_TRUE(torch::allclose(w, param.detach(), 1e-5, 1e-6)) << "all_rows " << all_rows;
  }
}

// FTRL-proximal, Algorithm 1 of McMahan et al. 2013, one coordinate at a time in double.
struct ScalarFtrl {
  double alpha, beta, l1, l2;
  double z = 0, n = 0;
  double Update(double w, double g) {
    const double sigma = (std::sqrt(n + g * g) - std::sqrt(n)) / alpha;
    z += g - sigma * w;
    n += g * g;
    if (std::fabs(z) <= l1) return 0.0;
    const double sgn = z < 0 ? -1.0 : 1.0;
    return -(z - sgn * l1) / ((beta + std::sqrt(n)) / alpha + l2);
  }
};

TEST_P(SparseOptimizerTest, FtrlMatchesScalarReference) {
  SparseOptimizerOptions o;
  o.kind = "ftrl";
  o.ftrl_alpha = 0.1;
  o.ftrl_beta = 1.0;
  o.ftrl_l1 = 0.3;  // large enough that some coordinates are exactly zero
  o.ftrl_l2 = 0.5;
  auto opt = MakeOpt(o);
  torch::manual_seed(5);
  torch::Tensor w = torch::randn({kRows, kDim}) * 0.1;
  std::vector<double> ref(w.data_ptr<float>(), w.data_ptr<float>() + kRows * kDim);
  std::vector<ScalarFtrl> coord(kRows * kDim, ScalarFtrl{o.ftrl_alpha, o.ftrl_beta, o.ftrl_l1, o.ftrl_l2});
  for (int step = 0; step < 6; ++step) {
    StepGrad s = MakeStepGrad(step, /*all_rows=*/false);
    opt->Apply(w, s.unique_rows, s.unique_grad, fused());
    for (int64_t r = 0; r < kRows; ++r) {
      if (!s.touched[r].item<bool>()) continue;
      for (int64_t j = 0; j < kDim; ++j) {
        ref[r * kDim + j] = coord[r * kDim + j].Update(ref[r * kDim + j], s.dense_grad[r][j].item<double>());
      }
    }
  }
  int zeros = 0;
  for (int64_t i = 0; i < kRows * kDim; ++i) {
    EXPECT_NEAR(w.data_ptr<float>()[i], ref[i], 1e-5) << "coordinate " << i;
    zeros += ref[i] == 0.0;
  }
  EXPECT_GT(zeros, 0) << "l1 should zero some coordinates";
  EXPECT_LT(zeros, kRows * kDim);
}

TEST_P(SparseOptimizerTest, ResetAndResizeGiveFreshState) {
  SparseOptimizerOptions o;
  o.kind = "adagrad";
  o.initial_accumulator = 0.25;
  auto opt = MakeOpt(o);
  torch::Tensor w = torch::zeros({kRows, kDim});
  opt->Apply(w, torch::tensor({1, 3}, torch::kLong), torch::ones({2, kDim}), fused());
  EXPECT_FLOAT_EQ(opt->State()[0].second[3].item<float>(), 1.25f);
  opt->ResetRows(torch::tensor({3}, torch::kLong));
  EXPECT_FLOAT_EQ(opt->State()[0].second[3].item<float>(), 0.25f);
  EXPECT_FLOAT_EQ(opt->State()[0].second[1].item<float>(), 1.25f);
  opt->Resize(kRows + 4);
  torch::Tensor sum = opt->State()[0].second;
  ASSERT_EQ(sum.size(0), kRows + 4);
  EXPECT_FLOAT_EQ(sum[1].item<float>(), 1.25f);
  EXPECT_FLOAT_EQ(sum[kRows + 2].item<float>(), 0.25f);
}

INSTANTIATE_TEST_SUITE_P(Paths, SparseOptimizerTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "FusedCpu" : "TorchOps"; });

TEST(SparseOptimizer, FusedAndTorchPathsAgreeForEveryKind) {
  for (const char* kind : {"adagrad", "adam", "sgd", "ftrl"}) {
    SparseOptimizerOptions o;
    o.kind = kind;
    o.weight_decay = 0.01;
    auto a = MakeOpt(o), b = MakeOpt(o);
    torch::manual_seed(6);
    torch::Tensor wa = torch::randn({kRows, kDim}), wb = wa.clone();
    for (int step = 0; step < 4; ++step) {
      StepGrad s = MakeStepGrad(step, false);
      a->Apply(wa, s.unique_rows, s.unique_grad, true);
      b->Apply(wb, s.unique_rows, s.unique_grad, false);
    }
    EXPECT_TRUE(torch::allclose(wa, wb, 1e-5, 1e-6)) << kind;
  }
}

TEST(SparseOptimizer, UnknownKindIsAnErrorNamingTheChoices) {
  SparseOptimizerOptions o;
  o.kind = "rmsprop";
  auto opt = SparseOptimizer::Make(o);
  ASSERT_FALSE(opt.ok());
  EXPECT_NE(opt.status().message().find("adagrad, adam, sgd, ftrl"), std::string::npos);
}

TEST(SparseOptimizer, CudaMatchesCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  for (const char* kind : {"adagrad", "adam", "sgd", "ftrl"}) {
    SparseOptimizerOptions o;
    o.kind = kind;
    auto cpu = SparseOptimizer::Make(o).value();
    auto gpu = SparseOptimizer::Make(o).value();
    cpu->Init(kRows, kDim, torch::kCPU);
    gpu->Init(kRows, kDim, torch::kCUDA);
    torch::manual_seed(7);
    torch::Tensor wc = torch::randn({kRows, kDim}), wg = wc.to(torch::kCUDA);
    for (int step = 0; step < 3; ++step) {
      StepGrad s = MakeStepGrad(step, false);
      cpu->Apply(wc, s.unique_rows, s.unique_grad, true);
      gpu->Apply(wg, s.unique_rows.to(torch::kCUDA), s.unique_grad.to(torch::kCUDA), true);
    }
    EXPECT_TRUE(torch::allclose(wc, wg.cpu(), 1e-5, 1e-6)) << kind;
  }
}

}  // namespace
}  // namespace adrec::embedding

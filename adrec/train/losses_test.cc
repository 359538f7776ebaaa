#include "adrec/train/losses.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "adrec/core/file.h"
#include "adrec/core/testing.h"
#include "adrec/models/testing.h"
#include "adrec/tensor/tensor_io.h"

namespace adrec::train {
namespace {

// The loss by hand: per row, the positive against every distinct candidate that is not it.
double BruteForce(const torch::Tensor& h, const torch::Tensor& targets, const torch::Tensor& table,
                  const std::vector<int64_t>& candidates, double temperature) {
  double total = 0;
  const int64_t n = h.size(0);
  for (int64_t r = 0; r < n; ++r) {
    const int64_t t = targets[r].item<int64_t>();
    auto cosine = [&](int64_t item) {
      torch::Tensor a = h[r], b = table[item];
      return (a.dot(b) / (a.norm() * b.norm())).item<double>() / temperature;
    };
    const double pos = cosine(t);
    double denom = std::exp(pos);
    for (int64_t c : candidates) {
      if (c != t) denom += std::exp(cosine(c));
    }
    total += -(pos - std::log(denom));
  }
  return total / static_cast<double>(n);
}

TEST(MaskedBce, MeanPerTargetOverDefinedSamplesWeightedSummed) {
  torch::manual_seed(3);
  const torch::Tensor logits = torch::randn({5, 3});
  const torch::Tensor labels = torch::tensor({1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 1, 0, 0}, torch::kFloat32).view({5, 3});
  // Target 2 is defined on two samples only, target 1 on none.
  const torch::Tensor mask = torch::tensor({1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 0, 1, 0, 0}, torch::kFloat32).view({5, 3});
  const torch::Tensor weights = torch::tensor({1.0f, 0.5f, 2.0f});
  double want = 0;
  for (int64_t t = 0; t < 3; ++t) {
    double sum = 0;
    int n = 0;
    for (int64_t i = 0; i < 5; ++i) {
      if (mask[i][t].item<float>() == 0) continue;
      const double z = logits[i][t].item<double>(), y = labels[i][t].item<double>();
      sum += -(y * std::log(1 / (1 + std::exp(-z))) + (1 - y) * std::log(1 - 1 / (1 + std::exp(-z))));
      ++n;
    }
    want += weights[t].item<double>() * (n > 0 ? sum / n : 0.0);
  }
  EXPECT_NEAR(MaskedBce(logits, labels, mask, weights).item<double>(), want, 1e-5);
  // bf16 logits (autocast) are scored in float32: the same value as their float32 copy.
  const torch::Tensor half = logits.to(torch::kBFloat16);
  EXPECT_EQ(MaskedBce(half, labels, mask, weights).item<float>(),
            MaskedBce(half.to(torch::kFloat32), labels, mask, weights).item<float>());
  EXPECT_THROW(MaskedBce(logits, labels.view({3, 5}), mask, weights), c10::Error);
}

// Distillation: T² × (BCE(s/T, σ(t/T)) − the teacher's own entropy), by hand; zero with zero
// gradient where the student agrees with the teacher.
TEST(DistillationLoss, IsTheTemperedKlOfBernoullisAndVanishesAtAgreement) {
  torch::manual_seed(5);
  const torch::Tensor s = torch::randn({6, 2}), t = torch::randn({6, 2}) * 2;
  const torch::Tensor mask = torch::tensor({1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 0}, torch::kFloat32).view({6, 2});
  const torch::Tensor w = torch::tensor({1.0f, 0.5f});
  const double T = 2.0;
  auto sig = [](double z) { return 1 / (1 + std::exp(-z)); };
  double want = 0;
  for (int64_t k = 0; k < 2; ++k) {
    double sum = 0;
    int n = 0;
    for (int64_t i = 0; i < 6; ++i) {
      if (mask[i][k].item<float>() == 0) continue;
      const double p = sig(t[i][k].item<double>() / T), q = sig(s[i][k].item<double>() / T);
      sum += p * std::log(p / q) + (1 - p) * std::log((1 - p) / (1 - q));  // KL(teacher ‖ student)
      ++n;
    }
    want += w[k].item<double>() * sum / n;
  }
  EXPECT_NEAR(DistillationLoss(s, t, mask, w, T).item<double>(), T * T * want, 1e-5);
  const torch::Tensor agree = t.clone().requires_grad_(true);
  const torch::Tensor zero = DistillationLoss(agree, t, mask, w, T);
  zero.backward();
  EXPECT_NEAR(zero.item<double>(), 0.0, 1e-6);
  EXPECT_LT(agree.grad().abs().max().item<double>(), 1e-6);
}

TEST(SampledSoftmaxLoss, EqualsTheFormulaWithAccidentalHitsRemoved) {
  torch::manual_seed(1);
  torch::Tensor table = torch::randn({11, 6}, torch::kFloat64);
  torch::Tensor h = torch::randn({4, 6}, torch::kFloat64);
  torch::Tensor targets = torch::tensor({3, 5, 3, 9}, torch::kInt64);
  torch::Tensor negatives = torch::tensor({1, 5, 7}, torch::kInt64);  // 5 is row 1's positive
  SampledSoftmaxOptions o;
  o.temperature = 0.5;
  o.in_batch = false;
  EXPECT_NEAR(SampledSoftmaxLoss(h, targets, table, o, negatives).item<double>(),
              BruteForce(h, targets, table, {1, 5, 7}, 0.5), 1e-6);
  // In-batch: the other rows' positives join (row 0 and row 2 share item 3: not a negative).
  o.in_batch = true;
  const double with_batch = SampledSoftmaxLoss(h, targets, table, o, negatives).item<double>();
  // Repeated candidates count once per occurrence in the sampled softmax; the brute force lists
  // them the same way: negatives, then every row's positive.
  EXPECT_NEAR(with_batch, BruteForce(h, targets, table, {1, 5, 7, 3, 5, 3, 9}, 0.5), 1e-6);
  // With more rows than in_batch_max, a random subset of the positives joins: the loss lies
  // between none and all of them joining, and equals the formula over the subset drawn.
  o.in_batch_max = 2;
  torch::manual_seed(9);
  const double subset = SampledSoftmaxLoss(h, targets, table, o, negatives).item<double>();
  torch::manual_seed(9);
  torch::Tensor drawn = targets.index_select(0, torch::randperm(4, torch::kInt64).narrow(0, 0, 2));
  EXPECT_NEAR(subset, BruteForce(h, targets, table, {1, 5, 7, drawn[0].item<int64_t>(), drawn[1].item<int64_t>()}, 0.5), 1e-6);
}

TEST(SampledSoftmaxLoss, GradientsFlowAndUniformNegativesStayInRange) {
  torch::manual_seed(2);
  torch::Tensor table = torch::randn({21, 8}).requires_grad_();
  torch::Tensor h = torch::randn({5, 8}).requires_grad_();
  torch::Tensor targets = torch::randint(1, 21, {5}, torch::kInt64);
  SampledSoftmaxOptions o;
  o.num_negatives = 64;
  torch::Tensor neg = UniformNegatives(20, o, torch::kCPU);
  EXPECT_EQ(neg.size(0), 64);
  EXPECT_GE(neg.min().item<int64_t>(), 1);
  EXPECT_LE(neg.max().item<int64_t>(), 20);
  torch::Tensor loss = SampledSoftmaxLoss(h, targets, table, o, neg);
  loss.backward();
  EXPECT_TRUE(std::isfinite(loss.item<float>()));
  EXPECT_GT(h.grad().abs().sum().item<float>(), 0.f);
  EXPECT_EQ(table.grad()[0].abs().sum().item<float>(), 0.f);  // the padding row is never a candidate
}

// The PyTorch reference trainer (bench/reference/train_sequence.py, the other side of the speed
// benchmark) computes the same loss on the same inputs, with and without in-batch negatives.
TEST(SampledSoftmaxLoss, PyTorchTwinGivesTheSameLoss) {
  if (std::string why = models::testing::PythonTwinUnavailable(); !why.empty()) ADREC_SKIP_WITHOUT_REFERENCE(why);
  ScopedTempDir tmp("adrec-loss-twin");
  std::vector<std::string> dirs;
  for (bool in_batch : {false, true}) {
    torch::manual_seed(in_batch ? 4 : 3);
    torch::Tensor table = torch::randn({41, 12});
    torch::Tensor h = torch::randn({30, 12});
    torch::Tensor targets = torch::randint(1, 41, {30}, torch::kInt64);
    SampledSoftmaxOptions o;
    o.num_negatives = 16;
    o.in_batch = in_batch;
    torch::Tensor negatives = UniformNegatives(40, o, torch::kCPU);
    const torch::Tensor loss = SampledSoftmaxLoss(h, targets, table, o, negatives);
    const std::string dir = (tmp.path() / (in_batch ? "in_batch" : "uniform")).string();
    std::filesystem::create_directories(dir);
    ASSERT_TRUE(tensor::SaveTensors(dir + "/loss.safetensors",
                                  {{"hidden", h}, {"targets", targets}, {"table", table}, {"negatives", negatives},
                                   {"expected", loss.reshape({1})}},
                                  {{"temperature", "0.05"}, {"in_batch", in_batch ? "1" : "0"}})
                    .ok());
    dirs.push_back(dir);
  }
  models::testing::ExpectTwinAgrees("train_sequence.py", dirs, 1e-5);
}

// The in-batch softmax written out with doubles: cosine / temperature, logQ terms, repeats of
// the row's own item and accidental uniform hits left out of the denominator.
TEST(InBatchSoftmaxLoss, EqualsTheFormulaWithLogQAndRepeatsRemoved) {
  torch::manual_seed(3);
  const int64_t B = 5, M = 4, d = 6, N = 50;
  const torch::Tensor q = torch::randn({B, d}), v = torch::randn({B, d}), neg = torch::randn({M, d});
  const torch::Tensor items = torch::tensor(std::vector<int64_t>{3, 7, 3, 9, 11});  // rows 0 and 2 share item 3
  const torch::Tensor neg_ids = torch::tensor(std::vector<int64_t>{7, 20, 21, 22});  // 7 is row 1's own item
  const torch::Tensor log_p = torch::log(torch::tensor(std::vector<float>{0.2f, 0.1f, 0.2f, 0.05f, 0.01f}));
  for (bool logq : {false, true}) {
    InBatchSoftmaxOptions o;
    o.temperature = 0.1;
    o.logq = logq;
    const double got = InBatchSoftmaxLoss(q, v, items, log_p, neg, neg_ids, N, o).item<double>();
    auto cosine = [](const torch::Tensor& a, const torch::Tensor& b) {
      double ab = 0, aa = 0, bb = 0;
      for (int64_t j = 0; j < a.size(0); ++j) {
        const double x = a[j].item<double>(), y = b[j].item<double>();
        ab += x * y;
        aa += x * x;
        bb += y * y;
      }
      return ab / std::sqrt(aa * bb);
    };
    double want = 0;
    for (int64_t i = 0; i < B; ++i) {
      std::vector<double> logits;
      double own = 0;
      for (int64_t j = 0; j < B; ++j) {
        const double l = cosine(q[i], v[j]) / 0.1 - (logq ? log_p[j].item<double>() + std::log(double(B)) : 0.0);
        if (j == i) own = l;
        if (j != i && items[j].item<int64_t>() == items[i].item<int64_t>()) continue;
        logits.push_back(l);
      }
      for (int64_t m = 0; m < M; ++m) {
        if (neg_ids[m].item<int64_t>() == items[i].item<int64_t>()) continue;
        logits.push_back(cosine(q[i], neg[m]) / 0.1 - (logq ? std::log(double(M) / N) : 0.0));
      }
      double z = 0;
      for (double l : logits) z += std::exp(l);
      want += -(own - std::log(z));
    }
    want /= B;
    EXPECT_NEAR(got, want, 1e-4 * std::max(1.0, std::fabs(want))) << "logq " << logq;
  }
  // Gradients reach both towers and the negatives.
  torch::Tensor qg = q.clone().requires_grad_(), vg = v.clone().requires_grad_(), ng = neg.clone().requires_grad_();
  InBatchSoftmaxLoss(qg, vg, items, log_p, ng, neg_ids, N, {}).backward();
  EXPECT_GT(qg.grad().abs().sum().item<double>(), 0);
  EXPECT_GT(vg.grad().abs().sum().item<double>(), 0);
  EXPECT_GT(ng.grad().abs().sum().item<double>(), 0);
}

// logQ: each candidate's logit less log(n_in_batch · p_j + M / V), the positive's too.
TEST(SampledSoftmaxLoss, LogQCorrectionSubtractsTheLogOfEachCandidatesExpectedCount) {
  torch::manual_seed(9);
  const int64_t V = 6;
  const torch::Tensor table = torch::randn({V + 1, 4}), h = torch::randn({2, 4});
  const torch::Tensor targets = torch::tensor({1, 3}, torch::kInt64), negatives = torch::tensor({2, 5, 3}, torch::kInt64);
  const torch::Tensor p = torch::tensor({0.0, 0.4, 0.1, 0.2, 0.1, 0.1, 0.1}, torch::kFloat64);
  SampledSoftmaxOptions o;
  o.l2_normalize = false;
  o.temperature = 1.0;
  o.logq = true;
  const double uniform = 3.0 / V;
  auto expected = [&](int64_t j) { return 2 * p[j].item<double>() + uniform; };
  double want = 0;
  for (int64_t r = 0; r < 2; ++r) {
    const int64_t t = targets[r].item<int64_t>();
    auto logit = [&](int64_t j) { return h[r].dot(table[j]).item<double>() - std::log(expected(j)); };
    double denom = std::exp(logit(t));
    for (int64_t j : {2, 5, 3, 1, 3}) {  // the negatives, then the in-batch targets; the row's own item is no negative
      if (j != t) denom += std::exp(logit(j));
    }
    want += -(logit(t) - std::log(denom));
  }
  EXPECT_NEAR(SampledSoftmaxLoss(h, targets, table, o, negatives, p.log().to(torch::kFloat32)).item<double>(), want / 2, 1e-5);
}

TEST(FullSoftmaxLoss, EveryItemButPaddingIsACandidate) {
  torch::manual_seed(5);
  const torch::Tensor table = torch::randn({7, 4}), h = torch::randn({3, 4});
  const torch::Tensor targets = torch::tensor({1, 6, 3}, torch::kInt64);
  SampledSoftmaxOptions o;
  o.l2_normalize = false;
  // By hand: dot products with rows 1..6 (never the padding row 0).
  double want = 0;
  for (int64_t r = 0; r < 3; ++r) {
    double denom = 0;
    for (int64_t i = 1; i < 7; ++i) denom += std::exp(h[r].dot(table[i]).item<double>());
    want += -(h[r].dot(table[targets[r].item<int64_t>()]).item<double>() - std::log(denom));
  }
  EXPECT_NEAR(FullSoftmaxLoss(h, targets, table, o).item<double>(), want / 3, 1e-5);
  // Cosine / temperature: the sampled loss with every item as a negative gives the same value.
  o.l2_normalize = true;
  o.temperature = 0.1;
  EXPECT_NEAR(FullSoftmaxLoss(h, targets, table, o).item<double>(),
              BruteForce(h, targets, table, {1, 2, 3, 4, 5, 6}, 0.1), 1e-4);
}

TEST(FullSoftmaxLoss, LabelSmoothingSharesEpsilonOverTheCatalogue) {
  torch::manual_seed(6);
  const torch::Tensor table = torch::randn({6, 3}), h = torch::randn({2, 3});
  const torch::Tensor targets = torch::tensor({2, 5}, torch::kInt64);
  SampledSoftmaxOptions o;
  o.l2_normalize = false;
  o.label_smoothing = 0.2;
  // By hand: (1 - ε) of the target's -log p plus ε times the mean of every item's -log p.
  double want = 0;
  for (int64_t r = 0; r < 2; ++r) {
    const torch::Tensor logp = torch::log_softmax(torch::matmul(table.narrow(0, 1, 5), h[r]), 0);
    want += -(0.8 * logp[targets[r].item<int64_t>() - 1].item<double>() + 0.2 * logp.mean().item<double>());
  }
  EXPECT_NEAR(FullSoftmaxLoss(h, targets, table, o).item<double>(), want / 2, 1e-5);
}

// With exclude_seen, a row's seen items (not its target, not the padding 0) leave its softmax and
// the smoothing's share; a row that saw nothing keeps every candidate.
TEST(FullSoftmaxLoss, SeenItemsAreNoCandidates) {
  torch::manual_seed(4);
  const torch::Tensor table = torch::randn({6, 3});  // 5 items
  const torch::Tensor h = torch::randn({3, 3});
  const torch::Tensor targets = torch::tensor({2, 5, 1}, torch::kInt64);
  // Row 0 saw items 1, 3 and its target 2; row 1 saw 4; row 2 nothing.
  const torch::Tensor seen = torch::tensor({{1, 3, 2}, {4, 0, 0}, {0, 0, 0}}, torch::kInt64);
  const std::vector<std::vector<int64_t>> left = {{2, 4, 5}, {1, 2, 3, 5}, {1, 2, 3, 4, 5}};
  for (double eps : {0.0, 0.3}) {
    SampledSoftmaxOptions o;
    o.l2_normalize = false;
    o.label_smoothing = eps;
    o.exclude_seen = true;
    double want = 0;
    for (int64_t r = 0; r < 3; ++r) {
      const auto& cand = left[static_cast<size_t>(r)];
      torch::Tensor ids = torch::tensor(cand, torch::kInt64);
      const torch::Tensor logp = torch::log_softmax(torch::matmul(table.index_select(0, ids), h[r]), 0);
      const int64_t t = std::find(cand.begin(), cand.end(), targets[r].item<int64_t>()) - cand.begin();
      want += -((1 - eps) * logp[t].item<double>() + eps * logp.mean().item<double>());
    }
    EXPECT_NEAR(FullSoftmaxLoss(h, targets, table, o, seen).item<double>(), want / 3, 1e-5) << "eps " << eps;
  }
  // Off: the seen items stay candidates.
  SampledSoftmaxOptions off;
  off.l2_normalize = false;
  EXPECT_NEAR(FullSoftmaxLoss(h, targets, table, off, seen).item<double>(),
              torch::nn::functional::cross_entropy(torch::matmul(h, table.narrow(0, 1, 5).t()), targets - 1).item<double>(),
              1e-6);
}

TEST(BceOneNegativeLoss, EqualsTheFormula) {
  torch::Tensor table = torch::tensor({{0.0, 0.0}, {1.0, 0.0}, {0.0, 2.0}});
  torch::Tensor h = torch::tensor({{1.0, 1.0}});
  torch::Tensor loss = BceOneNegativeLoss(h, torch::tensor({1}, torch::kInt64), table, torch::tensor({2}, torch::kInt64));
  const double expected = -(std::log(1 / (1 + std::exp(-1.0))) + std::log(1 / (1 + std::exp(2.0))));
  EXPECT_NEAR(loss.item<double>(), expected, 1e-6);
}

}  // namespace
}  // namespace adrec::train

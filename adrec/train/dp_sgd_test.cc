#include "adrec/train/dp_sgd.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <set>

#include "adrec/data/testing.h"
#include "adrec/models/per_sample.h"
#include "adrec/models/testing.h"

namespace adrec::train {
namespace {

using data::FieldKind;
using data::Pooling;
using data::TableKind;

data::TableSpec Table(std::string name, TableKind kind, uint64_t rows) {
  data::TableSpec t;
  t.name = std::move(name);
  t.kind = kind;
  t.rows = rows;
  t.dim = 4;
  t.init_std = 0.3f;
  return t;
}

data::FieldSpec Field(std::string name, FieldKind kind, std::string table, int width = 1) {
  data::FieldSpec f;
  f.name = std::move(name);
  f.kind = kind;
  f.table = std::move(table);
  f.pooling = Pooling::kMean;
  f.width = width;
  return f;
}

// models::testing::SmallShape's inputs from real tables: user and item categorical, "ad" a
// history that shares the item table (a sample can read one row twice), dense 3, text 5.
data::FeatureSpec Spec(TableKind item_kind = TableKind::kHashed) {
  data::FeatureSpec s;
  s.tables = {Table("user", TableKind::kHashed, 7), Table("item", item_kind, 9)};
  s.fields = {Field("user", FieldKind::kCategorical, "user"), Field("item", FieldKind::kCategorical, "item"),
              Field("hist", FieldKind::kSequence, "item"), Field("dense", FieldKind::kDense, "", 3),
              Field("title", FieldKind::kText, "", 5)};
  return s;
}

using data::testing::Csr;

data::Batch MakeBatch(const std::vector<int64_t>& users, const std::vector<int64_t>& items,
                      const std::vector<std::vector<int64_t>>& hist) {
  data::Batch b;
  b.size = users.size();
  std::vector<std::vector<int64_t>> u, it;
  for (size_t i = 0; i < b.size; ++i) {
    u.push_back({users[i]});
    it.push_back({items[i]});
  }
  b.sparse = {Csr(u), Csr(it), Csr(hist)};
  for (size_t i = 0; i < b.size * 3; ++i) b.dense.push_back(0.1f * static_cast<float>(i % 7) - 0.3f);
  b.text = {std::vector<float>(b.size * 5)};
  for (size_t i = 0; i < b.size * 5; ++i) b.text[0][i] = 0.05f * static_cast<float>(i % 11);
  b.scene.assign(b.size, 0);
  return b;
}

std::unique_ptr<embedding::EmbeddingCollection> Collection(const data::FeatureSpec& spec) {
  embedding::CollectionOptions o;
  o.linear_terms = true;
  o.table.optimizer.kind = "sgd";
  o.table.optimizer.lr = 1.0;
  auto c = embedding::EmbeddingCollection::Create(spec, o);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return std::move(*c);
}

torch::Tensor SampleLosses(const torch::Tensor& logits, const torch::Tensor& labels) {
  return torch::binary_cross_entropy_with_logits(logits, labels, {}, {}, at::Reduction::None).sum(1);
}

// Without noise, the private gradient is the mean of the clipped per-sample gradients: checked
// against one backward pass per sample, for the dense layers and every table row.
TEST(DpSgd, NoiselessGradientIsTheMeanOfClippedPerSampleGradients) {
  torch::manual_seed(2);
  const data::FeatureSpec spec = Spec();
  auto emb = Collection(spec);
  auto net = models::testing::MustMake("deepfm", models::testing::SmallShape(2), "[model]\nhidden = [8]\n");
  const data::Batch batch = MakeBatch({1, 2, 3, 1, 5}, {4, 4, 7, 2, 8}, {{4, 4, 1}, {}, {7}, {3, 2}, {6, 0, 8, 8}});
  const torch::Tensor labels = torch::tensor({1.f, 0.f, 0.f, 1.f, 1.f, 0.f, 0.f, 0.f, 1.f, 1.f}).view({5, 2});
  std::vector<torch::Tensor> params;
  for (const auto& p : net->parameters()) params.push_back(p);
  // One backward pass per sample: its gradients and norm.
  struct Own {
    std::vector<torch::Tensor> dense;
    std::vector<std::pair<int, std::pair<torch::Tensor, torch::Tensor>>> rows;  // table, (rows, grad)
    double norm = 0;
  };
  std::vector<Own> own(5);
  for (int64_t i = 0; i < 5; ++i) {
    net->zero_grad();
    auto lookup = emb->Forward(batch, /*train=*/true, 1);
    SampleLosses(net->forward(lookup.input), labels).narrow(0, i, 1).sum().backward();
    double sq = 0;
    for (const auto& p : params) {
      own[i].dense.push_back(p.grad().clone());
      sq += p.grad().pow(2).sum().item<double>();
    }
    for (const auto& t : lookup.touched) {
      own[i].rows.push_back({t.table, {t.rows, t.leaf.grad().clone()}});
      sq += t.leaf.grad().pow(2).sum().item<double>();
    }
    own[i].norm = std::sqrt(sq);
  }
  std::vector<double> norms;
  for (const Own& o : own) norms.push_back(o.norm);
  std::sort(norms.begin(), norms.end());
  const double clip = norms[2];  // the median: some samples are clipped, some not
  DpPlan plan;
  plan.noise_multiplier = 0;
  plan.expected_batch = 4;

  DpGradients got;
  std::vector<torch::Tensor> got_dense;
  {
    models::PerSampleTape tape;
    auto lookup = emb->Forward(batch, /*train=*/true, 1);
    const torch::Tensor losses = SampleLosses(net->forward(lookup.input), labels);
    std::vector<std::pair<std::string, torch::Tensor>> named;
    for (const auto& item : net->named_parameters()) named.emplace_back(item.key(), item.value());
    ASSERT_TRUE(CheckDpCoverage(tape, named, *emb, "deepfm").ok());
    got = PrivateGradients(losses, tape, *emb, &lookup, params, plan, clip, 7, 1);
    for (const auto& p : params) got_dense.push_back(p.grad().clone());
  }
  ASSERT_EQ(got.tables.size(), emb->num_tables());

  std::vector<torch::Tensor> want_dense;
  for (const auto& p : params) want_dense.push_back(torch::zeros_like(p));
  std::vector<torch::Tensor> want_tables;
  for (size_t t = 0; t < emb->num_tables(); ++t) want_tables.push_back(torch::zeros_like(emb->table(t).weight()));
  int clipped = 0;
  for (const Own& o : own) {
    const double c = std::min(1.0, clip / (o.norm + 1e-6));
    clipped += c < 1.0;
    for (size_t k = 0; k < params.size(); ++k) want_dense[k] += c * o.dense[k] / plan.expected_batch;
    for (const auto& [table, rg] : o.rows) want_tables[table].index_add_(0, rg.first, c * rg.second / plan.expected_batch);
  }
  EXPECT_GT(clipped, 0) << "the clip norm should bind for some samples";
  EXPECT_LT(clipped, 5) << "and not for all";
  for (size_t k = 0; k < params.size(); ++k) {
    EXPECT_TRUE(torch::allclose(got_dense[k], want_dense[k], 1e-4, 1e-6)) << "parameter " << k;
  }
  for (size_t t = 0; t < want_tables.size(); ++t) {
    EXPECT_TRUE(torch::allclose(got.tables[t], want_tables[t], 1e-4, 1e-6)) << emb->table(t).spec().name;
  }
}

// The same private step on the GPU as on the CPU: the lookup's per-sample norms, the tape's and
// the noise (drawn on the CPU from the step's generator) agree.
TEST(DpSgd, CudaMatchesCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const data::FeatureSpec spec = Spec();
  const data::Batch batch = MakeBatch({1, 2, 3, 1, 5}, {4, 4, 7, 2, 8}, {{4, 4, 1}, {}, {7}, {3, 2}, {6, 0, 8, 8}});
  const torch::Tensor labels = torch::tensor({1.f, 0.f, 0.f, 1.f, 1.f, 0.f, 0.f, 0.f, 1.f, 1.f}).view({5, 2});
  DpPlan plan;
  plan.noise_multiplier = 0.7;
  plan.expected_batch = 4;
  std::vector<std::vector<torch::Tensor>> grads;
  for (const torch::Device device : {torch::Device(torch::kCPU), torch::Device(torch::kCUDA)}) {
    torch::manual_seed(2);
    embedding::CollectionOptions o;
    o.linear_terms = true;
    o.table.device = device;
    auto emb = embedding::EmbeddingCollection::Create(spec, o);
    ASSERT_TRUE(emb.ok()) << emb.status().ToString();
    torch::manual_seed(3);
    auto net = models::testing::MustMake("dcnv2", models::testing::SmallShape(2), "[model]\ncross_layers = 2\nhidden = [8]\n");
    net->to(device);
    std::vector<torch::Tensor> params;
    for (const auto& p : net->parameters()) params.push_back(p);
    models::PerSampleTape tape;
    auto lookup = (*emb)->Forward(batch, /*train=*/true, 1);
    const torch::Tensor losses = SampleLosses(net->forward(lookup.input), labels.to(device));
    const DpGradients g = PrivateGradients(losses, tape, **emb, &lookup, params, plan, 0.3, 5, 1);
    std::vector<torch::Tensor> all;
    for (const auto& p : params) all.push_back(p.grad().cpu());
    for (const auto& t : g.tables) all.push_back(t.cpu());
    grads.push_back(all);
  }
  ASSERT_EQ(grads[0].size(), grads[1].size());
  for (size_t k = 0; k < grads[0].size(); ++k) {
    EXPECT_TRUE(torch::allclose(grads[0][k], grads[1][k], 1e-4, 1e-5)) << "gradient " << k;
  }
}

// Noise reaches every row of every table (not only the rows the batch read), with standard
// deviation σC / expected batch; the same (seed, step) draws the same noise.
TEST(DpSgd, NoiseCoversEveryRowAndIsReproducible) {
  data::FeatureSpec spec = Spec();
  spec.tables[0].rows = 4000;
  auto emb = Collection(spec);
  auto net = models::testing::MustMake("lr", models::testing::SmallShape(2), "");
  std::vector<torch::Tensor> params;
  for (const auto& p : net->parameters()) params.push_back(p);
  DpPlan plan;
  plan.noise_multiplier = 2.0;
  plan.expected_batch = 10;
  models::PerSampleTape tape;
  const DpGradients a = PrivateGradients(torch::Tensor(), tape, *emb, nullptr, params, plan, 0.5, 3, 9);
  const torch::Tensor user = a.tables[0];
  EXPECT_EQ(user.size(0), 4000);
  EXPECT_NEAR(user.std().item<double>(), 2.0 * 0.5 / 10, 0.004);
  EXPECT_GT((user.abs() > 0).all().item<bool>(), 0);
  const DpGradients b = PrivateGradients(torch::Tensor(), tape, *emb, nullptr, params, plan, 0.5, 3, 9);
  EXPECT_TRUE(torch::equal(a.tables[0], b.tables[0]));
  const DpGradients c = PrivateGradients(torch::Tensor(), tape, *emb, nullptr, params, plan, 0.5, 3, 10);
  EXPECT_FALSE(torch::equal(a.tables[0], c.tables[0]));
  for (const auto& p : params) EXPECT_TRUE(p.grad().defined());
}

TEST(DpSgd, PoissonSampleHasTheExpectedSizeAndDependsOnSeedAndStepOnly) {
  const std::vector<uint64_t> s = PoissonSample(100000, 0.01, 5, 3);
  EXPECT_NEAR(static_cast<double>(s.size()), 1000.0, 120.0);
  EXPECT_TRUE(std::is_sorted(s.begin(), s.end()));
  EXPECT_EQ(std::set<uint64_t>(s.begin(), s.end()).size(), s.size());
  EXPECT_LT(s.back(), 100000u);
  EXPECT_EQ(PoissonSample(100000, 0.01, 5, 3), s);
  EXPECT_NE(PoissonSample(100000, 0.01, 5, 4), s);
  EXPECT_EQ(PoissonSample(10, 1.0, 5, 4).size(), 10u);
  EXPECT_TRUE(PoissonSample(0, 0.5, 5, 4).empty());
}

TEST(DpSgd, PlanPicksTheNoiseForTheBudgetAndNamesBadSettings) {
  DpSgdOptions o;
  o.epsilon = 2;
  auto plan = PlanDpSgd(o, 10000, 100, 3);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_DOUBLE_EQ(plan->sample_rate, 0.01);
  EXPECT_EQ(plan->steps, 300);
  EXPECT_DOUBLE_EQ(plan->expected_batch, 100.0);
  auto spent = DpSummary(o, *plan, plan->steps);
  ASSERT_TRUE(spent.ok());
  EXPECT_LE((*spent)["epsilon"].get<double>(), 2.0);
  EXPECT_GT((*spent)["epsilon"].get<double>(), 1.9);

  o.epsilon = 1e-7;
  auto tiny = PlanDpSgd(o, 10000, 100, 3);
  ASSERT_FALSE(tiny.ok());
  EXPECT_NE(tiny.status().message().find("too small a budget"), std::string::npos) << tiny.status().message();
  o.epsilon = 2;
  o.noise_multiplier = 1;
  EXPECT_NE(PlanDpSgd(o, 10000, 100, 3).status().message().find("not both"), std::string::npos);
  o.noise_multiplier = -1;
  o.clip = 0;
  EXPECT_NE(PlanDpSgd(o, 10000, 100, 3).status().message().find("train.dp_clip"), std::string::npos);
  o.clip = 1;
  o.delta = 1;
  EXPECT_NE(PlanDpSgd(o, 10000, 100, 3).status().message().find("train.dp_delta"), std::string::npos);
  o.delta = 1e-5;
  EXPECT_EQ(PlanDpSgd(o, 0, 100, 3).status().code(), StatusCode::kFailedPrecondition);
  // Clipping alone: σ = 0 spends an unbounded ε, reported as null.
  DpSgdOptions clip_only;
  clip_only.noise_multiplier = 0;
  auto p0 = PlanDpSgd(clip_only, 1000, 100, 1);
  ASSERT_TRUE(p0.ok());
  EXPECT_TRUE((*DpSummary(clip_only, *p0, 10))["epsilon"].is_null());
}

TEST(DpSgd, CoverageNamesNormLayersAndDynamicTables) {
  auto net = models::testing::MustMake("deepfm", models::testing::SmallShape(2), "[model]\nhidden = [8]\nnorm = \"layer\"\n");
  auto emb = Collection(Spec());
  const data::Batch batch = MakeBatch({1, 2}, {3, 4}, {{1}, {2}});
  models::PerSampleTape tape;
  auto lookup = emb->Forward(batch, /*train=*/true, 1);
  net->forward(lookup.input);
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (const auto& item : net->named_parameters()) named.emplace_back(item.key(), item.value());
  const Status s = CheckDpCoverage(tape, named, *emb, "deepfm");
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("mlp.norm.0.weight"), std::string::npos) << s.message();

  auto dynamic = Collection(Spec(TableKind::kDynamic));
  models::PerSampleTape tape2;
  const Status d = CheckDpCoverage(tape2, {}, *dynamic, "deepfm");
  EXPECT_NE(d.message().find("table 'item' is dynamic"), std::string::npos) << d.message();
}

}  // namespace
}  // namespace adrec::train

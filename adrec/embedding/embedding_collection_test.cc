#include <gtest/gtest.h>
#include <torch/torch.h>

#include "adrec/data/testing.h"
#include "adrec/embedding/embedding.h"

namespace adrec::embedding {
namespace {

data::TableSpec Table(std::string name, data::TableKind kind, uint64_t rows, int dim = 4) {
  data::TableSpec t;
  t.name = std::move(name);
  t.kind = kind;
  t.rows = rows;
  t.dim = dim;
  t.init_std = 0.1f;
  return t;
}

data::FieldSpec Field(std::string name, data::FieldKind kind, std::string table,
                      data::Pooling pooling = data::Pooling::kMean, int width = 1) {
  data::FieldSpec f;
  f.name = std::move(name);
  f.kind = kind;
  f.table = std::move(table);
  f.pooling = pooling;
  f.width = width;
  return f;
}

using data::testing::Csr;

using data::FieldKind;
using data::Pooling;
using data::TableKind;

// Three tables of every kind; table "a" is shared by three fields, values repeat inside a
// sample and across fields, some lists are empty, some values are unknown.
data::FeatureSpec MixedSpec() {
  data::FeatureSpec s;
  s.tables = {Table("a", TableKind::kHashed, 50), Table("b", TableKind::kFixed, 10), Table("c", TableKind::kDynamic, 4)};
  s.fields = {
      Field("cat_a", FieldKind::kCategorical, "a"),
      Field("dense", FieldKind::kDense, "", Pooling::kMean, 2),
      Field("cat_a2", FieldKind::kCategorical, "a"),
      Field("tags_a", FieldKind::kMultiHot, "a", Pooling::kMean),
      Field("hist_b", FieldKind::kSequence, "b", Pooling::kSum),
      Field("title", FieldKind::kText, "", Pooling::kMean, 3),
      Field("mh_c", FieldKind::kMultiHot, "c", Pooling::kSum),
      Field("cat_c", FieldKind::kCategorical, "c"),
  };
  return s;
}

data::Batch MixedBatch() {
  data::Batch b;
  b.size = 5;
  b.sparse = {
      Csr({{3}, {3}, {7}, {3}, {100}}),
      Csr({{3}, {8}, {7}, {9}, {3}}),
      Csr({{3, 3, 5}, {}, {1}, {7, 3}, {}}),
      Csr({{1, 2}, {2}, {}, {20}, {1, 1, 1}}),
      Csr({{1000, 2000}, {1000}, {}, {3000, 1000, 1000}, {5}}),
      Csr({{2000}, {7}, {5}, {1000}, {1}}),
  };
  for (int i = 0; i < 10; ++i) b.dense.push_back(0.5f * i);
  b.text = {std::vector<float>(15)};
  for (int i = 0; i < 15; ++i) b.text[0][i] = -1.f * i;
  b.scene = {0, 2, 1, 2, 0};
  return b;
}

std::unique_ptr<EmbeddingCollection> MakeCollection(const data::FeatureSpec& spec, CollectionOptions o) {
  auto c = EmbeddingCollection::Create(spec, o);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(*c) : nullptr;
}

int FindTable(EmbeddingCollection& c, const std::string& name) {
  for (size_t i = 0; i < c.num_tables(); ++i) {
    if (c.table(i).spec().name == name) return static_cast<int>(i);
  }
  ADD_FAILURE() << "no table " << name;
  return -1;
}

// The same lookups with dense weights, torch::embedding / torch::embedding_bag and autograd.
struct DenseReference {
  std::map<std::string, torch::Tensor> weights;  // by table name, requires grad

  std::vector<torch::Tensor> Fields(EmbeddingCollection& c, const data::Batch& batch, const std::string& suffix) {
    std::vector<torch::Tensor> out;
    size_t f = 0;
    for (const data::FieldSpec& field : c.spec().fields) {
      if (!field.is_sparse()) continue;
      EmbeddingTable& t = c.table(FindTable(c, field.table + suffix));
      const data::SparseFieldBatch& fb = batch.sparse[f++];
      std::vector<int64_t> rows(fb.ids.size());
      t.MapIds(fb.ids, rows, /*train=*/false, 0);
      torch::Tensor idx = torch::tensor(rows, torch::kLong);
      torch::Tensor& w = weights[t.spec().name];
      if (field.kind == FieldKind::kCategorical) {
        out.push_back(torch::embedding(w, idx));
      } else {
        torch::Tensor offsets = torch::tensor(fb.offsets, torch::kLong).narrow(0, 0, static_cast<int64_t>(batch.size));
        out.push_back(std::get<0>(torch::embedding_bag(w, idx, offsets, false, field.pooling == Pooling::kMean ? 1 : 0)));
      }
    }
    return out;
  }
};

TEST(EmbeddingCollection, GradientsMatchDenseAutogradAcrossSharedRepeatedAndEmptyLookups) {
  data::FeatureSpec spec = MixedSpec();
  CollectionOptions o;
  o.table.optimizer.kind = "sgd";
  o.table.optimizer.lr = 0.5;
  o.linear_terms = true;
  auto c = MakeCollection(spec, o);
  ASSERT_TRUE(c);
  data::Batch batch = MixedBatch();
  torch::manual_seed(11);
  std::vector<torch::Tensor> targets;
  for (int f = 0; f < 6; ++f) targets.push_back(torch::randn({5, 4}));
  torch::Tensor linear_target = torch::randn({5, 1});

  DenseReference ref;
  for (int step = 1; step <= 3; ++step) {
    EmbeddingCollection::Lookup lookup = c->Forward(batch, /*train=*/true, step);
    if (step == 1) {  // after the first lookup the dynamic table holds every ID
      for (size_t t = 0; t < c->num_tables(); ++t) {
        ref.weights[c->table(t).spec().name] = c->table(t).weight().clone().requires_grad_(true);
      }
    }
    std::vector<torch::Tensor> want = ref.Fields(*c, batch, "");
    std::vector<torch::Tensor> want_linear = ref.Fields(*c, batch, ".linear");
    torch::Tensor want_lin = torch::stack(want_linear).sum(0);
    ASSERT_EQ(lookup.input.sparse.size(), 6u);
    torch::Tensor loss = (lookup.input.linear * linear_target).sum();
    torch::Tensor ref_loss = (want_lin * linear_target).sum();
    for (int f = 0; f < 6; ++f) {
      ASSERT_EQ(lookup.input.sparse[f].sizes(), (std::vector<int64_t>{5, 4}));
      EXPECT_TRUE(torch::allclose(lookup.input.sparse[f], want[f], 1e-6, 1e-7)) << "field " << f << " step " << step;
      loss = loss + (lookup.input.sparse[f] * targets[f]).sum();
      ref_loss = ref_loss + (want[f] * targets[f]).sum();
    }
    EXPECT_TRUE(torch::allclose(lookup.input.linear, want_lin, 1e-6, 1e-7)) << "step " << step;
    loss.backward();
    c->Step(lookup, step);
    ref_loss.backward();
    torch::NoGradGuard no_grad;
    for (auto& [name, w] : ref.weights) {
      w.sub_(0.5 * w.grad());
      w.mutable_grad().zero_();
      torch::Tensor got = c->table(FindTable(*c, name)).weight();
      EXPECT_TRUE(torch::allclose(got, w, 1e-5, 1e-6)) << name << " step " << step << " max diff "
                                                        << (got - w).abs().max().item<float>();
    }
  }
}

// Per-sample norms against one backward pass per sample: rows shared by fields, values repeated
// in a sample, empty lists and the linear companions all count as that sample's own gradient.
TEST(EmbeddingCollection, PerSampleSquaredNormsEqualOneBackwardPerSample) {
  CollectionOptions o;
  o.linear_terms = true;
  auto c = MakeCollection(MixedSpec(), o);
  ASSERT_TRUE(c);
  const data::Batch batch = MixedBatch();
  torch::manual_seed(5);
  std::vector<torch::Tensor> grads;
  for (int f = 0; f < 6; ++f) grads.push_back(torch::randn({5, 4}));
  grads[4] = torch::Tensor();  // a field the loss does not reach
  const torch::Tensor linear_grad = torch::randn({5, 1});
  EmbeddingCollection::Lookup lookup = c->Forward(batch, /*train=*/true, 1);
  const torch::Tensor got = EmbeddingCollection::PerSampleSquaredNorms(lookup, grads, linear_grad);
  ASSERT_EQ(got.sizes(), (std::vector<int64_t>{5}));
  for (int64_t i = 0; i < 5; ++i) {
    EmbeddingCollection::Lookup l = c->Forward(batch, /*train=*/true, 1);
    torch::Tensor loss = (l.input.linear[i] * linear_grad[i]).sum();
    for (int f = 0; f < 6; ++f) {
      if (grads[f].defined()) loss = loss + (l.input.sparse[f][i] * grads[f][i]).sum();
    }
    loss.backward();
    double want = 0;
    for (const auto& t : l.touched) {
      if (t.leaf.grad().defined()) want += t.leaf.grad().pow(2).sum().item<double>();
    }
    EXPECT_NEAR(got[i].item<double>(), want, 1e-5 * (1 + want)) << "sample " << i;
  }
  // Sample 0 reads row 3 of table a three times (cat_a, cat_a2, tags_a twice): the parts add
  // before squaring, so the norm differs from the sum of the fields' own norms.
  const double separate = grads[0][0].pow(2).sum().item<double>() + grads[1][0].pow(2).sum().item<double>();
  EXPECT_GT(std::abs(got[0].item<double>() - separate), 1e-3);
}

TEST(EmbeddingCollection, SharedTablesGiveEqualValuesEqualEmbeddings) {
  auto c = MakeCollection(MixedSpec(), {});
  auto lookup = c->Forward(MixedBatch(), /*train=*/false, 0);
  // cat_a and cat_a2 both hold 3 in samples 0 and 4 (sample 4 of cat_a is 100, of cat_a2 is 3).
  EXPECT_TRUE(torch::equal(lookup.input.sparse[0][0], lookup.input.sparse[1][0]));
  EXPECT_TRUE(torch::equal(lookup.input.sparse[0][3], lookup.input.sparse[1][4]));
  EXPECT_FALSE(torch::equal(lookup.input.sparse[0][0], lookup.input.sparse[1][1]));
  // Fixed table: the unknown code 20 pools row 0.
  EXPECT_TRUE(torch::equal(lookup.input.sparse[3][3], c->table(1).weight()[0]));
  // Empty lists pool to zeros (mean and sum).
  EXPECT_EQ(lookup.input.sparse[2][1].abs().sum().item<float>(), 0.f);
  EXPECT_EQ(lookup.input.sparse[3][2].abs().sum().item<float>(), 0.f);
  EXPECT_FALSE(lookup.input.sparse[0].requires_grad());
  EXPECT_FALSE(lookup.input.linear.defined());
}

TEST(EmbeddingCollection, DenseTextAndSceneCopyTheBatch) {
  auto c = MakeCollection(MixedSpec(), {});
  data::Batch batch = MixedBatch();
  auto lookup = c->Forward(batch, false, 0);
  const ModelInput& in = lookup.input;
  ASSERT_EQ(in.dense.sizes(), (std::vector<int64_t>{5, 2}));
  EXPECT_FLOAT_EQ(in.dense[3][1].item<float>(), 3.5f);
  ASSERT_EQ(in.text.size(), 1u);
  ASSERT_EQ(in.text[0].sizes(), (std::vector<int64_t>{5, 3}));
  EXPECT_FLOAT_EQ(in.text[0][4][2].item<float>(), -14.f);
  EXPECT_EQ(in.scene.scalar_type(), torch::kLong);
  EXPECT_EQ(in.scene[1].item<int64_t>(), 2);
  EXPECT_EQ(in.batch_size(), 5);
  // The batch's buffers are reused by the next BuildBatch: the input must own its copy.
  batch.dense[7] = 99.f;
  EXPECT_FLOAT_EQ(in.dense[3][1].item<float>(), 3.5f);
}

TEST(EmbeddingCollection, OptimizersComeFromTableSpecDefaultsAndLinearOption) {
  data::FeatureSpec spec = MixedSpec();
  spec.tables[1].optimizer = "adam";
  CollectionOptions o;
  o.table.optimizer.kind = "adagrad";
  o.linear_terms = true;
  o.linear_optimizer = "ftrl";
  auto c = MakeCollection(spec, o);
  std::set<std::string> names;
  for (auto& [name, t] : c->State(true)) names.insert(name);
  for (const char* want : {"a.weight", "a.opt.sum", "b.opt.m", "b.opt.v", "b.opt.step", "c.opt.sum", "c.ids",
                           "c.counts", "a.linear.weight", "a.linear.opt.z", "b.linear.opt.n", "c.linear.ids"}) {
    EXPECT_TRUE(names.count(want)) << want;
  }
  EXPECT_FALSE(names.count("a.opt.m"));
  EXPECT_EQ(c->num_tables(), 6u);
}

TEST(EmbeddingCollection, TablesTheLossDoesNotReachAreSkipped) {
  CollectionOptions o;
  o.table.optimizer.kind = "adagrad";
  auto c = MakeCollection(MixedSpec(), o);
  auto lookup = c->Forward(MixedBatch(), true, 1);
  torch::Tensor b_before = c->table(1).weight().clone(), a_before = c->table(0).weight().clone();
  lookup.input.sparse[0].sum().backward();
  c->Step(lookup, 1);
  EXPECT_TRUE(torch::equal(c->table(1).weight(), b_before));
  EXPECT_FALSE(torch::equal(c->table(0).weight(), a_before));
}

TEST(EmbeddingCollection, TrainingIsReproducible) {
  CollectionOptions o;
  o.table.optimizer.kind = "adam";
  o.linear_terms = true;
  auto run = [&] {
    auto c = MakeCollection(MixedSpec(), o);
    data::Batch batch = MixedBatch();
    for (int step = 1; step <= 3; ++step) {
      auto lookup = c->Forward(batch, true, step);
      torch::Tensor loss = lookup.input.linear.sum();
      for (auto& t : lookup.input.sparse) loss = loss + t.square().sum();
      loss.backward();
      c->Step(lookup, step);
    }
    return c->State(true);
  };
  auto a = run(), b = run();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
}

// The mixed spec with linear terms after one training step on the mixed batch (optimiser state
// and a dynamic table's rows in use): what the state round trips start from.
std::unique_ptr<EmbeddingCollection> AfterOneStep(const CollectionOptions& o, const data::Batch& batch) {
  auto a = MakeCollection(MixedSpec(), o);
  auto la = a->Forward(batch, true, 1);
  la.input.sparse[4].sum().backward();
  a->Step(la, 1);
  return a;
}

TEST(EmbeddingCollection, StateRoundTripReproducesLookups) {
  CollectionOptions o;
  o.linear_terms = true;
  data::Batch batch = MixedBatch();
  auto a = AfterOneStep(o, batch);
  std::map<std::string, torch::Tensor> saved;
  for (auto& [name, t] : a->State(true)) saved[name] = t.clone();

  o.table.seed = 7;  // different initial weights: everything must come from the checkpoint
  auto b = MakeCollection(MixedSpec(), o);
  ASSERT_TRUE(b->LoadState(saved, true).ok());
  auto x = a->Forward(batch, false, 2), y = b->Forward(batch, false, 2);
  for (size_t f = 0; f < x.input.sparse.size(); ++f) EXPECT_TRUE(torch::equal(x.input.sparse[f], y.input.sparse[f]));
  EXPECT_TRUE(torch::equal(x.input.linear, y.input.linear));

  saved.erase("b.linear.weight");
  Status s = b->LoadState(saved, false);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("b.linear.weight"), std::string::npos) << s.message();
}

// A sharded checkpoint's format without processes: one collection's ShardState cut into two
// shards as two ranks would write them (every table's rows split; a dynamic table's second shard
// with a row 0 of its own) loads back into a fresh collection, which then looks up the same.
TEST(EmbeddingCollection, ShardStatesFromAnyNumberOfShardsLoadBack) {
  CollectionOptions o;
  o.linear_terms = true;
  data::Batch batch = MixedBatch();
  auto a = AfterOneStep(o, batch);
  std::map<std::string, torch::Tensor> whole;
  for (auto& [name, t] : a->ShardState(true)) whole[name] = t.clone();
  // Which table a tensor belongs to: the longest table name it starts with.
  auto table_of = [&](const std::string& name) {
    std::string best;
    for (size_t i = 0; i < a->num_tables(); ++i) {
      const std::string t = a->table(i).spec().name;
      if (name.rfind(t + ".", 0) == 0 && t.size() > best.size()) best = t;
    }
    return best;
  };
  std::vector<std::map<std::string, torch::Tensor>> shards(2);
  for (const auto& [name, t] : whole) {
    const std::string table = table_of(name);
    const bool dynamic = whole.count(table + ".ids") > 0;
    const int64_t n = whole.at(table + (dynamic ? ".ids" : ".global_rows")).size(0);
    std::vector<int64_t> even, odd;
    for (int64_t j = 0; j < n; ++j) (j % 2 == 0 ? even : odd).push_back(j);
    if (dynamic) odd.insert(odd.begin(), 0);  // each rank's own row 0
    shards[0][name] = t.index_select(0, torch::tensor(even, torch::kLong));
    shards[1][name] = t.index_select(0, torch::tensor(odd, torch::kLong));
  }
  o.table.seed = 7;  // other initial rows: everything must come from the shards
  auto b = MakeCollection(MixedSpec(), o);
  ASSERT_TRUE(b->LoadShardStates(shards, true).ok());
  auto x = a->Forward(batch, false, 2), y = b->Forward(batch, false, 2);
  for (size_t f = 0; f < x.input.sparse.size(); ++f) EXPECT_TRUE(torch::equal(x.input.sparse[f], y.input.sparse[f])) << f;
  EXPECT_TRUE(torch::equal(x.input.linear, y.input.linear));
  // A shard missing a row of a fixed table is refused, naming the table.
  for (auto& [name, t] : shards[1]) {
    if (table_of(name) == "b") t = t.narrow(0, 1, t.size(0) - 1);
  }
  auto c = MakeCollection(MixedSpec(), o);
  Status st = c->LoadShardStates(shards, true);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("table 'b'"), std::string::npos) << st.ToString();
}

TEST(EmbeddingCollection, CreateRejectsUndeclaredTablesAndUnboundSpecs) {
  data::FeatureSpec spec = MixedSpec();
  spec.fields.push_back(Field("orphan", FieldKind::kCategorical, ""));
  auto c = EmbeddingCollection::Create(spec, {});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("orphan"), std::string::npos) << c.status().message();

  spec = MixedSpec();
  spec.tables[1].rows = 0;
  c = EmbeddingCollection::Create(spec, {});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("'b'"), std::string::npos) << c.status().message();
}

TEST(EmbeddingCollection, CudaMatchesCpuForLookupAndOneStep) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  for (const char* kind : {"adagrad", "adam", "sgd", "ftrl"}) {
    CollectionOptions o;
    o.table.optimizer.kind = kind;
    o.linear_terms = true;
    auto cpu = MakeCollection(MixedSpec(), o);
    o.table.device = torch::kCUDA;
    auto gpu = MakeCollection(MixedSpec(), o);
    data::Batch batch = MixedBatch();
    auto lc = cpu->Forward(batch, true, 1), lg = gpu->Forward(batch, true, 1);
    EXPECT_TRUE(lg.input.sparse[0].is_cuda());
    EXPECT_TRUE(lg.input.dense.is_cuda());
    torch::Tensor loss_c = lc.input.linear.sum(), loss_g = lg.input.linear.sum();
    for (size_t f = 0; f < lc.input.sparse.size(); ++f) {
      EXPECT_TRUE(torch::allclose(lc.input.sparse[f], lg.input.sparse[f].cpu(), 1e-6, 1e-7)) << kind << " field " << f;
      loss_c = loss_c + lc.input.sparse[f].square().sum() * (f + 1);
      loss_g = loss_g + lg.input.sparse[f].square().sum() * (f + 1);
    }
    loss_c.backward();
    loss_g.backward();
    cpu->Step(lc, 1);
    gpu->Step(lg, 1);
    for (size_t t = 0; t < cpu->num_tables(); ++t) {
      EXPECT_TRUE(torch::allclose(cpu->table(t).weight(), gpu->table(t).weight().cpu(), 1e-5, 1e-6))
          << kind << " table " << cpu->table(t).spec().name;
    }
  }
}

}  // namespace
}  // namespace adrec::embedding

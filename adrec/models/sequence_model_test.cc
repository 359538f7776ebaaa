// SASRec, HSTU, BSARec and WEARec: causality (no later item reaches an earlier state), padding, options, and the
// hidden states of the plain PyTorch twins (bench/reference/seq_models.py) on the same weights.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "adrec/core/testing.h"
#include "adrec/models/bsarec.h"
#include "adrec/models/hstu.h"
#include "adrec/models/sequence_model.h"
#include "adrec/models/testing.h"
#include "adrec/tensor/tensor_io.h"

namespace adrec::models {
namespace {

constexpr int64_t kItems = 40, kMaxLen = 12;

std::shared_ptr<SequenceModel> MustMakeSeq(const std::string& name, const std::string& toml) {
  Config cfg = testing::MustParse(toml);
  auto m = MakeSequenceModel(name, SequenceShape{kItems, kMaxLen}, cfg);
  if (!m.ok()) throw std::runtime_error(m.status().ToString());
  return *m;
}

// Right-padded rows: row r holds lengths[r] items (1..kItems), then zeros; times increase.
SequenceInput RandomSequences(const std::vector<int64_t>& lengths, int64_t L) {
  const auto B = static_cast<int64_t>(lengths.size());
  SequenceInput in;
  in.items = torch::zeros({B, L}, torch::kInt64);
  in.timestamps = torch::zeros({B, L}, torch::kInt64);
  for (int64_t r = 0; r < B; ++r) {
    const int64_t n = lengths[static_cast<size_t>(r)];
    in.items[r].narrow(0, 0, n).copy_(torch::randint(1, kItems + 1, {n}, torch::kInt64));
    // Gaps from seconds to days, so several time buckets are used.
    torch::Tensor gaps = torch::exp(torch::rand({n}) * 12.0).to(torch::kInt64);
    in.timestamps[r].narrow(0, 0, n).copy_(1700000000 + gaps.cumsum(0));
  }
  return in;
}

const char* kSasRec = "[model]\ndim = 16\nblocks = 2\nheads = 2\ndropout = 0.3\n";
const char* kHstu = "[model]\ndim = 16\nblocks = 2\nheads = 2\ndropout = 0.3\ntime_buckets = 16\n";
const char* kBsaRec = "[model]\ndim = 16\nblocks = 2\nheads = 2\ndropout = 0.3\nalpha = 0.6\ncutoff = 3\n";
const char* kWeaRec = "[model]\ndim = 16\nblocks = 2\nheads = 4\ndropout = 0.3\nalpha = 0.4\n";

class SequenceModels : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

// Changing the items and times after position p leaves every state at or before p unchanged.
TEST_P(SequenceModels, NoLaterItemReachesAnEarlierState) {
  torch::manual_seed(1);
  auto model = MustMakeSeq(GetParam().first, GetParam().second);
  if (!model->causal()) GTEST_SKIP() << "not causal: WindowModels.TheLastStateSeesTheWholeRowAndNoOtherRow";
  model->eval();
  SequenceInput a = RandomSequences({kMaxLen, kMaxLen, 9}, kMaxLen);
  torch::NoGradGuard ng;
  torch::Tensor ha = model->Encode(a);
  for (int64_t p : {0, 4, 8}) {
    SequenceInput b{a.items.clone(), a.timestamps.clone()};
    const int64_t rest = kMaxLen - p - 1;
    b.items.narrow(1, p + 1, rest).copy_(torch::randint(1, kItems + 1, {3, rest}, torch::kInt64));
    b.timestamps.narrow(1, p + 1, rest).add_(777777);
    torch::Tensor hb = model->Encode(b);
    EXPECT_TRUE(torch::allclose(ha.narrow(1, 0, p + 1), hb.narrow(1, 0, p + 1), 1e-5, 1e-6)) << "position " << p;
    EXPECT_FALSE(torch::allclose(ha.narrow(1, p + 1, rest), hb.narrow(1, p + 1, rest), 1e-5, 1e-6))
        << "later states must see the change (position " << p << ")";
  }
}

// The same in training, with dropout on (SASRec draws its CPU attention dropout only for the
// causal triangle): with the generator reseeded, both runs draw the same masks, so the earlier
// states must still be equal.
TEST_P(SequenceModels, NoLaterItemReachesAnEarlierStateInTraining) {
  torch::manual_seed(4);
  auto model = MustMakeSeq(GetParam().first, GetParam().second);
  if (!model->causal()) GTEST_SKIP() << "not causal: WindowModels.TheLastStateSeesTheWholeRowAndNoOtherRow";
  model->train();
  SequenceInput a = RandomSequences({kMaxLen, kMaxLen, 9}, kMaxLen);
  SequenceInput b{a.items.clone(), a.timestamps.clone()};
  const int64_t p = 3, rest = kMaxLen - p - 1;
  b.items.narrow(1, p + 1, rest).copy_(torch::randint(1, kItems + 1, {3, rest}, torch::kInt64));
  b.timestamps.narrow(1, p + 1, rest).add_(777777);
  torch::manual_seed(9);
  torch::Tensor ha = model->Encode(a);
  torch::manual_seed(9);
  torch::Tensor hb = model->Encode(b);
  EXPECT_TRUE(torch::allclose(ha.narrow(1, 0, p + 1), hb.narrow(1, 0, p + 1), 1e-5, 1e-6));
  EXPECT_FALSE(torch::allclose(ha.narrow(1, p + 1, rest), hb.narrow(1, p + 1, rest), 1e-5, 1e-6));
  // Dropout is on: two draws differ.
  EXPECT_FALSE(torch::allclose(ha, model->Encode(a), 1e-5, 1e-6));
}

// A batch padded to a longer length gives the real positions the same states.
TEST_P(SequenceModels, PaddingDoesNotChangeRealPositions) {
  torch::manual_seed(2);
  auto model = MustMakeSeq(GetParam().first, GetParam().second);
  model->eval();
  SequenceInput shortb = RandomSequences({5, 3}, 5);
  SequenceInput longb{torch::constant_pad_nd(shortb.items, {0, kMaxLen - 5}),
                      torch::constant_pad_nd(shortb.timestamps, {0, kMaxLen - 5})};
  torch::NoGradGuard ng;
  torch::Tensor hs = model->Encode(shortb), hl = model->Encode(longb);
  EXPECT_TRUE(torch::allclose(hs[0], hl[0].narrow(0, 0, 5), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(hs[1].narrow(0, 0, 3), hl[1].narrow(0, 0, 3), 1e-5, 1e-6));
  EXPECT_EQ(model->ItemTable().sizes(), (std::vector<int64_t>{kItems + 1, 16}));
}

TEST_P(SequenceModels, TrainsAndRejectsOverlongInput) {
  torch::manual_seed(3);
  auto model = MustMakeSeq(GetParam().first, GetParam().second);
  model->train();
  SequenceInput in = RandomSequences({kMaxLen, 7}, kMaxLen);
  torch::Tensor h = model->Encode(in);
  torch::Tensor logits = torch::matmul(h, model->ItemTable().t());
  logits.sum().backward();
  for (const auto& p : model->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_TRUE(torch::isfinite(p.value().grad()).all().item<bool>()) << p.key();
  }
  SequenceInput too_long = RandomSequences({kMaxLen + 1}, kMaxLen + 1);
  EXPECT_THROW(model->Encode(too_long), c10::Error);
}

// CPU and CUDA agree on states and gradients (run on the GPU machine; skipped without a device).
// Dropout 0: the two devices draw different masks. fp32 on both sides (no autocast; cuBLAS TF32
// is off by default).
TEST_P(SequenceModels, CudaMatchesCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(4);
  std::string toml = GetParam().second;
  toml.replace(toml.find("dropout = 0.3"), 13, "dropout = 0.0");
  auto model = MustMakeSeq(GetParam().first, toml);
  model->train();
  SequenceInput in = RandomSequences({kMaxLen, 7, 3}, kMaxLen);
  auto loss_of = [&](const torch::Tensor& h) { return torch::matmul(h, model->ItemTable().t()).pow(2).mean(); };
  torch::Tensor cpu = model->Encode(in);
  loss_of(cpu).backward();
  std::map<std::string, torch::Tensor> cpu_grads;
  for (const auto& p : model->named_parameters()) cpu_grads[p.key()] = p.value().grad().clone();

  model->to(torch::kCUDA);
  model->zero_grad();
  torch::Tensor gpu = model->Encode(SequenceInput{in.items.cuda(), in.timestamps.cuda()});
  loss_of(gpu).backward();
  torch::Tensor keep = in.items.ne(0).unsqueeze(-1);
  EXPECT_TRUE(torch::allclose(cpu * keep, gpu.cpu() * keep, 1e-4, 1e-4))
      << "max diff " << ((cpu - gpu.cpu()) * keep).abs().max().item<float>();
  for (const auto& p : model->named_parameters()) {
    torch::Tensor g = p.value().grad().cpu();
    EXPECT_TRUE(torch::allclose(cpu_grads[p.key()], g, 1e-3, 1e-4))
        << p.key() << ": max diff " << (cpu_grads[p.key()] - g).abs().max().item<float>();
  }
}

INSTANTIATE_TEST_SUITE_P(Models, SequenceModels,
                         ::testing::Values(std::make_pair(std::string("sasrec"), std::string(kSasRec)),
                                           std::make_pair(std::string("hstu"), std::string(kHstu)),
                                           std::make_pair(std::string("bsarec"), std::string(kBsaRec)),
                                           std::make_pair(std::string("wearec"), std::string(kWeaRec))),
                         [](const auto& info) { return info.param.first; });

TEST(SequenceModelFactory, ErrorsNameTheProblem) {
  Config cfg = testing::MustParse("[model]\ndim = 10\nheads = 3\n");
  auto bad_heads = MakeSequenceModel("sasrec", SequenceShape{kItems, kMaxLen}, cfg);
  ASSERT_FALSE(bad_heads.ok());
  EXPECT_NE(bad_heads.status().message().find("model.heads"), std::string::npos) << bad_heads.status().message();
  auto unknown = MakeSequenceModel("gru4rec", SequenceShape{kItems, kMaxLen}, cfg);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("sasrec, hstu, bsarec, wearec"), std::string::npos);
  Config alpha = testing::MustParse("[model]\nalpha = 1.5\n");
  auto bad_alpha = MakeSequenceModel("bsarec", SequenceShape{kItems, kMaxLen}, alpha);
  ASSERT_FALSE(bad_alpha.ok());
  EXPECT_NE(bad_alpha.status().message().find("model.alpha"), std::string::npos);
  Config dropout = testing::MustParse("[model]\ndropout = 1.5\n");
  auto bad_dropout = MakeSequenceModel("hstu", SequenceShape{kItems, kMaxLen}, dropout);
  ASSERT_FALSE(bad_dropout.ok());
  EXPECT_NE(bad_dropout.status().message().find("model.dropout"), std::string::npos);
  Config ok = testing::MustParse("[model]\n");
  EXPECT_FALSE(MakeSequenceModel("hstu", SequenceShape{0, kMaxLen}, ok).ok());
}

// The filter as one matrix is the rfft → keep the lowest → irfft chain, and a projection.
TEST(BsaRec, LowPassMatrixIsTheFourierFilter) {
  torch::manual_seed(6);
  const int64_t W = 12, keep = 3;
  torch::Tensor P = LowPassMatrix(W, keep);
  torch::Tensor x = torch::randn({4, W, 5}, torch::kFloat64);
  torch::Tensor f = torch::fft::rfft(x, W, 1, "ortho");
  f.narrow(1, keep, f.size(1) - keep).zero_();
  torch::Tensor want = torch::fft::irfft(f, W, 1, "ortho");
  EXPECT_TRUE(torch::allclose(torch::matmul(P, x), want, 1e-10, 1e-12));
  EXPECT_TRUE(torch::allclose(torch::matmul(P, P), P, 1e-10, 1e-12));  // filtering twice changes nothing
  EXPECT_TRUE(torch::allclose(P, P.t(), 1e-10, 1e-12));
  // A constant sequence is all low frequency.
  torch::Tensor ones = torch::ones({W, 1}, torch::kFloat64);
  EXPECT_TRUE(torch::allclose(torch::matmul(P, ones), ones, 1e-10, 1e-12));
}

// BSARec and WEARec are not causal: the last state sees every item of its row, whatever the
// batch and padding, and nothing of the other rows.
class WindowModels : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(WindowModels, TheLastStateSeesTheWholeRowAndNoOtherRow) {
  torch::manual_seed(7);
  auto model = MustMakeSeq(GetParam().first, GetParam().second);
  EXPECT_FALSE(model->causal());
  model->eval();
  torch::NoGradGuard ng;
  SequenceInput a = RandomSequences({9, 4, kMaxLen}, kMaxLen);
  auto last = [](const torch::Tensor& h, const torch::Tensor& items, int64_t r) {
    return h[r][items[r].ne(0).sum().item<int64_t>() - 1];
  };
  torch::Tensor ha = model->Encode(a);
  // The last block runs at the newest slot alone: every other position is zero, not a stale state.
  EXPECT_EQ(ha.ne(0).any(-1).sum().item<int64_t>(), 3);
  EXPECT_TRUE(torch::equal(ha[1].narrow(0, 0, 3), torch::zeros({3, ha.size(2)})));
  SequenceInput b{a.items.clone(), a.timestamps.clone()};
  b.items[0][0] = (b.items[0][0].item<int64_t>() % kItems) + 1;  // the oldest item of row 0
  torch::Tensor hb = model->Encode(b);
  EXPECT_FALSE(torch::allclose(last(ha, a.items, 0), last(hb, b.items, 0), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(last(ha, a.items, 1), last(hb, b.items, 1), 1e-5, 1e-6));
  // Row 1 alone, cut to its own length: the same last state.
  SequenceInput alone{a.items.narrow(0, 1, 1).narrow(1, 0, 4), a.timestamps.narrow(0, 1, 1).narrow(1, 0, 4)};
  EXPECT_TRUE(torch::allclose(last(ha, a.items, 1), model->Encode(alone)[0][3], 1e-5, 1e-6));
}

INSTANTIATE_TEST_SUITE_P(Models, WindowModels,
                         ::testing::Values(std::make_pair(std::string("bsarec"), std::string(kBsaRec)),
                                           std::make_pair(std::string("wearec"), std::string(kWeaRec))),
                         [](const auto& info) { return info.param.first; });

TEST(HstuTimeBuckets, LogScaleClampedAndSymmetric) {
  torch::Tensor t = torch::tensor({{0, 1, 2, 10, 100000000}}, torch::kInt64);
  torch::Tensor b = HstuTimeBuckets(t, 40);
  EXPECT_EQ(b[0][0][0].item<int64_t>(), 0);                           // no gap
  EXPECT_EQ(b[0][2][0].item<int64_t>(), static_cast<int64_t>(std::log(2.0) / 0.301));
  EXPECT_EQ(b[0][3][0].item<int64_t>(), static_cast<int64_t>(std::log(10.0) / 0.301));
  EXPECT_EQ(b[0][4][0].item<int64_t>(), 40);                          // ln(1e8)/0.301 = 61, clamped
  EXPECT_TRUE(torch::equal(b, b.transpose(1, 2)));
}

TEST(SequencePythonTwin, SameHiddenStatesOnSameWeights) {
  if (std::string why = testing::PythonTwinUnavailable(); !why.empty()) ADREC_SKIP_WITHOUT_REFERENCE(why);
  const auto root = std::filesystem::temp_directory_path() / ("adrec_seq_reference_" + std::to_string(::getpid()));
  std::vector<std::string> dirs;
  const std::vector<std::pair<std::string, std::string>> variants = {
      {"sasrec", "{\"dim\": 16, \"blocks\": 2, \"heads\": 2, \"dropout\": 0.3}"},
      {"hstu", "{\"dim\": 16, \"blocks\": 2, \"heads\": 2, \"dropout\": 0.3, \"time_buckets\": 16}"},
      {"hstu", "{\"dim\": 16, \"blocks\": 1, \"heads\": 1, \"attention_dim\": 8, \"linear_dim\": 24}"},
      {"bsarec", "{\"dim\": 16, \"blocks\": 2, \"heads\": 2, \"alpha\": 0.6, \"cutoff\": 3}"},
      {"wearec", "{\"dim\": 16, \"blocks\": 2, \"heads\": 4, \"alpha\": 0.4}"}};
  for (size_t v = 0; v < variants.size(); ++v) {
    torch::manual_seed(static_cast<uint64_t>(10 + v));
    const auto& [kind, opts] = variants[v];
    std::string toml = "[model]\n";
    // The JSON options as TOML keys (flat numbers only).
    const nlohmann::json parsed = nlohmann::json::parse(opts);  // items() refers to it
    for (const auto& kv : parsed.items()) toml += kv.key() + " = " + kv.value().dump() + "\n";
    auto model = MustMakeSeq(kind, toml);
    model->eval();
    std::vector<std::pair<std::string, torch::Tensor>> weights;
    {
      torch::NoGradGuard ng;
      for (auto& p : model->named_parameters()) {
        p.value().normal_(0, 0.3);  // away from the initialisation, so every parameter matters
        weights.emplace_back(p.key(), p.value());
      }
    }
    SequenceInput in = RandomSequences({kMaxLen, 7, 1}, kMaxLen);
    torch::Tensor expected;
    {
      torch::NoGradGuard ng;
      expected = model->Encode(in);
    }
    const auto dir = root / (std::to_string(v) + "_" + kind);
    std::filesystem::create_directories(dir);
    std::map<std::string, std::string> meta = {
        {"kind", kind},
        {"shape", "{\"num_items\": " + std::to_string(kItems) + ", \"max_len\": " + std::to_string(kMaxLen) + "}"},
        {"options", opts}};
    Status s = tensor::SaveTensors(dir / "inputs.safetensors",
                                 {{"items", in.items}, {"timestamps", in.timestamps}, {"expected", expected}}, meta);
    ASSERT_TRUE(s.ok()) << s.ToString();
    s = tensor::SaveTensors(dir / "weights.safetensors", weights);
    ASSERT_TRUE(s.ok()) << s.ToString();
    dirs.push_back(dir.string());
  }
  testing::ExpectTwinAgrees("seq_models.py", dirs, 1e-5);
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace adrec::models

#include "adrec/models/layers.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

#include "adrec/models/precision.h"
#include "adrec/models/testing.h"

namespace adrec::models {
namespace {

std::set<std::string> ParamNames(torch::nn::Module& m) {
  std::set<std::string> names;
  for (const auto& p : m.named_parameters()) names.insert(p.key());
  return names;
}

TEST(FmInteraction, EqualsBruteForcePairwiseSum) {
  torch::manual_seed(1);
  torch::Tensor v = torch::randn({6, 5, 7}, torch::kFloat64);
  torch::Tensor fm = FmInteraction(v);
  ASSERT_EQ(fm.sizes(), (std::vector<int64_t>{6, 1}));
  torch::Tensor brute = torch::zeros({6}, torch::kFloat64);
  for (int i = 0; i < 5; ++i) {
    for (int j = i + 1; j < 5; ++j) brute += (v.select(1, i) * v.select(1, j)).sum(1);
  }
  EXPECT_TRUE(torch::allclose(fm.squeeze(1), brute, 1e-10, 1e-10)) << fm << brute;
  // Per dimension before the sum: Σ_{i<j} v_i ⊙ v_j.
  torch::Tensor bi = torch::zeros({6, 7}, torch::kFloat64);
  for (int i = 0; i < 5; ++i) {
    for (int j = i + 1; j < 5; ++j) bi += v.select(1, i) * v.select(1, j);
  }
  EXPECT_TRUE(torch::allclose(FmBiInteraction(v), bi, 1e-10, 1e-10));
}

TEST(CrossLayer, EqualsFormulaByHand) {
  torch::manual_seed(2);
  const int64_t d = 4;
  CrossNetV2 net(d, 2, 0);
  {
    torch::NoGradGuard ng;
    for (auto& p : net->parameters()) p.normal_();
  }
  torch::Tensor x0 = torch::randn({3, d});
  torch::Tensor out = net->forward(x0);
  // Element by element: x_{l+1}[i] = x0[i] * (Σ_j W[i][j] x_l[j] + b[i]) + x_l[i].
  torch::Tensor x = x0.clone();
  for (int l = 0; l < 2; ++l) {
    torch::Tensor w = net->layer(l)->w, b = net->layer(l)->b;
    torch::Tensor next = torch::empty_like(x);
    for (int64_t r = 0; r < 3; ++r) {
      for (int64_t i = 0; i < d; ++i) {
        double acc = b[i].item<double>();
        for (int64_t j = 0; j < d; ++j) acc += w[i][j].item<double>() * x[r][j].item<double>();
        next[r][i] = x0[r][i].item<double>() * acc + x[r][i].item<double>();
      }
    }
    x = next;
  }
  EXPECT_TRUE(torch::allclose(out, x, 1e-4, 1e-5)) << out << x;
  EXPECT_EQ(ParamNames(*net), (std::set<std::string>{"0.w", "0.b", "1.w", "1.b"}));
}

TEST(CrossLayer, LowRankAtFullRankRepresentsFullRank) {
  torch::manual_seed(3);
  const int64_t d = 5;
  CrossLayer full(d, 0), low(d, d);
  {
    torch::NoGradGuard ng;
    full->w.normal_();
    full->b.normal_();
    low->u.copy_(full->w);  // W = U V^T with V = I
    low->v.copy_(torch::eye(d));
    low->b.copy_(full->b);
  }
  torch::Tensor x0 = torch::randn({8, d}), x = torch::randn({8, d});
  EXPECT_TRUE(torch::allclose(full->forward(x0, x), low->forward(x0, x), 1e-5, 1e-5));
  EXPECT_EQ(ParamNames(*low), (std::set<std::string>{"u", "v", "b"}));
}

// DCN-V2 runs its GEMMs on zero-padded inputs (AlignedWidth): the result and every gradient must
// be those of the unpadded network, and the padded columns must stay zero.
TEST(CrossNetV2, PaddedInputIsTheSameFunction) {
  for (int64_t low_rank : {0, 3}) {
    torch::manual_seed(7);
    const int64_t d = 13, padded = AlignedWidth(d);
    ASSERT_EQ(padded, 16);
    CrossNetV2 net(d, 2, low_rank);
    Mlp mlp(d, MlpOptions{{6}, "none", 0.0});
    torch::Tensor x0 = torch::randn({8, d});

    torch::Tensor plain = mlp->forward(net->forward(x0));
    plain.sum().backward();
    std::vector<torch::Tensor> plain_grads;
    for (auto& p : net->parameters()) plain_grads.push_back(p.grad().clone());
    for (auto& p : mlp->parameters()) plain_grads.push_back(p.grad().clone());
    net->zero_grad();
    mlp->zero_grad();

    torch::Tensor crossed = net->forward(torch::constant_pad_nd(x0, {0, padded - d}));
    ASSERT_EQ(crossed.size(1), padded);
    EXPECT_EQ(crossed.narrow(1, d, padded - d).abs().max().item<float>(), 0.f);
    torch::Tensor out = mlp->forward(crossed);
    EXPECT_TRUE(torch::allclose(out, plain, 1e-5, 1e-6)) << "low_rank " << low_rank;
    out.sum().backward();
    size_t i = 0;
    for (auto& p : net->parameters()) EXPECT_TRUE(torch::allclose(p.grad(), plain_grads[i++], 1e-5, 1e-6));
    for (auto& p : mlp->parameters()) EXPECT_TRUE(torch::allclose(p.grad(), plain_grads[i++], 1e-5, 1e-6));
  }
  // An identity MLP hands back the unpadded width; a narrower input than the layer is an error.
  Mlp identity(5, MlpOptions{});
  EXPECT_EQ(identity->forward(torch::randn({2, 16})).size(1), 5);
  EXPECT_THROW(Mlp(5, MlpOptions{{4}, "none", 0.0})->forward(torch::randn({2, 4})), c10::Error);
}

// Without gradients the padded weights are kept between calls (PaddedCopy); an in-place update
// (an optimiser step), a load or a new storage must show in the next call all the same.
TEST(CrossNetV2, PaddedWeightsKeptForInferenceFollowEveryUpdate) {
  for (int64_t low_rank : {0, 3}) {
    torch::manual_seed(11);
    const int64_t d = 13, padded = AlignedWidth(d);
    CrossNetV2 net(d, 2, low_rank);
    Mlp mlp(d, MlpOptions{{6}, "none", 0.0});
    const torch::Tensor x0 = torch::constant_pad_nd(torch::randn({8, d}), {0, padded - d});
    auto with_grad = [&] { return mlp->forward(net->forward(x0)).detach(); };  // pads afresh
    auto without = [&] {
      torch::NoGradGuard no_grad;
      return mlp->forward(net->forward(x0));
    };
    EXPECT_TRUE(torch::allclose(without(), with_grad(), 1e-5, 1e-6)) << "low_rank " << low_rank;
    EXPECT_TRUE(torch::equal(without(), without())) << "a kept copy gives the same bits";
    for (int step = 0; step < 3; ++step) {
      const torch::Tensor before = without();
      {
        torch::NoGradGuard no_grad;
        if (step == 0) {
          for (auto& p : net->parameters()) p.mul_(1.5).add_(0.01);  // in place, as an optimiser step
        } else if (step == 1) {
          for (auto& p : mlp->parameters()) p.copy_(torch::randn_like(p));  // a load
        } else {
          for (auto& p : net->parameters()) p.set_data(p.detach().clone() * 0.5);  // a new storage
        }
      }
      const torch::Tensor after = without();
      EXPECT_FALSE(torch::allclose(after, before)) << "step " << step;
      EXPECT_TRUE(torch::allclose(after, with_grad(), 1e-5, 1e-6)) << "low_rank " << low_rank << ", step " << step;
    }
  }
}

// The CPU forward is one fused autograd node (fused_cross.cc); each layer's own forward is plain
// autograd. Both must give the same output and the same gradients for x0 and every weight.
TEST(CrossNetV2, FusedNodeMatchesLayerByLayerAutograd) {
  for (int64_t low_rank : {0, 3}) {
    for (int64_t layers : {1, 3}) {
      for (bool pad : {false, true}) {
        for (bool x0_grad : {true, false}) {
          SCOPED_TRACE("low_rank " + std::to_string(low_rank) + " layers " + std::to_string(layers) + " pad " +
                       std::to_string(pad) + " x0_grad " + std::to_string(x0_grad));
          torch::manual_seed(11);
          const int64_t d = 13, width = pad ? AlignedWidth(d) : d;
          CrossNetV2 net(d, layers, low_rank);
          {
            torch::NoGradGuard ng;
            for (auto& p : net->parameters()) p.normal_(0.0, 0.3);  // nonzero biases too
          }
          torch::Tensor base = torch::constant_pad_nd(torch::randn({150, d}), {0, width - d});  // > one row block
          torch::Tensor head = torch::randn({width, 1});
          auto run = [&](bool fused) {
            torch::Tensor x0 = base.clone().requires_grad_(x0_grad);
            torch::Tensor x = x0;
            if (fused) {
              x = net->forward(x0);
            } else {
              for (int64_t l = 0; l < layers; ++l) x = net->layer(l)->forward(x0, x);
            }
            EXPECT_EQ(x.grad_fn()->name(), fused ? "adrec::FusedCrossBackward" : "AddcmulBackward0");
            net->zero_grad();
            torch::mm(torch::tanh(x), head).sum().backward();
            std::vector<torch::Tensor> out{x.detach(), x0_grad ? x0.grad() : torch::zeros({1})};
            for (auto& p : net->parameters()) out.push_back(p.grad().clone());
            return out;
          };
          const auto fused = run(true), plain = run(false);
          ASSERT_EQ(fused.size(), plain.size());
          for (size_t i = 0; i < fused.size(); ++i) {
            EXPECT_TRUE(torch::allclose(fused[i], plain[i], 1e-4, 1e-5)) << "tensor " << i << "\n"
                                                                         << (fused[i] - plain[i]).abs().max();
          }
        }
      }
    }
  }
}

TEST(CrossNetV2, FusedNodeIsTheSameOutputWithoutGradAndTheSameBitsAtAnyThreadCount) {
  torch::manual_seed(12);
  CrossNetV2 net(29, 3, 0);
  torch::Tensor x0 = torch::constant_pad_nd(torch::randn({300, 29}), {0, 3}).requires_grad_();
  torch::Tensor with_grad = net->forward(x0);
  {
    torch::NoGradGuard ng;
    torch::Tensor without = net->forward(x0);
    EXPECT_FALSE(without.requires_grad());
    EXPECT_TRUE(torch::equal(without, with_grad.detach()));
  }
  const int threads = at::get_num_threads();
  std::vector<torch::Tensor> grads[2];
  for (int k = 0; k < 2; ++k) {
    at::set_num_threads(k == 0 ? 1 : 2);
    net->zero_grad();
    x0.mutable_grad() = torch::Tensor();
    net->forward(x0).square().sum().backward();
    grads[k].push_back(x0.grad().clone());
    for (auto& p : net->parameters()) grads[k].push_back(p.grad().clone());
  }
  at::set_num_threads(threads);
  // The bias sums run in fixed blocks of rows. The last layer's bias gradient (the first one
  // backward) depends on no GEMM, whose bits may change with the thread count: it must not change.
  ASSERT_EQ(grads[0].size(), 7u);  // x0, then 0.w, 0.b, 1.w, 1.b, 2.w, 2.b
  EXPECT_TRUE(torch::equal(grads[0][6], grads[1][6]));
}

TEST(CrossNetV2, ParameterCounts) {
  auto count = [](torch::nn::Module& m) {
    int64_t n = 0;
    for (const auto& p : m.parameters()) n += p.numel();
    return n;
  };
  CrossNetV2 full(10, 3, 0), low(10, 3, 2);
  EXPECT_EQ(count(*full), 3 * (10 * 10 + 10));
  EXPECT_EQ(count(*low), 3 * (2 * 10 * 2 + 10));
}

TEST(Mlp, NamesShapesAndNorms) {
  Mlp plain(6, MlpOptions{.hidden = {8, 3}});
  EXPECT_EQ(plain->out_dim(), 3);
  EXPECT_EQ(ParamNames(*plain), (std::set<std::string>{"0.weight", "0.bias", "1.weight", "1.bias"}));
  torch::Tensor y = plain->forward(torch::randn({4, 6}));
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{4, 3}));
  EXPECT_GE(y.min().item<float>(), 0.0f);  // ReLU after every layer

  Mlp bn(6, MlpOptions{.hidden = {8}, .norm = "batch"});
  EXPECT_EQ(ParamNames(*bn), (std::set<std::string>{"0.weight", "0.bias", "norm.0.weight", "norm.0.bias"}));
  std::set<std::string> buffers;
  for (const auto& b : bn->named_buffers()) buffers.insert(b.key());
  EXPECT_TRUE(buffers.count("norm.0.running_mean"));

  // Layer norm: each row's pre-activation has mean 0, so some units are active and some not.
  Mlp ln(6, MlpOptions{.hidden = {16}, .norm = "layer"});
  torch::Tensor z = ln->forward(torch::randn({4, 6}) * 100);
  EXPECT_LT(z.max().item<float>(), 10.0f);

  Mlp identity(6, MlpOptions{});
  torch::Tensor x = torch::randn({2, 6});
  EXPECT_TRUE(torch::equal(identity->forward(x), x));
}

TEST(Mlp, DropoutOnlyWhenTraining) {
  torch::manual_seed(4);
  Mlp m(6, MlpOptions{.hidden = {64}, .dropout = 0.5});
  torch::Tensor x = torch::randn({32, 6});
  m->eval();
  EXPECT_TRUE(torch::equal(m->forward(x), m->forward(x)));
  m->train();
  EXPECT_FALSE(torch::equal(m->forward(x), m->forward(x)));
}

// The CPU mask is drawn as uniform < keep, not by torch::dropout: the contract must still hold.
TEST(Dropout, KeepsTorchDropoutsContractOnTheCpu) {
  torch::Tensor x = torch::randn({400, 500}, torch::requires_grad());
  EXPECT_TRUE(Dropout(x, 0.3, /*train=*/false).is_same(x));
  EXPECT_TRUE(Dropout(x, 0.0, /*train=*/true).is_same(x));
  EXPECT_EQ(Dropout(x, 1.0, /*train=*/true).abs().sum().item<double>(), 0.0);

  torch::manual_seed(7);
  torch::Tensor y = Dropout(x, 0.3, /*train=*/true);
  torch::Tensor kept = y.ne(0);
  // 200,000 draws: the kept share's sd is 0.001.
  EXPECT_NEAR(kept.to(torch::kDouble).mean().item<double>(), 0.7, 0.005);
  EXPECT_TRUE(torch::allclose(y.masked_select(kept), x.masked_select(kept) / 0.7, 1e-6, 1e-6));
  // Gradient: the same mask and scale.
  y.sum().backward();
  EXPECT_TRUE(torch::equal(x.grad().ne(0), kept));
  EXPECT_TRUE(torch::allclose(x.grad().masked_select(kept), torch::full({kept.sum().item<int64_t>()}, 1 / 0.7), 1e-6, 1e-6));
  // Seeded like every other draw of the run.
  torch::manual_seed(7);
  EXPECT_TRUE(torch::equal(Dropout(x, 0.3, true).detach(), y.detach()));
  // The same contract in bf16 (the dtype is kept).
  torch::Tensor h = Dropout(torch::ones({1000}, torch::kBFloat16), 0.5, true);
  EXPECT_EQ(h.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(h.eq(0).logical_or(h.eq(2)).all().item<bool>());
}

TEST(Experts, GatesMixExperts) {
  Experts e(3, 4, MlpOptions{.hidden = {5}});
  torch::Tensor out = e->forward(torch::randn({2, 4}));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, 3, 5}));
  torch::Tensor w = torch::tensor({{1.0f, 0.0f, 0.0f}, {0.0f, 0.5f, 0.5f}});
  torch::Tensor mixed = MixExperts(w, out);
  EXPECT_TRUE(torch::allclose(mixed[0], out[0][0]));
  EXPECT_TRUE(torch::allclose(mixed[1], 0.5 * (out[1][1] + out[1][2])));
  torch::nn::Linear gate(4, 3);
  torch::Tensor g = GateWeights(gate, torch::randn({7, 4}));
  EXPECT_TRUE(torch::allclose(g.sum(1), torch::ones({7})));
}

TEST(Options, ErrorsNameTheKey) {
  MlpOptions o;
  Config bad_width = testing::MustParse("[model]\nhidden = [8, 0]\n");
  Status s = ReadMlpOptions(bad_width, "model", "hidden", &o);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("model.hidden"), std::string::npos) << s.message();

  Config bad_norm = testing::MustParse("[model]\nnorm = \"group\"\n");
  o = MlpOptions{};
  s = ReadMlpOptions(bad_norm, "model", "hidden", &o);
  EXPECT_NE(s.message().find("model.norm"), std::string::npos) << s.message();

  Config bad_dropout = testing::MustParse("[model]\ndropout = 1.0\n");
  o = MlpOptions{};
  s = ReadMlpOptions(bad_dropout, "model", "hidden", &o);
  EXPECT_NE(s.message().find("model.dropout"), std::string::npos) << s.message();

  Config wrong_type = testing::MustParse("[model]\nhidden = \"wide\"\n");
  o = MlpOptions{};
  s = ReadMlpOptions(wrong_type, "model", "hidden", &o);
  EXPECT_NE(s.message().find("model.hidden"), std::string::npos) << s.message();

  int64_t n = 0;
  Config negative = testing::MustParse("[m]\nlayers = -1\n");
  s = ReadInt(negative, "m", "layers", 0, &n);
  EXPECT_NE(s.message().find("m.layers"), std::string::npos) << s.message();
}

TEST(Inputs, ConcatAndCheck) {
  ModelShape shape = testing::SmallShape();
  embedding::ModelInput in = testing::RandomInput(shape, 4);
  EXPECT_EQ(FeatureWidth(shape), 3 * 4 + 3 + 5);
  EXPECT_EQ(ConcatFeatures(in).sizes(), (std::vector<int64_t>{4, FeatureWidth(shape)}));
  torch::Tensor padded = ConcatFeatures(in, 32);
  EXPECT_EQ(padded.sizes(), (std::vector<int64_t>{4, 32}));
  EXPECT_TRUE(torch::equal(padded.narrow(1, 0, FeatureWidth(shape)), ConcatFeatures(in)));
  EXPECT_EQ(padded.narrow(1, FeatureWidth(shape), 32 - FeatureWidth(shape)).abs().max().item<float>(), 0.f);
  EXPECT_EQ(ConcatDenseAndText(in).size(1), 8);
  in.sparse[1] = torch::randn({4, 6});
  try {
    CheckInput(shape, in, "test");
    FAIL() << "a wrong field width passed";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'item'"), std::string::npos) << e.what();
  }
}

// Sets the process-wide inference precision for one test and puts fp32 back after it.
class PrecisionScope {
 public:
  explicit PrecisionScope(InferencePrecision p) { SetInferencePrecision(p); }
  ~PrecisionScope() { SetInferencePrecision(InferencePrecision::kFp32); }
};

TEST(InferencePrecision, ParsesNamesAndRejectsOthers) {
  EXPECT_EQ(*ParseInferencePrecision("fp32"), InferencePrecision::kFp32);
  EXPECT_EQ(*ParseInferencePrecision("bf16"), InferencePrecision::kBf16);
  EXPECT_EQ(*ParseInferencePrecision("auto"),
            CpuHasBf16Matmul() ? InferencePrecision::kBf16 : InferencePrecision::kFp32);
  EXPECT_EQ(*ParseInferencePrecision("int8"), InferencePrecision::kInt8);
  EXPECT_EQ(PrecisionName(InferencePrecision::kInt8), "int8");
  auto bad = ParseInferencePrecision("fp8");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().ToString().find("'fp8'"), std::string::npos) << bad.status().ToString();
  EXPECT_EQ(GetInferencePrecision(), InferencePrecision::kFp32) << "fp32 until set";
}

// The bf16 path scores what the fp32 path scores, to bfloat16's precision (8 bits of mantissa
// on the GEMM operands, float32 sums), follows weight updates, and leaves autograd alone. The
// sizes are ones where bf16 pays (Bf16Pays); the MLP's second layer does not, and runs fp32.
TEST(CrossNetV2, Bf16InferenceMatchesFp32AndFollowsUpdates) {
  for (int64_t low_rank : {0, 64}) {
    SCOPED_TRACE("low_rank " + std::to_string(low_rank));
    torch::manual_seed(5);
    const int64_t d = 200, padded = AlignedWidth(d), rows = 400;
    ASSERT_TRUE(Bf16Pays(rows, padded, low_rank > 0 ? low_rank : padded));
    CrossNetV2 net(d, 3, low_rank);
    Mlp mlp(d, MlpOptions{{96, 64}, "none", 0.0});
    ASSERT_FALSE(Bf16Pays(rows, 96, 64));
    {
      torch::NoGradGuard ng;
      for (auto& p : net->parameters()) p.normal_(0.0, 0.05);
    }
    const torch::Tensor x0 = torch::constant_pad_nd(torch::randn({rows, d}), {0, padded - d});
    auto score = [&](InferencePrecision p) {
      PrecisionScope scope(p);
      torch::NoGradGuard no_grad;
      return mlp->forward(net->forward(x0));
    };
    for (int step = 0; step < 2; ++step) {
      const torch::Tensor fp32 = score(InferencePrecision::kFp32);
      const torch::Tensor bf16 = score(InferencePrecision::kBf16);
      ASSERT_EQ(bf16.scalar_type(), torch::kFloat);
      ASSERT_EQ(bf16.sizes(), fp32.sizes());
      const double scale = fp32.abs().max().item<double>();
      const double err = (bf16 - fp32).abs().max().item<double>();
      EXPECT_LT(err, 0.03 * scale) << "max |bf16 - fp32| " << err << " of " << scale;
      EXPECT_GT(err, 0.0) << "the bf16 path ran (bfloat16 rounding shows)";
      torch::NoGradGuard ng;
      for (auto& p : net->parameters()) p.mul_(-0.7);  // an update the kept copies must follow
      for (auto& p : mlp->parameters()) p.add_(0.05);
    }
    // Too small a product to pay: the float32 path, bit for bit.
    {
      const torch::Tensor few = x0.narrow(0, 0, 2);
      torch::NoGradGuard no_grad;
      const torch::Tensor fp32 = mlp->forward(net->forward(few));
      PrecisionScope small(InferencePrecision::kBf16);
      EXPECT_TRUE(torch::equal(mlp->forward(net->forward(few)), fp32));
    }
    // Under autograd the float32 path runs whatever the precision says: training is untouched.
    PrecisionScope scope(InferencePrecision::kBf16);
    torch::Tensor out = mlp->forward(net->forward(x0));
    EXPECT_TRUE(out.requires_grad());
    torch::NoGradGuard ng;
    SetInferencePrecision(InferencePrecision::kFp32);
    EXPECT_TRUE(torch::allclose(out.detach(), mlp->forward(net->forward(x0)), 1e-5, 1e-6));
  }
}

// The int8 path (FBGEMM, weights quantised once per tensor, activations per call) scores what
// fp32 scores to int8's precision, follows weight updates, leaves autograd alone, and keeps a
// low-rank cross network float32 while its MLP goes int8.
TEST(CrossNetV2, Int8InferenceMatchesFp32AndFollowsUpdates) {
  for (int64_t low_rank : {0, 16}) {
    SCOPED_TRACE("low_rank " + std::to_string(low_rank));
    torch::manual_seed(6);
    const int64_t d = 200, padded = AlignedWidth(d), rows = 300;
    CrossNetV2 net(d, 3, low_rank);
    Mlp mlp(d, MlpOptions{{96, 64}, "none", 0.0});
    {
      torch::NoGradGuard ng;
      for (auto& p : net->parameters()) p.normal_(0.0, 0.05);
    }
    const torch::Tensor x0 = torch::constant_pad_nd(torch::randn({rows, d}), {0, padded - d});
    auto score = [&](InferencePrecision p, bool cross_only) {
      PrecisionScope scope(p);
      torch::NoGradGuard no_grad;
      const torch::Tensor c = net->forward(x0);
      return cross_only ? c : mlp->forward(c);
    };
    for (int step = 0; step < 2; ++step) {
      const torch::Tensor fp32 = score(InferencePrecision::kFp32, false);
      const torch::Tensor int8 = score(InferencePrecision::kInt8, false);
      ASSERT_EQ(int8.scalar_type(), torch::kFloat);
      ASSERT_EQ(int8.sizes(), fp32.sizes());
      const double scale = fp32.abs().max().item<double>();
      const double err = (int8 - fp32).abs().max().item<double>();
      EXPECT_LT(err, 0.05 * scale) << "max |int8 - fp32| " << err << " of " << scale;
      EXPECT_GT(err, 0.0) << "the int8 path ran (its rounding shows)";
      const double corr = torch::corrcoef(torch::stack({int8.flatten(), fp32.flatten()}))[0][1].item<double>();
      EXPECT_GT(corr, 0.999);
      // The cross network alone: int8 where full rank, float32 bit for bit where low rank.
      const torch::Tensor c32 = score(InferencePrecision::kFp32, true), c8 = score(InferencePrecision::kInt8, true);
      EXPECT_EQ(torch::equal(c32, c8), low_rank > 0);
      torch::NoGradGuard ng;
      for (auto& p : net->parameters()) p.mul_(-0.7);  // an update the quantised copies must follow
      for (auto& p : mlp->parameters()) p.add_(0.05);
    }
    PrecisionScope scope(InferencePrecision::kInt8);
    torch::Tensor out = mlp->forward(net->forward(x0));
    EXPECT_TRUE(out.requires_grad()) << "under autograd the float32 path runs";
    torch::NoGradGuard ng;
    SetInferencePrecision(InferencePrecision::kFp32);
    EXPECT_TRUE(torch::allclose(out.detach(), mlp->forward(net->forward(x0)), 1e-5, 1e-6));
  }
}

// Int8Linear against the quantisation by hand: W per tensor to int8 (its scale and zero point),
// x per call to uint8 over its own range, integer products, then back to float.
TEST(Int8Linear, EqualsQuantisedArithmeticByHand) {
  torch::manual_seed(7);
  const torch::Tensor x = torch::randn({5, 33}), w = torch::randn({7, 33}) * 0.1, b = torch::randn({7});
  Int8Cache cache;
  const torch::Tensor y = Int8Linear(x, w, b, cache);
  const Int8Cache::Packed p = cache.Get(w);
  const torch::Tensor wq = (p.q.to(torch::kFloat) - static_cast<double>(p.zero_point)) * p.scale;
  EXPECT_LT((wq - w).abs().max().item<double>(), p.scale) << "the weight's codes";
  const double lo = std::min(0.0, x.min().item<double>()), hi = std::max(0.0, x.max().item<double>());
  const double xs = (hi - lo) / 255.0;
  const double xz = std::nearbyint(-lo / xs);
  const torch::Tensor xq = ((x / xs).round() + xz).clamp(0, 255);
  const torch::Tensor want = torch::matmul((xq - xz) * xs, wq.t()) + b;
  EXPECT_TRUE(torch::allclose(y, want, 1e-3, 1e-3)) << (y - want).abs().max().item<double>();
  EXPECT_LT((y - (torch::matmul(x, w.t()) + b)).abs().max().item<double>(), 0.05);
}

}  // namespace
}  // namespace adrec::models

#include "adrec/models/per_sample.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "adrec/models/testing.h"

namespace adrec::models {
namespace {

using testing::MustMake;
using testing::RandomInput;
using testing::SmallShape;

struct Case {
  std::string model, toml;
};

class PerSampleNorms : public ::testing::TestWithParam<Case> {};

// Each sample's loss: the BCE of every target against random labels.
torch::Tensor SampleLosses(const torch::Tensor& logits, const torch::Tensor& labels) {
  return torch::binary_cross_entropy_with_logits(logits, labels, {}, {}, at::Reduction::None).sum(1);
}

// The tape's norms against one backward pass per sample, over every parameter of the model:
// the tape must cover them all, each once.
TEST_P(PerSampleNorms, EqualOneBackwardPerSample) {
  torch::manual_seed(3);
  const ModelShape shape = SmallShape(2);
  auto net = MustMake(GetParam().model, shape, GetParam().toml);
  const int64_t B = 6;
  const embedding::ModelInput in = RandomInput(shape, B);
  const torch::Tensor labels = torch::randint(0, 2, {B, 2}).to(torch::kFloat);

  torch::Tensor got;
  {
    PerSampleTape tape;
    const torch::Tensor losses = SampleLosses(net->forward(in), labels);
    const std::vector<torch::Tensor> outs = tape.outputs();
    ASSERT_FALSE(outs.empty());
    const auto grads = torch::autograd::grad({losses.sum()}, outs, {}, /*retain_graph=*/false, false, /*allow_unused=*/true);
    got = tape.SquaredNorms(grads);
    for (const auto& p : net->parameters()) {
      EXPECT_TRUE(tape.covered().count(p.unsafeGetTensorImpl())) << "a parameter of shape " << p.sizes() << " is not recorded";
    }
    EXPECT_TRUE(tape.repeated().empty());
  }
  EXPECT_EQ(PerSampleTape::Current(), nullptr);
  for (int64_t i = 0; i < B; ++i) {
    embedding::ModelInput one;
    for (const auto& t : in.sparse) one.sparse.push_back(t.narrow(0, i, 1));
    one.dense = in.dense.narrow(0, i, 1);
    for (const auto& t : in.text) one.text.push_back(t.narrow(0, i, 1));
    one.linear = in.linear.narrow(0, i, 1);
    one.scene = in.scene.narrow(0, i, 1);
    net->zero_grad();
    SampleLosses(net->forward(one), labels.narrow(0, i, 1)).sum().backward();
    double want = 0;
    for (const auto& p : net->parameters()) {
      if (p.grad().defined()) want += p.grad().pow(2).sum().item<double>();
    }
    EXPECT_NEAR(got[i].item<double>(), want, 1e-4 * (1 + want)) << "sample " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Models, PerSampleNorms,
    ::testing::Values(Case{"lr", ""}, Case{"fm", ""}, Case{"deepfm", "[model]\nhidden = [8, 4]\n"},
                      Case{"dcnv2", "[model]\ncross_layers = 2\nhidden = [8]\n"},
                      Case{"dcnv2", "[model]\ncross_layers = 2\nlow_rank = 3\nstructure = \"parallel\"\nhidden = [8]\n"},
                      Case{"mmoe", "[model]\nnum_experts = 3\nexpert_hidden = [8]\nscene_dim = 2\n"},
                      Case{"ple", "[model]\nlevels = 2\nexpert_hidden = [8]\nscene_dim = 2\n"}),
    [](const ::testing::TestParamInfo<Case>& info) {
      return info.param.model + std::to_string(info.index);
    });

// A layer on [B, T, in]: the positions' parts add inside each sample before squaring.
TEST(PerSampleTape, SequenceInputsSumOverPositions) {
  torch::manual_seed(4);
  torch::nn::Linear lin(3, 2);
  const torch::Tensor x = torch::randn({4, 5, 3});
  torch::Tensor got;
  {
    PerSampleTape tape;
    const torch::Tensor y = TapedLinear(*lin, x);
    const torch::Tensor losses = y.pow(2).sum({1, 2});
    got = tape.SquaredNorms(torch::autograd::grad({losses.sum()}, tape.outputs()));
  }
  for (int64_t i = 0; i < 4; ++i) {
    lin->zero_grad();
    lin->forward(x.narrow(0, i, 1)).pow(2).sum().backward();
    const double want = lin->weight.grad().pow(2).sum().item<double>() + lin->bias.grad().pow(2).sum().item<double>();
    EXPECT_NEAR(got[i].item<double>(), want, 1e-4 * (1 + want));
  }
}

TEST(PerSampleTape, NothingIsRecordedWithoutATapeOrUnderNoGrad) {
  torch::nn::Linear lin(3, 2);
  const torch::Tensor x = torch::randn({2, 3});
  TapedLinear(*lin, x);  // no tape: nothing to record into
  PerSampleTape tape;
  {
    torch::NoGradGuard no_grad;
    TapedLinear(*lin, x);
  }
  EXPECT_TRUE(tape.outputs().empty());
  TapedLinear(*lin, x);
  EXPECT_EQ(tape.outputs().size(), 1u);
}

}  // namespace
}  // namespace adrec::models

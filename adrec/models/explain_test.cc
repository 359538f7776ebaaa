#include "adrec/models/explain.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "adrec/models/testing.h"

namespace adrec::models {
namespace {

using testing::MustMake;
using testing::RandomInput;
using testing::SmallShape;

InputGroups SmallGroups(bool linear) {
  InputGroups g;
  g.sparse = {"user", "item", "ad"};
  g.dense = {{"bid", 1}, {"counters", 2}};
  g.text = {"title"};
  g.linear = linear;
  return g;
}

struct Case {
  std::string model, toml;
};
class Explain : public ::testing::TestWithParam<Case> {};

// Completeness: the groups' attributions add up to logit(x) − logit(0), to the path's
// discretisation; and the parameters keep no gradient.
TEST_P(Explain, AttributionsAddUpToTheScoreOverTheBaseline) {
  torch::manual_seed(8);
  const ModelShape shape = SmallShape(2);
  auto net = MustMake(GetParam().model, shape, GetParam().toml);
  net->eval();
  const embedding::ModelInput in = RandomInput(shape, 5);
  const Attributions a = IntegratedGradients(*net, in, SmallGroups(true), /*target=*/1, /*steps=*/256);
  ASSERT_EQ(a.values.sizes(), (std::vector<int64_t>{5, 7}));
  EXPECT_EQ(a.groups.back(), "linear");
  EXPECT_EQ(a.groups[3], "bid");
  const torch::Tensor gap = a.values.sum(1) - (a.logit - a.baseline_logit);
  EXPECT_LT(gap.abs().max().item<float>(), 2e-3 * (1 + (a.logit - a.baseline_logit).abs().max().item<float>()))
      << a.values << a.logit << a.baseline_logit;
  for (const auto& p : net->parameters()) EXPECT_FALSE(p.grad().defined());
  EXPECT_TRUE(torch::equal(a.logit, net->forward(in).select(1, 1).detach()));
}

INSTANTIATE_TEST_SUITE_P(Models, Explain,
                         ::testing::Values(Case{"lr", ""}, Case{"deepfm", "[model]\nhidden = [8, 4]\n"},
                                           Case{"dcnv2", "[model]\ncross_layers = 2\nhidden = [8]\n"},
                                           Case{"mmoe", "[model]\nnum_experts = 3\nexpert_hidden = [8]\nscene_dim = 2\n"}),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.model; });

// A linear model's attributions are exact at any number of steps: w_g · x_g.
TEST(ExplainTest, LinearModelAttributionsAreWeightTimesInput) {
  torch::manual_seed(9);
  const ModelShape shape = SmallShape(1);
  auto net = MustMake("lr", shape, "");
  net->eval();
  const embedding::ModelInput in = RandomInput(shape, 3);
  const Attributions a = IntegratedGradients(*net, in, SmallGroups(true), 0, /*steps=*/1);
  // LR reads the linear term and the dense and text columns; embeddings do not reach it.
  for (int g = 0; g < 3; ++g) EXPECT_LT(a.values.select(1, g).abs().max().item<float>(), 1e-6);
  const torch::Tensor gap = a.values.sum(1) - (a.logit - a.baseline_logit);
  EXPECT_LT(gap.abs().max().item<float>(), 1e-5);
}

TEST(ExplainTest, TopGroupsOrdersByMagnitude) {
  const std::vector<int> top = TopGroups(torch::tensor({0.1f, -0.9f, 0.5f, 0.0f}), 3);
  EXPECT_EQ(top, (std::vector<int>{1, 2, 0}));
  EXPECT_EQ(TopGroups(torch::tensor({0.1f}), 5).size(), 1u);
}

TEST(ExplainTest, GroupsThatDoNotDescribeTheInputAreRefused) {
  const ModelShape shape = SmallShape(1);
  auto net = MustMake("lr", shape, "");
  const embedding::ModelInput in = RandomInput(shape, 2);
  InputGroups g = SmallGroups(true);
  g.dense = {{"bid", 1}};  // 1 of 3 dense columns
  EXPECT_THROW(IntegratedGradients(*net, in, g, 0), c10::Error);
}

}  // namespace
}  // namespace adrec::models

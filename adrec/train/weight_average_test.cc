#include "adrec/train/weight_average.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>

namespace adrec::train {
namespace {

std::vector<std::pair<std::string, torch::Tensor>> Params(torch::Tensor& a, torch::Tensor& b) {
  return {{"a", a}, {"b", b}};
}

TEST(WeightAverage, FollowsTheWeightsByTheWarmedUpDecay) {
  torch::manual_seed(3);
  torch::Tensor a = torch::randn({4, 3}, torch::requires_grad()), b = torch::randn({5}, torch::requires_grad());
  WeightAverage avg(Params(a, b), 0.15);
  torch::Tensor want_a = a.detach().clone(), want_b = b.detach().clone();
  // d = min(0.15, (1 + n) / (10 + n)): 0.1 at the first update, then the decay.
  for (double d : {0.1, 0.15, 0.15, 0.15}) {
    {
      torch::NoGradGuard no_grad;
      a.add_(torch::randn_like(a));
      b.mul_(-2.0);
    }
    avg.Update();
    want_a = d * want_a + (1 - d) * a.detach();
    want_b = d * want_b + (1 - d) * b.detach();
  }
  EXPECT_EQ(avg.updates(), 4);
  const torch::Tensor raw_a = a.detach().clone(), raw_b = b.detach().clone();
  {
    WeightAverage::Swapped averaged(&avg);
    EXPECT_TRUE(torch::allclose(a, want_a, 1e-6, 1e-6));
    EXPECT_TRUE(torch::allclose(b, want_b, 1e-6, 1e-6));
  }
  // Swapped back exactly: training goes on from the raw weights.
  EXPECT_TRUE(torch::equal(a.detach(), raw_a));
  EXPECT_TRUE(torch::equal(b.detach(), raw_b));
  WeightAverage::Swapped nothing(nullptr);  // no average: nothing to swap
  EXPECT_TRUE(torch::equal(a.detach(), raw_a));
}

TEST(WeightAverage, StateRestoresTheShadowAndItsCount) {
  torch::Tensor a = torch::zeros({2, 2}), b = torch::ones({3});
  WeightAverage avg(Params(a, b), 0.9);
  a.fill_(1.0);
  avg.Update();
  avg.Update();
  std::map<std::string, torch::Tensor> state;
  for (auto& [name, t] : avg.State("ema/")) state[name] = t.clone();
  ASSERT_EQ(state.size(), 3u);
  EXPECT_EQ(state.at("ema/updates").item<int64_t>(), 2);

  torch::Tensor a2 = torch::zeros({2, 2}), b2 = torch::ones({3});
  WeightAverage back(Params(a2, b2), 0.9);
  ASSERT_TRUE(back.Restore(state, "ema/", "ckpt").ok());
  EXPECT_EQ(back.updates(), 2);
  back.Swap();
  EXPECT_TRUE(torch::equal(a2, state.at("ema/a")));
  back.Swap();
  // The next update continues the count: the same decay as the first average's.
  a.fill_(2.0);
  a2.fill_(2.0);
  avg.Update();
  back.Update();
  avg.Swap();
  back.Swap();
  EXPECT_TRUE(torch::equal(a, a2));

  state.erase("ema/b");
  Status missing = back.Restore(state, "ema/", "ckpt");
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("'ema/b' is missing"), std::string::npos) << missing.message();
  state["ema/b"] = torch::ones({4});
  Status shape = back.Restore(state, "ema/", "ckpt");
  EXPECT_NE(shape.message().find("'ema/b' is of another shape"), std::string::npos) << shape.message();
  state.erase("ema/updates");
  EXPECT_NE(back.Restore(state, "ema/", "ckpt").message().find("without train.ema"), std::string::npos);
}

TEST(WeightAverage, ResetStartsOverFromTheWeights) {
  torch::Tensor a = torch::zeros({3}), b = torch::zeros({1});
  WeightAverage avg(Params(a, b), 0.99);
  a.fill_(5.0);
  avg.Update();
  a.fill_(7.0);
  avg.Reset();
  EXPECT_EQ(avg.updates(), 0);
  avg.Swap();
  EXPECT_TRUE(torch::equal(a, torch::full({3}, 7.0)));
}

}  // namespace
}  // namespace adrec::train

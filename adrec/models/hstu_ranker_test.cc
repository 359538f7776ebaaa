// The HSTU ranker scores impression p from the events before it only, and its one-pass forward
// equals the serving split (encode the history, then the light head per candidate).
#include "adrec/models/hstu_ranker.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <string>

#include "adrec/core/config.h"

namespace adrec::models {
namespace {

HstuRanker MakeRanker(int64_t max_len = 12) {
  auto cfg = Config::Parse("[model]\ndim = 16\nblocks = 2\nheads = 2\ndropout = 0.0\ntime_buckets = 16\nhead_hidden = [8]\n");
  EXPECT_TRUE(cfg.ok());
  auto o = ReadHstuRankerOptions(*cfg, "model");
  EXPECT_TRUE(o.ok()) << o.status().ToString();
  torch::manual_seed(3);
  HstuRankerShape shape;
  shape.num_items = 30;
  shape.num_scenes = 3;
  shape.max_len = max_len;
  shape.targets = 3;
  // Two item attributes (4 and 3 values) and one user attribute (5 values) over 7 users.
  shape.item_codes = torch::stack({torch::arange(31, torch::kInt64).remainder(4), torch::arange(31, torch::kInt64).remainder(3)}, 1);
  shape.item_feature_sizes = {4, 3};
  shape.user_codes = torch::arange(7, torch::kInt64).remainder(5).unsqueeze(1);
  shape.user_feature_sizes = {5};
  HstuRanker m(shape, *o);
  m->eval();
  return m;
}

EventTokens RandomTokens(int64_t B, int64_t L) {
  return {torch::randint(1, 31, {B, L}, torch::kInt64), torch::randint(1, 6, {B, L}, torch::kInt64),
          torch::randint(1, 4, {B, L}, torch::kInt64),  torch::randint(1, 9, {B, L}, torch::kInt64),
          torch::randint(1, 25, {B, L}, torch::kInt64),
          torch::arange(L, torch::kInt64).mul(37).add(1000).expand({B, L}).clone(),
          torch::randint(0, 7, {B}, torch::kInt64)};
}

TEST(HstuRanker, AnImpressionIsScoredFromEarlierEventsOnly) {
  HstuRanker m = MakeRanker();
  torch::NoGradGuard no_grad;
  torch::manual_seed(4);
  EventTokens t = RandomTokens(2, 10);
  torch::Tensor base = m->forward(t);
  ASSERT_EQ(base.sizes(), (std::vector<int64_t>{2, 10, 3}));
  // Change what happens at position 6 and after (the impression's own click would be there):
  // scores at positions 0..6 must not move; position 6 still sees its own candidate item.
  EventTokens later = t;
  later.actions = t.actions.clone();
  later.actions.narrow(1, 6, 4).fill_(2);
  later.items = t.items.clone();
  later.items.narrow(1, 7, 3).fill_(5);
  torch::Tensor changed = m->forward(later);
  EXPECT_TRUE(torch::allclose(base.narrow(1, 0, 7), changed.narrow(1, 0, 7), 1e-5, 1e-6));
  // An earlier event does move later scores (the history is used at all).
  EventTokens earlier = t;
  earlier.actions = t.actions.clone();
  earlier.actions.narrow(1, 2, 1).fill_(3);
  torch::Tensor moved = m->forward(earlier);
  EXPECT_FALSE(torch::allclose(base.narrow(1, 3, 7), moved.narrow(1, 3, 7), 1e-5, 1e-6));
  // Another user's profile moves every score, the first one included (it is request context).
  EventTokens other = t;
  other.users = (t.users + 1).remainder(5);
  EXPECT_FALSE(torch::allclose(base.narrow(1, 0, 1), m->forward(other).narrow(1, 0, 1), 1e-5, 1e-6));
}

TEST(HstuRanker, OnePassEqualsEncodeOnceThenScoreCandidates) {
  HstuRanker m = MakeRanker();
  torch::NoGradGuard no_grad;
  torch::manual_seed(5);
  EventTokens t = RandomTokens(1, 8);
  torch::Tensor all = m->forward(t);
  // Serving: encode the first 5 events once, score the impression at position 5 and more candidates.
  auto first5 = [](const torch::Tensor& x) { return x.narrow(1, 0, 5); };
  EventTokens history{first5(t.items), first5(t.actions), first5(t.scenes), first5(t.slots), first5(t.hours), first5(t.times), t.users};
  torch::Tensor state = m->EncodeHistory(history).select(1, 4).squeeze(0);
  torch::Tensor candidates = torch::cat({t.items.select(1, 5), torch::tensor({1, 2, 3}, torch::kInt64)});
  auto at5 = [](const torch::Tensor& x) { return x.select(1, 5).expand({4}).contiguous(); };
  torch::Tensor scored = m->Score(state, candidates, {at5(t.scenes), at5(t.slots), at5(t.hours), t.users.expand({4})});
  EXPECT_TRUE(torch::allclose(scored[0], all[0][5], 1e-5, 1e-6)) << scored[0] << all[0][5];
  EXPECT_EQ(scored.sizes(), (std::vector<int64_t>{4, 3}));
}

TEST(HstuRanker, GradientsReachEveryParameter) {
  HstuRanker m = MakeRanker();
  m->train();
  torch::manual_seed(6);
  m->forward(RandomTokens(3, 9)).sum().backward();
  for (const auto& p : m->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<float>(), 0.f) << p.key();
  }
}

// CPU and CUDA agree on scores and gradients (run on the GPU machine; skipped without a device).
TEST(HstuRanker, CudaMatchesCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  HstuRanker m = MakeRanker();
  m->train();  // dropout is 0 in MakeRanker, so train mode draws no masks
  torch::manual_seed(7);
  EventTokens t = RandomTokens(3, 9);
  torch::Tensor cpu = m->forward(t);
  cpu.pow(2).mean().backward();
  std::map<std::string, torch::Tensor> cpu_grads;
  for (const auto& p : m->named_parameters()) cpu_grads[p.key()] = p.value().grad().clone();

  m->to(torch::kCUDA);
  m->zero_grad();
  auto cuda = [](const torch::Tensor& x) { return x.cuda(); };
  EventTokens g{cuda(t.items), cuda(t.actions), cuda(t.scenes), cuda(t.slots), cuda(t.hours), cuda(t.times), cuda(t.users)};
  torch::Tensor gpu = m->forward(g);
  gpu.pow(2).mean().backward();
  EXPECT_TRUE(torch::allclose(cpu, gpu.cpu(), 1e-4, 1e-4)) << "max diff " << (cpu - gpu.cpu()).abs().max().item<float>();
  for (const auto& p : m->named_parameters()) {
    torch::Tensor grad = p.value().grad().cpu();
    EXPECT_TRUE(torch::allclose(cpu_grads[p.key()], grad, 1e-3, 1e-4))
        << p.key() << ": max diff " << (cpu_grads[p.key()] - grad).abs().max().item<float>();
  }
}

}  // namespace
}  // namespace adrec::models

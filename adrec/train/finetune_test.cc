#include "adrec/train/finetune.h"

#include <gtest/gtest.h>

namespace adrec::train {
namespace {

struct Net : torch::nn::Module {
  Net() {
    torch::manual_seed(3);
    hidden = register_module("hidden", torch::nn::Linear(6, 5));
    out = register_module("out", torch::nn::Linear(5, 2));
  }
  torch::Tensor forward(const torch::Tensor& x) { return out(torch::relu(hidden(x))); }
  torch::nn::Linear hidden{nullptr}, out{nullptr};
};

// LoRA through W's gradient equals LoRA written out: W0 + B·A in the forward pass, autograd on
// A and B. One SGD step on each must land on the same weights.
TEST(Finetune, LoraAdaptersGetTheGradientsOfAnExplicitLowRankUpdate) {
  Net net;
  auto ft = Finetuner::Create(net, {"lora", 2}, /*seed=*/5);
  ASSERT_TRUE(ft.ok()) << ft.status().ToString();
  ASSERT_EQ(ft->trainable().size(), 4u);  // A and B of the two matrices
  const torch::Tensor x = torch::randn({8, 6}), y = torch::randn({8, 2});
  // The explicit form, from the same starting point.
  std::vector<torch::Tensor> a, b, w0;
  for (size_t i = 0; i < 4; i += 2) {
    a.push_back(ft->trainable()[i].detach().clone().requires_grad_(true));
    b.push_back(ft->trainable()[i + 1].detach().clone().requires_grad_(true));
  }
  w0 = {net.hidden->weight.detach().clone(), net.out->weight.detach().clone()};
  // B starts at zero: give it values so both gradients are non-trivial.
  {
    torch::NoGradGuard g;
    for (size_t k = 0; k < 2; ++k) {
      b[k].copy_(torch::randn_like(b[k]) * 0.1);
      ft->trainable()[2 * k + 1].copy_(b[k]);
    }
    net.hidden->weight.copy_(w0[0] + b[0].mm(a[0]));
    net.out->weight.copy_(w0[1] + b[1].mm(a[1]));
  }
  const torch::Tensor h = torch::relu(torch::nn::functional::linear(x, w0[0] + b[0].mm(a[0]), net.hidden->bias.detach()));
  const torch::Tensor explicit_out = torch::nn::functional::linear(h, w0[1] + b[1].mm(a[1]), net.out->bias.detach());
  torch::mse_loss(explicit_out, y).backward();

  torch::optim::SGD opt(ft->trainable(), torch::optim::SGDOptions(0.1));
  opt.zero_grad();
  torch::mse_loss(net.forward(x), y).backward();
  ft->BeforeStep();
  for (size_t k = 0; k < 2; ++k) {
    EXPECT_TRUE(torch::allclose(ft->trainable()[2 * k].grad(), a[k].grad(), 1e-5, 1e-6)) << "dA of matrix " << k;
    EXPECT_TRUE(torch::allclose(ft->trainable()[2 * k + 1].grad(), b[k].grad(), 1e-5, 1e-6)) << "dB of matrix " << k;
  }
  EXPECT_FALSE(net.hidden->weight.grad().defined()) << "W's own gradient is consumed";
  EXPECT_FALSE(net.hidden->bias.requires_grad()) << "biases are frozen";
  opt.step();
  ft->AfterStep();
  torch::NoGradGuard g;
  const torch::Tensor merged = w0[0] + ft->trainable()[1].mm(ft->trainable()[0]);
  EXPECT_TRUE(torch::allclose(net.hidden->weight, merged)) << "W = W0 + B·A after the step";
  EXPECT_EQ(ft->Summary()["trainable_params"], 2 * 6 + 5 * 2 + 2 * 5 + 2 * 2);
}

TEST(Finetune, HeadTrainsOnlyTheOutputLayer) {
  Net net;
  auto ft = Finetuner::Create(net, {"head", 4}, 1);
  ASSERT_TRUE(ft.ok());
  EXPECT_EQ(ft->trainable().size(), 2u);  // out.weight, out.bias
  EXPECT_FALSE(net.hidden->weight.requires_grad());
  EXPECT_TRUE(net.out->weight.requires_grad());
  EXPECT_TRUE(ft->embeddings_frozen());
  auto full = Finetuner::Create(net, {"full", 4}, 1);
  ASSERT_TRUE(full.ok());
  EXPECT_FALSE(full->embeddings_frozen());
  EXPECT_NE(Finetuner::Create(net, {"adapters", 4}, 1).status().message().find("not one of full, head, lora"), std::string::npos);
  struct NoHead : torch::nn::Module {
    NoHead() { register_module("body", torch::nn::Linear(2, 2)); }
  } no_head;
  EXPECT_NE(Finetuner::Create(no_head, {"head", 4}, 1).status().message().find("no output layer"), std::string::npos);
}

}  // namespace
}  // namespace adrec::train

#include "adrec/train/adversarial.h"

#include <gtest/gtest.h>

namespace adrec::train {
namespace {

// A linear scorer over two fields: the loss's gradient is known, so FGSM's direction is too.
struct Linear {
  torch::Tensor w0 = torch::tensor({1.0f, -2.0f}), w1 = torch::tensor({0.5f, 0.0f, 3.0f});
  torch::Tensor labels = torch::tensor({1.0f, 0.0f}).unsqueeze(1);
  torch::Tensor Logits(const embedding::ModelInput& x) const {
    return (x.sparse[0] * w0).sum(1, true) + (x.sparse[1] * w1).sum(1, true);
  }
  torch::Tensor Loss(const embedding::ModelInput& x) const {
    return torch::binary_cross_entropy_with_logits(Logits(x), labels, {}, {}, at::Reduction::Sum);
  }
};

embedding::ModelInput Input() {
  embedding::ModelInput in;
  in.sparse = {torch::tensor({{0.3f, 0.1f}, {-0.2f, 0.4f}}), torch::tensor({{0.1f, 0.2f, -0.1f}, {0.0f, 0.5f, 0.2f}})};
  in.scene = torch::zeros({2}, torch::kInt64);
  return in;
}

double Norm(const std::vector<torch::Tensor>& f, int64_t row) {
  double s = 0;
  for (const auto& t : f) s += t[row].pow(2).sum().item<double>();
  return std::sqrt(s);
}

TEST(Adversarial, FgsmStepsToTheBallsEdgeAlongTheGradient) {
  const Linear m;
  const embedding::ModelInput in = Input();
  AdversarialOptions o;
  o.method = "fgsm";
  o.eps = 0.2;
  const auto loss = [&](const embedding::ModelInput& x) { return m.Loss(x); };
  const std::vector<torch::Tensor> d = AdversarialDelta(loss, in, o);
  ASSERT_EQ(d.size(), 2u);
  for (int64_t b = 0; b < 2; ++b) {
    EXPECT_NEAR(Norm(d, b), 0.2 * Norm(in.sparse, b), 1e-5) << "on the edge of the sample's ball";
    // The gradient of the BCE w.r.t. field f is (σ(z) − y) w_f: the label sets the direction.
    const float sign = b == 0 ? -1.f : 1.f;
    EXPECT_GT((d[0][b] * m.w0).sum().item<float>() * sign + (d[1][b] * m.w1).sum().item<float>() * sign, 0.f);
  }
  EXPECT_GT(m.Loss(Perturbed(in, d)).item<float>(), m.Loss(in).item<float>());
  EXPECT_FALSE(d[0].requires_grad());
}

TEST(Adversarial, PgdStaysInTheBallAndRaisesTheLossAtLeastAsMuch) {
  const Linear m;
  const embedding::ModelInput in = Input();
  const auto loss = [&](const embedding::ModelInput& x) { return m.Loss(x); };
  AdversarialOptions fgsm, pgd;
  fgsm.method = "fgsm";
  pgd.method = "pgd";
  pgd.steps = 5;
  fgsm.eps = pgd.eps = 0.3;
  const auto dp = AdversarialDelta(loss, in, pgd), df = AdversarialDelta(loss, in, fgsm);
  for (int64_t b = 0; b < 2; ++b) EXPECT_LE(Norm(dp, b), 0.3 * Norm(in.sparse, b) + 1e-5);
  // A linear model's worst case is FGSM's: PGD reaches it, within rounding.
  EXPECT_GE(m.Loss(Perturbed(in, dp)).item<float>(), m.Loss(Perturbed(in, df)).item<float>() - 1e-4);
}

TEST(Adversarial, BadOptionsAreNamed) {
  AdversarialOptions o;
  o.method = "cw";
  EXPECT_NE(CheckAdversarial(o, "train.adversarial").message().find("'cw' is not one of none, fgsm, pgd"), std::string::npos);
  o.method = "fgsm";
  o.eps = 0;
  EXPECT_EQ(CheckAdversarial(o, "x").code(), StatusCode::kInvalidArgument);
  o.eps = 0.1;
  EXPECT_TRUE(CheckAdversarial(o, "x").ok());
}

}  // namespace
}  // namespace adrec::train

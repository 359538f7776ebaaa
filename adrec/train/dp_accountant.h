// Privacy accounting of DP-SGD: Rényi differential privacy of the Poisson-subsampled Gaussian
// mechanism (Mironov, Talwar, Zhang 2019, §3.3), composed over steps and converted to (ε, δ) by
// Balle et al. 2020 (Theorem 21) — the accountant Opacus' RDPAccountant implements, with its
// default orders, so ε here equals Opacus' for the same history. Plain math, no tensors.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "adrec/core/status.h"

namespace adrec::train {

// `steps` steps of noise `noise_multiplier` (σ: the noise's standard deviation over the
// clipping norm), each sample in a batch with probability `sample_rate` (q).
struct DpSteps {
  double noise_multiplier = 1.0;
  double sample_rate = 0.01;
  int64_t steps = 0;
};

// 1.1, 1.2, …, 10.9, 12, 13, …, 63: Opacus' DEFAULT_ALPHAS.
const std::vector<double>& DefaultRdpOrders();

// RDP of one step at order `alpha` (> 1); +∞ where the mechanism gives no bound (σ = 0).
StatusOr<double> SubsampledGaussianRdp(double sample_rate, double noise_multiplier, double alpha);

struct PrivacySpent {
  double epsilon = 0;  // +∞ when no order gives a finite bound
  double order = 0;    // the order that gave it
};

// ε of a training history (several phases with their own σ and q compose by adding RDP) at δ,
// minimised over `orders` (empty: DefaultRdpOrders()). An empty history spends nothing.
StatusOr<PrivacySpent> EpsilonOf(std::span<const DpSteps> history, double delta, std::span<const double> orders = {});

// The smallest σ, to `tolerance` in ε, for which `steps` steps at `sample_rate` stay within
// (target_epsilon, delta): Opacus' get_noise_multiplier (doubling from 10, then bisection).
// InvalidArgument when the budget is too small to train at all (σ would pass 10^6).
StatusOr<double> NoiseMultiplierFor(double target_epsilon, double delta, double sample_rate, int64_t steps,
                                    double tolerance = 0.01);

}  // namespace adrec::train

#include "adrec/train/dp_accountant.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

namespace adrec::train {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kMaxSigma = 1e6;  // Opacus' MAX_SIGMA: beyond it the budget is too small to train

std::string Num(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

double LogAdd(double a, double b) {
  const double lo = std::min(a, b), hi = std::max(a, b);
  if (lo == -kInf) return hi;
  return std::log1p(std::exp(lo - hi)) + hi;
}

// log(e^a - e^b) for a ≥ b; rounding can make a term of the alternating series a hair larger
// than the sum so far, which is a zero, not an error.
double LogSub(double a, double b) {
  if (b == -kInf) return a;
  if (a <= b) return -kInf;
  const double d = std::expm1(a - b);
  return std::isinf(d) ? a : std::log(d) + b;
}

// log(erfc(x)), accurate where erfc underflows (the asymptotic series past x = 26).
double LogErfc(double x) {
  if (x < 26.0) return std::log(std::erfc(x));
  const double x2 = x * x, inv = 1.0 / (2.0 * x2);
  const double series = 1.0 - inv + 3.0 * inv * inv - 15.0 * inv * inv * inv + 105.0 * inv * inv * inv * inv;
  return -x2 - std::log(x) - 0.5 * std::log(M_PI) + std::log(series);
}

// log A_α for integer α: a finite binomial sum.
double LogAInt(double q, double sigma, int64_t alpha) {
  double log_a = -kInf;
  const double a = static_cast<double>(alpha);
  for (int64_t i = 0; i <= alpha; ++i) {
    const double di = static_cast<double>(i);
    const double log_coef = std::lgamma(a + 1) - std::lgamma(di + 1) - std::lgamma(a - di + 1) + di * std::log(q) +
                            (a - di) * std::log1p(-q);
    log_a = LogAdd(log_a, log_coef + (di * di - di) / (2 * sigma * sigma));
  }
  return log_a;
}

// log A_α for fractional α: two alternating series, summed until their terms are below e^-30.
double LogAFrac(double q, double sigma, double alpha) {
  double log_a0 = -kInf, log_a1 = -kInf;
  const double z0 = sigma * sigma * std::log(1 / q - 1) + 0.5;
  double log_abs_coef = 0;  // log|C(α, i)|, built as C(α, i) = C(α, i-1)·(α-i+1)/i
  bool positive = true;
  for (int64_t i = 0;; ++i) {
    const double di = static_cast<double>(i);
    if (i > 0) {
      const double f = (alpha - di + 1) / di;
      log_abs_coef += std::log(std::fabs(f));
      if (f < 0) positive = !positive;
    }
    const double j = alpha - di;
    const double log_t0 = log_abs_coef + di * std::log(q) + j * std::log1p(-q);
    const double log_t1 = log_abs_coef + j * std::log(q) + di * std::log1p(-q);
    const double log_e0 = std::log(0.5) + LogErfc((di - z0) / (std::sqrt(2.0) * sigma));
    const double log_e1 = std::log(0.5) + LogErfc((z0 - j) / (std::sqrt(2.0) * sigma));
    const double log_s0 = log_t0 + (di * di - di) / (2 * sigma * sigma) + log_e0;
    const double log_s1 = log_t1 + (j * j - j) / (2 * sigma * sigma) + log_e1;
    if (positive) {
      log_a0 = LogAdd(log_a0, log_s0);
      log_a1 = LogAdd(log_a1, log_s1);
    } else {
      log_a0 = LogSub(log_a0, log_s0);
      log_a1 = LogSub(log_a1, log_s1);
    }
    if (std::max(log_s0, log_s1) < -30) break;
  }
  return LogAdd(log_a0, log_a1);
}

Status CheckSteps(const DpSteps& s) {
  if (!(s.sample_rate >= 0 && s.sample_rate <= 1)) {
    return InvalidArgumentError("DP accounting: the sample rate must be in [0, 1], got " + Num(s.sample_rate));
  }
  if (!(s.noise_multiplier >= 0) || std::isinf(s.noise_multiplier)) {
    return InvalidArgumentError("DP accounting: the noise multiplier must be finite and ≥ 0, got " +
                                Num(s.noise_multiplier));
  }
  if (s.steps < 0) return InvalidArgumentError("DP accounting: steps must be ≥ 0, got " + std::to_string(s.steps));
  return Status::Ok();
}

Status CheckDelta(double delta) {
  if (!(delta > 0 && delta < 1)) return InvalidArgumentError("DP accounting: δ must be in (0, 1), got " + Num(delta));
  return Status::Ok();
}

}  // namespace

const std::vector<double>& DefaultRdpOrders() {
  static const std::vector<double> orders = [] {
    std::vector<double> o;
    for (int x = 1; x < 100; ++x) o.push_back(1 + x / 10.0);
    for (int a = 12; a < 64; ++a) o.push_back(a);
    return o;
  }();
  return orders;
}

StatusOr<double> SubsampledGaussianRdp(double sample_rate, double noise_multiplier, double alpha) {
  ADREC_RETURN_IF_ERROR(CheckSteps({.noise_multiplier = noise_multiplier, .sample_rate = sample_rate, .steps = 0}));
  if (!(alpha > 1)) return InvalidArgumentError("DP accounting: an RDP order must be > 1, got " + Num(alpha));
  if (sample_rate == 0) return 0.0;
  if (noise_multiplier == 0) return kInf;
  if (sample_rate == 1) return alpha / (2 * noise_multiplier * noise_multiplier);
  if (std::isinf(alpha)) return kInf;
  const double log_a = alpha == std::floor(alpha) ? LogAInt(sample_rate, noise_multiplier, static_cast<int64_t>(alpha))
                                                  : LogAFrac(sample_rate, noise_multiplier, alpha);
  return log_a / (alpha - 1);
}

StatusOr<PrivacySpent> EpsilonOf(std::span<const DpSteps> history, double delta, std::span<const double> orders) {
  ADREC_RETURN_IF_ERROR(CheckDelta(delta));
  for (const DpSteps& s : history) ADREC_RETURN_IF_ERROR(CheckSteps(s));
  if (history.empty()) return PrivacySpent{.epsilon = 0, .order = 0};
  if (orders.empty()) orders = DefaultRdpOrders();
  // Opacus' nanargmin: the first order with the least ε; the first order when none is finite.
  PrivacySpent best{.epsilon = kInf, .order = orders.front()};
  for (double alpha : orders) {
    double rdp = 0;
    for (const DpSteps& s : history) {
      ADREC_ASSIGN_OR_RETURN(double one, SubsampledGaussianRdp(s.sample_rate, s.noise_multiplier, alpha));
      rdp += one * static_cast<double>(s.steps);
    }
    const double eps = rdp - (std::log(delta) + std::log(alpha)) / (alpha - 1) + std::log((alpha - 1) / alpha);
    if (eps < best.epsilon) best = {.epsilon = eps, .order = alpha};  // false for NaN
  }
  return best;
}

StatusOr<double> NoiseMultiplierFor(double target_epsilon, double delta, double sample_rate, int64_t steps,
                                    double tolerance) {
  if (!(target_epsilon > 0) || std::isinf(target_epsilon)) {
    return InvalidArgumentError("DP accounting: the target ε must be finite and > 0, got " + Num(target_epsilon));
  }
  if (!(tolerance > 0)) return InvalidArgumentError("DP accounting: the ε tolerance must be > 0, got " + Num(tolerance));
  ADREC_RETURN_IF_ERROR(CheckDelta(delta));
  ADREC_RETURN_IF_ERROR(CheckSteps({.noise_multiplier = 0, .sample_rate = sample_rate, .steps = steps}));
  if (steps == 0 || sample_rate == 0) return 0.0;  // nothing is released: no noise is needed
  auto eps_at = [&](double sigma) -> StatusOr<double> {
    const DpSteps s{.noise_multiplier = sigma, .sample_rate = sample_rate, .steps = steps};
    ADREC_ASSIGN_OR_RETURN(PrivacySpent p, EpsilonOf(std::span<const DpSteps>(&s, 1), delta));
    return p.epsilon;
  };
  double sigma_low = 0, sigma_high = 10, eps_high = kInf;
  while (eps_high > target_epsilon) {
    sigma_high *= 2;
    ADREC_ASSIGN_OR_RETURN(eps_high, eps_at(sigma_high));
    if (sigma_high > kMaxSigma) {
      return InvalidArgumentError("DP accounting: ε = " + Num(target_epsilon) + " at δ = " + Num(delta) +
                                  " is too small a budget for " + std::to_string(steps) + " steps at sample rate " +
                                  Num(sample_rate) + " (no noise multiplier up to 10^6 reaches it); raise ε, or "
                                  "train fewer steps or smaller batches");
    }
  }
  while (target_epsilon - eps_high > tolerance) {
    const double sigma = (sigma_low + sigma_high) / 2;
    ADREC_ASSIGN_OR_RETURN(double eps, eps_at(sigma));
    if (eps < target_epsilon) {
      sigma_high = sigma;
      eps_high = eps;
    } else {
      sigma_low = sigma;
    }
  }
  return sigma_high;
}

}  // namespace adrec::train

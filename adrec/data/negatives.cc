#include "adrec/data/negatives.h"

#include <algorithm>
#include <cmath>

namespace adrec::data {

namespace {
// Below this many rejections per requested draw, rejection sampling is cheaper than building
// the complement of the exclusion set.
constexpr uint64_t kRejectionBudgetPerDraw = 32;

double Unit(SamplerRng& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }
}  // namespace

Status NegativeSampler::Sample(uint32_t n, std::span<uint32_t> out, SamplerRng& rng,
                               std::span<const uint32_t> exclude) const {
  if (out.size() < n) {
    return InvalidArgumentError("negative sampler: asked for " + std::to_string(n) + " draws into a buffer of " +
                                std::to_string(out.size()));
  }
  if (!std::is_sorted(exclude.begin(), exclude.end())) {
    return InvalidArgumentError("negative sampler: the exclude set must be sorted ascending");
  }
  if (n == 0) return Status::Ok();
  if (exclude.empty()) {
    for (uint32_t k = 0; k < n; ++k) out[k] = DrawOne(rng);
    return Status::Ok();
  }
  // Rejection keeps the conditional distribution exact; fall back to the explicit complement
  // when the exclusion holds most of the mass.
  uint64_t budget = kRejectionBudgetPerDraw * n + 64;
  uint32_t k = 0;
  while (k < n && budget > 0) {
    uint32_t item = DrawOne(rng);
    --budget;
    if (!std::binary_search(exclude.begin(), exclude.end(), item)) out[k++] = item;
  }
  if (k == n) return Status::Ok();
  std::vector<uint32_t> cand;
  std::vector<double> cdf;
  double total = 0;
  for (uint32_t i = 0; i < num_items(); ++i) {
    double p = Probability(i);
    if (p <= 0 || std::binary_search(exclude.begin(), exclude.end(), i)) continue;
    total += p;
    cand.push_back(i);
    cdf.push_back(total);
  }
  if (cand.empty()) {
    return FailedPreconditionError("negative sampler: the exclude set (" + std::to_string(exclude.size()) +
                                   " items) leaves no item to sample from " + std::to_string(num_items()));
  }
  for (; k < n; ++k) {
    double r = Unit(rng) * total;
    size_t j = static_cast<size_t>(std::upper_bound(cdf.begin(), cdf.end(), r) - cdf.begin());
    out[k] = cand[std::min(j, cand.size() - 1)];
  }
  return Status::Ok();
}

uint32_t UniformSampler::DrawOne(SamplerRng& rng) const {
  // Lemire's multiply-shift: unbiased enough for 2^32 items from 64 random bits (bias < 2^-32).
  return static_cast<uint32_t>((static_cast<unsigned __int128>(rng()) * num_items()) >> 64);
}

StatusOr<std::unique_ptr<PopularitySampler>> PopularitySampler::Create(std::span<const double> weights) {
  if (weights.empty()) return InvalidArgumentError("popularity sampler: no items");
  if (weights.size() > UINT32_MAX) return InvalidArgumentError("popularity sampler: more than 2^32 items");
  double total = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    if (!(weights[i] >= 0) || !std::isfinite(weights[i])) {
      return InvalidArgumentError("popularity sampler: weight of item " + std::to_string(i) + " is " +
                                  std::to_string(weights[i]) + " (need finite and >= 0)");
    }
    total += weights[i];
  }
  if (total <= 0) return InvalidArgumentError("popularity sampler: every weight is zero");
  const uint32_t n = static_cast<uint32_t>(weights.size());
  std::unique_ptr<PopularitySampler> s(new PopularitySampler(n));
  s->prob_.resize(n);
  s->accept_.assign(n, 1.0);
  s->alias_.resize(n);
  std::vector<double> scaled(n);
  std::vector<uint32_t> small, large;
  for (uint32_t i = 0; i < n; ++i) {
    s->prob_[i] = weights[i] / total;
    scaled[i] = s->prob_[i] * n;
    s->alias_[i] = i;
    (scaled[i] < 1.0 ? small : large).push_back(i);
  }
  // Vose's alias method: pair each under-full column with an over-full donor.
  while (!small.empty() && !large.empty()) {
    uint32_t l = small.back(), g = large.back();
    small.pop_back();
    s->accept_[l] = scaled[l];
    s->alias_[l] = g;
    scaled[g] = (scaled[g] + scaled[l]) - 1.0;
    if (scaled[g] < 1.0) {
      large.pop_back();
      small.push_back(g);
    }
  }
  // Leftovers are 1 up to rounding.
  for (uint32_t i : small) s->accept_[i] = 1.0;
  for (uint32_t i : large) s->accept_[i] = 1.0;
  return s;
}

StatusOr<std::unique_ptr<PopularitySampler>> PopularitySampler::FromDataset(const Dataset& ds, const Split& split,
                                                                            double power, double smoothing) {
  ADREC_RETURN_IF_ERROR(CheckSplitMatches(split, ds));
  std::vector<double> w(ds.num_items(), 0.0);
  for (size_t i = 0; i < ds.num_events(); ++i) {
    if (split.part[i] == static_cast<uint8_t>(SplitPart::kTrain) && split.IsPositive(ds.events.action[i])) {
      w[ds.events.item[i]] += 1.0;
    }
  }
  for (double& x : w) x = std::pow(x + smoothing, power);
  return Create(w);
}

uint32_t PopularitySampler::DrawOne(SamplerRng& rng) const {
  uint64_t r = rng();
  uint32_t col = static_cast<uint32_t>((static_cast<unsigned __int128>(r) * num_items()) >> 64);
  // A second draw for the coin keeps column and coin independent.
  return Unit(rng) < accept_[col] ? col : alias_[col];
}

}  // namespace adrec::data

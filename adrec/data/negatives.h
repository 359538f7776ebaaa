// Negative samplers over the item catalog: uniform and popularity-proportional (Walker/Vose
// alias method, O(1) per draw), seeded, optionally excluding a user's positives.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <vector>

#include "adrec/core/status.h"
#include "adrec/data/dataset.h"
#include "adrec/data/split.h"

namespace adrec::data {

using SamplerRng = std::mt19937_64;

class NegativeSampler {
 public:
  virtual ~NegativeSampler() = default;
  uint32_t num_items() const { return num_items_; }
  // Writes n draws (with replacement) into out[0, n). `exclude` must be sorted ascending; its
  // items are never drawn (the draws follow the sampler's distribution conditioned on not being
  // excluded). InvalidArgument when out is too small or exclude is unsorted; FailedPrecondition
  // when the exclusion leaves no item with probability > 0.
  Status Sample(uint32_t n, std::span<uint32_t> out, SamplerRng& rng, std::span<const uint32_t> exclude = {}) const;
  // Probability of drawing `item` without exclusion (tests, logQ correction).
  virtual double Probability(uint32_t item) const = 0;

 protected:
  explicit NegativeSampler(uint32_t num_items) : num_items_(num_items) {}
  virtual uint32_t DrawOne(SamplerRng& rng) const = 0;

 private:
  uint32_t num_items_;
};

class UniformSampler final : public NegativeSampler {
 public:
  explicit UniformSampler(uint32_t num_items) : NegativeSampler(num_items) {}
  double Probability(uint32_t item) const override { return item < num_items() ? 1.0 / num_items() : 0.0; }

 private:
  uint32_t DrawOne(SamplerRng& rng) const override;
};

class PopularitySampler final : public NegativeSampler {
 public:
  // weights[i] >= 0 and finite, not all zero.
  static StatusOr<std::unique_ptr<PopularitySampler>> Create(std::span<const double> weights);
  // Weight of an item = (count of its positive train events + smoothing)^power; power 0.75 is
  // word2vec's unigram^(3/4) (Mikolov et al. 2013), 1.0 is plain popularity.
  static StatusOr<std::unique_ptr<PopularitySampler>> FromDataset(const Dataset& ds, const Split& split,
                                                                  double power = 1.0, double smoothing = 0.0);
  double Probability(uint32_t item) const override { return item < prob_.size() ? prob_[item] : 0.0; }

 private:
  explicit PopularitySampler(uint32_t n) : NegativeSampler(n) {}
  uint32_t DrawOne(SamplerRng& rng) const override;
  std::vector<double> prob_;    // normalised weights
  std::vector<double> accept_;  // alias table: keep column i with probability accept_[i]
  std::vector<uint32_t> alias_; // ... else take alias_[i]
};

}  // namespace adrec::data

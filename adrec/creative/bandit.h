// Which creative of an ad to show: bandits over the ad's variants, learning from impressions and
// clicks. Arms are variant indices (into one variant list); a context is the viewer's segment
// (Thompson keeps one Beta posterior per arm and segment) and the one-hot features LinUCB's
// linear model reads. New variants start from a prior: the ranker's pCTR for the ad.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "adrec/core/status.h"

namespace adrec::creative {

struct BanditContext {
  uint32_t segment = 0;             // Thompson: posteriors are per (arm, segment)
  std::vector<uint32_t> features;   // LinUCB: indices of the active one-hot features, < dim; 0 (the bias) first
  std::vector<float> dense;         // LinUCB: the last dense.size() features (the user's embedding)
};

struct BanditOptions {
  // Thompson: a segment's prior Beta(s·m, s·(1-m)) counts as s impressions, m the arm's rate
  // over all segments shrunk to the ad's pCTR p with the same weight: (clicks + s·p)/(n + s).
  double prior_strength = 20;
  // Exploration limit: an arm with fewer than `warm_impressions` impressions (all segments) is
  // shown, when a warm arm of the ad exists, at most `max_cold_share` of the times the policy
  // picks it; otherwise the warm arm with the best mean is shown. 1 turns the limit off.
  uint32_t warm_impressions = 50;
  double max_cold_share = 0.5;
  // LinUCB: ridge λ, width α of the confidence bonus, features `dim` (the bias included).
  double ridge = 1.0, alpha = 0.1;
  uint32_t dim = 1;
  uint64_t seed = 1;
};

class CreativePolicy {
 public:
  virtual ~CreativePolicy() = default;
  // One of `arms` (the ad's variants; not empty) for this context. `pctr`: the ranker's
  // estimate for the ad, the prior of arms with no data yet.
  virtual uint32_t Choose(std::span<const uint32_t> arms, const BanditContext& ctx, double pctr) = 0;
  // Feedback: arm was shown in ctx; reward 1 for a click, 0 for none.
  virtual void Update(uint32_t arm, const BanditContext& ctx, double reward) = 0;
  // A click that came after its impression was already counted with reward 0 (the server's
  // events arrive one by one): the impression's reward becomes 1.
  virtual void Click(uint32_t arm, const BanditContext& ctx) = 0;
  virtual std::string_view name() const = 0;
};

// "random" (uniform), "first" (always the ad's first variant: the catalogue's own creative),
// "thompson" (Beta-Bernoulli per arm and segment), "linucb" (disjoint LinUCB on the features).
// InvalidArgument names the known policies.
StatusOr<std::unique_ptr<CreativePolicy>> MakeCreativePolicy(std::string_view name, const BanditOptions& options);
inline constexpr const char* kCreativePolicyNames = "random, first, thompson, linucb";

// Impressions and clicks counted per arm (all segments): the exploration limit's warm test and
// what /v1/models reports.
class ArmCounts {
 public:
  void Add(uint32_t arm, double reward);
  void AddClick(uint32_t arm);  // a click on an impression already added
  uint64_t impressions(uint32_t arm) const;
  double clicks(uint32_t arm) const;

 private:
  std::unordered_map<uint32_t, std::pair<uint64_t, double>> counts_;
};

}  // namespace adrec::creative

// The closed creative loop against the synthetic world (`adrec simulate`): each impression picks
// a viewer and an ad, the policy picks one of the ad's variants, the click is drawn from the
// generator's own click model (synthetic.h: the creative's colour, orientation and title words
// for that viewer), and the policy learns from it. Regret is the true CTR of the best variant for
// that viewer minus the chosen one's: zero only for a policy that knows the truth.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "adrec/core/status.h"
#include "adrec/creative/bandit.h"
#include "adrec/creative/context.h"
#include "adrec/creative/variants.h"
#include "adrec/data/dataset.h"

namespace adrec::creative {

struct SimulateOptions {
  uint32_t days = 14;
  uint32_t impressions_per_day = 50000;
  uint32_t ads = 100;  // the world's most-shown ads that have at least two variants
  uint64_t seed = 1;
  // random | static (the variant with the best true CTR over all viewers, per ad: the best a
  // policy without context can do once it knows the truth) | first | thompson | linucb.
  std::string policy = "thompson";
  BanditOptions bandit;
  ContextOptions context;
  // A ranking bundle of the world: its user embedding joins LinUCB's context (BundleUserVectors).
  std::filesystem::path user_embedding;
  bool show_progress = true;
};

struct SimulateDay {
  uint32_t day = 0;
  uint64_t impressions = 0;
  uint64_t clicks = 0;
  double ctr = 0;               // clicks / impressions
  double expected_ctr = 0;      // mean true CTR of the shown variants
  double regret = 0;            // this day's sum of (best true CTR − shown true CTR)
  double cumulative_regret = 0;
};

struct SimulateReport {
  std::string policy;
  size_t ads = 0, variants = 0;
  uint64_t impressions = 0, clicks = 0;
  double ctr = 0, expected_ctr = 0, oracle_ctr = 0;  // oracle: the best variant per viewer, always
  double cumulative_regret = 0;
  std::vector<SimulateDay> days;
};

// `world` must be a synthetic world (adrec gen: ground-truth CTRs, the generator's vocabularies);
// `variants` the ads' variants (GenerateTemplateVariants). FailedPrecondition when the world has
// no ground truth; InvalidArgument names a value the generator does not know.
StatusOr<SimulateReport> Simulate(const data::Dataset& world, const std::vector<CreativeVariant>& variants,
                                  const SimulateOptions& options);

}  // namespace adrec::creative

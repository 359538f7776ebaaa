// Exposure fairness across advertiser groups: the share of the attention an answer gives (each
// position weighted 1 / log2(rank + 2), as DCG discounts it) that each group's ads receive,
// against the share of the relevance the group's ads hold. A ratio above 1 is over-exposure,
// below 1 under-exposure; equal shares are the "exposure proportional to relevance" criterion.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "adrec/core/status.h"
#include "adrec/data/dataset.h"

namespace adrec::eval {

// Two ways to split advertisers: by size (ads in the catalogue: "large" at or above the median,
// "small" below) and by history (impressions in the log: "new" in the lowest quarter,
// "established" above). Each is one index per advertiser into `names`.
struct AdvertiserGrouping {
  std::string name;                // "size" | "history"
  std::vector<std::string> names;  // the groups
  std::vector<int> group_of;       // per advertiser
};
AdvertiserGrouping GroupBySize(const std::vector<uint32_t>& ads_per_advertiser);
AdvertiserGrouping GroupByHistory(const std::vector<uint64_t>& impressions_per_advertiser);

struct FairnessGroup {
  std::string name;
  uint32_t advertisers = 0;
  double exposure_share = 0;   // of the position-weighted exposure of every answer
  double relevance_share = 0;  // of the summed relevance of every advertiser
  double ratio = 0;            // exposure / relevance share (0 when the group holds no relevance)
};
struct FairnessReport {
  std::string grouping;
  std::vector<FairnessGroup> groups;
  double exposure_total = 0;  // Σ of the position weights (requests × Σ_k 1/log2(k+1))
};

// `answers`: each request's answer as the advertiser of every position, best first.
// `relevance`: per advertiser, ≥ 0. InvalidArgument naming the request or advertiser out of range.
StatusOr<FairnessReport> ExposureFairness(const std::vector<std::vector<uint32_t>>& answers,
                                          const AdvertiserGrouping& grouping, const std::vector<double>& relevance);

// What the log says of each advertiser: ads in the catalogue, impressions, and relevance = the
// sum over its ads of each ad's mean true CTR (the synthetic world's truth column) or, without
// truth, its smoothed CTR (clicks + 1) / (impressions + 20). InvalidArgument when the catalogue
// has no categorical "advertiser" column.
inline constexpr uint32_t kNoAdvertiser = UINT32_MAX;
// Advertisers with at least one ad; `advertiser_of_item` indexes them (kNoAdvertiser: none).
struct AdvertiserStats {
  std::vector<std::string> names;
  std::vector<uint32_t> codes;  // in the catalogue's categorical "advertiser" column
  std::vector<uint32_t> ads;
  std::vector<uint64_t> impressions;
  std::vector<double> relevance;
  std::vector<uint32_t> advertiser_of_item;
  bool from_truth = false;
};
StatusOr<AdvertiserStats> AdvertiserStatsOf(const data::Dataset& ds);

}  // namespace adrec::eval

#include "adrec/eval/fairness.h"

#include <algorithm>
#include <cmath>

namespace adrec::eval {

AdvertiserGrouping GroupBySize(const std::vector<uint32_t>& ads) {
  AdvertiserGrouping g{.name = "size", .names = {"large", "small"}, .group_of = {}};
  std::vector<uint32_t> sorted = ads;
  std::sort(sorted.begin(), sorted.end());
  const uint32_t median = sorted.empty() ? 0 : sorted[sorted.size() / 2];
  for (uint32_t n : ads) g.group_of.push_back(n >= median ? 0 : 1);
  return g;
}

AdvertiserGrouping GroupByHistory(const std::vector<uint64_t>& impressions) {
  AdvertiserGrouping g{.name = "history", .names = {"established", "new"}, .group_of = {}};
  std::vector<uint64_t> sorted = impressions;
  std::sort(sorted.begin(), sorted.end());
  const uint64_t quartile = sorted.empty() ? 0 : sorted[sorted.size() / 4];
  for (uint64_t n : impressions) g.group_of.push_back(n <= quartile ? 1 : 0);
  return g;
}

StatusOr<FairnessReport> ExposureFairness(const std::vector<std::vector<uint32_t>>& answers,
                                          const AdvertiserGrouping& grouping, const std::vector<double>& relevance) {
  const size_t n_adv = grouping.group_of.size(), n_groups = grouping.names.size();
  if (relevance.size() != n_adv) {
    return InvalidArgumentError("fairness: " + std::to_string(relevance.size()) + " relevance values for " +
                                std::to_string(n_adv) + " advertisers");
  }
  std::vector<double> exposure(n_groups, 0.0), rel(n_groups, 0.0);
  std::vector<uint32_t> members(n_groups, 0);
  for (size_t a = 0; a < n_adv; ++a) {
    const int g = grouping.group_of[a];
    if (g < 0 || static_cast<size_t>(g) >= n_groups) {
      return InvalidArgumentError("fairness: advertiser " + std::to_string(a) + " is in no group");
    }
    if (!(relevance[a] >= 0)) return InvalidArgumentError("fairness: advertiser " + std::to_string(a) + " has a negative relevance");
    rel[static_cast<size_t>(g)] += relevance[a];
    ++members[static_cast<size_t>(g)];
  }
  FairnessReport r;
  r.grouping = grouping.name;
  for (size_t q = 0; q < answers.size(); ++q) {
    for (size_t p = 0; p < answers[q].size(); ++p) {
      const uint32_t a = answers[q][p];
      if (a >= n_adv) {
        return InvalidArgumentError("fairness: request " + std::to_string(q) + " position " + std::to_string(p) +
                                    " names advertiser " + std::to_string(a) + " of " + std::to_string(n_adv));
      }
      const double w = 1.0 / std::log2(static_cast<double>(p) + 2.0);
      exposure[static_cast<size_t>(grouping.group_of[a])] += w;
      r.exposure_total += w;
    }
  }
  double rel_total = 0;
  for (double x : rel) rel_total += x;
  for (size_t g = 0; g < n_groups; ++g) {
    FairnessGroup fg{.name = grouping.names[g], .advertisers = members[g], .exposure_share = 0, .relevance_share = 0,
                     .ratio = 0};
    fg.exposure_share = r.exposure_total > 0 ? exposure[g] / r.exposure_total : 0;
    fg.relevance_share = rel_total > 0 ? rel[g] / rel_total : 0;
    fg.ratio = fg.relevance_share > 0 ? fg.exposure_share / fg.relevance_share : 0;
    r.groups.push_back(fg);
  }
  return r;
}

StatusOr<AdvertiserStats> AdvertiserStatsOf(const data::Dataset& ds) {
  const data::Column* adv = ds.item_table.Find(data::cols::kAdvertiser);
  if (adv == nullptr || adv->type != data::ColumnType::kCategorical) {
    return InvalidArgumentError("fairness: the catalogue has no categorical 'advertiser' item column to group by");
  }
  const size_t n_items = ds.num_items();
  AdvertiserStats s;
  s.from_truth = ds.has_truth();
  std::vector<uint64_t> item_impressions(n_items, 0), item_clicks(n_items, 0);
  std::vector<double> item_truth(n_items, 0.0);
  for (size_t e = 0; e < ds.num_events(); ++e) {
    const uint32_t item = ds.events.item[e];
    const auto action = static_cast<data::Action>(ds.events.action[e]);
    if (action == data::Action::kImpression) {
      ++item_impressions[item];
      if (s.from_truth) item_truth[item] += ds.events.truth[e];
    } else if (action == data::Action::kClick) {
      ++item_clicks[item];
    }
  }
  // Advertisers with at least one ad, in code order (code 0 is "no advertiser").
  std::vector<uint32_t> compact(adv->vocab->size(), kNoAdvertiser);
  s.advertiser_of_item.assign(n_items, kNoAdvertiser);
  for (size_t i = 0; i < n_items; ++i) {
    const uint32_t code = adv->u32[i];
    if (code == 0) continue;
    if (compact[code] == kNoAdvertiser) {
      compact[code] = static_cast<uint32_t>(s.names.size());
      s.names.push_back(adv->vocab->Name(code));
      s.codes.push_back(code);
      s.ads.push_back(0);
      s.impressions.push_back(0);
      s.relevance.push_back(0.0);
    }
    const uint32_t a = compact[code];
    s.advertiser_of_item[i] = a;
    ++s.ads[a];
    s.impressions[a] += item_impressions[i];
    const double n = static_cast<double>(item_impressions[i]);
    s.relevance[a] += s.from_truth ? (n > 0 ? item_truth[i] / n : 0.0)
                                   : (static_cast<double>(item_clicks[i]) + 1.0) / (n + 20.0);
  }
  if (s.names.empty()) return InvalidArgumentError("fairness: no item of the catalogue names an advertiser");
  return s;
}

}  // namespace adrec::eval

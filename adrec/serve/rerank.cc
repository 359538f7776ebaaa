#include "adrec/serve/rerank.h"

#include <algorithm>

namespace adrec::serve {

namespace {
constexpr uint32_t kDay = 86400;
}

BudgetPacer::BudgetPacer(std::unordered_map<uint32_t, double> daily_budget, double slack)
    : budget_(std::move(daily_budget)), slack_(slack) {}

double BudgetPacer::Spent(uint32_t advertiser, uint32_t now) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = spent_.find(advertiser);
  return it == spent_.end() || it->second.first != now / kDay ? 0.0 : it->second.second;
}

bool BudgetPacer::Eligible(uint32_t advertiser, uint32_t now) const {
  auto b = budget_.find(advertiser);
  if (b == budget_.end()) return true;
  const double elapsed = static_cast<double>(now % kDay + 1) / kDay;
  return Spent(advertiser, now) < b->second * std::min(1.0, elapsed + slack_);
}

void BudgetPacer::Charge(uint32_t advertiser, double amount, uint32_t now) {
  if (!budget_.count(advertiser)) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto& [day, spend] = spent_[advertiser];
  if (day != now / kDay) day = now / kDay, spend = 0;
  spend += amount;
}

std::vector<uint32_t> ApplyFrequencyCap(std::span<const uint32_t> candidates,
                                        const std::unordered_map<uint32_t, std::vector<uint32_t>>& seen_times,
                                        uint32_t now, const RerankOptions& options) {
  std::vector<uint32_t> out;
  out.reserve(candidates.size());
  for (uint32_t item : candidates) {
    if (options.frequency_cap > 0) {
      auto it = seen_times.find(item);
      if (it != seen_times.end()) {
        int recent = 0;
        for (uint32_t t : it->second) recent += t <= now && now - t <= options.frequency_window_s;
        if (recent >= options.frequency_cap) continue;
      }
    }
    out.push_back(item);
  }
  return out;
}

std::vector<ScoredCandidate> Rerank(std::vector<ScoredCandidate> ranked, int k, const RerankOptions& options,
                                    const BudgetPacer* pacer, uint32_t now) {
  // The creative of each ad: its best pCTR.
  std::sort(ranked.begin(), ranked.end(), [](const ScoredCandidate& a, const ScoredCandidate& b) {
    if (a.ad != b.ad) return a.ad < b.ad;
    if (a.pctr != b.pctr) return a.pctr > b.pctr;
    return a.item < b.item;
  });
  std::vector<ScoredCandidate> ads;
  for (size_t i = 0; i < ranked.size(); ++i) {
    if (i > 0 && ranked[i].ad == ranked[i - 1].ad) continue;
    ScoredCandidate c = ranked[i];
    c.ecpm = static_cast<double>(c.bid) * c.pctr * c.pcvr;
    ads.push_back(c);
  }
  std::sort(ads.begin(), ads.end(), [](const ScoredCandidate& a, const ScoredCandidate& b) {
    if (a.ecpm != b.ecpm) return a.ecpm > b.ecpm;
    return a.item < b.item;
  });
  std::vector<ScoredCandidate> out;
  std::unordered_map<uint32_t, int> per_advertiser;
  std::vector<char> taken(ads.size(), 0);
  auto admit = [&](size_t i) {
    const ScoredCandidate& c = ads[i];
    if (pacer && !pacer->Eligible(c.advertiser, now)) return false;
    if (options.max_per_advertiser > 0 && c.advertiser != 0 && per_advertiser[c.advertiser] >= options.max_per_advertiser) {
      return false;
    }
    ++per_advertiser[c.advertiser];
    taken[i] = 1;
    out.push_back(c);
    return true;
  };
  const int floor = std::min(options.floor_slots, k);
  int floored = 0;
  for (size_t i = 0; i < ads.size() && floored < floor; ++i) {
    if (std::binary_search(options.floor_advertisers.begin(), options.floor_advertisers.end(), ads[i].advertiser) &&
        admit(i)) {
      ++floored;
    }
  }
  for (size_t i = 0; i < ads.size() && static_cast<int>(out.size()) < k; ++i) {
    if (!taken[i]) admit(i);
  }
  if (floored > 0) {  // the reserved slots join the answer at their eCPM's place
    std::sort(out.begin(), out.end(), [](const ScoredCandidate& a, const ScoredCandidate& b) {
      if (a.ecpm != b.ecpm) return a.ecpm > b.ecpm;
      return a.item < b.item;
    });
  }
  return out;
}

}  // namespace adrec::serve

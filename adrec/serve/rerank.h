// The last steps of a recommend (DESIGN.md "Serving"): frequency caps before ranking, then
// after it the creative of each ad (best pCTR), eCPM = bid × pCTR × pCVR, budget pacing and
// advertiser diversity. Torch-free and deterministic: the same scores give the same answer.
#pragma once

#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "adrec/core/status.h"

namespace adrec::serve {

struct RerankOptions {
  // At most this many ads of one advertiser in an answer (0 = no limit).
  int max_per_advertiser = 2;
  // An item the user saw this many times within frequency_window_s is not shown again (0 = no cap).
  int frequency_cap = 3;
  uint32_t frequency_window_s = 86400;
  // Exposure floor: up to this many of an answer's slots go first to the best ads (by eCPM) of
  // floor_advertisers (sorted categorical codes) among the candidates, within pacing and the
  // per-advertiser limit; the answer stays in eCPM order. 0 = none. `adrec fairness` measures
  // what it changes.
  int floor_slots = 0;
  std::vector<uint32_t> floor_advertisers;
};

// One ranked candidate (an item = a creative of an ad).
struct ScoredCandidate {
  uint32_t item = 0;
  uint32_t ad = 0;          // the ad the creative belongs to (the item itself without ad groups)
  uint32_t advertiser = 0;  // categorical code; 0 = unknown (never limited)
  float bid = 0.f;          // per the bid unit of the catalogue (CPM in the synthetic world)
  float pctr = 0.f;
  float pcvr = 1.f;  // 1 where the ranker has no conversion target
  double ecpm = 0;   // filled by Rerank
  uint32_t row = 0;  // the candidate's row in the ranker's batch (its explanation reads it)
};

// Even daily pacing per advertiser: an advertiser is eligible while its spend today is below
// budget × (share of the UTC day elapsed + slack), so a budget lasts the day instead of being
// spent by the first morning's traffic. Spend is charged by served impressions (bid / 1000 under
// CPM). In-process: each replica paces its share (docs/SERVING.md).
class BudgetPacer {
 public:
  // daily budget by advertiser code; advertisers absent have no budget (always eligible).
  explicit BudgetPacer(std::unordered_map<uint32_t, double> daily_budget = {}, double slack = 0.05);
  bool Eligible(uint32_t advertiser, uint32_t now) const;
  void Charge(uint32_t advertiser, double amount, uint32_t now);
  double Spent(uint32_t advertiser, uint32_t now) const;
  bool empty() const { return budget_.empty(); }

 private:
  std::unordered_map<uint32_t, double> budget_;
  double slack_;
  mutable std::mutex mu_;
  std::unordered_map<uint32_t, std::pair<uint32_t, double>> spent_;  // advertiser → (day, spend)
};

// Items of `candidates` the user saw (impressions in `seen_times`, by item) at least cap times
// within the window before `now` are dropped; order is kept.
std::vector<uint32_t> ApplyFrequencyCap(std::span<const uint32_t> candidates,
                                        const std::unordered_map<uint32_t, std::vector<uint32_t>>& seen_times,
                                        uint32_t now, const RerankOptions& options);

// The creative of each ad with the best pCTR, eCPM of each, then the k best by eCPM that
// pacing allows, at most max_per_advertiser per advertiser (ties: lower item first), with the
// exposure floor's slots filled first.
std::vector<ScoredCandidate> Rerank(std::vector<ScoredCandidate> ranked, int k, const RerankOptions& options,
                                    const BudgetPacer* pacer, uint32_t now);

}  // namespace adrec::serve

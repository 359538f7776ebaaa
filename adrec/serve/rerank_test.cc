#include "adrec/serve/rerank.h"

#include <gtest/gtest.h>

namespace adrec::serve {
namespace {

ScoredCandidate C(uint32_t item, uint32_t ad, uint32_t advertiser, float bid, float pctr, float pcvr = 1.f) {
  return {item, ad, advertiser, bid, pctr, pcvr, 0};
}

RerankOptions Cap(int frequency_cap) {
  RerankOptions o;
  o.frequency_cap = frequency_cap;
  return o;
}

std::vector<uint32_t> Items(const std::vector<ScoredCandidate>& v) {
  std::vector<uint32_t> out;
  for (const auto& c : v) out.push_back(c.item);
  return out;
}

TEST(Rerank, OrdersByBidTimesPctrTimesPcvr) {
  // pCTR alone would order 1, 2, 3; eCPM orders 3 (10·0.1·0.9), 2 (5·0.2·0.8), 1 (1·0.5·1).
  auto out = Rerank({C(1, 1, 1, 1.f, 0.5f), C(2, 2, 2, 5.f, 0.2f, 0.8f), C(3, 3, 3, 10.f, 0.1f, 0.9f)}, 3, {}, nullptr, 0);
  EXPECT_EQ(Items(out), (std::vector<uint32_t>{3, 2, 1}));
  EXPECT_NEAR(out[0].ecpm, 0.9, 1e-6);
}

TEST(Rerank, PicksEachAdsBestCreativeByPctr) {
  // Ad 7 has creatives 70 (pCTR 0.1) and 71 (pCTR 0.3): 71 is shown, once.
  auto out = Rerank({C(70, 7, 1, 2.f, 0.1f), C(71, 7, 1, 2.f, 0.3f), C(80, 8, 2, 1.f, 0.2f)}, 5, {}, nullptr, 0);
  EXPECT_EQ(Items(out), (std::vector<uint32_t>{71, 80}));
}

TEST(Rerank, LimitsAdsPerAdvertiser) {
  std::vector<ScoredCandidate> v = {C(1, 1, 9, 4.f, 0.5f), C(2, 2, 9, 3.f, 0.5f), C(3, 3, 9, 2.f, 0.5f), C(4, 4, 5, 1.f, 0.5f)};
  RerankOptions o;
  o.max_per_advertiser = 2;
  EXPECT_EQ(Items(Rerank(v, 4, o, nullptr, 0)), (std::vector<uint32_t>{1, 2, 4}));
  o.max_per_advertiser = 0;
  EXPECT_EQ(Items(Rerank(v, 4, o, nullptr, 0)), (std::vector<uint32_t>{1, 2, 3, 4}));
  EXPECT_EQ(Items(Rerank(v, 1, {}, nullptr, 0)), (std::vector<uint32_t>{1}));
}

TEST(Rerank, AnExposureFloorReservesSlotsForItsAdvertisersAndKeepsTheEcpmOrder) {
  // Advertiser 3's ad has the lowest eCPM: without the floor it misses the top 2.
  std::vector<ScoredCandidate> v = {C(1, 1, 1, 4.f, 0.5f), C(2, 2, 2, 3.f, 0.5f), C(3, 3, 3, 1.f, 0.5f),
                                    C(4, 4, 3, 0.5f, 0.5f)};
  EXPECT_EQ(Items(Rerank(v, 2, {}, nullptr, 0)), (std::vector<uint32_t>{1, 2}));
  RerankOptions floor{.max_per_advertiser = 2, .frequency_cap = 3, .frequency_window_s = 86400, .floor_slots = 1,
                      .floor_advertisers = {3}};
  EXPECT_EQ(Items(Rerank(v, 2, floor, nullptr, 0)), (std::vector<uint32_t>{1, 3}));  // its best ad, in eCPM order
  floor.floor_slots = 2;  // two slots, both advertiser 3's
  EXPECT_EQ(Items(Rerank(v, 3, floor, nullptr, 0)), (std::vector<uint32_t>{1, 3, 4}));
  floor.max_per_advertiser = 1;  // the per-advertiser limit still holds inside the floor
  EXPECT_EQ(Items(Rerank(v, 3, floor, nullptr, 0)), (std::vector<uint32_t>{1, 2, 3}));
  floor.floor_advertisers = {7};  // no candidate of the floor: the answer is the plain one
  EXPECT_EQ(Items(Rerank(v, 2, floor, nullptr, 0)), (std::vector<uint32_t>{1, 2}));
}

TEST(FrequencyCap, DropsItemsSeenTooOftenWithinTheWindow) {
  const uint32_t now = 1'000'000;
  std::unordered_map<uint32_t, std::vector<uint32_t>> seen = {{1, {now - 10, now - 20, now - 30}},
                                                             {2, {now - 10, now - 20, now - 90000}},
                                                             {3, {now - 5}}};
  const std::vector<uint32_t> cands = {1, 2, 3, 4};
  EXPECT_EQ(ApplyFrequencyCap(cands, seen, now, Cap(3)), (std::vector<uint32_t>{2, 3, 4}));
  EXPECT_EQ(ApplyFrequencyCap(cands, seen, now, Cap(1)), (std::vector<uint32_t>{4}));
  EXPECT_EQ(ApplyFrequencyCap(cands, seen, now, Cap(0)), cands);
}

TEST(BudgetPacer, SpendsEvenlyOverTheDay) {
  BudgetPacer pacer({{1, 100.0}}, /*slack=*/0.0);
  const uint32_t midnight = 20000 * 86400u, noon = midnight + 43200;
  EXPECT_TRUE(pacer.Eligible(1, noon));
  pacer.Charge(1, 49.0, noon);
  EXPECT_TRUE(pacer.Eligible(1, noon)) << "49 spent of the 50 due by noon";
  pacer.Charge(1, 2.0, noon);
  EXPECT_FALSE(pacer.Eligible(1, noon)) << "51 spent: ahead of pace";
  EXPECT_TRUE(pacer.Eligible(1, noon + 3 * 3600)) << "by 15:00, 62.5 may be spent";
  EXPECT_TRUE(pacer.Eligible(1, midnight + 86400 + 60)) << "a new day starts from zero";
  EXPECT_TRUE(pacer.Eligible(2, noon)) << "no budget, no limit";
  auto out = Rerank({C(1, 1, 1, 9.f, 0.5f), C(2, 2, 2, 1.f, 0.5f)}, 2, {}, &pacer, noon);
  EXPECT_EQ(Items(out), (std::vector<uint32_t>{2}));
}

}  // namespace
}  // namespace adrec::serve

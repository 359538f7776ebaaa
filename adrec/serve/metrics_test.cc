#include "adrec/serve/metrics.h"

#include <gtest/gtest.h>

namespace adrec::serve {
namespace {

TEST(LatencyHistogram, BucketsAreCumulativeAndQuantilesInterpolate) {
  LatencyHistogram h;
  EXPECT_EQ(h.Quantile(0.5), 0);
  for (int i = 0; i < 90; ++i) h.Observe(0.0015);  // in (1 ms, 2 ms]
  for (int i = 0; i < 10; ++i) h.Observe(0.03);    // in (20 ms, 50 ms]
  EXPECT_EQ(h.count, 100u);
  EXPECT_NEAR(h.sum, 90 * 0.0015 + 10 * 0.03, 1e-12);
  EXPECT_EQ(h.buckets[3], 0u);    // ≤ 1 ms
  EXPECT_EQ(h.buckets[4], 90u);   // ≤ 2 ms
  EXPECT_EQ(h.buckets[8], 100u);  // ≤ 50 ms
  // The median lies in (1 ms, 2 ms]: 50 of its 90 → 1 + 50/90 ms.
  EXPECT_NEAR(h.Quantile(0.5), 0.001 + 0.001 * 50.0 / 90.0, 1e-12);
  // The 95th in (20 ms, 50 ms]: 5 of its 10.
  EXPECT_NEAR(h.Quantile(0.95), 0.02 + 0.03 * 0.5, 1e-12);
  h.Observe(100.0);  // past every bound: the +Inf bucket only
  EXPECT_EQ(h.count, 101u);
  EXPECT_EQ(h.buckets.back(), 100u);
  EXPECT_EQ(h.Quantile(1.0), LatencyHistogram::kBuckets.back());
}

TEST(Metrics, RendersRequestAndStageHistogramsInTheTextFormat) {
  Metrics m;
  m.ObserveRequest("/v1/recommend", 200, 0.003);
  m.ObserveRequest("/v1/recommend", 503, 0.0002);
  LatencyHistogram rank;
  rank.Observe(0.004);
  m.SetHistogram("adrec_stage_seconds", "Stage time.", "stage=\"rank\"", rank);
  m.Set("adrec_queue_depth", "gauge", "Queued.", 3);
  const std::string text = m.Render();
  EXPECT_NE(text.find("adrec_http_requests_total{route=\"/v1/recommend\",status=\"200\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("adrec_http_requests_total{route=\"/v1/recommend\",status=\"503\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE adrec_http_request_seconds histogram\n"), std::string::npos);
  EXPECT_NE(text.find("adrec_http_request_seconds_bucket{route=\"/v1/recommend\",le=\"0.00025\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("adrec_http_request_seconds_bucket{route=\"/v1/recommend\",le=\"0.005\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("adrec_http_request_seconds_bucket{route=\"/v1/recommend\",le=\"+Inf\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("adrec_http_request_seconds_count{route=\"/v1/recommend\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE adrec_stage_seconds histogram\n"), std::string::npos);
  EXPECT_NE(text.find("adrec_stage_seconds_bucket{stage=\"rank\",le=\"0.002\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("adrec_stage_seconds_bucket{stage=\"rank\",le=\"0.005\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("adrec_stage_seconds_sum{stage=\"rank\"} 0.004\n"), std::string::npos);
  EXPECT_NE(text.find("adrec_queue_depth 3\n"), std::string::npos);
  // A new snapshot replaces the old one.
  rank.Observe(0.004);
  m.SetHistogram("adrec_stage_seconds", "Stage time.", "stage=\"rank\"", rank);
  EXPECT_NE(m.Render().find("adrec_stage_seconds_count{stage=\"rank\"} 2\n"), std::string::npos);
}

}  // namespace
}  // namespace adrec::serve

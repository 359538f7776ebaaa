// /metrics of `adrec serve` in the Prometheus text format (version 0.0.4): requests and latency
// histograms by route and status, the pipeline's stage histograms, and the gauges the server
// sets (queue depth, model version, events ingested).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace adrec::serve {

// A latency histogram with fixed buckets (0.1 ms to 5 s, then +Inf); not thread-safe.
struct LatencyHistogram {
  // Upper bounds of the buckets, seconds.
  static constexpr std::array<double, 15> kBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
                                                      0.05,   0.1,     0.25,   0.5,   1.0,   2.5,   5.0};
  std::array<uint64_t, kBuckets.size()> buckets{};  // cumulative: bucket i counts every value ≤ kBuckets[i]
  uint64_t count = 0;
  double sum = 0;

  void Observe(double seconds);
  // The value below which a fraction q of the observations lie, interpolated within its bucket
  // (what Prometheus' histogram_quantile computes); 0 when empty.
  double Quantile(double q) const;
};

class Metrics {
 public:
  void ObserveRequest(const std::string& route, int status, double seconds);
  // Replaces a histogram of a family by a snapshot, e.g. ("adrec_stage_seconds", help,
  // "stage=\"rank\"", h): histograms kept by another component, rendered here.
  void SetHistogram(const std::string& family, const std::string& help, const std::string& labels, const LatencyHistogram& h);
  // A gauge or counter value by full name with labels, e.g. "adrec_queue_depth" or
  // "adrec_model_info{version=\"...\"}"; `type` is its # TYPE ("gauge" or "counter").
  void Set(const std::string& name, const std::string& type, const std::string& help, double value);
  void Add(const std::string& name, const std::string& type, const std::string& help, double delta);
  // Drops every sample of a metric family (the old version's model_info after a reload).
  void Clear(const std::string& family);
  std::string Render() const;

 private:
  struct HistogramFamily {
    std::string help;
    std::map<std::string, LatencyHistogram> by_labels;
  };
  struct Family {
    std::string type, help;
    std::map<std::string, double> samples;  // full name with labels → value
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;  // (route, status) → count
  std::map<std::string, HistogramFamily> histograms_;         // family → labels → histogram
  std::map<std::string, Family> families_;
};

// A label value escaped for the text format (backslash, quote, newline).
std::string PrometheusLabel(std::string_view value);

}  // namespace adrec::serve

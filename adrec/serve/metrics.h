// /metrics of `adrec serve` in the Prometheus text format (version 0.0.4): requests and latency
// histograms by route and status, and the gauges the server sets (queue depth, model version,
// events ingested).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace adrec::serve {

class Metrics {
 public:
  // Upper bounds of the latency buckets, seconds (0.5 ms to 1 s, then +Inf).
  static constexpr std::array<double, 12> kBuckets = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
                                                      0.05,   0.1,   0.25,  0.5,   1.0,  2.5};

  void ObserveRequest(const std::string& route, int status, double seconds);
  // A gauge or counter value by full name with labels, e.g. "adrec_queue_depth" or
  // "adrec_model_info{version=\"...\"}"; `type` is its # TYPE ("gauge" or "counter").
  void Set(const std::string& name, const std::string& type, const std::string& help, double value);
  void Add(const std::string& name, const std::string& type, const std::string& help, double delta);
  // Drops every sample of a metric family (the old version's model_info after a reload).
  void Clear(const std::string& family);
  std::string Render() const;

 private:
  struct Histogram {
    std::array<uint64_t, kBuckets.size()> buckets{};
    uint64_t count = 0;
    double sum = 0;
  };
  struct Family {
    std::string type, help;
    std::map<std::string, double> samples;  // full name with labels → value
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;  // (route, status) → count
  std::map<std::string, Histogram> latency_;                  // route → histogram
  std::map<std::string, Family> families_;
};

// A label value escaped for the text format (backslash, quote, newline).
std::string PrometheusLabel(std::string_view value);

}  // namespace adrec::serve

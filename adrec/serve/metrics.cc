#include "adrec/serve/metrics.h"

#include <cstdio>

namespace adrec::serve {

namespace {
std::string FamilyOf(const std::string& name) { return name.substr(0, name.find('{')); }

std::string Number(double v) {
  char b[64];
  std::snprintf(b, sizeof(b), "%.10g", v);
  return b;
}
}  // namespace

std::string PrometheusLabel(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out.push_back('\\'), out.push_back(c);
    else if (c == '\n') out += "\\n";
    else out.push_back(c);
  }
  return out;
}

void LatencyHistogram::Observe(double seconds) {
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) ++buckets[i];  // cumulative: every bucket at or above
  }
  ++count;
  sum += seconds;
}

double LatencyHistogram::Quantile(double q) const {
  if (count == 0) return 0;
  const double rank = q * static_cast<double>(count);
  double lower = 0;
  uint64_t below = 0;
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (static_cast<double>(buckets[i]) >= rank) {
      const uint64_t in = buckets[i] - below;
      return in == 0 ? kBuckets[i] : lower + (kBuckets[i] - lower) * (rank - static_cast<double>(below)) / static_cast<double>(in);
    }
    lower = kBuckets[i];
    below = buckets[i];
  }
  return kBuckets.back();  // in the +Inf bucket: the highest finite bound, as Prometheus answers
}

void Metrics::ObserveRequest(const std::string& route, int status, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{route, status}];
  HistogramFamily& f = histograms_["adrec_http_request_seconds"];
  f.help = "Time from a request's arrival to its answer, by route.";
  f.by_labels["route=\"" + PrometheusLabel(route) + "\""].Observe(seconds);
}

void Metrics::SetHistogram(const std::string& family, const std::string& help, const std::string& labels,
                           const LatencyHistogram& h) {
  std::lock_guard<std::mutex> lock(mu_);
  HistogramFamily& f = histograms_[family];
  f.help = help;
  f.by_labels[labels] = h;
}

void Metrics::Set(const std::string& name, const std::string& type, const std::string& help, double value) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& f = families_[FamilyOf(name)];
  f.type = type;
  f.help = help;
  f.samples[name] = value;
}

void Metrics::Add(const std::string& name, const std::string& type, const std::string& help, double delta) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& f = families_[FamilyOf(name)];
  f.type = type;
  f.help = help;
  f.samples[name] += delta;
}

void Metrics::Clear(const std::string& family) {
  std::lock_guard<std::mutex> lock(mu_);
  families_.erase(family);
}

std::string Metrics::Render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  out += "# HELP adrec_http_requests_total HTTP requests answered, by route pattern and status.\n";
  out += "# TYPE adrec_http_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    out += "adrec_http_requests_total{route=\"" + PrometheusLabel(key.first) + "\",status=\"" + std::to_string(key.second) +
           "\"} " + std::to_string(n) + "\n";
  }
  for (const auto& [family, f] : histograms_) {
    out += "# HELP " + family + " " + f.help + "\n# TYPE " + family + " histogram\n";
    for (const auto& [labels, h] : f.by_labels) {
      const std::string l = labels.empty() ? "" : labels + ",";
      for (size_t i = 0; i < h.kBuckets.size(); ++i) {
        out += family + "_bucket{" + l + "le=\"" + Number(h.kBuckets[i]) + "\"} " + std::to_string(h.buckets[i]) + "\n";
      }
      out += family + "_bucket{" + l + "le=\"+Inf\"} " + std::to_string(h.count) + "\n";
      const std::string braces = labels.empty() ? "" : "{" + labels + "}";
      out += family + "_sum" + braces + " " + Number(h.sum) + "\n";
      out += family + "_count" + braces + " " + std::to_string(h.count) + "\n";
    }
  }
  for (const auto& [family, f] : families_) {
    out += "# HELP " + family + " " + f.help + "\n# TYPE " + family + " " + f.type + "\n";
    for (const auto& [name, v] : f.samples) out += name + " " + Number(v) + "\n";
  }
  return out;
}

}  // namespace adrec::serve

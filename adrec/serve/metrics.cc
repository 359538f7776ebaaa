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

void Metrics::ObserveRequest(const std::string& route, int status, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{route, status}];
  Histogram& h = latency_[route];
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) ++h.buckets[i];  // cumulative: every bucket at or above
  }
  ++h.count;
  h.sum += seconds;
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
  out += "# HELP adrec_http_request_seconds Time from a request's arrival to its answer, by route.\n";
  out += "# TYPE adrec_http_request_seconds histogram\n";
  for (const auto& [route, h] : latency_) {
    const std::string r = "route=\"" + PrometheusLabel(route) + "\"";
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      out += "adrec_http_request_seconds_bucket{" + r + ",le=\"" + Number(kBuckets[i]) + "\"} " + std::to_string(h.buckets[i]) + "\n";
    }
    out += "adrec_http_request_seconds_bucket{" + r + ",le=\"+Inf\"} " + std::to_string(h.count) + "\n";
    out += "adrec_http_request_seconds_sum{" + r + "} " + Number(h.sum) + "\n";
    out += "adrec_http_request_seconds_count{" + r + "} " + std::to_string(h.count) + "\n";
  }
  for (const auto& [family, f] : families_) {
    out += "# HELP " + family + " " + f.help + "\n# TYPE " + family + " " + f.type + "\n";
    for (const auto& [name, v] : f.samples) out += name + " " + Number(v) + "\n";
  }
  return out;
}

}  // namespace adrec::serve

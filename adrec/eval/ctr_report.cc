#include "adrec/eval/ctr_report.h"

#include <span>

#include "adrec/eval/metrics.h"

namespace adrec::eval {
namespace {

struct Column {
  std::vector<float> pred, label, truth;
  std::vector<uint32_t> user;
};

nlohmann::ordered_json Metrics(const Column& c) {
  nlohmann::ordered_json j;
  double positives = 0;
  for (float y : c.label) positives += y;
  j["samples"] = c.label.size();
  j["positives"] = static_cast<uint64_t>(positives);
  if (c.label.empty() || positives == 0 || positives == static_cast<double>(c.label.size())) {
    j["skipped"] = c.label.empty() ? "no samples" : "all samples are of one class; AUC and NE are undefined";
    return j;
  }
  if (auto auc = Auc(c.pred, c.label); auc.ok()) j["auc"] = *auc;
  if (auto g = Gauc(c.pred, c.label, c.user); g.ok()) {
    j["gauc"] = g->gauc;
    j["gauc_users"] = g->users_used;
  }
  if (auto ll = LogLoss(c.pred, c.label); ll.ok()) j["logloss"] = *ll;
  if (auto ne = NormalizedEntropy(c.pred, c.label); ne.ok()) j["ne"] = *ne;
  if (auto cal = Calibration(c.pred, c.label); cal.ok()) j["calibration"] = *cal;
  if (!c.truth.empty()) {
    if (auto auc = Auc(c.truth, c.label); auc.ok()) j["bayes_auc"] = *auc;
    if (auto ll = LogLoss(c.truth, c.label); ll.ok()) j["bayes_logloss"] = *ll;
  }
  return j;
}

// Samples where target t is defined, optionally only those `keep` accepts.
template <typename Keep>
Column Select(const CtrPredictions& p, size_t t, Keep keep) {
  const size_t T = p.targets.size();
  Column c;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p.mask[i * T + t] == 0.f || !keep(i)) continue;
    c.pred.push_back(p.pred[i * T + t]);
    c.label.push_back(p.labels[i * T + t]);
    c.user.push_back(p.user[i]);
    if (!p.truth.empty() && static_cast<int>(t) == p.primary) c.truth.push_back(p.truth[i]);
  }
  return c;
}

}  // namespace

nlohmann::ordered_json CtrReport(const CtrPredictions& p) {
  const auto all = [](size_t) { return true; };
  nlohmann::ordered_json out = Metrics(Select(p, p.primary, all));
  out["primary_target"] = p.targets[p.primary];
  nlohmann::ordered_json targets = nlohmann::ordered_json::object();
  for (size_t t = 0; t < p.targets.size(); ++t) targets[p.targets[t]] = Metrics(Select(p, t, all));
  out["targets"] = std::move(targets);
  nlohmann::ordered_json scenes = nlohmann::ordered_json::object();
  for (size_t s = 0; s < p.scene_names.size(); ++s) {
    Column c = Select(p, p.primary, [&](size_t i) { return static_cast<size_t>(p.scene[i]) == s; });
    if (!c.label.empty()) scenes[p.scene_names[s]] = Metrics(c);
  }
  out["scenes"] = std::move(scenes);
  if (!p.item_cold.empty()) {
    nlohmann::ordered_json items;
    items["cold_threshold"] = p.cold_threshold;
    items["cold"] = Metrics(Select(p, p.primary, [&](size_t i) { return p.item_cold[i] == 1; }));
    items["warm"] = Metrics(Select(p, p.primary, [&](size_t i) { return p.item_cold[i] == 0; }));
    out["items"] = std::move(items);
  }
  return out;
}

}  // namespace adrec::eval

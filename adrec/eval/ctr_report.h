// The metrics of a click/conversion predictor on a set of samples: per target (with masks for
// targets undefined on a sample), per scene, and against the generator's Bayes-optimal
// predictor where the data has ground truth. `adrec eval` and `adrec train` print this.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace adrec::eval {

struct CtrPredictions {
  std::vector<std::string> targets;      // T names
  std::vector<float> pred;               // n × T probabilities, row-major
  std::vector<float> labels;             // n × T
  std::vector<float> mask;               // n × T (1 = target defined on the sample)
  std::vector<uint32_t> user;            // n (GAUC groups)
  std::vector<uint8_t> scene;            // n
  std::vector<uint32_t> item;            // n (empty: not recorded)
  // n: 1 for a sample whose item is cold (fewer than cold_threshold training samples), 0 for a
  // warm one; empty = no cold/warm report.
  std::vector<uint8_t> item_cold;
  uint32_t cold_threshold = 5;
  std::vector<std::string> scene_names;  // scene ID -> name
  // n: the true probability of the primary target (synthetic world), else empty.
  std::vector<float> truth;
  int primary = 0;  // index of the primary target
  size_t size() const { return user.size(); }
};

// {"auc", "gauc", "logloss", "ne", "calibration", "samples", "positives" of the primary target,
//  "bayes_auc", "bayes_logloss" (with truth), "targets": {name: {same keys}}, "scenes":
//  {name: {same keys, primary target}}, "items": {"cold_threshold", "cold": {…}, "warm": {…}}
//  (primary target; only with item_cold)}. A target whose defined samples are all of one class
// gets {"samples", "positives", "skipped": reason} instead of metrics.
nlohmann::ordered_json CtrReport(const CtrPredictions& p);

}  // namespace adrec::eval

#include "adrec/data/stats.h"

#include "adrec/core/text.h"

#include <algorithm>
#include <ctime>
#include <unordered_set>

namespace adrec::data {

nlohmann::ordered_json ComputeStats(const Dataset& ds) {
  using json = nlohmann::ordered_json;
  const auto& ev = ds.events;
  json out;
  out["users"] = ds.num_users();
  out["items"] = ds.num_items();
  out["events"] = ds.num_events();
  out["name"] = ds.info.name;

  std::vector<uint64_t> per_action(kNumActions, 0);
  std::vector<std::vector<uint64_t>> per_scene_action(ds.scenes.size(), std::vector<uint64_t>(kNumActions, 0));
  for (size_t i = 0; i < ev.size(); ++i) {
    per_action[ev.action[i]]++;
    per_scene_action[ev.scene[i]][ev.action[i]]++;
  }
  json actions = json::object();
  for (int a = 0; a < kNumActions; ++a) {
    if (per_action[a]) actions[std::string(ActionName(static_cast<Action>(a)))] = per_action[a];
  }
  out["events_per_action"] = actions;
  json scenes = json::object(), ctr = json::object();
  const auto imp = static_cast<size_t>(Action::kImpression), click = static_cast<size_t>(Action::kClick);
  for (size_t s = 0; s < ds.scenes.size(); ++s) {
    uint64_t total = 0;
    for (auto c : per_scene_action[s]) total += c;
    scenes[ds.scenes[s]] = total;
    if (per_scene_action[s][imp] > 0) {
      ctr[ds.scenes[s]] = static_cast<double>(per_scene_action[s][click]) / static_cast<double>(per_scene_action[s][imp]);
    }
  }
  out["events_per_scene"] = scenes;
  out["ctr_per_scene"] = ctr;

  std::vector<uint64_t> lengths(ds.num_users());
  for (uint32_t u = 0; u < ds.num_users(); ++u) lengths[u] = ds.user_offsets[u + 1] - ds.user_offsets[u];
  std::sort(lengths.begin(), lengths.end());
  json seq = json::object();
  if (!lengths.empty()) {
    auto pct = [&](double p) { return lengths[std::min(lengths.size() - 1, static_cast<size_t>(p * lengths.size()))]; };
    seq["min"] = lengths.front();
    seq["p50"] = pct(0.5);
    seq["p90"] = pct(0.9);
    seq["p99"] = pct(0.99);
    seq["max"] = lengths.back();
    seq["mean"] = static_cast<double>(ev.size()) / static_cast<double>(lengths.size());
  }
  out["sequence_length"] = seq;

  // Distinct (user, item) pairs: per user slice, so memory stays at one user's history.
  uint64_t pairs = 0;
  std::unordered_set<uint32_t> seen;
  for (uint32_t u = 0; u < ds.num_users(); ++u) {
    seen.clear();
    for (uint64_t i = ds.user_offsets[u]; i < ds.user_offsets[u + 1]; ++i) seen.insert(ev.item[i]);
    pairs += seen.size();
  }
  double cells = static_cast<double>(ds.num_users()) * static_cast<double>(ds.num_items());
  out["distinct_user_item_pairs"] = pairs;
  out["sparsity"] = cells > 0 ? 1.0 - static_cast<double>(pairs) / cells : 1.0;

  if (!ev.time.empty()) {
    auto [mn, mx] = std::minmax_element(ev.time.begin(), ev.time.end());
    out["time_range"] = {{"min", *mn}, {"max", *mx}, {"min_utc", FormatUtc(*mn)}, {"max_utc", FormatUtc(*mx)},
                         {"days", (static_cast<double>(*mx) - *mn) / 86400.0}};
  }
  uint64_t with_text = 0;
  if (const Column* title = ds.item_table.Find(cols::kTitle)) {
    for (const auto& t : title->str) with_text += !t.empty();
  }
  out["items_with_text"] = with_text;
  out["taxonomy_nodes"] = ds.taxonomy.nodes.empty() ? 0 : ds.taxonomy.nodes.size() - 1;
  out["has_ground_truth"] = ds.has_truth();
  out["malformed_rows"] = ds.info.malformed_rows;
  out["source_format"] = ds.info.source_format;
  return out;
}

}  // namespace adrec::data

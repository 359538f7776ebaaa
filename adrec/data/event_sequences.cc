#include "adrec/data/event_sequences.h"

#include <algorithm>

namespace adrec::data {

std::vector<int64_t> SampleIndexOfEvents(const Dataset& ds, const SampleSet& samples) {
  std::vector<int64_t> sample_of(ds.num_events(), -1);
  for (size_t i = 0; i < samples.size(); ++i) sample_of[samples.events[i]] = static_cast<int64_t>(i);
  return sample_of;
}

std::vector<EventWindow> MakeEventWindows(const Dataset& ds, const std::vector<int64_t>& sample_of, const Split& split,
                                          SplitPart part, int64_t max_len) {
  const uint64_t len = static_cast<uint64_t>(std::max<int64_t>(2, max_len)), stride = len / 2;
  std::vector<EventWindow> out;
  auto predicts = [&](uint64_t from, uint64_t end) {
    for (uint64_t e = from; e < end; ++e) {
      if (sample_of[e] >= 0 && split.PartOf(e) == part) return true;
    }
    return false;
  };
  for (uint32_t u = 0; u < ds.num_users(); ++u) {
    const auto [b, e] = ds.UserRange(u);
    if (b == e) continue;
    for (uint64_t start = b;; start += stride) {
      const uint64_t end = std::min(e, start + len);
      const uint64_t from = start == b ? b : start + (len - stride);
      if (from < end && predicts(from, end)) out.push_back({u, start, end, from});
      if (end == e) break;
    }
  }
  return out;
}

void BuildEventBatch(const Dataset& ds, const SampleSet& samples, const std::vector<int64_t>& sample_of,
                     const Split& split, SplitPart part, std::span<const EventWindow> windows, EventBatch* out) {
  const EventColumns& ev = ds.events;
  const int64_t T = samples.size() > 0 ? static_cast<int64_t>(samples.labels.size() / samples.size()) : 0;
  int64_t L = 0;
  for (const EventWindow& w : windows) L = std::max<int64_t>(L, static_cast<int64_t>(w.end - w.begin));
  out->batch = static_cast<int64_t>(windows.size());
  out->length = L;
  out->targets = T;
  const size_t n = windows.size() * static_cast<size_t>(L);
  out->items.assign(n, 0);
  out->actions.assign(n, 0);
  out->scenes.assign(n, 0);
  out->slots.assign(n, 0);
  out->hours.assign(n, 0);
  out->times.assign(n, 0);
  out->sample.assign(n, -1);
  out->users.assign(windows.size(), 0);
  out->labels.assign(n * static_cast<size_t>(T), 0.f);
  out->mask.assign(n * static_cast<size_t>(T), 0.f);
  for (size_t b = 0; b < windows.size(); ++b) {
    const EventWindow& w = windows[b];
    out->users[b] = w.user;
    for (uint64_t e = w.begin; e < w.end; ++e) {
      const size_t at = b * static_cast<size_t>(L) + (e - w.begin);
      out->items[at] = static_cast<int64_t>(ev.item[e]) + 1;
      out->actions[at] = static_cast<int64_t>(ev.action[e]) + 1;
      out->scenes[at] = static_cast<int64_t>(ev.scene[e]) + 1;
      out->slots[at] = static_cast<int64_t>(ev.position[e]) + 1;
      out->hours[at] = static_cast<int64_t>(ev.time[e] / 3600 % 24) + 1;
      out->times[at] = ev.time[e];
      const int64_t s = sample_of[e];
      if (s < 0 || e < w.predict_from || split.PartOf(e) != part) continue;
      out->sample[at] = s;
      for (int64_t t = 0; t < T; ++t) {
        out->labels[at * T + t] = samples.labels[static_cast<size_t>(s * T + t)];
        out->mask[at * T + t] = samples.mask[static_cast<size_t>(s * T + t)];
      }
    }
  }
}

}  // namespace adrec::data

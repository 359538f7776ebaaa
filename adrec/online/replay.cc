#include "adrec/online/replay.h"

#include <algorithm>
#include <numeric>

namespace adrec::online {
namespace {

class ReplayedLog : public serve::EventStore {
 public:
  ReplayedLog(std::vector<serve::StoredEvent> events, uint64_t first, std::string source)
      : events_(std::move(events)), first_(first), source_(std::move(source)) {}

  StatusOr<size_t> Append(std::span<const serve::StoredEvent>, std::vector<bool>*) override {
    return FailedPreconditionError(source_ + " is a replayed log: it takes no events");
  }
  StatusOr<serve::UserState> Read(std::string_view, size_t) const override { return serve::UserState{}; }
  StatusOr<uint64_t> Count() const override { return events_.size(); }
  StatusOr<std::vector<serve::LoggedEvent>> ReadLog(uint64_t position, size_t max) const override {
    std::vector<serve::LoggedEvent> out;
    for (uint64_t p = std::max(position + 1, position == 0 ? first_ : 1); p <= events_.size() && out.size() < max; ++p) {
      out.push_back({p, events_[p - 1]});
    }
    return out;
  }
  std::string Describe() const override { return source_; }

 private:
  std::vector<serve::StoredEvent> events_;  // positions 1..size(): every event up to the part's last
  uint64_t first_;                          // the part's first position
  std::string source_;
};

}  // namespace

StatusOr<std::unique_ptr<serve::EventStore>> ReplayLog(const data::Dataset& ds, const data::Split& split,
                                                       data::SplitPart part, std::string source) {
  ADREC_RETURN_IF_ERROR(data::CheckSplitMatches(split, ds));
  std::vector<uint64_t> order(ds.events.size());
  std::iota(order.begin(), order.end(), uint64_t{0});
  std::stable_sort(order.begin(), order.end(), [&](uint64_t a, uint64_t b) { return ds.events.time[a] < ds.events.time[b]; });
  uint64_t first = 0, last = 0;
  for (uint64_t r = 0; r < order.size(); ++r) {
    if (split.PartOf(order[r]) != part) continue;
    if (first == 0) first = r + 1;
    last = r + 1;
  }
  if (first == 0) {
    return InvalidArgumentError(source + ": the " + std::string(data::SplitPartName(part)) + " part holds no event");
  }
  std::vector<serve::StoredEvent> events;
  events.reserve(last);
  for (uint64_t r = 0; r < last; ++r) {
    const uint64_t e = order[r];
    serve::StoredEvent s;
    s.event_id = source + "#" + std::to_string(e);
    s.user_id = ds.users.Name(ds.events.user[e]);
    s.item_id = ds.items.Name(ds.events.item[e]);
    s.action = static_cast<data::Action>(ds.events.action[e]);
    s.ts = ds.events.time[e];
    s.scene = ds.events.scene[e] < ds.scenes.size() ? ds.scenes[ds.events.scene[e]] : "";
    s.value = ds.events.value[e];
    s.slot = ds.events.position[e];
    events.push_back(std::move(s));
  }
  return std::unique_ptr<serve::EventStore>(new ReplayedLog(std::move(events), first, std::move(source)));
}

}  // namespace adrec::online

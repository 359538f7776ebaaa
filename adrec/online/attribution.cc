#include "adrec/online/attribution.h"

#include <algorithm>
#include <set>

namespace adrec::online {

namespace {

bool IsOutcome(data::Action a) {
  return a == data::Action::kClick || a == data::Action::kDownload || a == data::Action::kConversion;
}

}  // namespace

Attributor::Attributor(AttributionOptions options, AttributionCheckpoint from)
    : options_(options), replay_until_(from.emitted_through), replay_watermark_(from.watermark),
      replay_orphans_(std::move(from.orphans)) {
  std::sort(replay_orphans_.begin(), replay_orphans_.end());
  // The newest time the checkpoint had seen, which the replayed part of the log may not hold.
  if (from.watermark > 0) newest_ts_ = from.watermark + options_.lateness_s;
}

std::vector<Attributed> Attributor::Add(const serve::LoggedEvent& logged) {
  std::vector<Attributed> out;
  const serve::StoredEvent& e = logged.event;
  last_position_ = logged.position;
  Clock(logged);
  const Key key{e.user_id, e.item_id};
  if (e.action == data::Action::kImpression) {
    ++stats_.impressions;
    latest_[key].push_back(base_ + pending_.size());
    pending_.push_back({logged.position, e, {}, 0});
    Pending& p = pending_.back();
    if (options_.policy == DelayPolicy::kFakeNegative && Emits(logged.position)) {
      out.push_back({p.position, p.impression, {}, false});
    }
    // Outcomes logged before their impression (another replica's clock, a retried request).
    if (auto o = orphans_.find(key); o != orphans_.end()) {
      auto& list = o->second;
      for (auto it = list.begin(); it != list.end();) {
        if (it->second.ts >= e.ts && it->second.ts <= e.ts + options_.window_s) {
          ++stats_.out_of_order;
          Attribute(p, it->second, logged.position, &out);
          it = list.erase(it);
        } else {
          ++it;
        }
      }
      if (list.empty()) orphans_.erase(o);
    }
  } else if (IsOutcome(e.action)) {
    ++stats_.outcomes;
    Pending* match = nullptr;
    if (auto l = latest_.find(key); l != latest_.end()) {
      // The user's latest impression of the item at or before the outcome, inside the window.
      for (auto it = l->second.rbegin(); it != l->second.rend(); ++it) {
        Pending& p = pending_[*it - base_];
        if (p.impression.ts <= e.ts) {
          if (e.ts <= p.impression.ts + options_.window_s) match = &p;
          break;
        }
      }
    }
    if (match) {
      Attribute(*match, e, logged.position, &out);
    } else if (Emits(logged.position) ||
               std::binary_search(replay_orphans_.begin(), replay_orphans_.end(), logged.position)) {
      orphans_[key].push_back({logged.position, e});
    }  // else: replayed, and its impression came before the replay
  } else {
    ++stats_.other;
  }
  Close(&out);
  return out;
}

// The newest event time, which the watermark trails. An event too far ahead waits in ahead_ until
// events of `corroborate` distinct users are ahead too; then the cluster of times near the
// earliest of them counts as ordinary events. A resumed reader replays from the oldest waiting
// event (Checkpoint), so the waiting list is rebuilt as it was.
void Attributor::Clock(const serve::LoggedEvent& logged) {
  const uint32_t ts = logged.event.ts;
  if (newest_ts_ == 0 || ts <= newest_ts_ + options_.max_skew_s) {
    newest_ts_ = std::max(newest_ts_, ts);
  } else {
    ++stats_.skewed;
    ahead_.push_back({logged.position, ts, logged.event.user_id});
    std::set<std::string> users;
    uint32_t earliest = UINT32_MAX;
    for (const Ahead& a : ahead_) {
      users.insert(a.user);
      earliest = std::min(earliest, a.ts);
    }
    if (users.size() < std::max<uint32_t>(options_.corroborate, 1)) return;
    for (const Ahead& a : ahead_) {
      if (a.ts <= earliest + options_.max_skew_s) newest_ts_ = std::max(newest_ts_, a.ts);
    }
  }
  // Waiting events the clock has caught up with are ordinary now, and count as such (so a
  // replay, which meets them after the clock caught up, ends at the same newest time).
  for (bool moved = true; moved;) {
    moved = false;
    for (auto it = ahead_.begin(); it != ahead_.end();) {
      if (it->ts <= newest_ts_ + options_.max_skew_s) {
        moved |= it->ts > newest_ts_;
        newest_ts_ = std::max(newest_ts_, it->ts);
        it = ahead_.erase(it);
      } else {
        ++it;
      }
    }
  }
}

void Attributor::Attribute(Pending& p, const serve::StoredEvent& outcome, uint64_t position, std::vector<Attributed>* out) {
  p.outcomes.push_back(outcome);
  const uint32_t bit = 1u << static_cast<uint32_t>(outcome.action);
  const bool first_of_kind = (p.seen_actions & bit) == 0;
  p.seen_actions |= bit;
  if (options_.policy == DelayPolicy::kFakeNegative && first_of_kind && Emits(position)) {
    out->push_back({p.position, p.impression, p.outcomes, true});
  }
}

void Attributor::Close(std::vector<Attributed>* out) {
  const uint32_t watermark = newest_ts_ > options_.lateness_s ? newest_ts_ - options_.lateness_s : 0;
  while (!pending_.empty() && pending_.front().impression.ts + options_.window_s <= watermark) {
    Pending& p = pending_.front();
    auto l = latest_.find({p.impression.user_id, p.impression.item_id});
    if (options_.policy == DelayPolicy::kWindow && !EmittedBefore(p)) {
      out->push_back({p.position, std::move(p.impression), std::move(p.outcomes), false});
    }
    if (l != latest_.end()) {
      auto& idx = l->second;
      idx.erase(std::remove(idx.begin(), idx.end(), base_), idx.end());
      if (idx.empty()) latest_.erase(l);
    }
    pending_.pop_front();
    ++base_;
  }
  // Outcomes whose impression never came: unattributed once no impression can claim them.
  for (auto o = orphans_.begin(); o != orphans_.end();) {
    auto& list = o->second;
    const size_t before = list.size();
    list.erase(std::remove_if(list.begin(), list.end(),
                              [&](const auto& x) { return x.second.ts + options_.lateness_s < watermark; }),
               list.end());
    stats_.unattributed += before - list.size();
    o = list.empty() ? orphans_.erase(o) : std::next(o);
  }
}

AttributionCheckpoint Attributor::Checkpoint() const {
  AttributionCheckpoint c;
  c.emitted_through = last_position_;
  c.replay_from = last_position_ + 1;
  if (!pending_.empty()) c.replay_from = std::min(c.replay_from, pending_.front().position);
  for (const auto& [key, list] : orphans_) {
    for (const auto& [position, e] : list) {
      c.replay_from = std::min(c.replay_from, position);
      c.orphans.push_back(position);
    }
  }
  for (const Ahead& a : ahead_) c.replay_from = std::min(c.replay_from, a.position);
  c.watermark = newest_ts_ > options_.lateness_s ? newest_ts_ - options_.lateness_s : 0;
  return c;
}

}  // namespace adrec::online

// Attribution for online learning: which outcomes (click, download, conversion) belong to which
// impression, and when an impression is ready to train on. Reads the event store's log in
// position order and emits impressions with their outcomes; deterministic in the log, so a
// learner that restarts from a checkpoint emits nothing twice (DESIGN.md "Online learning").
//
// Delayed feedback, two policies (docs/ONLINE.md):
// - kWindow: an impression is emitted once its attribution window has closed (the watermark,
//   the newest event time less the allowed lateness, is past impression time + window), with
//   every outcome inside the window. Labels are final; freshness costs the window.
// - kFakeNegative (Ktena et al. 2019): an impression is emitted at once with no outcomes (a
//   negative, possibly a fake one), and again with its outcomes each time a new kind of outcome
//   arrives inside the window. The learner weights the losses to undo the bias (fake-negative
//   weighting); freshness costs nothing.
#pragma once

#include <cstdint>
#include <algorithm>
#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "adrec/serve/event_store.h"

namespace adrec::online {

enum class DelayPolicy : uint8_t { kWindow, kFakeNegative };

struct AttributionOptions {
  DelayPolicy policy = DelayPolicy::kFakeNegative;
  uint32_t window_s = 3600;  // an outcome counts for the user's latest impression of the item this long
  uint32_t lateness_s = 60;  // how far behind the newest event time an event may still arrive
  // Event times this far past the newest one seen are clock skew: they do not move the watermark
  // (one bad clock would otherwise close every window at once), unless `corroborate` distinct
  // users' events agree: then time did jump (traffic resumed after a quiet hour) and it moves.
  uint32_t max_skew_s = 3600;
  uint32_t corroborate = 3;
};

// An impression ready to train on, with the outcomes attributed to it so far.
struct Attributed {
  uint64_t position = 0;  // the impression's log position
  serve::StoredEvent impression;
  std::vector<serve::StoredEvent> outcomes;  // inside the window, in log order
  bool delayed = false;  // kFakeNegative: a re-emission with a new outcome
};

// Where a reader of the log stands, enough to resume exactly: replay the log from `replay_from`
// (rebuilding what is pending) without emitting up to `emitted_through`, then go on.
struct AttributionCheckpoint {
  uint64_t replay_from = 1;
  uint64_t emitted_through = 0;
  uint32_t watermark = 0;
  // Outcomes still waiting for their impression: in the replay, another unmatched outcome was
  // attributed to an impression before replay_from and is not one.
  std::vector<uint64_t> orphans;
};

struct AttributionStats {
  uint64_t impressions = 0;
  uint64_t outcomes = 0;
  uint64_t unattributed = 0;  // outcomes with no impression of that user and item inside the window
  uint64_t out_of_order = 0;  // outcomes logged before their impression (matched when it came)
  uint64_t skewed = 0;        // events whose time did not move the watermark
  uint64_t other = 0;         // events that are neither (ratings, views)
};

class Attributor {
 public:
  explicit Attributor(AttributionOptions options, AttributionCheckpoint from = {});

  // Feeds the next logged event (positions increasing; at or before the checkpoint's
  // emitted_through it only rebuilds state). Returns what became ready to train on.
  std::vector<Attributed> Add(const serve::LoggedEvent& e);

  AttributionCheckpoint Checkpoint() const;
  const AttributionStats& stats() const { return stats_; }
  size_t pending() const { return pending_.size(); }

 private:
  struct Pending {
    uint64_t position;
    serve::StoredEvent impression;
    std::vector<serve::StoredEvent> outcomes;
    uint32_t seen_actions = 0;  // bits of the outcome actions attributed so far
  };
  using Key = std::pair<std::string, std::string>;  // user, item

  void Attribute(Pending& p, const serve::StoredEvent& outcome, uint64_t position, std::vector<Attributed>* out);
  void Close(std::vector<Attributed>* out);
  bool Emits(uint64_t position) const { return position > replay_until_; }
  // kWindow: the run that wrote the checkpoint emitted `p` when it was logged before the
  // checkpoint and its window had closed by the checkpoint's watermark.
  bool EmittedBefore(const Pending& p) const {
    return p.position <= replay_until_ && p.impression.ts + options_.window_s <= replay_watermark_;
  }

  AttributionOptions options_;
  uint64_t replay_until_ = 0;      // positions at or before it were emitted by an earlier run
  uint32_t replay_watermark_ = 0;  // windows closed by it were emitted by an earlier run
  std::vector<uint64_t> replay_orphans_;  // sorted
  uint64_t last_position_ = 0;
  uint32_t newest_ts_ = 0;
  // Events past newest_ts_ + max_skew_s waiting for corroboration (position, time, user).
  struct Ahead {
    uint64_t position;
    uint32_t ts;
    std::string user;
  };
  std::vector<Ahead> ahead_;
  void Clock(const serve::LoggedEvent& logged);
  std::deque<Pending> pending_;                // impressions in log order, windows still open
  std::map<Key, std::vector<size_t>> latest_;  // per user and item: pending_ offsets (see base_)
  size_t base_ = 0;                            // pending_ offset of index 0 (the deque pops the front)
  std::map<Key, std::vector<std::pair<uint64_t, serve::StoredEvent>>> orphans_;  // outcomes before their impression
  AttributionStats stats_;
};

}  // namespace adrec::online

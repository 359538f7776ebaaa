// A dataset's events replayed as an event log: what `adrec learn --events dataset` reads to learn
// from a recorded log instead of a live server (a backfill, or the drifting-world experiment of
// docs/ONLINE.md). Positions number the dataset's events in time order (ties in the dataset's
// order) from 1, the same for every replay of that dataset, so a learner that replays one part
// of a temporal split and then the next resumes where it stopped. The log ends with the last
// event of the replayed part; a reader starting at 0 starts with its first event. User states are
// empty: the learner's base log (the same dataset) already holds every event of a user.
#pragma once

#include <memory>
#include <string>

#include "adrec/core/status.h"
#include "adrec/data/dataset.h"
#include "adrec/data/split.h"
#include "adrec/serve/event_store.h"

namespace adrec::online {

// The replay up to the end of `part` of `split` (a split of `ds`), as a read-only store.
// Describe() names `source`. InvalidArgument when the part holds no event.
StatusOr<std::unique_ptr<serve::EventStore>> ReplayLog(const data::Dataset& ds, const data::Split& split,
                                                       data::SplitPart part, std::string source);

}  // namespace adrec::online

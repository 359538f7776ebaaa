// Samples of a ranking model: the sample events of a split part with their targets' labels and
// masks (DESIGN.md "Feature spec", targets), and the per-user history indexes batches read.
#pragma once

#include <cstdint>
#include <vector>

#include "adrec/core/status.h"
#include "adrec/data/dataset.h"
#include "adrec/data/feature_spec.h"
#include "adrec/data/split.h"

namespace adrec::data {

// Events of one user-history action mask, per user: user u's are events[user_offsets[u],
// user_offsets[u+1]) in dataset order. Lets BuildBatch find a sample's history (and a counter's
// events: a one-action mask) by binary search instead of walking the user's log back.
struct HistoryIndex {
  ActionMask actions = 0;
  std::vector<uint64_t> events;
  std::vector<uint64_t> user_offsets;  // size users + 1
};

// Labels of every sample-event of a dataset: events[i] is a dataset event index, labels and
// mask are row-major [samples × targets].
struct SampleSet {
  std::vector<uint64_t> events;
  std::vector<float> labels;
  std::vector<float> mask;
  // What sequence fields without history_actions read: the split's positive mask, or
  // DefaultPositiveMask(ds) without a split. 0 (a hand-made set) = every non-impression action.
  ActionMask history_actions = 0;
  // One per distinct action mask of the spec's sequence fields, and one per counter action
  // that is at most a quarter of the events (MakeSamples fills them); BuildBatch walks the
  // user's log back for a mask that has none.
  std::vector<HistoryIndex> history;
  size_t size() const { return events.size(); }
};

// Samples of one split part (every sample event when split is null), in dataset order.
StatusOr<SampleSet> MakeSamples(const Dataset& ds, const FeatureSpec& spec, const Split* split, SplitPart part);

// The samples whose target t is defined and positive (label 1), with their labels and the same
// history indexes: what a retrieval model trains and is evaluated on (an event whose item it
// should find for the user).
SampleSet PositiveSamples(const SampleSet& samples, size_t num_targets, size_t t);

}  // namespace adrec::data

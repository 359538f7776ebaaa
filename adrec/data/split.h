// Train/valid/test splits of a dataset's events: leave-one-out (the published sequential
// protocol), a global temporal cut, random by user and random by event. A split is one byte per
// event, stored as `split.bin` (+ a human-readable `split.toml`) inside a split directory.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "adrec/core/status.h"
#include "adrec/data/dataset.h"

namespace adrec::data {

enum class SplitPart : uint8_t { kTrain = 0, kValid = 1, kTest = 2 };
inline constexpr int kNumSplitParts = 3;
std::string_view SplitPartName(SplitPart p);

// Bit (1 << action) set for every action that counts as a "positive" interaction.
using ActionMask = uint32_t;
inline constexpr ActionMask ActionBit(Action a) { return ActionMask{1} << static_cast<uint8_t>(a); }
// Default positives: every non-impression action; every action when the dataset has only one
// action type (MovieLens ratings, S3-Rec sequences, impression-only logs).
ActionMask DefaultPositiveMask(const Dataset& ds);
// "click,download" style list of the actions in a mask.
std::string ActionMaskNames(ActionMask mask);

struct Split {
  std::string method;           // "loo", "temporal", "random", "random_event"
  uint64_t seed = 0;            // random methods only
  ActionMask positive_mask = 0; // what counted as a positive when the split was made
  std::vector<uint8_t> part;    // per event: SplitPart

  size_t size() const { return part.size(); }
  SplitPart PartOf(size_t event) const { return static_cast<SplitPart>(part[event]); }
  bool IsPositive(uint8_t action) const { return (positive_mask >> action) & 1u; }
  std::array<uint64_t, kNumSplitParts> Counts() const;
};

struct SplitOptions {
  std::string method = "loo";  // loo | temporal | random | random_event
  uint64_t seed = 42;
  // temporal / random / random_event: train and valid fractions, test gets the rest.
  double train_fraction = 0.8;
  double valid_fraction = 0.1;
  // Positive actions; empty = DefaultPositiveMask(ds).
  std::vector<Action> positive_actions;
  // loo: users with fewer positives keep every event in train (need one each for valid, test and
  // at least one of history).
  uint32_t min_positives = 3;
};

// loo: per user, the last positive event (by time, then arrival) is test, the second-last is
// valid, every other event is train. temporal: events with time below the train quantile of
// all event times are train, below the valid quantile valid, the rest test (ties at a cut go to
// the later part, so no train event is later than a valid one). random: users are assigned
// to parts by a seeded hash. random_event: each event by a seeded hash of its index.
StatusOr<Split> MakeSplit(const Dataset& ds, const SplitOptions& options);

// FailedPrecondition when the split was made for a dataset with another number of events.
Status CheckSplitMatches(const Split& split, const Dataset& ds);

struct WriteSplitOptions {
  bool compress = true;  // zstd over the part bytes (they compress ~10x: long runs of train)
  int zstd_level = 3;
  bool overwrite = false;
};
// Writes `dir`/split.bin and `dir`/split.toml (creating `dir`).
Status WriteSplit(const Split& split, const std::filesystem::path& dir, const WriteSplitOptions& options = {});
// DataLoss naming split.bin when it is truncated, corrupt or of an unknown version.
StatusOr<Split> ReadSplit(const std::filesystem::path& dir);
// Also checks that the split belongs to `ds` (FailedPrecondition otherwise).
StatusOr<Split> ReadSplit(const std::filesystem::path& dir, const Dataset& ds);

}  // namespace adrec::data

// The online learner (`adrec learn`): reads the server's event log, attributes outcomes to
// impressions (attribution.h), trains the ranking bundle on them incrementally, and publishes a
// snapshot bundle every N samples or seconds, which the server swaps in (`/admin/reload`, or
// --bundle pointing at the snapshots' `current` link). Each snapshot carries the attribution
// checkpoint of exactly the samples it learned from, so a learner killed at any moment resumes
// from its last snapshot and trains on no event twice (docs/ONLINE.md).
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "adrec/core/status.h"
#include "adrec/online/attribution.h"

namespace adrec::online {

struct LearnerOptions {
  std::filesystem::path bundle;  // the ranking bundle to start from when `out` has no snapshot
  std::filesystem::path data;    // the dataset it was trained on (catalogue and base log)
  // The server's --state (a RocksDB directory or redis://HOST:PORT), or "dataset": the events of
  // `data` itself, replayed up to the end of `replay_part` of the split in `replay_split`
  // (replay.h; a learner resuming from a snapshot goes on from its checkpoint).
  std::string events;
  std::filesystem::path replay_split;
  std::string replay_part = "valid";
  std::filesystem::path out;     // snapshots out/snap-<n>; out/current links the newest
  AttributionOptions attribution;
  size_t batch_size = 256;         // samples per step, of distinct users
  double lr = 1e-4;                // dense Adam
  double embedding_lr = 0.05;      // the embedding rows' Adagrad
  // Adagrad's accumulators start here (bundles keep none): at 0 the first update of every row
  // moves each coordinate by the full learning rate whatever the gradient's size.
  double embedding_accumulator = 0.0;
  uint64_t publish_every = 5000;   // trained samples between snapshots
  double publish_seconds = 30.0;   // or this long after the last snapshot, if anything was learned
  size_t history_limit = 200;      // newest events of a user the features read (as the server)
  size_t keep_snapshots = 3;
  bool follow = true;              // wait for new events; false: stop at the end of the log
  double poll_seconds = 0.5;
  int threads = 1;
  const std::atomic<bool>* stop = nullptr;  // set by SIGINT/SIGTERM: publish what was learned, stop
};

// Runs until the log ends (follow = false) or `stop` is set. The report: events read, samples
// and steps, snapshots written, attribution counts, the newest snapshot and its checkpoint.
StatusOr<nlohmann::ordered_json> RunLearner(const LearnerOptions& options);

}  // namespace adrec::online

// The server's user state (DESIGN.md "Serving"): every event that came back through
// POST /v1/events, kept durably and idempotently by event ID, read back per user newest first
// (the history and counters the next request's features read) with per-action totals.
// Backends: RocksDB in a directory (one server) and Redis (replicas sharing state).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "adrec/core/status.h"
#include "adrec/data/dataset.h"

namespace adrec::serve {

struct StoredEvent {
  std::string event_id;
  std::string user_id;
  std::string item_id;
  data::Action action = data::Action::kImpression;
  uint32_t ts = 0;
  std::string scene;
  float value = 0.f;
  // The 0-based place the ad had in the list it was shown in (the API's and the dataset's
  // `position`): the ranker's position feature reads it, so a learner's rows match training's.
  uint8_t slot = 0;
  std::string creative_id;  // the creative variant shown, when the answer named one (bandit feedback)
};

// How an acknowledged event survives a crash. kSync: the WAL is fsync'ed before the answer
// (survives power loss; RocksDB merges the fsyncs of concurrent requests). kProcess: the WAL
// write reaches the kernel before the answer (survives the process being killed, not the machine
// losing power), for ingestion rates an fsync per request cannot carry.
enum class Durability : uint8_t { kSync, kProcess };

struct EventStoreOptions {
  Durability durability = Durability::kSync;
  // Events kept per user; older ones are deleted as new ones arrive (their IDs stay known, so a
  // late duplicate is still recognised).
  size_t max_events_per_user = 1000;
  // Newest events the log keeps for its readers (ReadLog: the online learner); older ones are
  // dropped as new ones arrive. A reader further behind than this misses events.
  uint64_t max_log_events = 10'000'000;
};

// An accepted event and its place in the store's log. Positions start at 1 and increase by one
// per accepted event, in the order the events became durable, across every process writing to
// the store (a reader that has seen position p has seen every event before it).
struct LoggedEvent {
  uint64_t position = 0;
  StoredEvent event;
};

struct UserState {
  std::vector<StoredEvent> recent;                   // newest first
  std::array<uint64_t, data::kNumActions> totals{};  // every event ever accepted, by action
};

class EventStore {
 public:
  virtual ~EventStore() = default;
  // Stores the events whose IDs it has not seen (within the call too) and returns how many; the
  // others are duplicates, answered as success. Returns only after the write is durable.
  // `fresh`, when given, gets one flag per event: stored now (true) or a duplicate.
  virtual StatusOr<size_t> Append(std::span<const StoredEvent> events, std::vector<bool>* fresh = nullptr) = 0;
  // The user's newest `limit` events and totals; an unknown user has none (not an error).
  virtual StatusOr<UserState> Read(std::string_view user_id, size_t limit) const = 0;
  // Events accepted since the store was created (all processes, all time).
  virtual StatusOr<uint64_t> Count() const = 0;
  // Up to `max` logged events after `position` (0: from the oldest kept), oldest first; empty
  // when there are none yet. OutOfRange when events after `position` were already dropped
  // (max_log_events), naming the oldest kept.
  virtual StatusOr<std::vector<LoggedEvent>> ReadLog(uint64_t position, size_t max) const = 0;
  // "rocksdb:DIR" or "redis://host:port".
  virtual std::string Describe() const = 0;
};

// A RocksDB store in `dir` (created when missing). FailedPrecondition when another process
// holds it.
StatusOr<std::unique_ptr<EventStore>> OpenRocksEventStore(const std::filesystem::path& dir, const EventStoreOptions& options);
// A RocksDB store that another process (the server) holds, opened to read: a RocksDB secondary
// instance in `scratch` that catches up with the primary in each ReadLog; Read and Count see the
// store as of the last ReadLog (a learner reads users' states consistent with the log it has
// read, at the cost of one catch-up per log read). Append is refused.
StatusOr<std::unique_ptr<EventStore>> OpenRocksEventStoreReader(const std::filesystem::path& dir,
                                                                const std::filesystem::path& scratch);
// A Redis store at "redis://HOST:PORT[/DB]" (the server must run with appendonly for the
// durability to hold: docs/SERVING.md). Unavailable naming the address when it cannot connect.
StatusOr<std::unique_ptr<EventStore>> OpenRedisEventStore(std::string_view url, const EventStoreOptions& options);
// "redis://host:port[/db]" or a directory.
StatusOr<std::unique_ptr<EventStore>> OpenEventStore(std::string_view where, const EventStoreOptions& options);

// Event bytes as both backends store them (versioned; DataLoss naming the problem when corrupt).
std::string EncodeEvent(const StoredEvent& e);
StatusOr<StoredEvent> DecodeEvent(std::string_view bytes);

}  // namespace adrec::serve

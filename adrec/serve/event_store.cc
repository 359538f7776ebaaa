#include "adrec/serve/event_store.h"

#include <rocksdb/db.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_set>
#include <utility>

#include "adrec/core/crypto.h"
#include "adrec/serve/rocks_encryption.h"

namespace adrec::serve {
namespace fs = std::filesystem;

namespace {

// 1: without slot and creative (still read, as slot 0, no creative); 2: both appended.
constexpr uint8_t kEventFormat = 2;

void PutU32(std::string* out, uint32_t v) {
  char b[4];
  std::memcpy(b, &v, 4);  // little-endian hosts only (x86-64, aarch64): fixed by the format byte
  out->append(b, 4);
}
void PutString(std::string* out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

struct Reader {
  std::string_view in;
  bool ok = true;
  uint32_t U32() {
    if (in.size() < 4) return ok = false, 0;
    uint32_t v;
    std::memcpy(&v, in.data(), 4);
    in.remove_prefix(4);
    return v;
  }
  std::string String() {
    const uint32_t n = U32();
    if (!ok || in.size() < n) return ok = false, std::string();
    std::string s(in.substr(0, n));
    in.remove_prefix(n);
    return s;
  }
};

// Big-endian, so keys sort by number.
void PutBe64(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// Key families: "i"+event_id (seen IDs), "u"+user+seq (a user's events, oldest first),
// "t"+user (per-action totals), "n" (events accepted in all).
std::string IdKey(std::string_view event_id) { return "i" + std::string(event_id); }
std::string UserPrefix(std::string_view user) {
  std::string k = "u";
  PutU32(&k, static_cast<uint32_t>(user.size()));  // length first: no user ID is a prefix of another's key
  k.append(user);
  return k;
}
std::string TotalsKey(std::string_view user) { return "t" + UserPrefix(user).substr(1); }
constexpr std::string_view kCountKey = "n";
// "l"+position: the log (EventStore::ReadLog), positions big-endian so they sort.
std::string LogKey(uint64_t position) {
  std::string k = "l";
  PutBe64(&k, position);
  return k;
}
uint64_t LogPosition(const rocksdb::Slice& key) {
  uint64_t v = 0;
  for (size_t i = 1; i < 9; ++i) v = (v << 8) | static_cast<uint8_t>(key[i]);
  return v;
}
bool IsLogKey(const rocksdb::Slice& key) { return key.size() == 9 && key[0] == 'l'; }
// The log is trimmed in steps of this many events, not one DeleteRange per write.
constexpr uint64_t kLogTrimStep = 4096;

using Totals = std::array<uint64_t, data::kNumActions>;

std::string EncodeTotals(const Totals& t) { return std::string(reinterpret_cast<const char*>(t.data()), sizeof(Totals)); }
Totals DecodeTotals(std::string_view s) {
  Totals t{};
  if (s.size() == sizeof(Totals)) std::memcpy(t.data(), s.data(), sizeof(Totals));
  return t;
}

// Element-wise sum of little-endian u64 arrays: totals and the global count are merged, never
// read-modified-written, so concurrent appends need no lock around them.
class AddCounts : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice&, const rocksdb::Slice* existing, const rocksdb::Slice& value, std::string* out,
             rocksdb::Logger*) const override {
    if (value.size() % 8 != 0 || (existing && existing->size() != value.size())) return false;
    out->assign(value.data(), value.size());
    if (!existing) return true;
    for (size_t i = 0; i < value.size(); i += 8) {
      uint64_t a, b;
      std::memcpy(&a, existing->data() + i, 8);
      std::memcpy(&b, value.data() + i, 8);
      a += b;
      std::memcpy(out->data() + i, &a, 8);
    }
    return true;
  }
  const char* Name() const override { return "adrec.AddCounts"; }
};

std::string U64Bytes(uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); }

class RocksEventStore : public EventStore {
 public:
  // `reader`: a secondary instance (OpenRocksEventStoreReader) that catches up in ReadLog.
  RocksEventStore(fs::path dir, std::unique_ptr<rocksdb::DB> db, EventStoreOptions options, bool reader)
      : dir_(std::move(dir)), db_(std::move(db)), options_(options), reader_(reader),
        // Later runs continue after earlier ones as long as the clock does not step back by more
        // than the events of one run; ties only order events of one second.
        seq_(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                 std::chrono::system_clock::now().time_since_epoch()).count())) {
    // The log continues from its newest kept position.
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    it->SeekForPrev(LogKey(UINT64_MAX));
    if (it->Valid() && IsLogKey(it->key())) next_position_ = LogPosition(it->key()) + 1;
    it->Seek(LogKey(0));
    trimmed_below_ = it->Valid() && IsLogKey(it->key()) ? LogPosition(it->key()) : next_position_;
  }

  StatusOr<size_t> Append(std::span<const StoredEvent> events, std::vector<bool>* flags) override {
    if (flags) flags->assign(events.size(), false);
    if (reader_) return FailedPreconditionError("the event store " + dir_.string() + " is open to read only");
    for (const StoredEvent& e : events) {
      if (e.event_id.empty()) return InvalidArgumentError("an event has an empty event_id");
    }
    std::vector<const StoredEvent*> fresh;
    {
      // An ID another request is writing is waited for, not answered as a duplicate: if that
      // write fails, this request stores the event. Nothing is reserved while waiting, so two
      // requests never wait for each other.
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] {
        return std::none_of(events.begin(), events.end(), [&](const StoredEvent& e) { return pending_.count(e.event_id) > 0; });
      });
      for (const StoredEvent& e : events) {
        if (pending_.count(e.event_id)) continue;  // reserved by this call: a repeat within it
        std::string v;
        rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), IdKey(e.event_id), &v);
        if (s.ok()) continue;
        if (!s.IsNotFound()) {
          Release(fresh);
          cv_.notify_all();
          if (flags) flags->assign(events.size(), false);
          return IoError("reading the event store " + dir_.string() + ": " + s.ToString());
        }
        pending_.insert(e.event_id);
        fresh.push_back(&e);
        if (flags) (*flags)[static_cast<size_t>(&e - events.data())] = true;
      }
    }
    Status st = Write(fresh);
    {
      std::lock_guard<std::mutex> lock(mu_);
      Release(fresh);
    }
    cv_.notify_all();
    if (!st.ok()) {
      if (flags) flags->assign(events.size(), false);
      return st;
    }
    return fresh.size();
  }

  StatusOr<UserState> Read(std::string_view user_id, size_t limit) const override {
    UserState out;
    const std::string prefix = UserPrefix(user_id);
    std::string upper = prefix;
    upper.push_back('\xff');  // after every seq of this user: seqs are 8 bytes, the prefix is exact
    rocksdb::ReadOptions ro;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    for (it->SeekForPrev(upper); it->Valid() && out.recent.size() < limit; it->Prev()) {
      const rocksdb::Slice k = it->key();
      if (k.size() != prefix.size() + 8 || !k.starts_with(prefix)) break;
      auto e = DecodeEvent(it->value().ToStringView());
      if (!e.ok()) return e.status().WithContext("the event store " + dir_.string());
      out.recent.push_back(std::move(e).value());
    }
    if (!it->status().ok()) return IoError("reading the event store " + dir_.string() + ": " + it->status().ToString());
    std::string t;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), TotalsKey(user_id), &t);
    if (s.ok()) out.totals = DecodeTotals(t);
    else if (!s.IsNotFound()) return IoError("reading the event store " + dir_.string() + ": " + s.ToString());
    return out;
  }

  StatusOr<uint64_t> Count() const override {
    std::string v;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), kCountKey, &v);
    if (s.IsNotFound()) return uint64_t{0};
    if (!s.ok() || v.size() != 8) return IoError("reading the event store " + dir_.string() + ": " + s.ToString());
    uint64_t n;
    std::memcpy(&n, v.data(), 8);
    return n;
  }

  StatusOr<std::vector<LoggedEvent>> ReadLog(uint64_t position, size_t max) const override {
    ADREC_RETURN_IF_ERROR(CatchUp());
    std::vector<LoggedEvent> out;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek(LogKey(position + 1)); it->Valid() && IsLogKey(it->key()) && out.size() < max; it->Next()) {
      const uint64_t at = LogPosition(it->key());
      if (out.empty() && position > 0 && at > position + 1) {
        return OutOfRangeError("the event log of " + dir_.string() + " keeps positions from " + std::to_string(at) +
                               " on; position " + std::to_string(position + 1) + " was dropped (max_log_events)");
      }
      auto e = DecodeEvent(it->value().ToStringView());
      if (!e.ok()) return e.status().WithContext("the event log of " + dir_.string());
      out.push_back({at, std::move(e).value()});
    }
    if (!it->status().ok()) return IoError("reading the event store " + dir_.string() + ": " + it->status().ToString());
    return out;
  }

  std::string Describe() const override { return "rocksdb:" + dir_.string(); }

 private:
  // One Append's events waiting to be written by the leader of a group commit.
  struct Commit {
    const std::vector<const StoredEvent*>* events;
    bool done = false;
    Status status;
  };

  // Group commit: the first writer to arrive leads and writes every queued request in one batch
  // (one fsync), assigning log positions in that order; the others wait for it. Positions then
  // become durable in order, which concurrent batches of their own could not promise.
  Status Write(const std::vector<const StoredEvent*>& fresh) {
    if (fresh.empty()) return Status::Ok();
    Commit mine{&fresh, false, Status::Ok()};
    std::unique_lock<std::mutex> lock(commit_mu_);
    commits_.push_back(&mine);
    commit_cv_.wait(lock, [&] { return mine.done || !leading_; });
    if (mine.done) return mine.status;
    leading_ = true;
    std::vector<Commit*> group;
    group.swap(commits_);
    lock.unlock();
    const Status st = WriteGroup(group);
    lock.lock();
    for (Commit* c : group) {
      c->done = true;
      c->status = st;
    }
    leading_ = false;  // a writer that queued meanwhile leads the next group
    commit_cv_.notify_all();
    return mine.status;
  }

  // The leader's write (commit_mu_ not held; only the leader runs it).
  Status WriteGroup(const std::vector<Commit*>& group) {
    rocksdb::WriteBatch batch;
    std::map<std::string_view, std::pair<Totals, size_t>> added;
    uint64_t position = next_position_;
    for (const Commit* c : group) {
      for (const StoredEvent* e : *c->events) {
        batch.Put(IdKey(e->event_id), "");
        std::string key = UserPrefix(e->user_id);
        PutBe64(&key, seq_.fetch_add(1));
        const std::string bytes = EncodeEvent(*e);
        batch.Put(key, bytes);
        batch.Put(LogKey(position++), bytes);
        auto& [totals, count] = added[e->user_id];
        ++totals[static_cast<size_t>(e->action)];
        ++count;
      }
    }
    for (const auto& [user, t] : added) {
      batch.Merge(TotalsKey(user), EncodeTotals(t.first));
      TrimUser(user, t.second, &batch);
    }
    batch.Merge(std::string(kCountKey), U64Bytes(position - next_position_));
    uint64_t trimmed_below = trimmed_below_;
    if (position > trimmed_below + options_.max_log_events + std::min(kLogTrimStep, options_.max_log_events)) {
      trimmed_below = position - options_.max_log_events;
      batch.DeleteRange(LogKey(0), LogKey(trimmed_below));
    }
    rocksdb::WriteOptions wo;
    wo.sync = options_.durability == Durability::kSync;
    rocksdb::Status s = db_->Write(wo, &batch);
    if (!s.ok()) return IoError("writing the event store " + dir_.string() + ": " + s.ToString());
    next_position_ = position;
    trimmed_below_ = trimmed_below;
    return Status::Ok();
  }

  // A reader follows the primary's writes up to now.
  Status CatchUp() const {
    if (!reader_) return Status::Ok();
    std::lock_guard<std::mutex> lock(catch_up_mu_);
    rocksdb::Status s = db_->TryCatchUpWithPrimary();
    if (!s.ok()) return IoError("following the event store " + dir_.string() + ": " + s.ToString());
    return Status::Ok();
  }

  // Drops this call's reservations (mu_ held).
  void Release(const std::vector<const StoredEvent*>& fresh) {
    for (const StoredEvent* e : fresh) pending_.erase(e->event_id);
  }

  // Deletes the user's stored events beyond the newest max_events_per_user - `added` (the batch
  // brings `added` more).
  void TrimUser(std::string_view user, size_t added, rocksdb::WriteBatch* batch) {
    const std::string prefix = UserPrefix(user);
    std::string upper = prefix;
    upper.push_back('\xff');
    const size_t keep = options_.max_events_per_user > added ? options_.max_events_per_user - added : 0;
    if (keep == 0) {
      batch->DeleteRange(prefix, upper);
      return;
    }
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    size_t kept = 0;
    for (it->SeekForPrev(upper); it->Valid(); it->Prev()) {
      const rocksdb::Slice k = it->key();
      if (k.size() != prefix.size() + 8 || !k.starts_with(prefix)) break;
      if (++kept == keep) {  // the oldest kept: every older key goes
        batch->DeleteRange(prefix, k.ToString());
        break;
      }
    }
  }

  fs::path dir_;
  std::unique_ptr<rocksdb::DB> db_;
  EventStoreOptions options_;
  bool reader_ = false;
  std::atomic<uint64_t> seq_;
  std::mutex commit_mu_;
  std::condition_variable commit_cv_;
  std::vector<Commit*> commits_;  // queued for the next group
  bool leading_ = false;
  uint64_t next_position_ = 1, trimmed_below_ = 1;  // the leader's
  mutable std::mutex catch_up_mu_;
  std::mutex mu_;
  std::condition_variable cv_;  // signalled when reservations are released
  std::unordered_set<std::string> pending_;
};

}  // namespace

std::string EncodeEvent(const StoredEvent& e) {
  std::string out;
  out.push_back(static_cast<char>(kEventFormat));
  PutString(&out, e.event_id);
  PutString(&out, e.user_id);
  PutString(&out, e.item_id);
  out.push_back(static_cast<char>(e.action));
  PutU32(&out, e.ts);
  PutString(&out, e.scene);
  uint32_t v;
  std::memcpy(&v, &e.value, 4);
  PutU32(&out, v);
  out.push_back(static_cast<char>(e.slot));
  PutString(&out, e.creative_id);
  return out;
}

StatusOr<StoredEvent> DecodeEvent(std::string_view bytes) {
  const uint8_t format = bytes.empty() ? 0 : static_cast<uint8_t>(bytes[0]);
  if (format != 1 && format != kEventFormat) {
    return DataLossError("a stored event has an unknown format (first byte " +
                         std::to_string(bytes.empty() ? -1 : static_cast<uint8_t>(bytes[0])) + ")");
  }
  Reader r{bytes.substr(1)};
  StoredEvent e;
  e.event_id = r.String();
  e.user_id = r.String();
  e.item_id = r.String();
  if (r.ok && !r.in.empty()) {
    const auto a = static_cast<uint8_t>(r.in[0]);
    r.in.remove_prefix(1);
    if (a >= data::kNumActions) r.ok = false;
    e.action = static_cast<data::Action>(a);
  } else {
    r.ok = false;
  }
  e.ts = r.U32();
  e.scene = r.String();
  const uint32_t v = r.U32();
  std::memcpy(&e.value, &v, 4);
  if (format >= 2) {
    if (r.in.empty()) r.ok = false;
    if (r.ok) {
      e.slot = static_cast<uint8_t>(r.in[0]);
      r.in.remove_prefix(1);
    }
    e.creative_id = r.String();
  }
  if (!r.ok || !r.in.empty()) return DataLossError("a stored event is truncated or corrupt (" + std::to_string(bytes.size()) + " bytes)");
  return e;
}

namespace {

// With an at-rest key every file of the store is encrypted (rocks_encryption.h); without one, an
// encrypted store is an error that asks for the key.
Status UseAtRestKey(const fs::path& dir, rocksdb::Options* ro) {
  if (const SecretKey* key = AtRestKey(); key != nullptr) {
    // RocksDB would read a plain store's files through the cipher before it notices.
    if (fs::exists(dir / "CURRENT") && !IsEncryptedRocksDir(dir)) {
      return FailedPreconditionError("the event store " + dir.string() +
                                     " is not encrypted by adrec (written without --at-rest-key): open it without a "
                                     "key, or start a new store with one");
    }
    ro->env = EncryptedRocksEnv(*key);
    if (ro->env == nullptr) return InternalError("libsodium could not initialise (no entropy source)");
    ro->info_log = RocksLogToAdrec();
    return Status::Ok();
  }
  if (IsEncryptedRocksDir(dir)) {
    return FailedPreconditionError("the event store " + dir.string() +
                                   " is encrypted at rest: give its key with --at-rest-key or ADREC_AT_REST_KEY_FILE");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::unique_ptr<EventStore>> OpenRocksEventStore(const fs::path& dir, const EventStoreOptions& options) {
  if (options.max_events_per_user == 0) return InvalidArgumentError("max_events_per_user must be positive");
  if (options.max_log_events == 0) return InvalidArgumentError("max_log_events must be positive");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return IoError("cannot create the event store " + dir.string() + ": " + ec.message());
  rocksdb::Options ro;
  ro.create_if_missing = true;
  ro.merge_operator = std::make_shared<AddCounts>();
  ro.info_log_level = rocksdb::InfoLogLevel::ERROR_LEVEL;
  ro.keep_log_file_num = 2;
  ADREC_RETURN_IF_ERROR(UseAtRestKey(dir, &ro));
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(ro, dir.string(), &raw);
  if (!s.ok()) {
    if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
      return FailedPreconditionError("the event store " + dir.string() + " is in use by another process (" + s.ToString() +
                                     "); replicas share state through --state redis://HOST:PORT instead");
    }
    return IoError("cannot open the event store " + dir.string() + ": " + s.ToString());
  }
  return std::unique_ptr<EventStore>(new RocksEventStore(dir, std::unique_ptr<rocksdb::DB>(raw), options, false));
}

StatusOr<std::unique_ptr<EventStore>> OpenRocksEventStoreReader(const fs::path& dir, const fs::path& scratch) {
  if (!fs::exists(dir / "CURRENT")) return NotFoundError("no event store in " + dir.string());
  std::error_code ec;
  fs::create_directories(scratch, ec);
  if (ec) return IoError("cannot create " + scratch.string() + ": " + ec.message());
  rocksdb::Options ro;
  ro.merge_operator = std::make_shared<AddCounts>();
  ro.info_log_level = rocksdb::InfoLogLevel::ERROR_LEVEL;
  ro.max_open_files = -1;  // a secondary instance keeps every table file open
  ADREC_RETURN_IF_ERROR(UseAtRestKey(dir, &ro));
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::OpenAsSecondary(ro, dir.string(), scratch.string(), &raw);
  if (!s.ok()) return IoError("cannot open the event store " + dir.string() + " to read: " + s.ToString());
  return std::unique_ptr<EventStore>(new RocksEventStore(dir, std::unique_ptr<rocksdb::DB>(raw), EventStoreOptions{}, true));
}

StatusOr<std::unique_ptr<EventStore>> OpenEventStore(std::string_view where, const EventStoreOptions& options) {
  if (where.empty()) return InvalidArgumentError("--state: give a directory or redis://HOST:PORT");
  if (where.starts_with("redis://")) return OpenRedisEventStore(where, options);
  return OpenRocksEventStore(fs::path(where), options);
}

}  // namespace adrec::serve

#include "adrec/serve/event_store.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <atomic>
#include <filesystem>
#include <optional>
#include <set>
#include <thread>

#include "adrec/core/crypto.h"
#include "adrec/core/file.h"
#include "adrec/serve/rocks_encryption.h"
#include "adrec/serve/testing.h"

namespace adrec::serve {
namespace {

namespace fs = std::filesystem;

StoredEvent Ev(std::string id, std::string user, std::string item, data::Action a, uint32_t ts) {
  return {std::move(id), std::move(user), std::move(item), a, ts, "feed", 0.f, 0, ""};
}

// The contract both backends keep, run against each for real (a RocksDB directory, a started
// redis-server).
class EventStoreContract : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "redis") {
      redis_ = std::make_unique<testing::RedisServer>(tmp_.path());
      ADREC_REQUIRE_REDIS(*redis_);
    }
    Reopen();
  }
  void Reopen(EventStoreOptions o = {}) {
    store_.reset();
    auto s = OpenEventStore(GetParam() == "redis" ? redis_->url() : (tmp_.path() / "state").string(), o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  ScopedTempDir tmp_;
  std::unique_ptr<testing::RedisServer> redis_;
  std::unique_ptr<EventStore> store_;
};

TEST_P(EventStoreContract, KeepsEventsNewestFirstWithTotals) {
  const std::vector<StoredEvent> evs = {Ev("e1", "u1", "i1", data::Action::kImpression, 100),
                                        Ev("e2", "u1", "i1", data::Action::kClick, 103),
                                        Ev("e3", "u2", "i2", data::Action::kImpression, 101),
                                        Ev("e4", "u1", "i3", data::Action::kImpression, 110)};
  auto n = store_->Append(evs);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 4u);
  auto u1 = store_->Read("u1", 10);
  ASSERT_TRUE(u1.ok()) << u1.status().ToString();
  ASSERT_EQ(u1->recent.size(), 3u);
  EXPECT_EQ(u1->recent[0].event_id, "e4");
  EXPECT_EQ(u1->recent[1].event_id, "e2");
  EXPECT_EQ(u1->recent[1].action, data::Action::kClick);
  EXPECT_EQ(u1->recent[1].ts, 103u);
  EXPECT_EQ(u1->recent[1].scene, "feed");
  EXPECT_EQ(u1->totals[0], 2u);
  EXPECT_EQ(u1->totals[1], 1u);
  auto limited = store_->Read("u1", 1);
  ASSERT_TRUE(limited.ok());
  ASSERT_EQ(limited->recent.size(), 1u);
  EXPECT_EQ(limited->recent[0].event_id, "e4");
  auto nobody = store_->Read("nobody", 10);
  ASSERT_TRUE(nobody.ok());
  EXPECT_TRUE(nobody->recent.empty());
  EXPECT_EQ(*store_->Count(), 4u);
}

TEST_P(EventStoreContract, DuplicatesAreAcceptedOnceAcrossCallsAndWithinOne) {
  const std::vector<StoredEvent> first = {Ev("a", "u", "i", data::Action::kClick, 1), Ev("a", "u", "i", data::Action::kClick, 1)};
  std::vector<bool> fresh;
  EXPECT_EQ(*store_->Append(first, &fresh), 1u);
  EXPECT_EQ(fresh, (std::vector<bool>{true, false}));
  EXPECT_EQ(*store_->Append(first, &fresh), 0u);
  EXPECT_EQ(fresh, (std::vector<bool>{false, false}));
  Reopen();
  EXPECT_EQ(*store_->Append(first), 0u) << "the ID is remembered across a restart";
  EXPECT_EQ(store_->Read("u", 10)->recent.size(), 1u);
  EXPECT_EQ(store_->Read("u", 10)->totals[1], 1u);
  EXPECT_EQ(*store_->Count(), 1u);
}

TEST_P(EventStoreContract, ConcurrentDuplicatesCountOnce) {
  std::vector<std::thread> threads;
  std::atomic<size_t> accepted{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        auto n = store_->Append(std::vector<StoredEvent>{Ev("id" + std::to_string(i), "u", "i", data::Action::kImpression, 5)});
        if (n.ok()) accepted += *n;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(accepted.load(), 50u);
  EXPECT_EQ(*store_->Count(), 50u);
}

TEST_P(EventStoreContract, KeepsAtMostTheNewestEventsPerUser) {
  Reopen({.max_events_per_user = 5});
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(store_->Append(std::vector<StoredEvent>{Ev("e" + std::to_string(i), "u", "i", data::Action::kImpression, 100u + i)}).ok());
  }
  auto u = store_->Read("u", 100);
  ASSERT_TRUE(u.ok());
  ASSERT_EQ(u->recent.size(), 5u);
  EXPECT_EQ(u->recent.front().event_id, "e11");
  EXPECT_EQ(u->recent.back().event_id, "e7");
  EXPECT_EQ(u->totals[0], 12u) << "totals count every event";
  EXPECT_EQ(*store_->Append(std::vector<StoredEvent>{Ev("e0", "u", "i", data::Action::kImpression, 100)}), 0u)
      << "a trimmed event's ID is still known";
}

TEST_P(EventStoreContract, EmptyIdsAreRejected) {
  auto n = store_->Append(std::vector<StoredEvent>{Ev("", "u", "i", data::Action::kClick, 1)});
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.status().message().find("event_id"), std::string::npos);
}

// The log (what the online learner reads): every accepted event once, positions 1, 2, … in
// order, duplicates left out, continued after a reopen.
TEST_P(EventStoreContract, LogKeepsEveryAcceptedEventOnceInOrder) {
  ASSERT_EQ(*store_->Append(std::vector<StoredEvent>{Ev("a", "u1", "i1", data::Action::kImpression, 10),
                                                     Ev("b", "u2", "i2", data::Action::kImpression, 11)}),
            2u);
  ASSERT_EQ(*store_->Append(std::vector<StoredEvent>{Ev("a", "u1", "i1", data::Action::kImpression, 10),
                                                     Ev("c", "u1", "i1", data::Action::kClick, 12)}),
            1u);
  auto log = store_->ReadLog(0, 100);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  ASSERT_EQ(log->size(), 3u);
  const char* ids[] = {"a", "b", "c"};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*log)[i].position, i + 1);
    EXPECT_EQ((*log)[i].event.event_id, ids[i]);
  }
  EXPECT_EQ((*log)[2].event.action, data::Action::kClick);
  auto tail = store_->ReadLog(1, 1);
  ASSERT_TRUE(tail.ok());
  ASSERT_EQ(tail->size(), 1u);
  EXPECT_EQ((*tail)[0].event.event_id, "b");
  EXPECT_TRUE(store_->ReadLog(3, 10)->empty()) << "nothing after the newest";
  Reopen();
  ASSERT_EQ(*store_->Append(std::vector<StoredEvent>{Ev("d", "u3", "i3", data::Action::kImpression, 13)}), 1u);
  auto after = store_->ReadLog(3, 10);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ((*after)[0].position, 4u) << "positions continue across a restart";
}

// Concurrent writers: a reader tailing the log meanwhile never finds a gap (a position visible
// before an earlier one), and in the end every event has exactly one position, 1..N.
TEST_P(EventStoreContract, ConcurrentAppendsBecomeVisibleInPositionOrder) {
  constexpr int kThreads = 4, kCalls = 60, kPerCall = 5;
  std::atomic<bool> writing{true};
  std::atomic<int> reader_errors{0};
  std::thread reader([&] {
    uint64_t seen = 0;
    while (writing.load() || seen < uint64_t{kThreads * kCalls * kPerCall}) {
      auto got = store_->ReadLog(seen, 1000);
      if (!got.ok()) {
        ++reader_errors;
        ADD_FAILURE() << got.status().ToString();
        return;
      }
      for (const LoggedEvent& e : *got) {
        if (e.position != seen + 1) {
          ++reader_errors;
          ADD_FAILURE() << "position " << e.position << " after " << seen;
          return;
        }
        seen = e.position;
      }
      if (got->empty() && !writing.load()) break;
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int c = 0; c < kCalls; ++c) {
        std::vector<StoredEvent> evs;
        for (int k = 0; k < kPerCall; ++k) {
          evs.push_back(Ev("t" + std::to_string(t) + "-" + std::to_string(c) + "-" + std::to_string(k), "u" + std::to_string(t),
                           "i", data::Action::kImpression, 100));
        }
        ASSERT_TRUE(store_->Append(evs).ok());
      }
    });
  }
  for (auto& w : writers) w.join();
  writing = false;
  reader.join();
  EXPECT_EQ(reader_errors.load(), 0);
  auto all = store_->ReadLog(0, 100000);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), size_t{kThreads * kCalls * kPerCall});
  std::set<std::string> ids;
  for (size_t i = 0; i < all->size(); ++i) {
    EXPECT_EQ((*all)[i].position, i + 1);
    ids.insert((*all)[i].event.event_id);
  }
  EXPECT_EQ(ids.size(), all->size());
}

INSTANTIATE_TEST_SUITE_P(Backends, EventStoreContract, ::testing::Values("rocksdb", "redis"));

TEST(EventStore, EncodingRoundTripsAndCorruptionIsDataLoss) {
  StoredEvent e = Ev("id-1", "user \xe2\x9c\x93", "item", data::Action::kConversion, 1700000000);
  e.value = 12.5f;
  e.slot = 7;
  e.creative_id = "ad9~t2";
  auto back = DecodeEvent(EncodeEvent(e));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->slot, 7);
  EXPECT_EQ(back->creative_id, "ad9~t2");
  EXPECT_EQ(back->user_id, e.user_id);
  EXPECT_EQ(back->action, data::Action::kConversion);
  EXPECT_EQ(back->value, 12.5f);
  std::string bytes = EncodeEvent(e);
  EXPECT_EQ(DecodeEvent(bytes.substr(0, bytes.size() - 1)).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(DecodeEvent("").status().code(), StatusCode::kDataLoss);
  // Format 1 (stores written before the slot existed) still reads, as slot 0.
  std::string v1 = bytes.substr(0, bytes.size() - 1 - 4 - e.creative_id.size());  // less slot and creative
  v1[0] = 1;
  auto old = DecodeEvent(v1);
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_EQ(old->slot, 0);
  EXPECT_EQ(old->value, 12.5f);
  bytes[0] = 9;
  EXPECT_EQ(DecodeEvent(bytes).status().code(), StatusCode::kDataLoss);
}

TEST(EventStore, ASecondProcessCannotOpenTheSameDirectory) {
  ScopedTempDir tmp;
  auto a = OpenRocksEventStore(tmp.path(), {});
  ASSERT_TRUE(a.ok());
  auto b = OpenRocksEventStore(tmp.path(), {});
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(b.status().message().find("redis://"), std::string::npos) << b.status().message();
}

// The log keeps the newest max_log_events (trimmed in steps); a reader asking for a dropped
// position is told so, one starting from 0 gets the oldest kept.
TEST(EventStore, TheLogDropsItsOldestBeyondItsLimit) {
  ScopedTempDir tmp;
  auto store = OpenRocksEventStore(tmp.path(), {.max_log_events = 10});
  ASSERT_TRUE(store.ok());
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE((*store)->Append(std::vector<StoredEvent>{Ev("e" + std::to_string(i), "u", "i", data::Action::kImpression, 1)}).ok());
  }
  auto oldest = (*store)->ReadLog(0, 100);
  ASSERT_TRUE(oldest.ok());
  ASSERT_FALSE(oldest->empty());
  EXPECT_GT(oldest->front().position, 1u);
  EXPECT_LE(oldest->size(), 20u);
  EXPECT_EQ(oldest->back().position, 50u);
  auto dropped = (*store)->ReadLog(1, 10);
  ASSERT_FALSE(dropped.ok());
  EXPECT_EQ(dropped.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(dropped.status().message().find("max_log_events"), std::string::npos) << dropped.status().message();
}

// Another process (the learner) reads a store the server holds: a secondary instance that
// follows the primary's writes, and refuses to write.
TEST(EventStore, AReaderFollowsTheWritersLog) {
  ScopedTempDir tmp;
  auto writer = OpenRocksEventStore(tmp.path() / "state", {});
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append(std::vector<StoredEvent>{Ev("a", "u", "i", data::Action::kImpression, 1)}).ok());
  auto reader = OpenRocksEventStoreReader(tmp.path() / "state", tmp.path() / "reader");
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  ASSERT_EQ((*reader)->ReadLog(0, 10)->size(), 1u);
  ASSERT_TRUE((*writer)->Append(std::vector<StoredEvent>{Ev("b", "u", "i", data::Action::kClick, 2)}).ok());
  EXPECT_EQ((*reader)->Read("u", 10)->recent.size(), 1u) << "as of the last ReadLog";
  auto next = (*reader)->ReadLog(1, 10);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  ASSERT_EQ(next->size(), 1u);
  EXPECT_EQ((*next)[0].event.event_id, "b");
  EXPECT_EQ((*reader)->Read("u", 10)->recent.size(), 2u);
  auto refused = (*reader)->Append(std::vector<StoredEvent>{Ev("c", "u", "i", data::Action::kClick, 3)});
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(OpenRocksEventStoreReader(tmp.path() / "none", tmp.path() / "r2").status().code(), StatusCode::kNotFound);
}

// Sets the process's at-rest key for one test and clears it after.
class AtRestKeyScope {
 public:
  explicit AtRestKeyScope(std::optional<SecretKey> key) { SetAtRestKey(std::move(key)); }
  ~AtRestKeyScope() { SetAtRestKey(std::nullopt); }
};

SecretKey KeyOf(uint8_t fill) {
  SecretKey k;
  k.bytes.fill(fill);
  return k;
}

// With an at-rest key, no file of the store holds a user's ID in the clear, the store reads back
// with the key (writer and reader), and another key, no key, or a plain store opened with a key
// are errors that say which.
TEST(EventStore, AtRestKeyEncryptsEveryFileOfTheStore) {
  ScopedTempDir tmp;
  const fs::path dir = tmp.path() / "state";
  const std::string user = "user-4f1c-secret";
  {
    AtRestKeyScope scope(KeyOf(7));
    auto store = OpenRocksEventStore(dir, {});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    std::vector<StoredEvent> evs;
    for (int i = 0; i < 200; ++i) evs.push_back(Ev("e" + std::to_string(i), user, "item-77", data::Action::kImpression, 100 + i));
    ASSERT_TRUE((*store)->Append(evs).ok());
    auto reader = OpenRocksEventStoreReader(dir, tmp.path() / "reader");
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    auto log = (*reader)->ReadLog(0, 500);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    EXPECT_EQ(log->size(), 200u);
  }
  {
    // Table files too: flush the write-ahead log into a compacted table through the same Env
    // (RocksDB then reads it back at random offsets through the cipher).
    rocksdb::Options ro;
    ro.env = EncryptedRocksEnv(KeyOf(7));
    ro.info_log = RocksLogToAdrec();
    ro.merge_operator = nullptr;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(ro, dir.string(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Flush(rocksdb::FlushOptions()).ok());
    ASSERT_TRUE(db->CompactRange(rocksdb::CompactRangeOptions(), nullptr, nullptr).ok());
  }
  size_t files = 0, tables = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file() || entry.file_size() == 0) continue;
    const std::string name = entry.path().filename().string();
    if (name.rfind("LOG", 0) == 0) continue;  // RocksDB's own diagnostics, at error level: no data
    ++files;
    tables += entry.path().extension() == ".sst";
    const std::string bytes = *ReadFile(entry.path());
    EXPECT_EQ(bytes.find(user), std::string::npos) << entry.path() << " holds the user ID in the clear";
    EXPECT_EQ(bytes.find("item-77"), std::string::npos) << entry.path();
    EXPECT_EQ(bytes.rfind("ADRECRDB", 0), 0u) << entry.path() << " lacks the encryption prefix";
  }
  EXPECT_GE(files, 3u) << "CURRENT, MANIFEST, OPTIONS";
  EXPECT_GE(tables, 1u);
  {
    AtRestKeyScope scope(KeyOf(7));
    auto again = OpenRocksEventStore(dir, {});
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    auto state = (*again)->Read(user, 500);
    ASSERT_TRUE(state.ok());
    EXPECT_EQ(state->recent.size(), 200u);
  }
  {
    AtRestKeyScope scope(KeyOf(8));
    auto wrong = OpenRocksEventStore(dir, {});
    ASSERT_FALSE(wrong.ok());
    EXPECT_NE(wrong.status().message().find("another at-rest key"), std::string::npos) << wrong.status().ToString();
  }
  auto none = OpenRocksEventStore(dir, {});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(none.status().message().find("--at-rest-key"), std::string::npos) << none.status().ToString();
  EXPECT_EQ(OpenRocksEventStoreReader(dir, tmp.path() / "r2").status().code(), StatusCode::kFailedPrecondition);
  // A plain store opened with a key is refused, and left readable without one.
  const fs::path plain = tmp.path() / "plain";
  ASSERT_TRUE(OpenRocksEventStore(plain, {}).ok());
  {
    AtRestKeyScope scope(KeyOf(7));
    auto keyed = OpenRocksEventStore(plain, {});
    ASSERT_FALSE(keyed.ok());
    EXPECT_NE(keyed.status().message().find("not encrypted by adrec"), std::string::npos) << keyed.status().ToString();
  }
  EXPECT_TRUE(OpenRocksEventStore(plain, {}).ok());
}

TEST(EventStore, BadRedisAddressesAreErrorsNamingThem) {
  EXPECT_EQ(OpenEventStore("redis://127.0.0.1:notaport", {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenEventStore("redis://:6379", {}).status().code(), StatusCode::kInvalidArgument);
  auto closed = OpenEventStore("redis://127.0.0.1:" + std::to_string(testing::FreeLoopbackPort()), {});
  ASSERT_FALSE(closed.ok());
  EXPECT_NE(closed.status().message().find("cannot connect"), std::string::npos) << closed.status().message();
}

}  // namespace
}  // namespace adrec::serve

// The Redis backend of the event store: replicas of `adrec serve` share user state through one
// redis-server. Each event is one server-side script (set the ID if new, then append, trim,
// count and log), so a duplicate sent to two replicas at once is stored once.
#include <hiredis/hiredis.h>

#include <charconv>
#include <cstring>
#include <mutex>

#include "adrec/serve/event_store.h"

namespace adrec::serve {
namespace {

// The count is the event's log position: a script runs alone, so positions enter the log stream
// (entry ID "<position>-1") in the order they are given, whichever replica gives them.
constexpr const char* kAppendScript = R"(
if redis.call('SET', KEYS[1], '1', 'NX') then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
  redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
  local n = redis.call('INCR', KEYS[4])
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[4], n .. '-1', 'e', ARGV[1])
  return 1
end
return 0
)";

constexpr const char* kCountKey = "adrec:n";
constexpr const char* kLogKey = "adrec:log";
std::string IdKey(std::string_view id) { return "adrec:i:" + std::string(id); }
std::string ListKey(std::string_view user) { return "adrec:u:" + std::string(user); }
std::string TotalsKey(std::string_view user) { return "adrec:t:" + std::string(user); }

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

class RedisEventStore : public EventStore {
 public:
  RedisEventStore(std::string url, std::string host, int port, int db, EventStoreOptions options)
      : url_(std::move(url)), host_(std::move(host)), port_(port), db_(db), options_(options) {}
  ~RedisEventStore() override {
    if (ctx_) redisFree(ctx_);
  }

  Status Connect() {
    if (ctx_) redisFree(ctx_);
    const timeval timeout{5, 0};
    ctx_ = redisConnectWithTimeout(host_.c_str(), port_, timeout);
    if (!ctx_ || ctx_->err) {
      const std::string why = ctx_ ? ctx_->errstr : "out of memory";
      if (ctx_) redisFree(ctx_);
      ctx_ = nullptr;
      return IoError("cannot connect to the Redis state store " + url_ + ": " + why);
    }
    redisSetTimeout(ctx_, timeout);
    if (db_ != 0) {
      Reply r(static_cast<redisReply*>(redisCommand(ctx_, "SELECT %d", db_)));
      if (!r || r->type == REDIS_REPLY_ERROR) return IoError("the Redis state store " + url_ + ": SELECT " + std::to_string(db_) + " failed");
    }
    return Status::Ok();
  }

  StatusOr<size_t> Append(std::span<const StoredEvent> events, std::vector<bool>* fresh) override {
    if (fresh) fresh->assign(events.size(), false);
    for (const StoredEvent& e : events) {
      if (e.event_id.empty()) return InvalidArgumentError("an event has an empty event_id");
    }
    std::lock_guard<std::mutex> lock(mu_);
    ADREC_RETURN_IF_ERROR(Ready());
    const std::string max = std::to_string(options_.max_events_per_user);
    const std::string max_log = std::to_string(options_.max_log_events);
    for (const StoredEvent& e : events) {  // pipelined: one round trip for the whole request
      const std::string id = IdKey(e.event_id), list = ListKey(e.user_id), totals = TotalsKey(e.user_id);
      const std::string bytes = EncodeEvent(e), action = std::to_string(static_cast<int>(e.action));
      const char* argv[] = {"EVAL", kAppendScript, "5", id.c_str(), list.c_str(), totals.c_str(), kCountKey, kLogKey,
                            bytes.data(), action.c_str(), max.c_str(), max_log.c_str()};
      const size_t lens[] = {4, std::strlen(kAppendScript), 1, id.size(), list.size(), totals.size(), std::strlen(kCountKey),
                             std::strlen(kLogKey), bytes.size(), action.size(), max.size(), max_log.size()};
      if (redisAppendCommandArgv(ctx_, 12, argv, lens) != REDIS_OK) return Broken("queueing an event");
    }
    size_t accepted = 0;
    Status first_error;
    for (size_t i = 0; i < events.size(); ++i) {
      void* raw = nullptr;
      if (redisGetReply(ctx_, &raw) != REDIS_OK) return Broken("storing events");
      Reply r(static_cast<redisReply*>(raw));
      if (r->type == REDIS_REPLY_ERROR) {
        if (first_error.ok()) first_error = IoError("the Redis state store " + url_ + ": " + std::string(r->str, r->len));
      } else if (r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
        ++accepted;
        if (fresh) (*fresh)[i] = true;
      }
    }
    if (!first_error.ok()) return first_error;
    return accepted;
  }

  StatusOr<UserState> Read(std::string_view user_id, size_t limit) const override {
    std::lock_guard<std::mutex> lock(mu_);
    ADREC_RETURN_IF_ERROR(Ready());
    UserState out;
    if (limit > 0) {
      const std::string list = ListKey(user_id);
      Reply r(static_cast<redisReply*>(redisCommand(ctx_, "LRANGE %b %lld -1", list.data(), list.size(),
                                                    -static_cast<long long>(limit))));
      if (!r) return Broken("reading a user's events");
      if (r->type != REDIS_REPLY_ARRAY) return IoError("the Redis state store " + url_ + ": LRANGE answered no list");
      for (size_t i = r->elements; i-- > 0;) {
        auto e = DecodeEvent(std::string_view(r->element[i]->str, r->element[i]->len));
        if (!e.ok()) return e.status().WithContext("the Redis state store " + url_);
        out.recent.push_back(std::move(e).value());
      }
    }
    const std::string totals = TotalsKey(user_id);
    Reply t(static_cast<redisReply*>(redisCommand(ctx_, "HGETALL %b", totals.data(), totals.size())));
    if (!t) return Broken("reading a user's totals");
    if (t->type == REDIS_REPLY_ARRAY) {
      for (size_t i = 0; i + 1 < t->elements; i += 2) {
        int action = -1;
        uint64_t n = 0;
        std::from_chars(t->element[i]->str, t->element[i]->str + t->element[i]->len, action);
        std::from_chars(t->element[i + 1]->str, t->element[i + 1]->str + t->element[i + 1]->len, n);
        if (action >= 0 && action < data::kNumActions) out.totals[static_cast<size_t>(action)] = n;
      }
    }
    return out;
  }

  StatusOr<uint64_t> Count() const override {
    std::lock_guard<std::mutex> lock(mu_);
    ADREC_RETURN_IF_ERROR(Ready());
    Reply r(static_cast<redisReply*>(redisCommand(ctx_, "GET %s", kCountKey)));
    if (!r) return Broken("reading the event count");
    if (r->type == REDIS_REPLY_NIL) return uint64_t{0};
    uint64_t n = 0;
    if (r->type == REDIS_REPLY_STRING) std::from_chars(r->str, r->str + r->len, n);
    return n;
  }

  StatusOr<std::vector<LoggedEvent>> ReadLog(uint64_t position, size_t max) const override {
    std::lock_guard<std::mutex> lock(mu_);
    ADREC_RETURN_IF_ERROR(Ready());
    const std::string after = "(" + std::to_string(position) + "-1";
    const std::string count = std::to_string(max);
    Reply r(static_cast<redisReply*>(redisCommand(ctx_, "XRANGE %s %s + COUNT %s", kLogKey, after.c_str(), count.c_str())));
    if (!r) return Broken("reading the event log");
    if (r->type == REDIS_REPLY_ERROR) return IoError("the Redis state store " + url_ + ": XRANGE: " + std::string(r->str, r->len));
    if (r->type != REDIS_REPLY_ARRAY) return IoError("the Redis state store " + url_ + ": XRANGE answered no list");
    std::vector<LoggedEvent> out;
    for (size_t i = 0; i < r->elements; ++i) {
      const redisReply* entry = r->element[i];
      if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 || entry->element[1]->type != REDIS_REPLY_ARRAY ||
          entry->element[1]->elements != 2) {
        return DataLossError("the Redis state store " + url_ + ": a log entry is not [id, [e, bytes]]");
      }
      uint64_t at = 0;
      std::from_chars(entry->element[0]->str, entry->element[0]->str + entry->element[0]->len, at);
      if (out.empty() && position > 0 && at > position + 1) {
        return OutOfRangeError("the event log of " + url_ + " keeps positions from " + std::to_string(at) + " on; position " +
                               std::to_string(position + 1) + " was dropped (max_log_events)");
      }
      const redisReply* bytes = entry->element[1]->element[1];
      auto e = DecodeEvent(std::string_view(bytes->str, bytes->len));
      if (!e.ok()) return e.status().WithContext("the Redis event log " + url_);
      out.push_back({at, std::move(e).value()});
    }
    return out;
  }

  std::string Describe() const override { return url_; }

 private:
  // Reconnects after a broken connection (a restarted redis-server); the error of a call that
  // found it broken names the address.
  Status Ready() const {
    if (ctx_ && !ctx_->err) return Status::Ok();
    return const_cast<RedisEventStore*>(this)->Connect();
  }
  Status Broken(const std::string& what) const {
    const std::string why = ctx_ && ctx_->err ? ctx_->errstr : "no reply";
    if (ctx_) {
      redisFree(ctx_);
      const_cast<RedisEventStore*>(this)->ctx_ = nullptr;
    }
    return IoError("the Redis state store " + url_ + ": " + what + ": " + why);
  }

  std::string url_, host_;
  int port_, db_;
  EventStoreOptions options_;
  mutable std::mutex mu_;
  redisContext* ctx_ = nullptr;
};

}  // namespace

StatusOr<std::unique_ptr<EventStore>> OpenRedisEventStore(std::string_view url, const EventStoreOptions& options) {
  if (options.max_events_per_user == 0) return InvalidArgumentError("max_events_per_user must be positive");
  std::string_view rest = url;
  if (!rest.starts_with("redis://")) return InvalidArgumentError("'" + std::string(url) + "' is not a redis://HOST:PORT address");
  rest.remove_prefix(8);
  int db = 0;
  if (const size_t slash = rest.find('/'); slash != std::string_view::npos) {
    const std::string_view d = rest.substr(slash + 1);
    if (std::from_chars(d.data(), d.data() + d.size(), db).ec != std::errc() || db < 0) {
      return InvalidArgumentError("'" + std::string(url) + "': the database after '/' must be a number");
    }
    rest = rest.substr(0, slash);
  }
  const size_t colon = rest.rfind(':');
  int port = 6379;
  std::string host(rest);
  if (colon != std::string_view::npos) {
    const std::string_view p = rest.substr(colon + 1);
    if (std::from_chars(p.data(), p.data() + p.size(), port).ec != std::errc() || port <= 0 || port > 65535) {
      return InvalidArgumentError("'" + std::string(url) + "': the port must be a number in 1..65535");
    }
    host = std::string(rest.substr(0, colon));
  }
  if (host.empty()) return InvalidArgumentError("'" + std::string(url) + "' names no host");
  auto store = std::make_unique<RedisEventStore>(std::string(url), host, port, db, options);
  ADREC_RETURN_IF_ERROR(store->Connect());
  return std::unique_ptr<EventStore>(std::move(store));
}

}  // namespace adrec::serve

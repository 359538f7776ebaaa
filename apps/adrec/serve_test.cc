// End-to-end tests of `adrec serve`: the real binary on a loopback port, real HTTP, real RocksDB
// and a real redis-server, over bundles trained by the real `adrec train` on a small world.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "adrec/core/build_paths.h"
#include "adrec/core/file.h"
#include "adrec/core/process.h"
#include "adrec/serve/testing.h"

const char* AdrecBinary();

namespace {
namespace fs = std::filesystem;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using nlohmann::json;
using namespace std::chrono_literals;

struct Response {
  int status = 0;  // 0: no answer (connection refused or reset)
  std::string body;
  std::string retry_after;
  json Json() const { return json::parse(body, nullptr, false); }
};

// One keep-alive HTTP/1.1 connection (Beast's synchronous client).
class Client {
 public:
  explicit Client(int port) : port_(port), stream_(ioc_) {}
  Response Call(http::verb method, const std::string& target, const std::string& body = "",
                const std::string& auth = "") {
    Response out;
    beast::error_code ec;
    if (!connected_) {
      stream_.expires_after(10s);
      stream_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port_)), ec);
      if (ec) return out;
      connected_ = true;
    }
    http::request<http::string_body> req(method, target, 11);
    req.set(http::field::host, "127.0.0.1");
    req.keep_alive(true);
    if (!auth.empty()) req.set(http::field::authorization, auth);
    if (method == http::verb::post) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
      req.prepare_payload();
    }
    stream_.expires_after(60s);
    http::write(stream_, req, ec);
    // A server may answer (413) and close before reading a large body: read the answer anyway.
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream_, buffer, res, ec);
    if (ec) {
      connected_ = false;
      stream_.close();
      return out;
    }
    out.status = static_cast<int>(res.result_int());
    out.body = res.body();
    out.retry_after = std::string(res[http::field::retry_after]);
    if (!res.keep_alive()) {
      connected_ = false;
      stream_.close();
    }
    return out;
  }
  Response Get(const std::string& target) { return Call(http::verb::get, target); }
  Response Post(const std::string& target, const json& body, const std::string& auth = "") {
    return Call(http::verb::post, target, body.dump(), auth);
  }

 private:
  int port_;
  asio::io_context ioc_;
  beast::tcp_stream stream_;
  bool connected_ = false;
};

// `adrec serve` as a child process on a free port (from its --port-file).
// Starts argv[0] with stdout and stderr into `log`; the child's pid.
pid_t Spawn(std::vector<std::string> argv, const fs::path& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    ::execv(cargv[0], cargv.data());
    std::_Exit(127);
  }
  return pid;
}

class ServerProcess {
 public:
  ServerProcess(const fs::path& dir, const std::vector<std::string>& args) {
    const fs::path port_file = dir / ("port-" + std::to_string(++starts_));
    fs::remove(port_file);
    log_ = dir / ("serve-" + std::to_string(starts_) + ".log");
    std::vector<std::string> argv = {AdrecBinary(), "serve", "--port", "0", "--port-file", port_file.string(), "--threads", "1"};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = Spawn(argv, log_);
    for (int i = 0; i < 600 && port_ <= 0; ++i) {  // 60 s: loading a bundle takes well under one
      if (auto p = adrec::ReadFile(port_file); p.ok() && !p->empty()) port_ = std::stoi(*p);
      else if (Exited()) break;
      else std::this_thread::sleep_for(100ms);
    }
  }
  ~ServerProcess() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  int port() const { return port_; }
  std::string Log() const {
    auto text = adrec::ReadFile(log_);
    return text.ok() ? *text : "";
  }
  bool Exited() {
    if (reaped_) return true;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      reaped_ = true;
      status_ = st;
    }
    return reaped_;
  }
  // Sends `sig` and waits for the exit; the exit code, or -signal when killed by one.
  int Signal(int sig) {
    ::kill(pid_, sig);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    reaped_ = true;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
  }

 private:
  static inline int starts_ = 0;
  pid_t pid_ = -1;
  int port_ = -1;
  bool reaped_ = false;
  int status_ = 0;
  fs::path log_;
};

int RunAdrec(const std::string& args, std::string* out) {
  return adrec::RunCommand(std::string(AdrecBinary()) + " " + args + " -q 2>&1", out);
}

// A small world and the bundles every test serves: two MMoE rankers (for reloads) and a
// two-tower retriever with an exact index.
class ServeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new adrec::ScopedTempDir("adrec-serve");
    const fs::path d = tmp_->path();
    const std::string src = adrec::build_paths::SourceDir();
    std::string out;
    ASSERT_EQ(RunAdrec("gen --out " + (d / "world").string() + " --users 400 --ads 120 --advertisers 12 --days 5 --seed 11", &out), 0) << out;
    for (const char* b : {"rank-a", "rank-b"}) {
      ASSERT_EQ(RunAdrec("train --data " + (d / "world").string() + " --config " + src + "/configs/synthetic_mmoe.toml --out " +
                             (d / b).string() + " --threads 2 --seed " + (b[5] == 'a' ? "1" : "2"),
                         &out), 0) << out;
    }
    ASSERT_EQ(RunAdrec("train --data " + (d / "world").string() + " --config " + src +
                           "/configs/synthetic_two_tower_retrieval.toml --out " + (d / "tt").string() + " --threads 2",
                       &out), 0) << out;
    ASSERT_EQ(RunAdrec("index --bundle " + (d / "tt").string() + " --data " + (d / "world").string() + " --kind flat --queries 0", &out), 0) << out;
    fs::create_directory_symlink(d / "rank-a", d / "current");
    ASSERT_TRUE(adrec::AtomicWriteFile(d / "token", "s3cret-token\n").ok());
    fs::permissions(d / "token", fs::perms::owner_read | fs::perms::owner_write);
  }
  static void TearDownTestSuite() {
    delete tmp_;
    tmp_ = nullptr;
  }
  static fs::path Dir() { return tmp_->path(); }
  static std::vector<std::string> Args(const std::string& state, std::vector<std::string> more = {}) {
    std::vector<std::string> a = {"--bundle", (Dir() / "current").string(), "--data", (Dir() / "world").string(),
                                  "--state", state, "--admin-token-file", (Dir() / "token").string()};
    a.insert(a.end(), more.begin(), more.end());
    return a;
  }
  static json Event(const std::string& id, const std::string& user, const std::string& item, const std::string& action,
                    uint32_t ts) {
    return {{"event_id", id}, {"user_id", user}, {"item_id", item}, {"action", action}, {"ts", ts}, {"scene", "feed"}};
  }
  static inline adrec::ScopedTempDir* tmp_ = nullptr;
};

constexpr uint32_t kNow = 1'800'000'000;  // past every event of the world

json Recommend(Client& c, const std::string& user, int k, uint32_t ts = kNow) {
  Response r = c.Post("/v1/recommend", {{"user_id", user}, {"context", {{"scene", "feed"}, {"ts", ts}}}, {"k", k}});
  EXPECT_EQ(r.status, 200) << r.body;
  return r.Json();
}

TEST_F(ServeTest, RecommendsAndLearnsFromEvents) {
  ServerProcess s(Dir(), Args((Dir() / "state-e2e").string(), {"--retrieval", (Dir() / "tt").string(), "--frequency-cap", "2"}));
  ASSERT_GT(s.port(), 0) << s.Log();
  Client c(s.port());
  EXPECT_EQ(c.Get("/healthz").status, 200);
  Response ready = c.Get("/readyz");
  EXPECT_EQ(ready.status, 200);
  const json models = c.Get("/v1/models").Json();
  EXPECT_EQ(models["ranking"]["model"], "mmoe") << models.dump();
  EXPECT_EQ(models["ranking"]["pcvr_target"], "conversion") << models.dump();
  EXPECT_EQ(models["retrieval"]["items"], 120) << models.dump();
  // The adrec binary links FAISS (and so the system BLAS): its models still run on libtorch's own.
  EXPECT_NE(models["runtime"]["blas"].get<std::string>().find("libtorch_cpu"), std::string::npos) << models.dump();
  // --precision auto: bf16 where the CPU multiplies it natively, fp32 elsewhere.
  EXPECT_TRUE(models["runtime"]["precision"] == "bf16" || models["runtime"]["precision"] == "fp32") << models.dump();

  // A known user: k ads, each with its fields, ordered by eCPM = bid × pCTR × pCVR, at most 2
  // per advertiser.
  const json r = Recommend(c, "u0000010", 8);
  ASSERT_EQ(r["items"].size(), 8u) << r.dump();
  EXPECT_TRUE(r["known_user"].get<bool>());
  EXPECT_EQ(r["model_version"], ready.Json()["model_version"]);
  EXPECT_EQ(r["retrieved"], 120);
  std::set<std::string> ids;
  double last = 1e30;
  for (const json& it : r["items"]) {
    ids.insert(it["item_id"].get<std::string>());
    const double pctr = it["pctr"], pcvr = it["pcvr"], ecpm = it["ecpm"];
    EXPECT_GT(pctr, 0);
    EXPECT_LT(pctr, 1);
    EXPECT_GT(pcvr, 0);
    EXPECT_LE(ecpm, last + 1e-12);
    last = ecpm;
    EXPECT_EQ(it["creative_id"], it["item_id"]);  // the world has one creative per ad
  }
  EXPECT_EQ(ids.size(), 8u);
  EXPECT_FALSE(r["items"][0].contains("reasons"));

  // "explain": the same answer, each ad with the three features that moved its pCTR most.
  Response explained = c.Post("/v1/recommend", {{"user_id", "u0000010"}, {"k", 8}, {"explain", true}});
  ASSERT_EQ(explained.status, 200) << explained.body;
  const json ex = explained.Json();
  ASSERT_EQ(ex["items"].size(), 8u) << ex.dump();
  for (size_t i = 0; i < 8; ++i) {
    const json& it = ex["items"][i];
    EXPECT_EQ(it["item_id"], r["items"][i]["item_id"]);
    ASSERT_EQ(it["reasons"].size(), 3u) << it.dump();
    double last_abs = 1e30;
    for (const json& reason : it["reasons"]) {
      EXPECT_FALSE(reason["feature"].get<std::string>().empty());
      const double a = std::abs(reason["attribution"].get<double>());
      EXPECT_LE(a, last_abs) << it.dump();
      last_abs = a;
    }
  }
  Response bad_explain = c.Post("/v1/recommend", {{"user_id", "u0000010"}, {"explain", "yes"}});
  EXPECT_EQ(bad_explain.status, 400);
  EXPECT_NE(bad_explain.body.find("explain: expected true or false"), std::string::npos) << bad_explain.body;

  // An unknown user takes the cold-start path: still an answer.
  const json cold = Recommend(c, "someone-new", 5);
  EXPECT_EQ(cold["items"].size(), 5u) << cold.dump();
  EXPECT_FALSE(cold["known_user"].get<bool>());

  // Events: two impressions of the top ad reach the frequency cap, so the next answer skips it;
  // clicks change the user's history and with it the scores.
  const std::string top = r["items"][0]["item_id"];
  json events = {{"events", {Event("ev-1", "u0000010", top, "impression", kNow - 60), Event("ev-2", "u0000010", top, "impression", kNow - 30),
                             Event("ev-3", "u0000010", r["items"][3]["item_id"], "click", kNow - 20)}}};
  Response ack = c.Post("/v1/events", events);
  ASSERT_EQ(ack.status, 200) << ack.body;
  EXPECT_EQ(ack.Json()["accepted"], 3);
  EXPECT_EQ(c.Post("/v1/events", events).Json()["accepted"], 0) << "the same event IDs again: duplicates";
  const json after = Recommend(c, "u0000010", 8);
  for (const json& it : after["items"]) EXPECT_NE(it["item_id"], top) << after.dump();
  bool changed = false;
  for (const json& a : after["items"]) {
    for (const json& b : r["items"]) changed |= a["item_id"] == b["item_id"] && a["pctr"] != b["pctr"];
  }
  EXPECT_TRUE(changed) << "a click in the history changes the ranker's inputs";
  // The user's state, newest first.
  const json user = c.Get("/v1/users/u0000010?limit=5").Json();
  EXPECT_TRUE(user["known"].get<bool>());
  EXPECT_EQ(user["recent"][0]["event_id"], "ev-3") << user.dump();
  EXPECT_EQ(user["stored_totals"]["impression"], 2);
  EXPECT_FALSE(user["profile"].empty());
  EXPECT_EQ(c.Get("/v1/users/u%30000010?limit=5").Json()["recent"], user["recent"]) << "the path's %-escapes are decoded";
  EXPECT_EQ(c.Get("/v1/users/u%3?limit=5").status, 400);

  // Bad requests answer 400 naming the field; wrong routes 404/405; large bodies 413.
  Response bad = c.Call(http::verb::post, "/v1/recommend", "{\"user_id\": 7}");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("user_id"), std::string::npos) << bad.body;
  EXPECT_EQ(c.Call(http::verb::post, "/v1/recommend", "{not json").status, 400);
  EXPECT_EQ(c.Post("/v1/recommend", {{"user_id", "u"}, {"k", 0}}).status, 400);
  Response bad_ev = c.Post("/v1/events", {{"events", {{{"event_id", "x"}, {"user_id", "u"}, {"item_id", "a"}, {"action", "clack"}, {"ts", 1}}}}});
  EXPECT_EQ(bad_ev.status, 400);
  EXPECT_NE(bad_ev.body.find("events[0].action"), std::string::npos) << bad_ev.body;
  EXPECT_EQ(c.Get("/v1/nothing").status, 404);
  EXPECT_EQ(c.Get("/v1/recommend").status, 405);
  EXPECT_EQ(c.Get("/v1/users/u0000010?limit=0").status, 400);
  EXPECT_EQ(c.Call(http::verb::post, "/v1/events", std::string(2 << 20, ' ')).status, 413);

  const std::string metrics = Client(s.port()).Get("/metrics").body;
  EXPECT_NE(metrics.find("adrec_http_requests_total{route=\"/v1/recommend\",status=\"200\"}"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("adrec_http_request_seconds_bucket{route=\"/v1/recommend\",le=\"+Inf\"}"), std::string::npos);
  EXPECT_NE(metrics.find("adrec_events_stored 3"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("adrec_model_info{version="), std::string::npos);
  for (const char* stage : {"state", "queue", "query", "search", "features", "rank", "rerank"}) {
    const std::string key = std::string("adrec_stage_seconds_count{stage=\"") + stage + "\"} ";
    const size_t at = metrics.find(key);
    ASSERT_NE(at, std::string::npos) << key;
    EXPECT_GT(std::stoul(metrics.substr(at + key.size())), 0u) << key << ": every stage ran";
  }
  EXPECT_EQ(s.Signal(SIGTERM), 0) << s.Log();
}

TEST_F(ServeTest, ReloadNeedsTheTokenAndSwapsUnderLoadWithoutAFailedRequest) {
  ServerProcess s(Dir(), Args((Dir() / "state-reload").string(), {"--workers", "4"}));
  ASSERT_GT(s.port(), 0) << s.Log();
  Client admin(s.port());
  EXPECT_EQ(admin.Post("/admin/reload", json::object()).status, 401);
  EXPECT_EQ(admin.Post("/admin/reload", json::object(), "Bearer wrong").status, 403);
  const std::string v0 = admin.Get("/readyz").Json()["model_version"];
  EXPECT_NE(v0.find("rank-a"), std::string::npos) << v0;

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> load;
  for (int t = 0; t < 3; ++t) {
    load.emplace_back([&, t] {
      Client c(s.port());
      for (int i = 0; !stop && i < 100000; ++i) {
        Response r = c.Post("/v1/recommend", {{"user_id", "u000000" + std::to_string(t)}, {"context", {{"ts", kNow}}}, {"k", 5}});
        (r.status == 200 && r.Json()["items"].size() == 5 ? ok : failed)++;
      }
    });
  }
  // Swap the deployed link back and forth; each reload must answer 200 and change the version.
  for (int round = 0; round < 4; ++round) {
    std::this_thread::sleep_for(150ms);
    const fs::path tmp_link = Dir() / "current.tmp";
    fs::remove(tmp_link);
    fs::create_directory_symlink(Dir() / (round % 2 == 0 ? "rank-b" : "rank-a"), tmp_link);
    fs::rename(tmp_link, Dir() / "current");  // atomic: a reload reads one bundle or the other
    Response r = admin.Post("/admin/reload", json::object(), "Bearer s3cret-token");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.Json()["model_version"], r.Json()["previous_version"]) << r.body;
  }
  std::this_thread::sleep_for(150ms);
  stop = true;
  for (auto& t : load) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(ok.load(), 20);
  EXPECT_NE(admin.Get("/readyz").Json()["model_version"].get<std::string>().find("rank-a"), std::string::npos);
  const std::string metrics = admin.Get("/metrics").body;
  EXPECT_NE(metrics.find("adrec_reloads_total 4"), std::string::npos) << metrics;
  EXPECT_EQ(s.Signal(SIGTERM), 0) << s.Log();
}

TEST_F(ServeTest, OverloadAnswers503AndKeepsServing) {
  ServerProcess s(Dir(), Args((Dir() / "state-overload").string(), {"--workers", "1", "--max-queue", "2", "--rank-k", "120"}));
  ASSERT_GT(s.port(), 0) << s.Log();
  std::atomic<int> ok{0}, busy{0}, other{0};
  std::atomic<bool> retry_after{true};
  std::vector<std::thread> clients;
  for (int t = 0; t < 12; ++t) {
    clients.emplace_back([&, t] {
      Client c(s.port());
      for (int i = 0; i < 15; ++i) {
        Response r = c.Post("/v1/recommend", {{"user_id", "u00000" + std::to_string(10 + t)}, {"k", 10}});
        if (r.status == 200) ++ok;
        else if (r.status == 503) ++busy, retry_after = retry_after && !r.retry_after.empty();
        else ++other;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_GT(busy.load(), 0) << "12 clients against a queue of 2";
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(other.load(), 0);
  EXPECT_TRUE(retry_after.load());
  EXPECT_FALSE(s.Exited()) << s.Log();
  Client c(s.port());
  EXPECT_EQ(c.Get("/healthz").status, 200);
  EXPECT_EQ(s.Signal(SIGTERM), 0) << s.Log();
}

// kill -9 while events stream in: after a restart every acknowledged event is there. Each
// request's events belong to a user of their own, so each is checked through GET /v1/users.
TEST_F(ServeTest, EveryAcknowledgedEventSurvivesKill9) {
  const fs::path state = Dir() / "state-kill";
  std::mt19937 rng(5);
  size_t acknowledged_total = 0, killed_mid_stream = 0;
  const int kTrials = 20;
  for (int trial = 0; trial < kTrials; ++trial) {
    std::vector<std::pair<std::string, std::vector<std::string>>> acknowledged;  // user → event IDs
    bool writer_was_cut = false;
    {
      ServerProcess s(Dir(), Args(state.string()));
      ASSERT_GT(s.port(), 0) << s.Log();
      std::thread writer([&] {
        Client c(s.port());
        for (int b = 0; b < 5000; ++b) {  // bounded; the kill comes long before
          const std::string user = "killed-" + std::to_string(trial) + "-" + std::to_string(b);
          json events = json::array();
          std::vector<std::string> ids;
          for (int i = 0; i < 5; ++i) {
            ids.push_back(user + "-" + std::to_string(i));
            events.push_back(Event(ids.back(), user, "ad000001", "impression", kNow));
          }
          Response r = c.Post("/v1/events", {{"events", events}});
          if (r.status != 200) {  // killed mid-request: not acknowledged
            writer_was_cut = true;
            break;
          }
          acknowledged.emplace_back(user, ids);
        }
      });
      std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 300));
      EXPECT_EQ(s.Signal(SIGKILL), -SIGKILL);
      writer.join();
    }
    killed_mid_stream += writer_was_cut;
    ServerProcess again(Dir(), Args(state.string()));
    ASSERT_GT(again.port(), 0) << again.Log();
    Client c(again.port());
    for (const auto& [user, ids] : acknowledged) {
      const json u = c.Get("/v1/users/" + user + "?limit=10").Json();
      std::set<std::string> stored;
      for (const json& e : u["recent"]) stored.insert(e.value("event_id", ""));
      for (const std::string& id : ids) EXPECT_TRUE(stored.count(id)) << "trial " << trial << ": " << id << " lost";
      acknowledged_total += ids.size();
    }
    EXPECT_EQ(again.Signal(SIGTERM), 0);
  }
  std::printf("[ kill -9 ] %d trials (%zu killed mid-stream), %zu acknowledged events, all checked after restart\n", kTrials,
              killed_mid_stream, acknowledged_total);
  EXPECT_EQ(killed_mid_stream, static_cast<size_t>(kTrials)) << "every kill must land while events stream in";
}

// Two replicas share user state through one redis-server.
TEST_F(ServeTest, ReplicasShareStateThroughRedis) {
  fs::create_directories(Dir() / "redis");
  adrec::serve::testing::RedisServer redis(Dir() / "redis");
  ADREC_REQUIRE_REDIS(redis);
  ServerProcess a(Dir(), Args(redis.url())), b(Dir(), Args(redis.url()));
  ASSERT_GT(a.port(), 0) << a.Log();
  ASSERT_GT(b.port(), 0) << b.Log();
  Client ca(a.port()), cb(b.port());
  const json before = Recommend(cb, "u0000020", 10);
  const std::string top = before["items"][0]["item_id"];
  json events = {{"events", {Event("r-1", "u0000020", top, "impression", kNow - 5), Event("r-2", "u0000020", top, "impression", kNow - 4),
                             Event("r-3", "u0000020", top, "impression", kNow - 3)}}};
  ASSERT_EQ(ca.Post("/v1/events", events).Json()["accepted"], 3);
  EXPECT_EQ(cb.Post("/v1/events", events).Json()["accepted"], 0) << "a duplicate sent to the other replica";
  const json user = cb.Get("/v1/users/u0000020").Json();
  EXPECT_EQ(user["stored_totals"]["impression"], 3) << user.dump();
  const json after = Recommend(cb, "u0000020", 10);
  for (const json& it : after["items"]) EXPECT_NE(it["item_id"], top) << "replica b applies the cap from a's events";
  EXPECT_EQ(a.Signal(SIGTERM), 0);
  EXPECT_EQ(b.Signal(SIGTERM), 0);
}

// --precision picks the ranker's arithmetic; where it moves layers to bf16 (big enough products,
// models::Bf16Pays) or int8 (FBGEMM) the scores stay within that precision of fp32's.
TEST_F(ServeTest, PrecisionFlagPicksTheRankersArithmetic) {
  ServerProcess f(Dir(), Args((Dir() / "state-fp32").string(), {"--precision", "fp32"}));
  ASSERT_GT(f.port(), 0) << f.Log();
  Client cf(f.port());
  EXPECT_EQ(cf.Get("/v1/models").Json()["runtime"]["precision"], "fp32");
  std::map<std::string, double> fp32_pctr;
  const json fp32 = Recommend(cf, "u0000030", 10);
  for (const json& it : fp32["items"]) {
    fp32_pctr[it["item_id"].get<std::string>()] = it["pctr"].get<double>();
  }
  for (const std::string precision : {"bf16", "int8"}) {
    SCOPED_TRACE(precision);
    ServerProcess b(Dir(), Args((Dir() / ("state-" + precision)).string(), {"--precision", precision}));
    ASSERT_GT(b.port(), 0) << b.Log();
    Client cb(b.port());
    EXPECT_EQ(cb.Get("/v1/models").Json()["runtime"]["precision"], precision);
    const json other = Recommend(cb, "u0000030", 10);
    size_t shared = 0;
    for (const json& it : other["items"]) {
      auto hit = fp32_pctr.find(it["item_id"].get<std::string>());
      if (hit == fp32_pctr.end()) continue;  // a near tie may swap an ad at the cut
      ++shared;
      EXPECT_NEAR(it["pctr"].get<double>(), hit->second, 0.02 * hit->second + 1e-4) << it.dump();
    }
    EXPECT_GE(shared, 8u) << "the two precisions pick nearly the same ads";
    EXPECT_EQ(b.Signal(SIGTERM), 0);
  }
  EXPECT_EQ(f.Signal(SIGTERM), 0);
}

// A compressed bundle (adrec compress: 4-bit embedding rows) serves nearly the same ads with
// nearly the same pCTRs, and the online learner refuses to train it.
TEST_F(ServeTest, ACompressedBundleServesNearlyTheSameAds) {
  std::string out;
  ASSERT_EQ(RunAdrec("compress --bundle " + (Dir() / "rank-a").string() + " --out " + (Dir() / "int4").string() + " --bits 4",
                     &out), 0) << out;
  std::vector<std::string> args = {"--bundle", (Dir() / "int4").string(), "--data", (Dir() / "world").string(), "--state",
                                   (Dir() / "state-int4").string(), "--precision", "fp32"};
  ServerProcess q(Dir(), args);
  ServerProcess f(Dir(), Args((Dir() / "state-f32").string(), {"--precision", "fp32"}));
  ASSERT_GT(q.port(), 0) << q.Log();
  ASSERT_GT(f.port(), 0) << f.Log();
  Client cq(q.port()), cf(f.port());
  std::map<std::string, double> float_pctr;
  const json answer_f = Recommend(cf, "u0000030", 10), answer_q = Recommend(cq, "u0000030", 10);
  for (const json& it : answer_f["items"]) float_pctr[it["item_id"].get<std::string>()] = it["pctr"].get<double>();
  size_t shared = 0;
  for (const json& it : answer_q["items"]) {
    auto hit = float_pctr.find(it["item_id"].get<std::string>());
    if (hit == float_pctr.end()) continue;
    ++shared;
    EXPECT_NEAR(it["pctr"].get<double>(), hit->second, 0.05 * hit->second + 1e-4) << it.dump();
  }
  EXPECT_GE(shared, 8u) << answer_q.dump() << "\n" << answer_f.dump();
  EXPECT_EQ(q.Signal(SIGTERM), 0);
  EXPECT_EQ(f.Signal(SIGTERM), 0);
  out.clear();
  EXPECT_NE(RunAdrec("learn --bundle " + (Dir() / "int4").string() + " --data " + (Dir() / "world").string() +
                         " --events " + (Dir() / "state-int4").string() + " --out " + (Dir() / "learn-int4").string() + " --once",
                     &out), 0);
  EXPECT_NE(out.find("4-bit rows"), std::string::npos) << out;
}

// Creative variants: the answer names the bandit's pick, the events that name it teach the
// bandit, and a restarted server rebuilds what it learned from the stored log.
TEST_F(ServeTest, TheCreativeBanditPicksVariantsAndLearnsFromTheirEvents) {
  std::string out;
  const fs::path variants = Dir() / "creatives.jsonl";
  ASSERT_EQ(RunAdrec("creatives --data " + (Dir() / "world").string() + " --out " + variants.string() + " --per-ad 3", &out), 0)
      << out;
  const std::string state = (Dir() / "state-creatives").string();
  std::string shown, ad;
  {
    ServerProcess s(Dir(), Args(state, {"--creatives", variants.string(), "--creative-policy", "thompson"}));
    ASSERT_GT(s.port(), 0) << s.Log();
    Client c(s.port());
    const json r = Recommend(c, "u0000012", 5);
    ASSERT_FALSE(r["items"].empty());
    for (const json& it : r["items"]) {
      const std::string id = it["creative_id"], item = it["item_id"];
      EXPECT_EQ(id.rfind(item + "~", 0), 0u) << "a variant of the answered ad: " << it.dump();
      EXPECT_FALSE(it["creative_title"].get<std::string>().empty());
    }
    shown = r["items"][0]["creative_id"];
    ad = r["items"][0]["item_id"];
    json events = json::array();
    for (int i = 0; i < 4; ++i) {
      json e = Event("cr-i" + std::to_string(i), "u0000012", ad, "impression", kNow + i);
      e["creative_id"] = shown;
      events.push_back(e);
    }
    json click = Event("cr-c0", "u0000012", ad, "click", kNow + 2);
    click["creative_id"] = shown;
    events.push_back(click);
    json stranger = Event("cr-x", "u0000012", ad, "impression", kNow + 5);
    stranger["creative_id"] = "no-such-variant";
    events.push_back(stranger);
    ASSERT_EQ(c.Post("/v1/events", {{"events", events}}).status, 200);
    ASSERT_EQ(c.Post("/v1/events", {{"events", events}}).status, 200);  // a retry teaches nothing twice
    const json stats = c.Get("/v1/models").Json()["creatives"];
    EXPECT_EQ(stats["policy"], "thompson");
    EXPECT_EQ(stats["impressions"], 4);
    EXPECT_EQ(stats["clicks"], 1);
    EXPECT_EQ(stats["unknown_creative_events"], 1);
    EXPECT_EQ(stats["ads"], 120);
    EXPECT_EQ(s.Signal(SIGTERM), 0);
  }
  // Restarted, with LinUCB on the viewer's demographics and the ranker's embedding of the user.
  ServerProcess again(Dir(), Args(state, {"--creatives", variants.string(), "--creative-policy", "linucb",
                                          "--creative-user-embedding"}));
  ASSERT_GT(again.port(), 0) << again.Log();
  Client c(again.port());
  const json stats = c.Get("/v1/models").Json()["creatives"];
  EXPECT_EQ(stats["impressions"], 4) << "rebuilt from the stored events";
  EXPECT_EQ(stats["clicks"], 1);
  EXPECT_EQ(stats["policy"], "linucb");
  EXPECT_GT(stats["context_dim"].get<int>(), 20) << "one-hot demographics and scene, then the user's embedding";
  for (const json& it : Recommend(c, "u0000012", 5)["items"]) {
    EXPECT_EQ(it["creative_id"].get<std::string>().rfind(it["item_id"].get<std::string>() + "~", 0), 0u) << it.dump();
  }
  EXPECT_EQ(again.Signal(SIGTERM), 0);
  // A variants file naming an ad the catalogue lacks stops the start with a message that says so.
  ASSERT_TRUE(adrec::AtomicWriteFile(Dir() / "bad-creatives.jsonl",
                                     "{\"id\": \"zz~0\", \"ad_id\": \"zz\", \"title\": \"A title\"}\n").ok());
  ASSERT_NE(RunAdrec("serve --bundle " + (Dir() / "current").string() + " --data " + (Dir() / "world").string() + " --state " +
                         (Dir() / "state-bad-creatives").string() + " --port 0 --creatives " + (Dir() / "bad-creatives.jsonl").string(),
                     &out),
            0);
  EXPECT_NE(out.find("creative variant 'zz~0' is of ad 'zz', which the catalogue does not have"), std::string::npos) << out;
}

// Impressions of known users and ads, a click after every third, posted in requests of 50.
size_t PostImpressionsAndClicks(Client& c, const std::string& prefix, int impressions, uint32_t ts0) {
  size_t accepted = 0;
  json batch = json::array();
  for (int i = 0; i < impressions; ++i) {
    char user[16], item[16];
    std::snprintf(user, sizeof(user), "u%07d", (i * 7) % 400);
    std::snprintf(item, sizeof(item), "ad%06d", (i * 13) % 120);
    const uint32_t ts = ts0 + static_cast<uint32_t>(i);
    auto event = [&](const std::string& id, const char* action, uint32_t t) {
      return json{{"event_id", id}, {"user_id", user}, {"item_id", item}, {"action", action}, {"ts", t}, {"scene", "feed"}};
    };
    batch.push_back(event(prefix + "i" + std::to_string(i), "impression", ts));
    if (i % 3 == 0) batch.push_back(event(prefix + "c" + std::to_string(i), "click", ts + 2));
    if (batch.size() >= 50 || i + 1 == impressions) {
      Response r = c.Post("/v1/events", {{"events", batch}});
      EXPECT_EQ(r.status, 200) << r.body;
      accepted += r.Json()["accepted"].get<size_t>();
      batch = json::array();
    }
  }
  return accepted;
}

// The loop closed: events posted to the server, `adrec learn` trains on them and publishes a
// snapshot, the server serves it (started on the snapshot link), learns more, and the server
// follows the link to the new snapshot (--watch).
TEST_F(ServeTest, TheLearnerTrainsOnServedEventsAndTheServerSwapsItsSnapshotsIn) {
  const fs::path state = Dir() / "state-learn", out = Dir() / "learn-out";
  const std::string learn = "learn --bundle " + (Dir() / "rank-a").string() + " --data " + (Dir() / "world").string() +
                            " --events " + state.string() + " --out " + out.string() + " --batch 32 --once --json";
  std::string text;
  {
    ServerProcess s(Dir(), Args(state.string()));
    ASSERT_GT(s.port(), 0) << s.Log();
    Client c(s.port());
    ASSERT_EQ(PostImpressionsAndClicks(c, "a", 300, kNow), 400u);
    ASSERT_EQ(RunAdrec(learn, &text), 0) << text;
    const json r = json::parse(text.substr(text.rfind("\n{") + 1));
    EXPECT_EQ(r["events_read"], 400) << text;
    // Fake negatives: every impression once at once, every clicked one again with its click.
    EXPECT_EQ(r["samples"], 400) << text;
    EXPECT_EQ(r["attribution"]["impressions"], 300);
    EXPECT_EQ(r["attribution"]["outcomes"], 100);
    EXPECT_EQ(r["attribution"]["unattributed"], 0);
    EXPECT_EQ(r["snapshot"], 1);
    EXPECT_EQ(s.Signal(SIGTERM), 0);
  }
  ASSERT_TRUE(fs::exists(out / "current" / "manifest.json"));
  ServerProcess s(Dir(), {"--bundle", (out / "current").string(), "--data", (Dir() / "world").string(), "--state",
                          state.string(), "--admin-token-file", (Dir() / "token").string(), "--watch", "0.2"});
  ASSERT_GT(s.port(), 0) << s.Log();
  Client c(s.port());
  const std::string v1 = c.Get("/readyz").Json()["model_version"];
  EXPECT_NE(v1.find("snap-00000001"), std::string::npos) << v1;
  ASSERT_EQ(PostImpressionsAndClicks(c, "b", 90, kNow + 1000), 120u);
  // Events for an ad the catalogue does not have are stored, and the learner skips them, counted.
  const json unknown = json::array({Event("unk-i", "u0000010", "ad999999", "impression", kNow + 1100),
                                    Event("unk-c", "u0000010", "ad999999", "click", kNow + 1102)});
  ASSERT_EQ(c.Post("/v1/events", {{"events", unknown}}).Json()["accepted"], 2);
  ASSERT_EQ(RunAdrec(learn, &text), 0) << text;
  const json r2 = json::parse(text.substr(text.rfind("\n{") + 1));
  EXPECT_EQ(r2["samples"], 520) << "resumed from snapshot 1: only the 120 new events are trained on; " << text;
  EXPECT_EQ(r2["unknown_items"], 2) << "the unknown ad's impression, then again with its click; " << text;
  EXPECT_EQ(r2["snapshot"], 2);
  // --watch: the server follows the link to the new snapshot by itself.
  std::string v2;
  for (int i = 0; i < 100 && v2.find("snap-00000002") == std::string::npos; ++i) {
    std::this_thread::sleep_for(100ms);
    v2 = c.Get("/readyz").Json()["model_version"];
  }
  EXPECT_NE(v2.find("snap-00000002"), std::string::npos) << v2;
  EXPECT_EQ(Recommend(c, "u0000010", 5)["items"].size(), 5u);
  EXPECT_EQ(s.Signal(SIGTERM), 0);
}

// kill -9 of the learner at any moment: restarted, it resumes from its last snapshot and ends
// with exactly the samples of a learner never interrupted (no event trained on twice or missed).
TEST_F(ServeTest, AKilledLearnerResumesAndTrainsOnNoEventTwice) {
  const fs::path state = Dir() / "state-learn-kill";
  {
    ServerProcess s(Dir(), Args(state.string()));
    ASSERT_GT(s.port(), 0) << s.Log();
    Client c(s.port());
    ASSERT_EQ(PostImpressionsAndClicks(c, "k", 600, kNow), 800u);
    EXPECT_EQ(s.Signal(SIGTERM), 0);
  }
  auto learn = [&](const fs::path& out, const std::string& more) {
    return "learn --bundle " + (Dir() / "rank-a").string() + " --data " + (Dir() / "world").string() + " --events " +
           state.string() + " --out " + out.string() + " --batch 16 " + more + " --json";
  };
  std::string text;
  ASSERT_EQ(RunAdrec(learn(Dir() / "learn-whole", "--once"), &text), 0) << text;
  const json whole = json::parse(text.substr(text.rfind("\n{") + 1));
  ASSERT_EQ(whole["samples"], 800) << text;
  constexpr int kTrials = 3;
  for (int trial = 0; trial < kTrials; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    const fs::path out = Dir() / ("learn-kill-" + std::to_string(trial));
    // A learner that publishes every 48 samples, killed once it has published 1 + trial snapshots.
    std::vector<std::string> argv = {AdrecBinary()};
    std::istringstream words(learn(out, "--publish-every 48 -q"));
    for (std::string w; words >> w;) argv.push_back(w);
    const pid_t pid = Spawn(argv, out.string() + ".log");
    char want[32];
    std::snprintf(want, sizeof(want), "snap-%08d", 1 + trial);
    // Published means "current" points at it: the snapshot's folder is written before the link moves.
    auto published = [&] {
      std::error_code ec;
      return fs::read_symlink(out / "current", ec) == fs::path(want) && !ec;
    };
    for (int i = 0; i < 600 && !published(); ++i) std::this_thread::sleep_for(20ms);
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    auto killed_at = adrec::ReadFile((out / "current" / "manifest.json").string());
    ASSERT_TRUE(killed_at.ok()) << killed_at.status().ToString();
    const uint64_t before = json::parse(*killed_at)["online"]["samples"].get<uint64_t>();
    EXPECT_LT(before, 800u) << "the kill landed mid-stream";
    ASSERT_EQ(RunAdrec(learn(out, "--once"), &text), 0) << text;
    const json resumed = json::parse(text.substr(text.rfind("\n{") + 1));
    EXPECT_EQ(resumed["samples"], whole["samples"]) << text;
    EXPECT_EQ(resumed["checkpoint"]["emitted_through"], whole["checkpoint"]["emitted_through"]) << text;
  }
}

TEST_F(ServeTest, PseudonymisedUserIdsAreHashedAtTheDoorAndNeverStored) {
  std::string out;
  const fs::path key = Dir() / "users.key";
  ASSERT_EQ(RunAdrec("keygen --out " + key.string(), &out), 0) << out;
  // The fixture's world again (same seed) with pseudonymised users: the dense IDs, and so the
  // bundles, are the same; only the names in the dataset changed.
  const fs::path world = Dir() / "world-pseudo";
  ASSERT_EQ(RunAdrec("gen --out " + world.string() + " --users 400 --ads 120 --advertisers 12 --days 5 --seed 11 " +
                         "--pseudonymise-users " + key.string(), &out), 0) << out;
  const fs::path state = Dir() / "state-pseudo";
  {
    ServerProcess s(Dir(), {"--bundle", (Dir() / "rank-a").string(), "--data", world.string(), "--state",
                            state.string(), "--pseudonymise-users", key.string()});
    ASSERT_GT(s.port(), 0) << s.Log();
    Client c(s.port());
    const json r = Recommend(c, "u0000010", 5);  // the raw ID, as a client knows it
    EXPECT_TRUE(r["known_user"].get<bool>()) << r.dump();
    ASSERT_FALSE(r["items"].empty());
    const std::string item = r["items"][0]["item_id"];
    Response ev = c.Post("/v1/events", {{"events", {Event("pseudo-1", "u0000010", item, "click", kNow)}}});
    EXPECT_EQ(ev.status, 200) << ev.body;
    const json user = c.Get("/v1/users/u0000010").Json();
    EXPECT_TRUE(user["known"].get<bool>()) << user.dump();
    EXPECT_EQ(user["stored_totals"]["click"], 1) << user.dump();
    EXPECT_EQ(s.Signal(SIGTERM), 0) << s.Log();
  }
  // The event log and state hold the pseudonym only.
  size_t files = 0;
  for (const auto& e : fs::recursive_directory_iterator(state)) {
    if (!e.is_regular_file()) continue;
    ++files;
    const std::string bytes = *adrec::ReadFile(e.path());
    EXPECT_EQ(bytes.find("u0000010"), std::string::npos) << e.path();
  }
  EXPECT_GT(files, 0u);
  // Without the key the server cannot name the users of a pseudonymised dataset.
  ServerProcess plain(Dir(), {"--bundle", (Dir() / "rank-a").string(), "--data", world.string(), "--state",
                              (Dir() / "state-pseudo-2").string()});
  ASSERT_GT(plain.port(), 0) << plain.Log();
  Client c(plain.port());
  EXPECT_FALSE(Recommend(c, "u0000010", 5)["known_user"].get<bool>());
}

TEST_F(ServeTest, FairnessReportsExposureAgainstRelevancePerAdvertiserGroup) {
  std::string out;
  ASSERT_EQ(adrec::RunCommand(std::string(AdrecBinary()) + " fairness --bundle " + (Dir() / "rank-a").string() +
                                  " --data " + (Dir() / "world").string() + " --retrieval " + (Dir() / "tt").string() +
                                  " --users 60 --k 8 --scene feed --floor small:2 --json -q",
                              &out, /*merge_stderr=*/false),
            0)
      << out;
  const json r = json::parse(out);
  EXPECT_EQ(r["requests"], 60);
  EXPECT_EQ(r["ads_shown"], 60 * 8) << r.dump();
  EXPECT_EQ(r["advertisers"], 12);
  EXPECT_NE(r["relevance"].get<std::string>().find("true CTR"), std::string::npos);  // the world has its truth
  for (const char* by : {"by_size", "by_history"}) {
    ASSERT_EQ(r[by].size(), 2u) << r.dump();
    double exposure = 0, relevance = 0;
    int advertisers = 0;
    for (const json& g : r[by]) {
      exposure += g["exposure_share"].get<double>();
      relevance += g["relevance_share"].get<double>();
      advertisers += g["advertisers"].get<int>();
      if (g["relevance_share"].get<double>() > 0) {
        EXPECT_NEAR(g["exposure_over_relevance"].get<double>(),
                    g["exposure_share"].get<double>() / g["relevance_share"].get<double>(), 1e-9);
      }
    }
    EXPECT_NEAR(exposure, 1.0, 1e-9) << by;
    EXPECT_NEAR(relevance, 1.0, 1e-9) << by;
    EXPECT_EQ(advertisers, 12) << by;
  }
  // The floor: the small advertisers' ads get two slots first; their exposure grows, and the
  // answers' eCPM can only fall (greedy by eCPM under per-advertiser limits is the best there is).
  const json& floored = r["with_floor"];
  ASSERT_TRUE(floored.is_object()) << r.dump();
  EXPECT_EQ(floored["slots"], 2);
  EXPECT_EQ(floored["advertisers"].size(), 6u);
  EXPECT_GT(floored["by_size"][1]["exposure_share"].get<double>(), r["by_size"][1]["exposure_share"].get<double>())
      << r.dump();
  EXPECT_GT(floored["ecpm_kept"].get<double>(), 0.0);
  EXPECT_LE(floored["ecpm_kept"].get<double>(), 1.0 + 1e-9);
  for (const char* bad : {" --scene nowhere", " --floor tiny:2", " --floor small:x"}) {
    out.clear();  // RunCommand appends
    EXPECT_NE(RunAdrec("fairness --bundle " + (Dir() / "rank-a").string() + " --data " + (Dir() / "world").string() + bad,
                       &out),
              0)
        << bad;
    EXPECT_NE(out.find(std::string(bad).substr(std::string(bad).rfind(' ') + 1)), std::string::npos) << out;
  }
}

TEST_F(ServeTest, StartupErrorsNameTheProblem) {
  std::string out;
  // Every call names its state directory: the default (./adrec-state) would land in the working directory.
  const std::string state = " --state " + (Dir() / "st-x").string();
  EXPECT_NE(RunAdrec("serve --bundle " + (Dir() / "tt").string() + " --data " + (Dir() / "nowhere").string() + state, &out), 0);
  EXPECT_NE(out.find("nowhere"), std::string::npos) << out;
  fs::permissions(Dir() / "token", fs::perms::group_read, fs::perm_options::add);
  EXPECT_NE(RunAdrec("serve --bundle " + (Dir() / "rank-a").string() + " --data " + (Dir() / "world").string() +
                         " --admin-token-file " + (Dir() / "token").string() + state, &out), 0);
  EXPECT_NE(out.find("chmod 600"), std::string::npos) << out;
  fs::permissions(Dir() / "token", fs::perms::group_read, fs::perm_options::remove);
  EXPECT_NE(RunAdrec("serve --bundle " + (Dir() / "rank-a").string() + " --data " + (Dir() / "world").string() +
                         " --retrieval " + (Dir() / "rank-b").string() + state, &out), 0);
  EXPECT_NE(out.find("two_tower"), std::string::npos) << out;
  EXPECT_NE(RunAdrec("serve --bundle " + (Dir() / "rank-a").string() + " --data " + (Dir() / "world").string() +
                         " --floor-advertisers nobody --floor-slots 1" + state, &out), 0);
  EXPECT_NE(out.find("nobody"), std::string::npos) << out;
}

}  // namespace

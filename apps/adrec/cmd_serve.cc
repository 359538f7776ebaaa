// adrec serve: the recommend/events HTTP server over a ranking bundle (and optionally a
// two-tower retrieval bundle with its index), with durable user state in RocksDB or Redis.
// SIGTERM or SIGINT: /readyz turns 503, the listener closes, in-flight requests are answered,
// the state store is flushed, exit 0.
#include <signal.h>

#include <fstream>

#include "adrec/core/file.h"
#include "adrec/core/log_line.h"
#include "adrec/serve/pipeline/service.h"
#include "apps/adrec/cli.h"

namespace adrec::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

struct ServeCommandOptions {
  serve::RecommenderOptions rec;
  std::string address = "127.0.0.1";
  int port = 8080;
  fs::path port_file;
  std::string state = "adrec-state";
  std::string durability = "sync";
  fs::path admin_token_file;
  fs::path user_key_file;
  fs::path budgets;
  size_t workers = 8;
  size_t io_threads = 1;
  size_t max_queue = 256;
  size_t max_body_bytes = size_t{1} << 20;
  double grace_s = 30;
};

StatusOr<std::unordered_map<std::string, double>> ReadBudgets(const fs::path& path) {
  ADREC_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgumentError(path.string() + ": expected a JSON object {\"advertiser\": daily budget}");
  std::unordered_map<std::string, double> out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it->is_number() || it->get<double>() < 0) {
      return InvalidArgumentError(path.string() + ": the budget of '" + it.key() + "' must be a non-negative number");
    }
    out[it.key()] = it->get<double>();
  }
  return out;
}

Status RunServe(const ServeCommandOptions& o, const Context& ctx) {
  if (o.port < 0 || o.port > 65535) return InvalidArgumentError("--port must be in 0..65535");
  // Signals are taken by sigwait below: every thread started from here on inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  serve::ServiceOptions so;
  if (!o.admin_token_file.empty()) {
    ADREC_ASSIGN_OR_RETURN(so.admin_token, serve::ReadAdminToken(o.admin_token_file.string()));
  }
  if (!o.user_key_file.empty()) {
    ADREC_ASSIGN_OR_RETURN(so.user_key, ReadKeyFile(o.user_key_file));
  }
  serve::RecommenderOptions ro = o.rec;
  if (!o.budgets.empty()) {
    ADREC_ASSIGN_OR_RETURN(ro.daily_budgets, ReadBudgets(o.budgets));
  }
  serve::EventStoreOptions eo;
  eo.durability = o.durability == "process" ? serve::Durability::kProcess : serve::Durability::kSync;
  eo.max_events_per_user = std::max<size_t>(ro.history_limit, 1000);
  ADREC_ASSIGN_OR_RETURN(std::unique_ptr<serve::EventStore> store, serve::OpenEventStore(o.state, eo));
  LogInfo("state: " + store->Describe() + " (durability " + o.durability + ")");
  LogInfo("loading " + ro.bundle.string() + (ro.retrieval.empty() ? "" : " and " + ro.retrieval.string()) + " over " + ro.data.string());
  ADREC_ASSIGN_OR_RETURN(std::unique_ptr<serve::Recommender> rec, serve::Recommender::Start(ro, store.get()));
  serve::Service service(rec.get(), store.get(), so);

  serve::HttpServerOptions ho;
  ho.address = o.address;
  ho.port = static_cast<uint16_t>(o.port);
  ho.workers = o.workers;
  ho.io_threads = o.io_threads;
  ho.max_queue = o.max_queue;
  ho.max_body_bytes = o.max_body_bytes;
  ho.on_response = [&service](const std::string& route, int status, double seconds) {
    service.metrics().ObserveRequest(route, status, seconds);
  };
  ADREC_ASSIGN_OR_RETURN(std::unique_ptr<serve::HttpServer> server, serve::HttpServer::Start(ho, service.MakeRouter()));
  const std::string where = o.address + ":" + std::to_string(server->port());
  if (!o.port_file.empty()) {
    // Written whole and renamed, so a reader polling for it never sees half a number.
    ADREC_RETURN_IF_ERROR(AtomicWriteFile(o.port_file, std::to_string(server->port()) + "\n", /*plain=*/true));
  }
  LogInfo("serving " + rec->version() + " on http://" + where);
  if (ctx.json) {
    ordered_json ready = {{"listening", where}, {"port", server->port()}, {"model_version", rec->version()}, {"state", store->Describe()}};
    std::printf("%s\n", ready.dump().c_str());
    std::fflush(stdout);
  }

  int sig = 0;
  sigwait(&signals, &sig);
  LogInfo(std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") + ": draining");
  service.SetDraining();
  server->Stop(o.grace_s);  // stops accepting, answers what is in flight
  rec->Stop();
  rec.reset();
  store.reset();  // closes the store: RocksDB flushes its memtable
  LogInfo("stopped");
  return Status::Ok();
}

}  // namespace

void AddServeCommand(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<ServeCommandOptions>();
  CLI::App* cmd = app.add_subcommand("serve", "Serve ads over HTTP: POST /v1/recommend and /v1/events (docs/API.md)");
  cmd->add_option("--bundle", o->rec.bundle, "Ranking bundle directory (`adrec train`)")->required();
  cmd->add_option("--data", o->rec.data, "Dataset directory the bundles were trained on (catalogue and base log)")->required();
  cmd->add_option("--retrieval", o->rec.retrieval, "Two-tower bundle with an index (`adrec index`); default: most clicked items");
  cmd->add_option("--address", o->address, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", o->port, "Port (0: any free port; see --port-file)")->capture_default_str();
  cmd->add_option("--port-file", o->port_file, "Write the bound port to this file once listening");
  cmd->add_option("--state", o->state, "User state: a RocksDB directory, or redis://HOST:PORT[/DB] shared by replicas")->capture_default_str();
  cmd->add_option("--durability", o->durability, "sync: fsync before acknowledging events; process: survive a killed process only")
      ->capture_default_str()
      ->check(CLI::IsMember({"sync", "process"}));
  cmd->add_option("--admin-token-file", o->admin_token_file, "File holding the bearer token of POST /admin/reload (mode 600)");
  cmd->add_option("--pseudonymise-users", o->user_key_file,
                  "Key file the dataset's user IDs were pseudonymised with: raw user IDs in requests and events are "
                  "hashed on arrival, so nothing stored holds them");
  cmd->add_option("--floor-advertisers", o->rec.floor_advertiser_names,
                  "Advertisers (comma-separated names) that get an exposure floor: --floor-slots of each answer go "
                  "first to their best ads (`adrec fairness --floor` measures it)")
      ->delimiter(',');
  cmd->add_option("--floor-slots", o->rec.rerank.floor_slots, "Slots of each answer the floor's advertisers get first")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
  cmd->add_option("--budgets", o->budgets, "JSON file {\"advertiser\": daily budget} for budget pacing");
  cmd->add_option("--workers", o->workers, "Request threads (concurrent requests are ranked in one batch)")->capture_default_str();
  cmd->add_option("--io-threads", o->io_threads, "Network threads")->capture_default_str();
  cmd->add_option("--max-queue", o->max_queue, "Requests in flight beyond which 503 answers")->capture_default_str();
  cmd->add_option("--max-body-bytes", o->max_body_bytes, "Largest request body (413 beyond)")->capture_default_str();
  cmd->add_option("--threads", o->rec.threads, "libtorch threads of the ranker (0: 1)")->capture_default_str();
  cmd->add_option("--watch", o->rec.watch_seconds,
                  "Seconds between checks of --bundle: reload when the link points elsewhere (`adrec learn` snapshots; 0: "
                  "only POST /admin/reload)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--precision", o->rec.precision,
                  "Ranker arithmetic on the CPU: auto (bf16 where the CPU multiplies bf16 natively), fp32, bf16 or "
                  "int8 (FBGEMM int8 GEMMs)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "fp32", "bf16", "int8"}));
  cmd->add_option("--index-threads", o->rec.index_threads, "OpenMP threads of an index search (0: every core)")->capture_default_str();
  cmd->add_option("--device", o->rec.device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--max-batch", o->rec.max_batch, "Requests ranked in one forward pass")->capture_default_str();
  cmd->add_option("--retrieve-k", o->rec.retrieve_k, "Candidates retrieved per request")->capture_default_str();
  cmd->add_option("--rank-k", o->rec.rank_k, "Candidates ranked per request")->capture_default_str();
  cmd->add_option("--fresh-k", o->rec.fresh_k, "Of which fresh (cold-start) items")->capture_default_str();
  cmd->add_option("--history", o->rec.history_limit, "Newest events of a user the features read")->capture_default_str();
  cmd->add_option("--ef-search", o->rec.ef_search, "HNSW search beam per request (0: the index's)")->capture_default_str();
  cmd->add_option("--nprobe", o->rec.nprobe, "IVF lists probed per request (0: the index's)")->capture_default_str();
  cmd->add_option("--ad-column", o->rec.ad_column, "Item column grouping creatives into ads")->capture_default_str();
  cmd->add_option("--creatives", o->rec.creatives,
                  "Creative variants (adrec creatives): a bandit picks one per answered ad and learns from events that "
                  "name it (creative_id)");
  cmd->add_option("--creative-policy", o->rec.creative_policy, "The creative bandit: thompson, linucb, random or first")
      ->capture_default_str()
      ->check(CLI::IsMember({"thompson", "linucb", "random", "first"}));
  cmd->add_flag("--creative-user-embedding", o->rec.creative_user_embedding,
                "LinUCB's context also takes the ranking bundle's embedding of the user");
  cmd->add_option("--max-per-advertiser", o->rec.rerank.max_per_advertiser, "Ads of one advertiser per answer (0: no limit)")->capture_default_str();
  cmd->add_option("--frequency-cap", o->rec.rerank.frequency_cap, "Impressions of an item per user per window (0: no cap)")->capture_default_str();
  cmd->add_option("--frequency-window", o->rec.rerank.frequency_window_s, "Frequency-cap window, seconds")->capture_default_str();
  cmd->add_option("--grace", o->grace_s, "Seconds in-flight requests get to finish on SIGTERM")->capture_default_str();
  AddJsonFlag(cmd, ctx);
  cmd->callback([o, &ctx] {
    ctx.run = [o, &ctx]() -> Status { return RunServe(*o, ctx); };
  });
}

}  // namespace adrec::cli

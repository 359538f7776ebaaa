#include "adrec/serve/pipeline/recommender.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <numeric>
#include <optional>
#include <thread>
#include <unordered_set>

#include "adrec/core/log_line.h"
#include "adrec/creative/chooser.h"
#include "adrec/data/dataset_io.h"
#include "adrec/data/split.h"
#include "adrec/index/vector_index.h"
#include "adrec/models/bundle.h"
#include "adrec/models/explain.h"
#include "adrec/models/precision.h"
#include "adrec/models/two_tower.h"
#include "adrec/serve/request_features.h"
#include "adrec/tensor/device.h"
#include "adrec/tensor/runtime.h"
#include "adrec/train/ranking_model.h"
#include "adrec/train/retrieval_towers.h"
#include "adrec/train/train_config.h"

namespace adrec::serve {
namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

// "mmoe@2026-12-05T20:01:46Z:bundle-b": the directory after symlinks, so swapping a "current"
// link to a new bundle and reloading shows the new name.
std::string VersionOf(const nlohmann::json& manifest, const fs::path& dir) {
  std::error_code ec;
  fs::path real = fs::weakly_canonical(dir, ec);
  if (ec) real = dir;
  return manifest.value("model", std::string("?")) + "@" + manifest.value("created_utc", std::string("?")) + ":" +
         real.filename().string();
}

// Everything one model version serves with. Only the batching thread runs the models and the
// request features; request threads read the immutable catalogue parts.
struct ServingModels {
  std::string version;
  ordered_json info;
  train::LoadedBundle ranker;
  data::ActionMask rank_history = 0;
  int click_t = 0, cvr_t = -1;
  std::optional<train::LoadedBundle> retriever;
  models::TwoTowerModel* towers = nullptr;
  int retrieval_t = 0;
  bool normalize = false;
  data::ActionMask retrieval_history = 0;
  std::optional<index::VectorIndex> index;
  std::unique_ptr<RequestFeatures> features;
  // The dataset's own log: every user's history before the server's events.
  data::EventColumns base;
  std::vector<uint64_t> base_offsets;
  std::vector<uint32_t> ad_of, advertiser_of;
  std::shared_ptr<data::Vocabulary> ad_names;  // the ad column's names; null: each item is its own ad
  std::vector<float> bid;
  std::vector<uint32_t> popular;  // items by clicks in the base log, most first
  std::vector<uint32_t> fresh;    // cold-start items (catalogue column cold_start), newest launch first
  const data::Dataset& catalogue() const { return features->dataset(); }
};

// The pCVR target: the one whose rule is the conversion (given the click, ESMM-style).
int ConversionTarget(const data::FeatureSpec& spec) {
  for (size_t t = 0; t < spec.targets.size(); ++t) {
    const auto& tg = spec.targets[t];
    if (tg.action == data::Action::kConversion && tg.rule == data::TargetRule::kFollows) return static_cast<int>(t);
  }
  return -1;
}

StatusOr<std::shared_ptr<ServingModels>> LoadModels(const RecommenderOptions& o) {
  auto m = std::make_shared<ServingModels>();
  ADREC_ASSIGN_OR_RETURN(torch::Device device, tensor::ParseDevice(o.device));
  ADREC_ASSIGN_OR_RETURN(m->ranker, train::LoadBundle(o.bundle, device));
  ADREC_RETURN_IF_ERROR(RequestFeatures::CheckServable(m->ranker.model.spec));
  const std::string primary = m->ranker.manifest.value("primary_target", std::string());
  m->click_t = primary.empty() ? 0 : std::max(0, m->ranker.model.spec.TargetIndex(primary));
  m->cvr_t = ConversionTarget(m->ranker.model.spec);
  if (m->cvr_t == m->click_t) m->cvr_t = -1;
  m->version = VersionOf(m->ranker.manifest, o.bundle);

  ADREC_ASSIGN_OR_RETURN(data::Dataset ds, data::ReadDataset(o.data));
  ADREC_RETURN_IF_ERROR(train::CheckBundleData(m->ranker.manifest, o.bundle, ds));
  if (Status s = m->ranker.model.spec.Bind(ds); !s.ok()) {
    return Status(s.code(), "the dataset " + o.data.string() + " does not fit the features of " + o.bundle.string() + ": " + s.message());
  }
  m->rank_history = train::BundleHistoryMask(m->ranker.manifest, ds);

  if (!o.retrieval.empty()) {
    ADREC_ASSIGN_OR_RETURN(train::LoadedBundle r, train::LoadBundle(o.retrieval, device));
    m->towers = dynamic_cast<models::TwoTowerModel*>(r.model.net.get());
    if (!m->towers) {
      return InvalidArgumentError("--retrieval " + o.retrieval.string() + " holds a '" + r.manifest.value("model", std::string("?")) +
                                  "' model; retrieval needs a two_tower bundle");
    }
    ADREC_RETURN_IF_ERROR(RequestFeatures::CheckServable(r.model.spec));
    ADREC_RETURN_IF_ERROR(train::CheckBundleData(r.manifest, o.retrieval, ds));
    if (Status s = r.model.spec.Bind(ds); !s.ok()) {
      return Status(s.code(), "the dataset does not fit the features of " + o.retrieval.string() + ": " + s.message());
    }
    const nlohmann::json entry = r.manifest.value("index", nlohmann::json());
    if (!entry.is_object() || !entry.contains("file")) {
      return FailedPreconditionError(o.retrieval.string() + " has no retrieval index; build one with `adrec index --bundle " +
                                     o.retrieval.string() + " --data DIR`");
    }
    fs::path file = entry.value("file", std::string());
    if (file.is_relative()) file = o.retrieval / file;
    ADREC_ASSIGN_OR_RETURN(index::VectorIndex idx, index::VectorIndex::Read(file));
    if (idx.size() != ds.num_items()) {
      return InvalidArgumentError(file.string() + " holds " + std::to_string(idx.size()) + " vectors; the catalogue has " +
                                  std::to_string(ds.num_items()) + " items: rebuild it with `adrec index`");
    }
    const std::string target = entry.value("target", r.manifest.value("primary_target", std::string()));
    m->retrieval_t = target.empty() ? 0 : std::max(0, r.model.spec.TargetIndex(target));
    m->normalize = train::RetrievalNormalizes(r.manifest);
    m->retrieval_history = train::BundleHistoryMask(r.manifest, ds);
    m->version += "+" + VersionOf(r.manifest, o.retrieval);
    m->index.emplace(std::move(idx));
    m->retriever.emplace(std::move(r));
  }

  // Catalogue lookups the pipeline needs per candidate.
  const uint32_t items = ds.num_items();
  m->ad_of.resize(items);
  m->advertiser_of.assign(items, 0);
  m->bid.assign(items, 1.f);
  const data::Column* ad = ds.item_table.Find(o.ad_column);
  if (ad && ad->type != data::ColumnType::kCategorical) ad = nullptr;  // only a categorical column groups ads
  if (ad) m->ad_names = ad->vocab;
  for (uint32_t i = 0; i < items; ++i) m->ad_of[i] = ad ? ad->u32[i] : i;
  if (const data::Column* adv = ds.item_table.Find(data::cols::kAdvertiser); adv && adv->type == data::ColumnType::kCategorical) {
    std::copy(adv->u32.begin(), adv->u32.end(), m->advertiser_of.begin());
  }
  if (const data::Column* b = ds.item_table.Find(data::cols::kBid); b && b->type == data::ColumnType::kFloat32) {
    std::copy(b->f32.begin(), b->f32.end(), m->bid.begin());
  }
  std::vector<uint64_t> clicks(items, 0);
  for (size_t e = 0; e < ds.events.size(); ++e) {
    if (ds.events.action[e] == static_cast<uint8_t>(data::Action::kClick) ||
        ds.events.action[e] == static_cast<uint8_t>(data::Action::kRating)) {
      ++clicks[ds.events.item[e]];
    }
  }
  m->popular.resize(items);
  std::iota(m->popular.begin(), m->popular.end(), 0u);
  std::stable_sort(m->popular.begin(), m->popular.end(), [&](uint32_t a, uint32_t b) { return clicks[a] > clicks[b]; });
  if (const data::Column* cold = ds.item_table.Find(data::cols::kColdStart); cold && cold->type == data::ColumnType::kUInt32) {
    for (uint32_t i = 0; i < items; ++i) {
      if (cold->u32[i]) m->fresh.push_back(i);
    }
  }
  m->base = std::move(ds.events);
  m->base_offsets = std::move(ds.user_offsets);
  ds.events = data::EventColumns{};
  ds.user_offsets.clear();
  ADREC_ASSIGN_OR_RETURN(RequestFeatures rf, RequestFeatures::Create(std::move(ds), {.max_requests = o.max_batch}));
  m->features = std::make_unique<RequestFeatures>(std::move(rf));

  m->info["version"] = m->version;
  m->info["ranking"] = {{"bundle", o.bundle.string()},
                        {"model", m->ranker.manifest.value("model", std::string())},
                        {"created_utc", m->ranker.manifest.value("created_utc", std::string())},
                        {"targets", m->ranker.manifest.value("targets", nlohmann::json::array())},
                        {"pctr_target", m->ranker.model.spec.targets[m->click_t].name},
                        {"pcvr_target", m->cvr_t >= 0 ? nlohmann::json(m->ranker.model.spec.targets[m->cvr_t].name) : nlohmann::json()}};
  if (m->retriever) {
    m->info["retrieval"] = {{"bundle", o.retrieval.string()},
                            {"model", m->retriever->manifest.value("model", std::string())},
                            {"created_utc", m->retriever->manifest.value("created_utc", std::string())},
                            {"index", m->index->description()},
                            {"items", m->index->size()}};
  } else {
    m->info["retrieval"] = {{"kind", "popular"}, {"note", "the most clicked items of the dataset; pass --retrieval for a two-tower index"}};
  }
  m->info["catalogue"] = {{"data", o.data.string()},
                          {"users", m->catalogue().num_users()},
                          {"items", m->catalogue().num_items()},
                          {"scenes", m->catalogue().scenes},
                          {"ad_groups", m->ad_names != nullptr}};
  m->info["runtime"] = {{"blas", tensor::BlasLibrary()},
                        {"threads", at::get_num_threads()},
                        {"precision", models::PrecisionName(models::GetInferencePrecision())}};
  return m;
}

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// StageLatency's stages, in pipeline order.
enum Stage { kState, kQueue, kQuery, kSearch, kFeatures, kRank, kRerank, kNumStages };
constexpr const char* kStageNames[kNumStages] = {"state", "queue", "query", "search", "features", "rank", "rerank"};

uint32_t NowSeconds() {
  return static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(
      std::chrono::system_clock::now().time_since_epoch()).count());
}

}  // namespace

struct Recommender::Impl {
  RecommenderOptions options;
  EventStore* store = nullptr;
  std::unique_ptr<BudgetPacer> pacer;
  std::unique_ptr<creative::CreativeChooser> chooser;  // with --creatives
  Status StartCreatives();
  // Teaches the bandit from an event that names a variant; true when it did.
  bool Feedback(const data::Dataset& cat, const StoredEvent& e);

  mutable std::mutex models_mu;
  std::shared_ptr<ServingModels> models;
  std::mutex reload_mu;  // one reload at a time
  // The bundle watcher (options.watch_seconds).
  std::thread watcher;
  std::mutex watch_mu;
  std::condition_variable watch_cv;
  bool watch_stop = false;

  // A request prepared by its HTTP thread: what the batching thread needs and where the answer goes.
  struct Job {
    std::shared_ptr<ServingModels> models;
    RequestRows rows;
    int k = 10;
    bool explain = false;
    std::unordered_map<uint32_t, std::vector<uint32_t>> seen;  // impressions by item (frequency caps)
    std::promise<StatusOr<Recommendation>> answer;
    Clock::time_point queued;
  };
  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<std::unique_ptr<Job>> queue;
  bool stopping = false;
  std::thread batcher;
  std::atomic<uint64_t> batch_count{0};

  // A batch whose candidates and ranker rows are built, waiting for the ranking thread.
  struct Prepared {
    std::vector<std::unique_ptr<Job>> jobs;
    std::vector<RequestRows> rows;
    std::vector<size_t> retrieved;  // per request: candidates before caps
    data::Batch batch;
  };
  // The two stages overlap: the batching thread retrieves and builds batch n + 1 while the
  // ranking thread scores batch n. One batch waits at most, so a request never sits behind more
  // than one finished preparation.
  std::mutex handoff_mu;
  std::condition_variable handoff_cv;
  std::optional<Prepared> handoff;
  bool prepared_all = false;  // the batching thread has stopped: rank what is left, then stop
  std::thread ranker_thread;
  mutable std::mutex stage_mu;
  std::array<LatencyHistogram, kNumStages> stages;

  void Observe(Stage stage, double seconds) {
    std::lock_guard<std::mutex> lock(stage_mu);
    stages[stage].Observe(seconds);
  }
  // Observes the time since `t0` under `stage` and restarts the clock.
  void Lap(Stage stage, Clock::time_point* t0) {
    const Clock::time_point now = Clock::now();
    Observe(stage, std::chrono::duration<double>(now - *t0).count());
    *t0 = now;
  }

  std::shared_ptr<ServingModels> Current() const {
    std::lock_guard<std::mutex> lock(models_mu);
    return models;
  }

  Status Reload() {
    std::lock_guard<std::mutex> reload(reload_mu);
    ADREC_ASSIGN_OR_RETURN(std::shared_ptr<ServingModels> fresh, LoadModels(options));
    ADREC_RETURN_IF_ERROR(WarmUp(fresh));
    std::lock_guard<std::mutex> lock(models_mu);
    models = std::move(fresh);  // jobs queued before keep the old models alive until answered
    return Status::Ok();
  }

  // Reloads when the bundle path resolves elsewhere; a target that fails to load is logged and
  // not tried again until the link moves on.
  void WatchLoop() {
    std::error_code ec;
    fs::path serving = fs::canonical(options.bundle, ec);
    std::unique_lock<std::mutex> lock(watch_mu);
    const auto every = std::chrono::duration<double>(options.watch_seconds);
    while (!watch_cv.wait_for(lock, every, [&] { return watch_stop; })) {
      lock.unlock();
      const fs::path now = fs::canonical(options.bundle, ec);
      if (!ec && now != serving) {
        if (Status s = Reload(); s.ok()) {
          LogInfo("serving " + now.string() + " (" + options.bundle.string() + " moved)");
        } else {
          LogWarn(options.bundle.string() + " moved to " + now.string() + ", which does not load: " + s.ToString());
        }
        serving = now;
      }
      lock.lock();
    }
  }

  // A request on `m` (the current models, or fresh ones not yet swapped in): the user's state,
  // then the queue; blocks until the pipeline answers.
  StatusOr<Recommendation> Submit(std::shared_ptr<ServingModels> m, const RecommendRequest& request);
  // One request for a user nobody has, through the whole pipeline on `m`: packs the ranker's
  // weights for its arithmetic and builds oneDNN's kernels before a real request waits for
  // them, and proves the models serve before they are swapped in.
  Status WarmUp(std::shared_ptr<ServingModels> m) {
    RecommendRequest request;
    request.user_id = "adrec-warm-up";
    request.k = 10;
    return Submit(std::move(m), request).status().WithContext("warm-up request");
  }

  void Loop() {
    std::vector<std::unique_ptr<Job>> batch;
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return stopping || !queue.empty(); });
        if (queue.empty()) return;  // stopping and drained
        // Up to max_batch jobs of one model version and distinct users (the scratch dataset has
        // one slice per user); the others wait for the next batch.
        std::unordered_set<uint32_t> users;
        const ServingModels* version = queue.front()->models.get();
        for (auto it = queue.begin(); it != queue.end() && batch.size() < options.max_batch;) {
          Job& j = **it;
          const bool same = j.models.get() == version;
          const bool fresh_user = !j.rows.user || users.insert(*j.rows.user).second;
          if (same && fresh_user) {
            batch.push_back(std::move(*it));
            it = queue.erase(it);
          } else {
            ++it;
          }
        }
      }
      const Clock::time_point start = Clock::now();
      for (const auto& j : batch) Observe(kQueue, std::chrono::duration<double>(start - j->queued).count());
      std::optional<Prepared> ready = Prepare(std::move(batch));
      batch.clear();
      if (!ready) continue;  // answered with the error
      std::unique_lock<std::mutex> lock(handoff_mu);
      handoff_cv.wait(lock, [&] { return !handoff.has_value(); });
      handoff = std::move(ready);
      handoff_cv.notify_all();
    }
  }

  // The ranking thread: scores what the batching thread prepared until it has stopped.
  void RankLoop() {
    while (true) {
      std::optional<Prepared> next;
      {
        std::unique_lock<std::mutex> lock(handoff_mu);
        handoff_cv.wait(lock, [&] { return handoff.has_value() || prepared_all; });
        if (!handoff) return;
        next = std::move(handoff);
        handoff.reset();
        handoff_cv.notify_all();
      }
      Finish(*next);
      batch_count.fetch_add(1);
    }
  }

  // Answers every job of `jobs` with `s`.
  static void FailAll(std::vector<std::unique_ptr<Job>>& jobs, const Status& s) {
    for (auto& j : jobs) j->answer.set_value(s);
  }

  // Retrieval, caps and the ranker's rows of a batch; on error its jobs are answered and the
  // result is empty.
  std::optional<Prepared> Prepare(std::vector<std::unique_ptr<Job>> jobs) {
    ServingModels& m = *jobs.front()->models;
    auto fail = [&](const Status& s) -> std::optional<Prepared> {
      FailAll(jobs, s);
      return std::nullopt;
    };
    try {
      torch::NoGradGuard no_grad;
      Clock::time_point t0 = Clock::now();
      std::vector<RequestRows> rows;
      rows.reserve(jobs.size());
      for (auto& j : jobs) rows.push_back(j->rows);
      std::vector<std::vector<uint32_t>> retrieved(jobs.size());
      if (m.retriever) {
        for (auto& r : rows) r.candidates = {0};  // the query tower reads the user side only
        if (Status s = m.features->Layout(rows); !s.ok()) return fail(s);
        train::RankingModel& rm = m.retriever->model;
        const data::SampleSet& samples = m.features->Samples(rm.spec, m.retrieval_history);
        std::vector<uint64_t> order(samples.size());
        std::iota(order.begin(), order.end(), uint64_t{0});
        const std::vector<float> q = train::QueryTowerVectors(rm, *m.towers, m.features->dataset(), samples, order,
                                                              m.retrieval_t, order.size(), m.normalize);
        Lap(kQuery, &t0);
        auto found = m.index->Search(q, static_cast<int>(options.retrieve_k),
                                     {options.ef_search, options.nprobe, options.index_threads});
        if (!found.ok()) return fail(found.status());
        Lap(kSearch, &t0);
        for (size_t r = 0; r < jobs.size(); ++r) {
          for (int64_t id : found->Ids(r)) {
            if (id >= 0) retrieved[r].push_back(static_cast<uint32_t>(id));
          }
        }
      } else {
        for (auto& r : retrieved) r.assign(m.popular.begin(), m.popular.begin() + std::min(m.popular.size(), options.retrieve_k));
      }
      std::vector<size_t> retrieved_n(jobs.size());
      for (size_t r = 0; r < jobs.size(); ++r) {
        retrieved_n[r] = retrieved[r].size();
        rows[r].candidates = Candidates(m, *jobs[r], retrieved[r]);
      }
      data::Batch batch;
      if (Status s = m.features->Layout(rows); !s.ok()) return fail(s);
      train::RankingModel& rm = m.ranker.model;
      m.features->Build(rm.spec, m.rank_history, &batch);
      Lap(kFeatures, &t0);
      return Prepared{std::move(jobs), std::move(rows), std::move(retrieved_n), std::move(batch)};
    } catch (const std::exception& e) {
      return fail(InternalError(std::string("retrieval failed: ") + e.what()));
    }
  }

  // Ranks a prepared batch and answers its jobs: creative per ad, eCPM, pacing, diversity.
  void Finish(Prepared& b) {
    std::vector<std::unique_ptr<Job>>& jobs = b.jobs;
    ServingModels& m = *jobs.front()->models;
    std::vector<bool> answered(jobs.size(), false);
    try {
      torch::NoGradGuard no_grad;
      Clock::time_point t0 = Clock::now();
      train::RankingModel& rm = m.ranker.model;
      const data::Batch& batch = b.batch;
      const std::vector<RequestRows>& rows = b.rows;
      torch::Tensor prob;
      const float* p = nullptr;
      embedding::ModelInput input;  // kept for the explanations
      if (batch.size > 0) {  // every candidate of every request capped: nothing to score
        rm.net->eval();
        auto lookup = rm.embeddings->Forward(batch, /*train=*/false, /*step=*/0);
        input = std::move(lookup.input);
        prob = torch::sigmoid(rm.net->forward(input).to(torch::kFloat32)).contiguous().cpu();
        p = prob.data_ptr<float>();
      }
      Lap(kRank, &t0);
      const size_t T = rm.spec.targets.size();
      size_t row = 0;
      for (size_t r = 0; r < jobs.size(); ++r) {
        std::vector<ScoredCandidate> scored;
        for (uint32_t item : rows[r].candidates) {
          ScoredCandidate c;
          c.item = item;
          c.ad = m.ad_of[item];
          c.advertiser = m.advertiser_of[item];
          c.bid = m.bid[item];
          c.pctr = p[row * T + m.click_t];
          c.pcvr = m.cvr_t >= 0 ? p[row * T + m.cvr_t] : 1.f;
          c.row = static_cast<uint32_t>(row);
          scored.push_back(c);
          ++row;
        }
        const std::vector<ScoredCandidate> top = Rerank(std::move(scored), jobs[r]->k, options.rerank, pacer.get(), rows[r].time);
        Recommendation out;
        out.model_version = m.version;
        out.known_user = rows[r].user.has_value();
        out.retrieved = b.retrieved[r];
        out.ranked = rows[r].candidates.size();
        const data::Dataset& cat = m.catalogue();
        std::vector<std::vector<std::pair<std::string, float>>> reasons;
        if (jobs[r]->explain && !top.empty()) reasons = Explain(m, input, top);
        for (const ScoredCandidate& c : top) {
          RecommendedItem it;
          it.creative_id = cat.items.Name(c.item);
          it.item_id = m.ad_names ? m.ad_names->Name(c.ad) : it.creative_id;
          if (chooser) {
            if (const creative::CreativeVariant* v = chooser->Choose(it.item_id, rows[r].user, rows[r].scene, c.pctr)) {
              it.creative_id = v->id;
              it.creative_title = v->title;
            }
          }
          it.pctr = c.pctr;
          it.pcvr = c.pcvr;
          it.ecpm = c.ecpm;
          it.score = static_cast<float>(c.ecpm);
          if (!reasons.empty()) it.reasons = std::move(reasons[out.items.size()]);
          out.items.push_back(std::move(it));
        }
        jobs[r]->answer.set_value(std::move(out));
        answered[r] = true;
      }
      Lap(kRerank, &t0);
    } catch (const std::exception& e) {
      const Status s = InternalError(std::string("ranking failed: ") + e.what());
      for (size_t r = 0; r < jobs.size(); ++r) {
        if (!answered[r]) jobs[r]->answer.set_value(s);
      }
    }
  }

  // The top reasons of each answer's pCTR: integrated gradients over the answers' ranker rows.
  static std::vector<std::vector<std::pair<std::string, float>>> Explain(ServingModels& m, const embedding::ModelInput& input,
                                                                          const std::vector<ScoredCandidate>& top) {
    constexpr int kReasons = 3, kSteps = 16;
    std::vector<int64_t> rows;
    for (const ScoredCandidate& c : top) rows.push_back(c.row);
    const torch::Tensor index = torch::tensor(rows, torch::kLong).to(input.scene.device());
    const auto pick = [&](const torch::Tensor& x) { return x.index_select(0, index); };
    embedding::ModelInput picked = input.MapFeatures(pick);
    picked.scene = pick(input.scene);
    train::RankingModel& rm = m.ranker.model;
    const models::Attributions a =
        models::IntegratedGradients(*rm.net, picked, train::InputGroupsOf(rm), m.click_t, kSteps);
    const torch::Tensor values = a.values.cpu();
    std::vector<std::vector<std::pair<std::string, float>>> out(top.size());
    for (size_t i = 0; i < top.size(); ++i) {
      for (int g : models::TopGroups(values[static_cast<int64_t>(i)], kReasons)) {
        out[i].emplace_back(a.groups[static_cast<size_t>(g)], values[static_cast<int64_t>(i)][g].item<float>());
      }
    }
    return out;
  }

  // Retrieved items, then fresh ones not among them, with the frequency caps applied, cut to
  // rank_k (fresh items keep their share).
  std::vector<uint32_t> Candidates(const ServingModels& m, const Job& job, const std::vector<uint32_t>& retrieved) const {
    std::vector<uint32_t> capped = ApplyFrequencyCap(retrieved, job.seen, job.rows.time, options.rerank);
    std::unordered_set<uint32_t> in(capped.begin(), capped.end());
    std::vector<uint32_t> fresh;
    if (!m.fresh.empty() && options.fresh_k > 0) {
      // A different slice of the fresh items per user and hour, so each gets shown.
      const size_t start = (static_cast<size_t>(job.rows.user.value_or(0)) * 7919u + job.rows.time / 3600u) % m.fresh.size();
      for (size_t i = 0; i < m.fresh.size() && fresh.size() < options.fresh_k; ++i) {
        const uint32_t item = m.fresh[(start + i) % m.fresh.size()];
        if (!in.count(item)) fresh.push_back(item);
      }
      fresh = ApplyFrequencyCap(fresh, job.seen, job.rows.time, options.rerank);
    }
    const size_t keep = options.rank_k > fresh.size() ? options.rank_k - fresh.size() : 0;
    if (capped.size() > keep) capped.resize(keep);
    capped.insert(capped.end(), fresh.begin(), fresh.end());
    if (capped.size() > options.rank_k) capped.resize(options.rank_k);
    return capped;
  }
};

Recommender::Recommender(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Recommender::~Recommender() { Stop(); }

StatusOr<std::unique_ptr<Recommender>> Recommender::Start(RecommenderOptions options, EventStore* store) {
  if (options.max_batch == 0 || options.rank_k == 0 || options.retrieve_k == 0) {
    return InvalidArgumentError("max_batch, rank_k and retrieve_k must be positive");
  }
  at::set_num_threads(options.threads > 0 ? options.threads : 1);
  StatusOr<models::InferencePrecision> precision = models::ParseInferencePrecision(options.precision);
  if (!precision.ok()) return precision.status().WithContext("--precision");
  // The bf16 path is the CPU's; a GPU ranker scores in float32.
  models::SetInferencePrecision(options.device == "cpu" ? *precision : models::InferencePrecision::kFp32);
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->store = store;
  ADREC_ASSIGN_OR_RETURN(impl->models, LoadModels(impl->options));
  // Budgets and the exposure floor name advertisers: their codes in the catalogue's column.
  const data::Column* adv = impl->models->catalogue().item_table.Find(data::cols::kAdvertiser);
  if (adv && adv->type != data::ColumnType::kCategorical) adv = nullptr;
  auto advertiser_code = [adv](const std::string& name, const std::string& what) -> StatusOr<uint32_t> {
    if (!adv) return InvalidArgumentError(what + " by advertiser, but the catalogue has no categorical 'advertiser' column");
    auto code = adv->vocab->Find(name);
    if (!code) return InvalidArgumentError(what + " for unknown advertiser '" + name + "'");
    return *code;
  };
  std::unordered_map<uint32_t, double> budgets;
  for (const auto& [name, budget] : impl->options.daily_budgets) {
    ADREC_ASSIGN_OR_RETURN(uint32_t code, advertiser_code(name, "budget"));
    budgets[code] = budget;
  }
  impl->pacer = std::make_unique<BudgetPacer>(std::move(budgets));
  for (const std::string& name : impl->options.floor_advertiser_names) {
    ADREC_ASSIGN_OR_RETURN(uint32_t code, advertiser_code(name, "exposure floor"));
    impl->options.rerank.floor_advertisers.push_back(code);
  }
  std::sort(impl->options.rerank.floor_advertisers.begin(), impl->options.rerank.floor_advertisers.end());
  if (!impl->options.creatives.empty()) ADREC_RETURN_IF_ERROR(impl->StartCreatives().WithContext("--creatives"));
  Impl* raw = impl.get();
  impl->batcher = std::thread([raw] { raw->Loop(); });
  impl->ranker_thread = std::thread([raw] { raw->RankLoop(); });
  std::unique_ptr<Recommender> rec(new Recommender(std::move(impl)));
  ADREC_RETURN_IF_ERROR(raw->WarmUp(raw->Current()));
  if (raw->options.watch_seconds > 0) raw->watcher = std::thread([raw] { raw->WatchLoop(); });
  return rec;
}

// The variants, the bandit, and what the store's log already says about them: the bandit's
// state is rebuilt from the events, so a restarted server goes on from what it had learned.
Status Recommender::Impl::StartCreatives() {
  ADREC_ASSIGN_OR_RETURN(std::vector<creative::CreativeVariant> variants, creative::ReadVariants(options.creatives));
  const data::Dataset& cat = models->catalogue();
  std::pair<std::vector<float>, uint32_t> user_vectors;
  if (options.creative_user_embedding) {
    ADREC_ASSIGN_OR_RETURN(user_vectors, creative::BundleUserVectors(options.bundle, cat));
  }
  ADREC_ASSIGN_OR_RETURN(chooser, creative::CreativeChooser::Create(cat, std::move(variants), options.creative_policy, {}, {},
                                                                    std::move(user_vectors)));
  uint64_t position = 0, replayed = 0;
  for (;;) {
    ADREC_ASSIGN_OR_RETURN(std::vector<LoggedEvent> log, store->ReadLog(position, 10000));
    if (log.empty()) break;
    for (const LoggedEvent& l : log) {
      position = l.position;
      replayed += Feedback(cat, l.event);
    }
  }
  LogInfo("creatives: " + chooser->Stats().dump() + "; " + std::to_string(replayed) + " events of the log replayed into the bandit");
  return Status::Ok();
}

bool Recommender::Impl::Feedback(const data::Dataset& cat, const StoredEvent& e) {
  if (!chooser || e.creative_id.empty()) return false;
  if (e.action != data::Action::kImpression && e.action != data::Action::kClick) return false;
  return chooser->Feedback(e.creative_id, cat.users.Find(e.user_id), SceneCode(cat, e.scene), e.action == data::Action::kClick);
}

StatusOr<Recommendation> Recommender::Recommend(const RecommendRequest& request) {
  return impl_->Submit(impl_->Current(), request);
}

StatusOr<Recommendation> Recommender::Impl::Submit(std::shared_ptr<ServingModels> models_in,
                                                   const RecommendRequest& request) {
  const Clock::time_point t0 = Clock::now();
  auto job = std::make_unique<Job>();
  job->models = std::move(models_in);
  const ServingModels& m = *job->models;
  const data::Dataset& cat = m.catalogue();
  RequestRows& rows = job->rows;
  rows.time = NowSeconds();
  if (auto ts = request.context.find("ts"); ts != request.context.end()) {
    uint64_t t = 0;
    const auto [end, ec] = std::from_chars(ts->second.data(), ts->second.data() + ts->second.size(), t);
    if (ec != std::errc() || end != ts->second.data() + ts->second.size() || t > UINT32_MAX) {
      return InvalidArgumentError("context.ts: expected unix seconds, got '" + ts->second + "'");
    }
    rows.time = static_cast<uint32_t>(t);
  }
  if (auto s = request.context.find("scene"); s != request.context.end()) rows.scene = SceneCode(cat, s->second);
  if (auto p = request.context.find("position"); p != request.context.end()) {
    unsigned v = 0;
    std::from_chars(p->second.data(), p->second.data() + p->second.size(), v);
    rows.position = static_cast<uint8_t>(std::min(v, 255u));
  }
  if (auto u = cat.users.Find(request.user_id)) rows.user = *u;
  ADREC_ASSIGN_OR_RETURN(UserState state, store->Read(request.user_id, options.history_limit));
  rows.history = UserHistory(cat, m.base, m.base_offsets, rows.user, state, options.history_limit);
  for (const HistoryEvent& h : rows.history) {
    if (h.action == data::Action::kImpression) job->seen[h.item].push_back(h.time);
  }
  job->k = request.k;
  job->explain = request.explain;
  auto answer = job->answer.get_future();
  Observe(kState, SecondsSince(t0));
  job->queued = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mu);
    if (stopping) return CancelledError("the server is stopping");
    queue.push_back(std::move(job));
  }
  cv.notify_one();
  return answer.get();
}

StatusOr<size_t> Recommender::Ingest(const std::vector<EventIn>& events) {
  std::vector<StoredEvent> stored;
  stored.reserve(events.size());
  for (const EventIn& e : events) stored.push_back({e.event_id, e.user_id, e.item_id, e.action, e.ts, e.scene, e.value, e.position, e.creative_id});
  std::vector<bool> fresh;
  ADREC_ASSIGN_OR_RETURN(size_t accepted, impl_->store->Append(stored, &fresh));
  if (impl_->chooser) {
    const auto m = impl_->Current();
    for (size_t i = 0; i < stored.size(); ++i) {
      if (fresh[i]) impl_->Feedback(m->catalogue(), stored[i]);  // a retried event teaches once
    }
  }
  if (!impl_->pacer->empty()) {
    const auto m = impl_->Current();
    for (size_t i = 0; i < events.size(); ++i) {
      const EventIn& e = events[i];
      if (e.action != data::Action::kImpression || !fresh[i]) continue;  // a retried impression is charged once
      if (auto item = m->catalogue().items.Find(e.item_id)) {
        impl_->pacer->Charge(m->advertiser_of[*item], m->bid[*item] / 1000.0, e.ts);  // CPM: a thousandth per impression
      }
    }
  }
  return accepted;
}

StatusOr<ordered_json> Recommender::User(const std::string& user_id, size_t limit) {
  const auto m = impl_->Current();
  const data::Dataset& cat = m->catalogue();
  ADREC_ASSIGN_OR_RETURN(UserState state, impl_->store->Read(user_id, limit));
  ordered_json out;
  out["user_id"] = user_id;
  const auto u = cat.users.Find(user_id);
  out["known"] = u.has_value();
  ordered_json profile = ordered_json::object();
  if (u) {
    for (const data::Column& c : cat.user_table.columns) {
      if (c.type == data::ColumnType::kCategorical) profile[c.name] = c.vocab->Name(c.u32[*u]);
      else if (c.type == data::ColumnType::kUInt32) profile[c.name] = c.u32[*u];
      else if (c.type == data::ColumnType::kFloat32) profile[c.name] = c.f32[*u];
    }
  }
  out["profile"] = profile;
  ordered_json totals = ordered_json::object();
  for (int a = 0; a < data::kNumActions; ++a) {
    if (state.totals[a]) totals[std::string(data::ActionName(static_cast<data::Action>(a)))] = state.totals[a];
  }
  out["stored_totals"] = totals;
  // Newest first: the stored events, then the dataset's log.
  ordered_json recent = ordered_json::array();
  for (const StoredEvent& e : state.recent) {
    recent.push_back({{"event_id", e.event_id}, {"item_id", e.item_id}, {"action", data::ActionName(e.action)},
                      {"ts", e.ts}, {"scene", e.scene}, {"source", "events"}});
  }
  if (u) {
    const uint64_t b = m->base_offsets[*u], e = m->base_offsets[*u + 1];
    for (uint64_t j = e; j-- > b && recent.size() < limit;) {
      recent.push_back({{"item_id", cat.items.Name(m->base.item[j])},
                        {"action", data::ActionName(static_cast<data::Action>(m->base.action[j]))},
                        {"ts", m->base.time[j]},
                        {"scene", m->base.scene[j] < cat.scenes.size() ? cat.scenes[m->base.scene[j]] : ""},
                        {"source", "dataset"}});
    }
  }
  out["recent"] = recent;
  return out;
}

Status Recommender::Reload() { return impl_->Reload(); }

ordered_json Recommender::Models() const {
  ordered_json info = impl_->Current()->info;
  if (impl_->chooser) info["creatives"] = impl_->chooser->Stats();
  return info;
}
std::string Recommender::version() const { return impl_->Current()->version; }

size_t Recommender::queue_depth() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->queue.size();
}

uint64_t Recommender::batches() const { return impl_->batch_count.load(); }

std::vector<std::pair<std::string, LatencyHistogram>> Recommender::StageLatency() const {
  std::lock_guard<std::mutex> lock(impl_->stage_mu);
  std::vector<std::pair<std::string, LatencyHistogram>> out;
  for (int s = 0; s < kNumStages; ++s) out.emplace_back(kStageNames[s], impl_->stages[s]);
  return out;
}

void Recommender::Stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->watch_mu);
    impl_->watch_stop = true;
  }
  impl_->watch_cv.notify_all();
  if (impl_->watcher.joinable()) impl_->watcher.join();
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->batcher.joinable()) impl_->batcher.join();
  {
    std::lock_guard<std::mutex> lock(impl_->handoff_mu);
    impl_->prepared_all = true;
  }
  impl_->handoff_cv.notify_all();
  if (impl_->ranker_thread.joinable()) impl_->ranker_thread.join();
}

}  // namespace adrec::serve

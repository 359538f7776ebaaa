#include "adrec/online/learner.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <map>
#include <set>
#include <thread>
#include <unordered_set>

#include "adrec/core/log_line.h"
#include "adrec/core/text.h"
#include "adrec/data/dataset_io.h"
#include "adrec/data/split.h"
#include "adrec/models/bundle.h"
#include "adrec/online/replay.h"
#include "adrec/serve/request_features.h"
#include "adrec/train/ranking_model.h"

namespace adrec::online {
namespace fs = std::filesystem;
using nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kLogChunk = 4096;  // events read per ReadLog call

ordered_json CheckpointJson(const AttributionCheckpoint& c) {
  return {{"replay_from", c.replay_from}, {"emitted_through", c.emitted_through}, {"watermark", c.watermark},
          {"orphans", c.orphans}};
}

AttributionCheckpoint CheckpointFromJson(const nlohmann::json& j) {
  AttributionCheckpoint c;
  c.replay_from = j.value("replay_from", uint64_t{1});
  c.emitted_through = j.value("emitted_through", uint64_t{0});
  c.watermark = j.value("watermark", uint32_t{0});
  c.orphans = j.value("orphans", std::vector<uint64_t>{});
  return c;
}

ordered_json StatsJson(const AttributionStats& s) {
  return {{"impressions", s.impressions}, {"outcomes", s.outcomes}, {"unattributed", s.unattributed},
          {"out_of_order", s.out_of_order}, {"skewed", s.skewed}, {"other", s.other}};
}

const char* PolicyName(DelayPolicy p) { return p == DelayPolicy::kWindow ? "window" : "fake_negative"; }

class Learner {
 public:
  explicit Learner(const LearnerOptions& o) : o_(o) {}

  Status Open() {
    if (o_.batch_size == 0 || o_.batch_size > 4096) return InvalidArgumentError("--batch must be in 1..4096");
    std::error_code ec;
    fs::create_directories(o_.out, ec);
    if (ec) return IoError("cannot create " + o_.out.string() + ": " + ec.message());
    // Resume from the newest snapshot when there is one.
    fs::path from = o_.bundle;
    AttributionCheckpoint checkpoint;
    const fs::path current = o_.out / "current";
    if (fs::exists(current / models::kBundleManifestFile)) {
      from = fs::canonical(current, ec);
      if (ec) return IoError("cannot resolve " + current.string() + ": " + ec.message());
    } else if (from.empty()) {
      return InvalidArgumentError("--bundle is required: " + o_.out.string() + " has no snapshot to resume from");
    }
    embedding::SparseOptimizerOptions sparse;
    sparse.lr = o_.embedding_lr;
    sparse.initial_accumulator = o_.embedding_accumulator;
    ADREC_ASSIGN_OR_RETURN(bundle_, train::LoadBundle(from, torch::kCPU, &sparse));
    if (bundle_.model.spec.targets.empty()) return InvalidArgumentError(from.string() + ": the bundle has no targets");
    if (const data::TableSpec* q = train::QuantizedTable(bundle_.model.spec)) {
      return FailedPreconditionError(from.string() + " is compressed (table '" + q->name + "' in " +
                                     std::to_string(q->storage_bits) +
                                     "-bit rows): the learner trains float tables; give it the bundle it was compressed from");
    }
    const nlohmann::json online = bundle_.manifest.value("online", nlohmann::json::object());
    if (!online.empty()) {
      checkpoint = CheckpointFromJson(online.value("checkpoint", nlohmann::json::object()));
      snapshot_ = online.value("snapshot", uint64_t{0});
      samples_ = online.value("samples", uint64_t{0});
      steps_ = online.value("steps", uint64_t{0});
      origin_ = online.value("origin", from.string());
      LogInfo("resuming from " + from.string() + " (snapshot " + std::to_string(snapshot_) + ", log position " +
              std::to_string(checkpoint.emitted_through) + ")");
    } else {
      origin_ = from.string();
    }
    ADREC_ASSIGN_OR_RETURN(data::Dataset ds, data::ReadDataset(o_.data));
    ADREC_RETURN_IF_ERROR(train::CheckBundleData(bundle_.manifest, from, ds));
    if (Status s = bundle_.model.spec.Bind(ds); !s.ok()) {
      return Status(s.code(), "the dataset " + o_.data.string() + " does not fit the features of " + from.string() + ": " + s.message());
    }
    ADREC_RETURN_IF_ERROR(serve::RequestFeatures::CheckServable(bundle_.model.spec));
    history_mask_ = train::BundleHistoryMask(bundle_.manifest, ds);
    if (o_.events == "dataset") {
      if (o_.replay_split.empty()) return InvalidArgumentError("--events dataset needs --replay-split (a split of --data)");
      ADREC_ASSIGN_OR_RETURN(data::Split split, data::ReadSplit(o_.replay_split, ds));
      data::SplitPart part = data::SplitPart::kValid;
      if (o_.replay_part == "train") part = data::SplitPart::kTrain;
      else if (o_.replay_part == "test") part = data::SplitPart::kTest;
      else if (o_.replay_part != "valid") return InvalidArgumentError("--replay-part: want train, valid or test, got '" + o_.replay_part + "'");
      ADREC_ASSIGN_OR_RETURN(store_, ReplayLog(ds, split, part, "dataset:" + o_.data.string()));
    }
    base_ = std::move(ds.events);
    base_offsets_ = std::move(ds.user_offsets);
    ds.events = data::EventColumns{};
    ds.user_offsets.clear();
    ADREC_ASSIGN_OR_RETURN(serve::RequestFeatures rf, serve::RequestFeatures::Create(std::move(ds), {.max_requests = o_.batch_size}));
    features_ = std::make_unique<serve::RequestFeatures>(std::move(rf));
    if (!store_ && o_.events.starts_with("redis://")) {
      ADREC_ASSIGN_OR_RETURN(store_, serve::OpenEventStore(o_.events, {}));
    } else if (!store_) {
      ADREC_ASSIGN_OR_RETURN(store_, serve::OpenRocksEventStoreReader(o_.events, o_.out / ".reader"));
    }
    attributor_ = std::make_unique<Attributor>(o_.attribution, checkpoint);
    position_ = checkpoint.replay_from - 1;
    opt_ = std::make_unique<torch::optim::Adam>(bundle_.model.net->parameters(), torch::optim::AdamOptions(o_.lr));
    // Dynamic tables: their rows remember the step that last read them (TTL, LRU), on the
    // clock of the run that wrote them; this run's clock goes on from there.
    ids_at_open_ = DynamicIds(&clock_base_);
    steps_at_open_ = steps_;
    return Status::Ok();
  }

  // The IDs each dynamic table holds a row for; `clock`, when given, gets the step after the
  // newest one any row recorded.
  std::map<std::string, std::set<int64_t>> DynamicIds(int64_t* clock = nullptr) const {
    std::map<std::string, std::set<int64_t>> out;
    for (auto& [name, t] : bundle_.model.embeddings->State(/*with_optimizer=*/false)) {
      if (clock && name.ends_with(".last_step") && t.numel() > 0) *clock = std::max(*clock, t.max().item<int64_t>() + 1);
      if (!name.ends_with(".ids")) continue;
      std::set<int64_t>& ids = out[name.substr(0, name.size() - 4)];
      const torch::Tensor c = t.to(torch::kCPU, torch::kLong).contiguous();
      for (int64_t r = 1; r < c.numel(); ++r) {  // row 0: unknown and unadmitted IDs
        if (c.data_ptr<int64_t>()[r] >= 0) ids.insert(c.data_ptr<int64_t>()[r]);
      }
    }
    return out;
  }

  // Per dynamic table: rows now, IDs admitted and expired since the learner opened the bundle.
  ordered_json DynamicTableReport() const {
    ordered_json out = ordered_json::object();
    for (const auto& [table, now] : DynamicIds()) {
      const auto it = ids_at_open_.find(table);
      const std::set<int64_t> empty;
      const std::set<int64_t>& before = it == ids_at_open_.end() ? empty : it->second;
      size_t admitted = 0, expired = 0;
      for (int64_t id : now) admitted += before.count(id) == 0;
      for (int64_t id : before) expired += now.count(id) == 0;
      out[table] = {{"ids", now.size()}, {"ids_at_start", before.size()}, {"admitted", admitted}, {"expired", expired}};
    }
    return out;
  }

  StatusOr<ordered_json> Run() {
    const Clock::time_point start = Clock::now();
    Clock::time_point last_publish = start;
    while (!(o_.stop && o_.stop->load())) {
      ADREC_ASSIGN_OR_RETURN(std::vector<serve::LoggedEvent> log, store_->ReadLog(position_, kLogChunk));
      for (const serve::LoggedEvent& e : log) {
        position_ = e.position;
        ++events_;
        for (Attributed& a : attributor_->Add(e)) queue_.push_back(std::move(a));
        if (queue_.size() >= o_.batch_size) ADREC_RETURN_IF_ERROR(TrainQueued(/*all=*/false));
        if (unpublished_ >= o_.publish_every) {  // here, so a snapshot's checkpoint is this event's
          ADREC_RETURN_IF_ERROR(TrainQueued(/*all=*/true));
          ADREC_RETURN_IF_ERROR(Publish(start));
          last_publish = Clock::now();
        }
      }
      const bool at_end = log.size() < kLogChunk;
      const bool due = (unpublished_ > 0 || !queue_.empty()) &&
                       std::chrono::duration<double>(Clock::now() - last_publish).count() >= o_.publish_seconds;
      if (due || (at_end && !o_.follow)) {
        ADREC_RETURN_IF_ERROR(TrainQueued(/*all=*/true));
        if (unpublished_ > 0 || snapshot_ == 0 || checkpoint_moved()) ADREC_RETURN_IF_ERROR(Publish(start));
        last_publish = Clock::now();
      }
      if (at_end && !o_.follow) break;
      if (log.empty()) std::this_thread::sleep_for(std::chrono::duration<double>(o_.poll_seconds));
    }
    if (o_.stop && o_.stop->load()) {  // a clean stop keeps what was learned
      ADREC_RETURN_IF_ERROR(TrainQueued(/*all=*/true));
      if (unpublished_ > 0) ADREC_RETURN_IF_ERROR(Publish(start));
    }
    ordered_json r;
    r["events_read"] = events_;
    r["samples"] = samples_;
    r["steps"] = steps_;
    r["snapshots_written"] = written_;
    r["snapshot"] = snapshot_;
    r["current"] = (o_.out / "current").string();
    r["position"] = position_;
    r["checkpoint"] = CheckpointJson(attributor_->Checkpoint());
    r["attribution"] = StatsJson(attributor_->stats());
    r["unknown_items"] = unknown_items_;
    r["dynamic_tables"] = DynamicTableReport();
    r["mean_loss"] = loss_steps_ ? loss_sum_ / static_cast<double>(loss_steps_) : 0.0;
    r["seconds"] = std::chrono::duration<double>(Clock::now() - start).count();
    return r;
  }

 private:
  bool checkpoint_moved() const { return attributor_->Checkpoint().emitted_through != published_through_; }

  // Steps over the queue in batches of distinct users (one slice per user in the scratch
  // dataset), each user's samples in emission order; without `all`, only full batches.
  Status TrainQueued(bool all) {
    while (!queue_.empty()) {
      std::vector<Attributed> batch;
      std::unordered_set<std::string> users;
      for (auto it = queue_.begin(); it != queue_.end() && batch.size() < o_.batch_size;) {
        if (users.insert(it->impression.user_id).second) {
          batch.push_back(std::move(*it));
          it = queue_.erase(it);
        } else {
          ++it;
        }
      }
      if (!all && batch.size() < o_.batch_size) {
        for (auto it = batch.rbegin(); it != batch.rend(); ++it) queue_.push_front(std::move(*it));
        return Status::Ok();
      }
      ADREC_RETURN_IF_ERROR(Step(batch));
    }
    return Status::Ok();
  }

  // One step: the samples' rows through the serving feature path (the user's state as of the
  // impression), labels from their outcomes, the loss (fake-negative weighted), the updates.
  Status Step(const std::vector<Attributed>& samples) {
    const data::Dataset& cat = features_->dataset();
    const data::FeatureSpec& spec = bundle_.model.spec;
    std::vector<serve::RequestRows> rows;
    std::vector<const Attributed*> used;
    for (const Attributed& a : samples) {
      auto item = cat.items.Find(a.impression.item_id);
      if (!item) {
        ++unknown_items_;  // an ad the bundle's catalogue does not have: nothing to learn
        continue;
      }
      serve::RequestRows r;
      if (auto u = cat.users.Find(a.impression.user_id)) r.user = *u;
      ADREC_ASSIGN_OR_RETURN(serve::UserState state, store_->Read(a.impression.user_id, o_.history_limit));
      r.history = serve::UserHistory(cat, base_, base_offsets_, r.user, state, o_.history_limit, a.impression.ts);
      r.candidates = {*item};
      r.time = a.impression.ts;
      r.scene = serve::SceneCode(cat, a.impression.scene);
      r.position = a.impression.slot;
      rows.push_back(std::move(r));
      used.push_back(&a);
    }
    if (rows.empty()) return Status::Ok();
    ADREC_RETURN_IF_ERROR(features_->Layout(rows));
    features_->Build(spec, history_mask_, &batch_);
    const int64_t B = static_cast<int64_t>(used.size()), T = static_cast<int64_t>(spec.targets.size());
    std::vector<float> labels(static_cast<size_t>(B * T), 0.f), mask(static_cast<size_t>(B * T), 0.f);
    for (int64_t i = 0; i < B; ++i) {
      const Attributed& a = *used[static_cast<size_t>(i)];
      for (int64_t t = 0; t < T; ++t) {
        const data::TargetSpec& ts = spec.targets[static_cast<size_t>(t)];
        if (ts.rule != data::TargetRule::kFollows) continue;  // ratings and own-action targets: not online
        bool given = true;
        if (!ts.given.empty()) {
          const int g = spec.TargetIndex(ts.given);
          given = g >= 0 && labels[static_cast<size_t>(i * T + g)] > 0.5f;
        }
        if (!given) continue;
        bool hit = false;
        for (const serve::StoredEvent& e : a.outcomes) hit = hit || e.action == ts.action;
        mask[static_cast<size_t>(i * T + t)] = 1.f;
        labels[static_cast<size_t>(i * T + t)] = hit ? 1.f : 0.f;
      }
    }
    train::RankingModel& m = bundle_.model;
    m.net->train();
    auto lookup = m.embeddings->Forward(batch_, /*train=*/true, clock_base_ + static_cast<int64_t>(steps_ - steps_at_open_));
    const torch::Tensor logits = m.net->forward(lookup.input).to(torch::kFloat32);
    const torch::Tensor y = torch::from_blob(labels.data(), {B, T}, torch::kFloat32).clone();
    const torch::Tensor w_mask = torch::from_blob(mask.data(), {B, T}, torch::kFloat32).clone();
    torch::Tensor weight = w_mask;
    if (o_.attribution.policy == DelayPolicy::kFakeNegative) {
      // Fake-negative weighting: positives 1 + p, negatives (1 - p)(1 + p), p the model's own
      // current prediction, so the loss's optimum is the true rate despite the early negatives.
      const torch::Tensor p = torch::sigmoid(logits).detach();
      weight = w_mask * torch::where(y > 0.5f, 1 + p, (1 - p) * (1 + p));
    }
    const torch::Tensor loss =
        torch::binary_cross_entropy_with_logits(logits, y, weight, {}, at::Reduction::Sum) / w_mask.sum().clamp_min(1.0);
    const double value = loss.item<double>();
    if (!std::isfinite(value)) {
      return DataLossError("online step " + std::to_string(steps_) + ": the loss is " + std::to_string(value) +
                           "; nothing of it was applied, the last snapshot stays");
    }
    opt_->zero_grad();
    loss.backward();
    opt_->step();
    m.embeddings->Step(lookup, clock_base_ + static_cast<int64_t>(steps_ - steps_at_open_));
    m.net->eval();
    ++steps_;
    ++loss_steps_;
    loss_sum_ += value;
    samples_ += static_cast<uint64_t>(B);
    unpublished_ += static_cast<uint64_t>(B);
    return Status::Ok();
  }

  // Writes snapshot n+1 with the checkpoint of everything trained so far (the queue is empty),
  // points out/current at it, and drops snapshots beyond keep_snapshots.
  Status Publish(Clock::time_point start) {
    const AttributionCheckpoint cp = attributor_->Checkpoint();
    const uint64_t n = snapshot_ + 1;
    char name[32];
    std::snprintf(name, sizeof(name), "snap-%08llu", static_cast<unsigned long long>(n));
    const fs::path dir = o_.out / name;
    ordered_json manifest = models::NewBundleManifest(bundle_.manifest.value("kind", std::string(models::kRankingBundle)),
                                                     bundle_.manifest.value("model", std::string()));
    for (const auto& [k, v] : bundle_.manifest.items()) {
      if (!manifest.contains(k) && k != "online") manifest[k] = v;
    }
    manifest["online"] = {{"snapshot", n},
                          {"origin", origin_},
                          {"policy", PolicyName(o_.attribution.policy)},
                          {"window_s", o_.attribution.window_s},
                          {"lateness_s", o_.attribution.lateness_s},
                          {"samples", samples_},
                          {"steps", steps_},
                          {"checkpoint", CheckpointJson(cp)},
                          {"attribution", StatsJson(attributor_->stats())}};
    ADREC_RETURN_IF_ERROR(models::WriteBundle(dir, train::ModelTensors(bundle_.model, /*with_optimizer=*/false), manifest));
    const fs::path link = o_.out / "current", tmp = o_.out / "current.tmp";
    std::error_code ec;
    fs::remove(tmp, ec);
    fs::create_directory_symlink(name, tmp, ec);
    if (!ec) fs::rename(tmp, link, ec);  // atomic: a reader sees the old snapshot or the new one
    if (ec) return IoError("cannot point " + link.string() + " at " + dir.string() + ": " + ec.message());
    snapshot_ = n;
    ++written_;
    unpublished_ = 0;
    published_through_ = cp.emitted_through;
    bundle_.manifest["online"] = manifest["online"];
    if (n > o_.keep_snapshots) {
      std::snprintf(name, sizeof(name), "snap-%08llu", static_cast<unsigned long long>(n - o_.keep_snapshots));
      fs::remove_all(o_.out / name, ec);
    }
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    LogInfo("snapshot " + std::to_string(n) + ": " + std::to_string(samples_) + " samples (" +
            FixedDigits(static_cast<double>(samples_) / std::max(s, 1e-9), 0) + "/s), log position " +
            std::to_string(cp.emitted_through) + ", mean loss " +
            FixedDigits(loss_steps_ ? loss_sum_ / static_cast<double>(loss_steps_) : 0.0, 4));
    return Status::Ok();
  }

  const LearnerOptions& o_;
  train::LoadedBundle bundle_;
  std::string origin_;
  data::ActionMask history_mask_ = 0;
  data::EventColumns base_;
  std::vector<uint64_t> base_offsets_;
  std::unique_ptr<serve::RequestFeatures> features_;
  std::unique_ptr<serve::EventStore> store_;
  std::unique_ptr<Attributor> attributor_;
  std::unique_ptr<torch::optim::Adam> opt_;
  std::deque<Attributed> queue_;
  data::Batch batch_;
  uint64_t position_ = 0, events_ = 0, samples_ = 0, steps_ = 0, unpublished_ = 0, snapshot_ = 0, written_ = 0;
  uint64_t unknown_items_ = 0, loss_steps_ = 0, published_through_ = 0;
  int64_t clock_base_ = 0;  // the embedding tables' step clock when the bundle was opened
  uint64_t steps_at_open_ = 0;
  std::map<std::string, std::set<int64_t>> ids_at_open_;
  double loss_sum_ = 0.0;
};

}  // namespace

StatusOr<ordered_json> RunLearner(const LearnerOptions& options) {
  at::set_num_threads(options.threads > 0 ? options.threads : 1);
  torch::manual_seed(42);
  Learner learner(options);
  ADREC_RETURN_IF_ERROR(learner.Open());
  return learner.Run();
}

}  // namespace adrec::online

// The HSTU ranker's trainer: a TrainingTask of the run loop that trains an epoch of shuffled
// event windows at a time with the masked BCE over every impression, evaluates the CTR report
// on the valid part and keeps the weights of the best valid AUC.
#include "adrec/train/hstu_ranker_trainer.h"

#include <torch/torch.h>

#include <cmath>
#include <numeric>
#include <random>

#include "adrec/core/config.h"
#include "adrec/core/log_line.h"
#include "adrec/core/progress.h"
#include "adrec/core/text.h"
#include "adrec/data/dataset_io.h"
#include "adrec/data/event_sequences.h"
#include "adrec/eval/ctr_report.h"
#include "adrec/models/bundle.h"
#include "adrec/models/hstu_ranker.h"
#include "adrec/tensor/device.h"
#include "adrec/tensor/tensor_io.h"
#include "adrec/train/autocast.h"
#include "adrec/train/losses.h"
#include "adrec/train/ranking_model.h"
#include "adrec/train/run_loop.h"
#include "adrec/train/train_config.h"

namespace adrec::train {
namespace {

using nlohmann::ordered_json;
static_assert(data::kNumActions < models::kNumActionTokens, "action tokens must cover every data::Action");

constexpr const char* kModelPrefix = "model/";  // tensor names in bundles and checkpoints

struct RankerSettings {
  int epochs = 10;
  int64_t batch_size = 32;  // windows
  double lr = 1e-3, weight_decay = 0.0, clip_norm = 1.0;
  int patience = 2;
  std::string primary_target;
  bool bf16 = true;
  int64_t max_len = 256;
};

Status ReadRankerSettings(Config& cfg, RankerSettings* s) {
  ADREC_RETURN_IF_ERROR(cfg.Get("train.epochs", &s->epochs));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.batch_size", &s->batch_size));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.lr", &s->lr));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.weight_decay", &s->weight_decay));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.clip_norm", &s->clip_norm));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.patience", &s->patience));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.primary_target", &s->primary_target));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.bf16", &s->bf16));
  ADREC_RETURN_IF_ERROR(cfg.Get("model.max_len", &s->max_len));
  const std::string src = cfg.source() + ": ";
  if (s->epochs <= 0 || s->batch_size <= 0) return InvalidArgumentError(src + "train.epochs and train.batch_size must be positive");
  if (!(s->lr > 0)) return InvalidArgumentError(src + "train.lr must be positive");
  if (s->clip_norm < 0 || s->patience < 0) return InvalidArgumentError(src + "train.clip_norm and train.patience must be >= 0");
  if (s->max_len < 2 || s->max_len > 65536) return InvalidArgumentError(src + "model.max_len must be in [2, 65536]");
  return Status::Ok();
}

// What a run needs besides the model: the dataset, its samples with labels, the split.
struct RankerData {
  data::Dataset ds;
  data::FeatureSpec spec;
  data::Split split;
  data::SampleSet samples;  // every sample event, all parts
  std::vector<int64_t> sample_of;
  int primary = 0;
};

StatusOr<RankerData> LoadRankerData(const std::filesystem::path& dir, data::FeatureSpec spec,
                                    const data::SplitOptions& split_options, const std::filesystem::path& split_dir,
                                    const std::string& primary_target) {
  RankerData d;
  ADREC_ASSIGN_OR_RETURN(d.ds, data::ReadDataset(dir));
  if (!split_dir.empty()) {
    ADREC_ASSIGN_OR_RETURN(d.split, data::ReadSplit(split_dir, d.ds));
  } else {
    ADREC_ASSIGN_OR_RETURN(d.split, data::MakeSplit(d.ds, split_options));
  }
  ADREC_RETURN_IF_ERROR(spec.Bind(d.ds));
  if (spec.targets.empty()) return InvalidArgumentError("hstu_ranker: [features] declares no targets");
  d.primary = primary_target.empty() ? 0 : spec.TargetIndex(primary_target);
  if (d.primary < 0) return InvalidArgumentError("train.primary_target '" + primary_target + "' is not a target");
  ADREC_ASSIGN_OR_RETURN(d.samples, data::MakeSamples(d.ds, spec, nullptr, data::SplitPart::kTrain));
  d.sample_of = data::SampleIndexOfEvents(d.ds, d.samples);
  d.spec = std::move(spec);
  return d;
}

torch::Tensor Int64(std::vector<int64_t>& v, int64_t rows, int64_t cols, const torch::Device& device) {
  return torch::from_blob(v.data(), {rows, cols}, torch::kInt64).to(device);
}

models::EventTokens Tokens(data::EventBatch& b, const torch::Device& device) {
  return {Int64(b.items, b.batch, b.length, device), Int64(b.actions, b.batch, b.length, device),
          Int64(b.scenes, b.batch, b.length, device), Int64(b.slots, b.batch, b.length, device),
          Int64(b.hours, b.batch, b.length, device),  Int64(b.times, b.batch, b.length, device),
          Int64(b.users, b.batch, 1, device).view({-1})};
}

// Scores every sample of `part` once and reports it as EvaluateRanking does.
ordered_json Report(models::HstuRanker& model, const RankerData& d, data::SplitPart part, int64_t batch_size,
                    const torch::Device& device) {
  torch::NoGradGuard no_grad;
  model->eval();
  const std::vector<data::EventWindow> windows =
      data::MakeEventWindows(d.ds, d.sample_of, d.split, part, model->shape().max_len);
  eval::CtrPredictions p;
  for (const auto& t : d.spec.targets) p.targets.push_back(t.name);
  p.scene_names = d.ds.scenes;
  p.primary = d.primary;
  const bool with_truth = TruthMatchesPrimary(d.ds, d.spec, d.primary);
  data::EventBatch b;
  for (size_t begin = 0; begin < windows.size(); begin += static_cast<size_t>(batch_size)) {
    const size_t end = std::min(windows.size(), begin + static_cast<size_t>(batch_size));
    data::BuildEventBatch(d.ds, d.samples, d.sample_of, d.split, part,
                          std::span<const data::EventWindow>(windows.data() + begin, end - begin), &b);
    torch::Tensor prob = torch::sigmoid(model->forward(Tokens(b, device)).to(torch::kFloat32)).cpu().contiguous();
    const float* pr = prob.data_ptr<float>();
    const int64_t T = b.targets;
    for (size_t at = 0; at < b.sample.size(); ++at) {
      const int64_t s = b.sample[at];
      if (s < 0) continue;
      const uint64_t e = d.samples.events[static_cast<size_t>(s)];
      p.pred.insert(p.pred.end(), pr + at * T, pr + (at + 1) * T);
      p.labels.insert(p.labels.end(), b.labels.begin() + static_cast<int64_t>(at * T),
                      b.labels.begin() + static_cast<int64_t>((at + 1) * T));
      p.mask.insert(p.mask.end(), b.mask.begin() + static_cast<int64_t>(at * T), b.mask.begin() + static_cast<int64_t>((at + 1) * T));
      p.user.push_back(d.ds.events.user[e]);
      p.scene.push_back(d.ds.events.scene[e]);
      if (with_truth) p.truth.push_back(d.ds.events.truth[e]);
    }
  }
  model->train();
  return eval::CtrReport(p);
}

// Codes [rows + offset, F] of the named categorical (vocabulary codes) or u32 (taxonomy nodes:
// their own codes) columns of `table`, row r + offset for table row r; each one's size.
Status AttributeCodes(Config& cfg, const std::string& kind, const data::Table& table, const std::string& dataset,
                      const std::vector<std::string>& names, int64_t offset, torch::Tensor* codes_out,
                      std::vector<int64_t>* sizes) {
  if (names.empty()) return Status::Ok();
  const int64_t F = static_cast<int64_t>(names.size()), rows = static_cast<int64_t>(table.rows());
  torch::Tensor codes = torch::zeros({rows + offset, F}, torch::kInt64);
  auto acc = codes.accessor<int64_t, 2>();
  for (int64_t f = 0; f < F; ++f) {
    const std::string& name = names[static_cast<size_t>(f)];
    const data::Column* c = table.Find(name);
    if (c == nullptr || (c->type != data::ColumnType::kCategorical && c->type != data::ColumnType::kUInt32)) {
      return InvalidArgumentError(cfg.source() + ": model." + kind + "_features: '" + name +
                                  "' is not a categorical or u32 column of the " + kind + " table of dataset '" + dataset + "'");
    }
    int64_t size = c->vocab ? static_cast<int64_t>(c->vocab->size()) : 0;
    for (int64_t r = 0; r < rows && r < static_cast<int64_t>(c->u32.size()); ++r) {
      acc[r + offset][f] = c->u32[static_cast<size_t>(r)];
      size = std::max<int64_t>(size, static_cast<int64_t>(c->u32[static_cast<size_t>(r)]) + 1);
    }
    sizes->push_back(std::max<int64_t>(1, size));
  }
  *codes_out = codes;
  return Status::Ok();
}

// The model a config and a dataset shape describe (the bundle rebuilds it the same way).
StatusOr<models::HstuRanker> BuildRanker(Config& cfg, const data::Dataset& ds, int64_t targets, int64_t max_len) {
  ADREC_ASSIGN_OR_RETURN(models::HstuRankerOptions o, models::ReadHstuRankerOptions(cfg, "model"));
  models::HstuRankerShape shape;
  shape.num_items = static_cast<int64_t>(ds.num_items());
  shape.num_scenes = static_cast<int64_t>(std::max<size_t>(1, ds.scenes.size()));
  shape.max_len = max_len;
  shape.targets = targets;
  ADREC_RETURN_IF_ERROR(AttributeCodes(cfg, "item", ds.item_table, ds.info.name, o.item_features, 1, &shape.item_codes,
                                       &shape.item_feature_sizes));
  ADREC_RETURN_IF_ERROR(AttributeCodes(cfg, "user", ds.user_table, ds.info.name, o.user_features, 0, &shape.user_codes,
                                       &shape.user_feature_sizes));
  return models::HstuRanker(shape, o);
}

class HstuRankerTask : public TrainingTask {
 public:
  std::string_view bundle_kind() const override { return models::kSequenceRankingBundle; }
  Status Prepare(const RunContext& ctx) override;
  LoopSettings loop() const override {
    LoopSettings l;
    l.cadence = Cadence::kEpochs;
    l.epochs = s_.epochs;
    l.eval_every = 1;
    l.patience = s_.patience;
    return l;
  }
  torch::optim::Optimizer& optimizer() override { return *opt_; }
  std::vector<std::pair<std::string, torch::Tensor>> CheckpointTensors() override {
    return tensor::ModuleTensors(**model_, kModelPrefix);
  }
  Status RestoreCheckpointTensors(const std::map<std::string, torch::Tensor>& tensors, const std::string& source) override {
    return tensor::LoadModuleTensors(**model_, tensors, kModelPrefix, source);
  }
  void SaveCounters(ordered_json* j) const override { (*j)["windows_seen"] = windows_seen_; }
  void RestoreCounters(const nlohmann::json& j) override { windows_seen_ = j.value("windows_seen", int64_t{0}); }
  Status BeforeLoop(bool) override {
    windows_before_ = windows_seen_;
    return Status::Ok();
  }
  std::string progress_unit() const override { return "windows"; }
  uint64_t progress_total() const override { return static_cast<uint64_t>(s_.epochs) * all_windows_.size(); }
  uint64_t progress_done(const RunProgress& p) const override { return static_cast<uint64_t>(p.epoch) * all_windows_.size(); }
  StatusOr<TrainChunk> Train(const RunProgress& p, Progress& progress) override;
  StatusOr<ordered_json> EvaluateValid() override {
    return Report(*model_, *d_, data::SplitPart::kValid, s_.batch_size * 4, device_);
  }
  double SelectionScore(const ordered_json& valid) const override { return valid.value("auc", -1.0); }
  std::string DescribeValid(const ordered_json& valid, double score) const override {
    return "valid auc " + FixedDigits(score, 4);
  }
  void AddManifestFields(ordered_json* m) const override {
    (*m)["targets"] = nlohmann::json::array();
    for (const auto& t : d_->spec.targets) (*m)["targets"].push_back(t.name);
    (*m)["primary_target"] = d_->spec.targets[static_cast<size_t>(d_->primary)].name;
    (*m)["feature_spec"] = d_->spec.ToJson();
    (*m)["split"] = SplitJson(split_options_);
    if (!o_->split_dir.empty()) (*m)["split"]["dir"] = std::filesystem::absolute(o_->split_dir).string();
    (*m)["data"] = {{"name", d_->ds.info.name}, {"items", d_->ds.num_items()}, {"scenes", d_->ds.scenes}};
  }
  std::vector<std::pair<std::string, torch::Tensor>> BundleTensors() override {
    return tensor::ModuleTensors(**model_, kModelPrefix);
  }
  void AddSummary(ordered_json* summary, double secs) const override {
    (*summary)["windows_per_s"] = secs > 0 ? static_cast<double>(windows_seen_ - windows_before_) / secs : 0.0;
  }
  StatusOr<TestReport> Test(EvalOptions eo) override {
    ADREC_ASSIGN_OR_RETURN(ordered_json report, EvaluateSequenceRanker(eo));
    return TestReport{"test", std::move(report)};
  }

 private:
  const TrainOptions* o_ = nullptr;
  RankerSettings s_;
  data::SplitOptions split_options_;
  std::optional<RankerData> d_;
  std::optional<models::HstuRanker> model_;
  torch::Device device_ = torch::kCPU;
  std::unique_ptr<torch::optim::AdamW> opt_;
  std::vector<data::EventWindow> all_windows_;
  torch::Tensor target_weights_;
  int64_t windows_seen_ = 0, windows_before_ = 0;
};

Status HstuRankerTask::Prepare(const RunContext& ctx) {
  o_ = &ctx.options;
  if (ctx.dist != nullptr) {
    return UnimplementedError("distributed training (WORLD_SIZE > 1) of the HSTU ranker is not built yet: sequence models "
                              "(sasrec, hstu, bsarec, wearec) train data parallel; unset WORLD_SIZE to train on one process");
  }
  Config& cfg = ctx.config;
  device_ = ctx.device;
  ADREC_RETURN_IF_ERROR(ReadRankerSettings(cfg, &s_));
  ADREC_RETURN_IF_ERROR(ReadSplitOptions(cfg, &split_options_));
  ADREC_ASSIGN_OR_RETURN(data::FeatureSpec spec, data::FeatureSpec::FromConfig(cfg));
  LogInfo("loading " + o_->data.string());
  ADREC_ASSIGN_OR_RETURN(RankerData d, LoadRankerData(o_->data, spec, split_options_, o_->split_dir, s_.primary_target));
  d_.emplace(std::move(d));
  torch::manual_seed(o_->seed);
  ADREC_ASSIGN_OR_RETURN(models::HstuRanker model,
                         BuildRanker(cfg, d_->ds, static_cast<int64_t>(d_->spec.targets.size()), s_.max_len));
  model_.emplace(std::move(model));
  models::HstuRanker& m = *model_;
  // Each output starts at its train base rate, as the CTR trainer's do.
  InitOutputBias(*m, BaseRates(d_->samples, [&](size_t i) {
                   return d_->split.PartOf(d_->samples.events[i]) == data::SplitPart::kTrain;
                 }));
  m->to(device_);
  m->train();
  opt_ = std::make_unique<torch::optim::AdamW>(m->parameters(), torch::optim::AdamWOptions(s_.lr).weight_decay(s_.weight_decay));
  all_windows_ = data::MakeEventWindows(d_->ds, d_->sample_of, d_->split, data::SplitPart::kTrain, s_.max_len);
  if (all_windows_.empty()) return FailedPreconditionError(o_->data.string() + ": no train sample to learn from");
  std::vector<float> weights;
  for (const auto& t : d_->spec.targets) weights.push_back(t.weight);
  target_weights_ = torch::tensor(weights).to(device_);
  LogInfo(ctx.model + ": " + std::to_string(all_windows_.size()) + " train windows of up to " + std::to_string(s_.max_len) +
          " events, " + std::to_string(d_->spec.targets.size()) + " targets, split " + d_->split.method);
  return Status::Ok();
}

StatusOr<TrainChunk> HstuRankerTask::Train(const RunProgress& p, Progress& progress) {
  models::HstuRanker& model = *model_;
  const RankerData& d = *d_;
  // Each epoch shuffles the windows afresh from its own seed, so a resumed run draws the same order.
  std::mt19937_64 rng(o_->seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(p.epoch));
  std::vector<data::EventWindow> windows = all_windows_;
  std::shuffle(windows.begin(), windows.end(), rng);
  const bool autocast = device_.is_cuda() && s_.bf16;
  TrainChunk chunk;
  data::EventBatch b;
  for (size_t begin = 0; begin < windows.size(); begin += static_cast<size_t>(s_.batch_size)) {
    if (o_->stop != nullptr && o_->stop->load()) {
      chunk.interrupted = true;
      return chunk;
    }
    const size_t end = std::min(windows.size(), begin + static_cast<size_t>(s_.batch_size));
    data::BuildEventBatch(d.ds, d.samples, d.sample_of, d.split, data::SplitPart::kTrain,
                          std::span<const data::EventWindow>(windows.data() + begin, end - begin), &b);
    torch::Tensor logits = MaybeAutocastBf16(autocast, [&] { return model->forward(Tokens(b, device_)); });
    const int64_t T = b.targets;
    torch::Tensor labels = torch::from_blob(b.labels.data(), {b.batch * b.length, T}, torch::kFloat32).to(device_);
    torch::Tensor mask = torch::from_blob(b.mask.data(), {b.batch * b.length, T}, torch::kFloat32).to(device_);
    // Every impression of every window is a sample of the ranking models' loss.
    torch::Tensor loss = MaskedBce(logits.reshape({-1, T}), labels, mask, target_weights_);
    const double value = loss.item<double>();
    if (!std::isfinite(value)) {
      chunk.diverged = true;
      chunk.diverged_loss = value;
      return chunk;
    }
    opt_->zero_grad();
    loss.backward();
    if (s_.clip_norm > 0) torch::nn::utils::clip_grad_norm_(model->parameters(), s_.clip_norm);
    opt_->step();
    chunk.loss_sum += value;
    ++chunk.steps;
    windows_seen_ += b.batch;
    progress.Add(static_cast<uint64_t>(b.batch));
  }
  chunk.epoch_done = true;
  return chunk;
}

}  // namespace

StatusOr<ordered_json> TrainSequenceRanker(const TrainOptions& options) {
  HstuRankerTask task;
  return RunTraining(options, task);
}

StatusOr<ordered_json> EvaluateSequenceRanker(const EvalOptions& o) {
  try {
    if (!o.protocol.empty() && o.protocol != "ctr") {
      return InvalidArgumentError("--protocol " + o.protocol + ": an hstu_ranker bundle is evaluated with --protocol ctr");
    }
    data::SplitPart part = data::SplitPart::kTest;
    if (o.part == "valid") part = data::SplitPart::kValid;
    else if (o.part == "train") part = data::SplitPart::kTrain;
    else if (o.part != "test") return InvalidArgumentError("--split " + o.part + ": hstu_ranker evaluates test, valid or train");
    ADREC_ASSIGN_OR_RETURN(torch::Device device, tensor::ParseDevice(o.device));
    if (o.threads > 0) at::set_num_threads(o.threads);
    ADREC_ASSIGN_OR_RETURN(nlohmann::json manifest, models::ReadBundleManifest(o.bundle, models::kSequenceRankingBundle));
    const std::string mpath = (o.bundle / models::kBundleManifestFile).string();
    if (!manifest.contains("feature_spec")) return DataLossError(mpath + ": missing feature_spec");
    // ManifestString, as the ranking loader reads it: a non-string config is DataLoss, not a json throw.
    ADREC_ASSIGN_OR_RETURN(std::string config_text, models::ManifestString(manifest, o.bundle, "config"));
    ADREC_ASSIGN_OR_RETURN(Config cfg, ParseTrainConfig(config_text, mpath + " [config]", manifest.value("model", ""),
                                                        ManifestSettings(manifest)));
    RankerSettings s;
    ADREC_RETURN_IF_ERROR(ReadRankerSettings(cfg, &s));
    ADREC_ASSIGN_OR_RETURN(data::FeatureSpec spec, data::FeatureSpec::FromJson(manifest["feature_spec"]));
    ADREC_ASSIGN_OR_RETURN(RankerData d, LoadRankerData(o.data, spec, SplitFromJson(manifest.value("split", nlohmann::json::object())),
                                                        EvalSplitDir(manifest, o.split_dir), manifest.value("primary_target", "")));
    const uint64_t items = manifest.value("data", nlohmann::json::object()).value("items", uint64_t{0});
    if (d.ds.num_items() != items) {
      return FailedPreconditionError("the bundle was trained on " + std::to_string(items) + " items; " + o.data.string() +
                                     " has " + std::to_string(d.ds.num_items()));
    }
    ADREC_ASSIGN_OR_RETURN(models::HstuRanker model,
                           BuildRanker(cfg, d.ds, static_cast<int64_t>(d.spec.targets.size()), s.max_len));
    ADREC_ASSIGN_OR_RETURN(auto tensors, models::ReadBundleWeights(o.bundle, device));
    model->to(device);
    ADREC_RETURN_IF_ERROR(tensor::LoadModuleTensors(*model, tensors, kModelPrefix, (o.bundle / models::kBundleWeightsFile).string()));
    ordered_json out;
    out["bundle"] = o.bundle.string();
    out["model"] = manifest.value("model", "");
    out["part"] = o.part;
    out.update(Report(model, d, part, s.batch_size * 4, device));
    return out;
  } catch (const c10::Error& e) {
    return InternalError(std::string("libtorch: ") + e.what_without_backtrace());
  }
}

}  // namespace adrec::train

// The sequence trainer (SASRec, HSTU): a TrainingTask of the run loop that trains an epoch of
// next-item steps at a time, evaluates leave-one-out on the valid item and keeps the weights of
// the best valid NDCG@10.
#include "adrec/train/sequence_trainer.h"

#include <torch/torch.h>

#include <random>

#include "adrec/core/config.h"
#include "adrec/core/hash.h"
#include "adrec/core/log_line.h"
#include "adrec/core/progress.h"
#include "adrec/core/text.h"
#include "adrec/data/dataset_io.h"
#include "adrec/models/bundle.h"
#include "adrec/models/sequence_model.h"
#include "adrec/tensor/device.h"
#include "adrec/tensor/tensor_io.h"
#include "adrec/train/distributed.h"
#include "adrec/train/run_loop.h"
#include "adrec/train/seq_train.h"
#include "adrec/train/train_config.h"
#include "adrec/train/weight_average.h"

namespace adrec::train {
namespace {

using nlohmann::ordered_json;
constexpr const char* kModelPrefix = "model/";  // tensor names in bundles and checkpoints
constexpr const char* kAveragePrefix = "ema/";   // the averaged weights in checkpoints (train.ema)

// [train] of a sequence config. Defaults are the HSTU reference's ML-1M settings (AdamW 1e-3,
// batch 128, 128 uniform negatives plus in-batch, cosine / 0.05).
struct SeqSettings {
  int epochs = 100;
  int64_t batch_size = 128;
  int64_t eval_batch_size = 512;
  std::string optimizer = "adamw";  // adam | adamw
  double lr = 1e-3, weight_decay = 0.0, adam_beta2 = 0.98;
  std::string loss = "sampled_softmax";
  std::string samples = "sequences";  // train.samples (SeqStepOptions)
  bool first_item = false;            // train.first_item (SeqStepOptions)
  SampledSoftmaxOptions softmax;
  double clip_norm = 0.0;
  int eval_every = 1;  // epochs
  int patience = 10;   // evaluations without a better selection score before stopping
  // The valid figure that picks the epoch and stops the run (train.select): hr@K, ndcg@K (K of
  // eval::RankingOptions::ks) or mrr. The S3-Rec family's code picks by NDCG@20.
  std::string select = "ndcg@10";
  bool eval_exclude_seen = false;
  bool bf16 = true;
  int64_t max_len = 200;  // model.max_len
  int64_t length_buckets = 1;  // train.length_buckets (SeqStepOptions; 1 = off)
  // Decay of the weights' moving average that valid, the bundle and test read (WeightAverage;
  // train.ema); 0 = the raw weights.
  double ema = 0.0;
};

Status ReadSeqSettings(Config& cfg, SeqSettings* s) {
  ADREC_RETURN_IF_ERROR(cfg.Get("train.epochs", &s->epochs));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.batch_size", &s->batch_size));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.eval_batch_size", &s->eval_batch_size));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.optimizer", &s->optimizer));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.lr", &s->lr));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.weight_decay", &s->weight_decay));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.adam_beta2", &s->adam_beta2));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.loss", &s->loss));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.samples", &s->samples));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.first_item", &s->first_item));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.num_negatives", &s->softmax.num_negatives));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.in_batch_negatives", &s->softmax.in_batch));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.in_batch_max", &s->softmax.in_batch_max));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.temperature", &s->softmax.temperature));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.l2_normalize", &s->softmax.l2_normalize));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.logq_correction", &s->softmax.logq));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.label_smoothing", &s->softmax.label_smoothing));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.exclude_seen", &s->softmax.exclude_seen));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.clip_norm", &s->clip_norm));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.eval_every", &s->eval_every));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.patience", &s->patience));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.select", &s->select));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.eval_exclude_seen", &s->eval_exclude_seen));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.bf16", &s->bf16));
  ADREC_RETURN_IF_ERROR(cfg.Get("model.max_len", &s->max_len));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.length_buckets", &s->length_buckets));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.ema", &s->ema));
  const std::string src = cfg.source() + ": ";
  if (s->epochs <= 0) return InvalidArgumentError(src + "train.epochs must be positive");
  if (s->batch_size <= 0 || s->eval_batch_size <= 0) {
    return InvalidArgumentError(src + "train.batch_size and train.eval_batch_size must be positive");
  }
  if (s->optimizer != "adam" && s->optimizer != "adamw") {
    return InvalidArgumentError(src + "train.optimizer '" + s->optimizer + "' is not one of adam, adamw");
  }
  if (!(s->lr > 0)) return InvalidArgumentError(src + "train.lr must be positive");
  if (!(s->adam_beta2 > 0 && s->adam_beta2 < 1)) return InvalidArgumentError(src + "train.adam_beta2 must be in (0, 1)");
  if (Status st = CheckSeqLossAndSamples(s->loss, s->samples, nullptr, s->first_item); !st.ok()) return InvalidArgumentError(src + st.message());
  if (s->softmax.num_negatives < 0 || (s->softmax.num_negatives == 0 && !s->softmax.in_batch)) {
    return InvalidArgumentError(src + "train.num_negatives must be >= 0, and > 0 without in-batch negatives");
  }
  if (s->softmax.in_batch_max <= 0) return InvalidArgumentError(src + "train.in_batch_max must be positive");
  if (!(s->softmax.temperature > 0)) return InvalidArgumentError(src + "train.temperature must be positive");
  if (!(s->softmax.label_smoothing >= 0 && s->softmax.label_smoothing < 1)) {
    return InvalidArgumentError(src + "train.label_smoothing must be in [0, 1)");
  }
  if (s->softmax.exclude_seen && s->loss != "ce") {
    return InvalidArgumentError(src + "train.exclude_seen needs train.loss = \"ce\" (the sampled losses draw their own negatives)");
  }
  if (s->clip_norm < 0 || s->eval_every <= 0 || s->patience < 0) {
    return InvalidArgumentError(src + "train.clip_norm and train.patience must be >= 0, train.eval_every > 0");
  }
  if (s->max_len <= 0 || s->max_len > 65536) return InvalidArgumentError(src + "model.max_len must be in [1, 65536]");
  if (!(s->ema >= 0 && s->ema < 1)) return InvalidArgumentError(src + "train.ema must be in [0, 1) (0: no average)");
  std::string known = "mrr";
  bool found = s->select == "mrr";
  for (const char* metric : {"hr@", "ndcg@"}) {
    for (uint32_t k : eval::RankingOptions{}.ks) {
      const std::string name = metric + std::to_string(k);
      known += ", " + name;
      found = found || s->select == name;
    }
  }
  if (!found) return InvalidArgumentError(src + "train.select '" + s->select + "' is not one of " + known);
  return Status::Ok();
}

// Detects a bundle evaluated on another dataset's items: same count and same names in order.
uint64_t ItemVocabularyHash(const data::Dataset& ds) {
  StreamingHash64 h;
  for (const std::string& name : ds.items.names()) h.Update(name.data(), name.size() + 1);  // with the NUL
  return h.Digest();
}

// "hr@K" for every K, then "ndcg@K", "mrr", "coverage@K", "users_evaluated": the order people
// read them in (RankingResult::Metrics sorts by name, hr@200 before hr@50).
ordered_json MetricsJson(const eval::RankingResult& r) {
  ordered_json j;
  for (size_t i = 0; i < r.ks.size(); ++i) j["hr@" + std::to_string(r.ks[i])] = r.hr[i];
  for (size_t i = 0; i < r.ks.size(); ++i) j["ndcg@" + std::to_string(r.ks[i])] = r.ndcg[i];
  j["mrr"] = r.mrr;
  for (size_t i = 0; i < r.coverage_ks.size(); ++i) j["coverage@" + std::to_string(r.coverage_ks[i])] = r.coverage[i];
  j["users_evaluated"] = r.users_evaluated;
  return j;
}

struct SequenceBundle {
  nlohmann::json manifest;
  std::shared_ptr<models::SequenceModel> model;
  bool cosine = true;  // scores are cosines (the model was trained on L2-normalised embeddings)
};

StatusOr<SequenceBundle> LoadSequenceBundle(const std::filesystem::path& dir, torch::Device device) {
  SequenceBundle b;
  ADREC_ASSIGN_OR_RETURN(b.manifest, models::ReadBundleManifest(dir, models::kSequenceBundle));
  const nlohmann::json& j = b.manifest;
  const std::string manifest_path = (dir / models::kBundleManifestFile).string();
  if (!j.contains("config") || !j.contains("shape") || !j["config"].is_string() || !j["shape"].is_object()) {
    return DataLossError(manifest_path + ": missing config or shape");
  }
  const std::string model = j.value("model", "");
  ADREC_ASSIGN_OR_RETURN(Config cfg, ParseTrainConfig(j["config"].get<std::string>(), manifest_path + " [config]", model,
                                                      ManifestSettings(j)));
  models::SequenceShape shape{j["shape"].value("num_items", int64_t{0}), j["shape"].value("max_len", int64_t{0})};
  ADREC_ASSIGN_OR_RETURN(b.model, models::MakeSequenceModel(model, shape, cfg));
  b.model->to(device);
  b.cosine = j.value("score", "cosine") == "cosine";
  ADREC_ASSIGN_OR_RETURN(auto tensors, models::ReadBundleWeights(dir, device));
  ADREC_RETURN_IF_ERROR(tensor::LoadModuleTensors(*b.model, tensors, kModelPrefix, (dir / models::kBundleWeightsFile).string()));
  b.model->eval();
  return b;
}

class SequenceTask : public TrainingTask {
 public:
  std::string_view bundle_kind() const override { return models::kSequenceBundle; }
  Status Prepare(const RunContext& ctx) override;
  LoopSettings loop() const override {
    LoopSettings l;
    l.cadence = Cadence::kEpochs;
    l.epochs = s_.epochs;
    l.eval_every = s_.eval_every;
    l.patience = s_.patience;
    return l;
  }
  torch::optim::Optimizer& optimizer() override { return *opt_; }
  std::vector<std::pair<std::string, torch::Tensor>> CheckpointTensors() override {
    std::vector<std::pair<std::string, torch::Tensor>> out = tensor::ModuleTensors(*model_, kModelPrefix);
    if (average_ != nullptr) {
      for (auto& t : average_->State(kAveragePrefix)) out.push_back(std::move(t));
    }
    return out;
  }
  Status RestoreCheckpointTensors(const std::map<std::string, torch::Tensor>& tensors, const std::string& source) override {
    ADREC_RETURN_IF_ERROR(tensor::LoadModuleTensors(*model_, tensors, kModelPrefix, source));
    return average_ != nullptr ? average_->Restore(tensors, kAveragePrefix, source) : Status::Ok();
  }
  void SaveCounters(ordered_json* j) const override {
    (*j)["rows_seen"] = rows_seen_;
    (*j)["tokens_seen"] = tokens_seen_;
    (*j)["padded_seen"] = padded_seen_;
  }
  void RestoreCounters(const nlohmann::json& j) override {
    rows_seen_ = j.value("rows_seen", int64_t{0});
    tokens_seen_ = j.value("tokens_seen", int64_t{0});
    padded_seen_ = j.value("padded_seen", int64_t{0});
  }
  Status BeforeLoop(bool resumed) override {
    if (dist_ != nullptr) {
      // Every rank starts from rank 0's weights (fresh or resumed), then draws its own dropout.
      std::vector<torch::Tensor> params;
      for (const torch::Tensor& t : model_->parameters()) params.push_back(t.detach());
      for (const torch::Tensor& t : model_->buffers()) params.push_back(t.detach());
      ADREC_RETURN_IF_ERROR(dist_->Broadcast(params, 0));
      torch::manual_seed(o_->seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(dist_->rank() + 1));
      // A resumed average is the checkpoint's on every rank; a fresh one starts at rank 0's weights.
      if (average_ != nullptr && !resumed) average_->Reset();
    }
    rows_before_ = rows_seen_;
    tokens_before_ = tokens_seen_;
    padded_before_ = padded_seen_;
    return Status::Ok();
  }
  std::string progress_unit() const override { return s_.samples == "prefixes" ? "prefixes" : "sequences"; }
  uint64_t progress_total() const override { return static_cast<uint64_t>(s_.epochs) * units_per_epoch_; }
  uint64_t progress_done(const RunProgress& p) const override { return static_cast<uint64_t>(p.epoch) * units_per_epoch_; }
  StatusOr<TrainChunk> Train(const RunProgress& p, Progress& progress) override;
  StatusOr<ordered_json> EvaluateValid() override;
  double SelectionScore(const ordered_json& valid) const override { return valid.value(s_.select, 0.0); }
  std::string DescribeValid(const ordered_json& valid, double) const override {
    std::string line = "valid hr@10 " + FixedDigits(valid.value("hr@10", 0.0), 4) + " ndcg@10 " + FixedDigits(valid.value("ndcg@10", 0.0), 4);
    if (s_.select != "hr@10" && s_.select != "ndcg@10") line += " " + s_.select + " " + FixedDigits(valid.value(s_.select, 0.0), 4);
    return line;
  }
  void AddManifestFields(ordered_json* m) const override;
  std::vector<std::pair<std::string, torch::Tensor>> BundleTensors() override {
    if (average_ == nullptr) return tensor::ModuleTensors(*model_, kModelPrefix);
    // Copies of the averaged weights: the raw ones are back in the model before they are written.
    WeightAverage::Swapped averaged(average_.get());
    std::vector<std::pair<std::string, torch::Tensor>> out = tensor::ModuleTensors(*model_, kModelPrefix);
    for (auto& [name, t] : out) t = t.detach().clone();
    return out;
  }
  void AddSummary(ordered_json* summary, double secs) const override {
    const int64_t tokens = tokens_seen_ - tokens_before_, padded = padded_seen_ - padded_before_;
    (*summary)["sequences_per_s"] = secs > 0 ? static_cast<double>(rows_seen_ - rows_before_) / secs : 0.0;
    (*summary)["tokens_per_s"] = secs > 0 ? static_cast<double>(tokens) / secs : 0.0;
    (*summary)["truncated"] = truncated_;
    // Share of the computed positions that were padding (this run's epochs).
    (*summary)["padding_share"] = padded > 0 ? 1.0 - static_cast<double>(tokens) / static_cast<double>(padded) : 0.0;
  }
  StatusOr<TestReport> Test(EvalOptions eo) override {
    eo.batch_size = static_cast<size_t>(s_.eval_batch_size);
    eo.exclude_seen = s_.eval_exclude_seen;
    ADREC_ASSIGN_OR_RETURN(ordered_json report, EvaluateSequence(eo));
    return TestReport{"test", std::move(report)};
  }

 private:
  const TrainOptions* o_ = nullptr;
  std::string model_name_;
  SeqSettings s_;
  data::SplitOptions split_options_;
  data::Dataset ds_;
  data::UserSequences seqs_;
  torch::Device device_ = torch::kCPU;
  std::shared_ptr<models::SequenceModel> model_;
  std::unique_ptr<torch::optim::Optimizer> opt_;
  int64_t rows_seen_ = 0, tokens_seen_ = 0, padded_seen_ = 0;
  int64_t rows_before_ = 0, tokens_before_ = 0, padded_before_ = 0;
  uint64_t truncated_ = 0;
  uint64_t units_per_epoch_ = 0;  // rows, or prefixes with train.samples = "prefixes"
  Distributed* dist_ = nullptr;
  std::unique_ptr<GradientSync> sync_;
  std::unique_ptr<WeightAverage> average_;  // train.ema > 0
};

Status SequenceTask::Prepare(const RunContext& ctx) {
  o_ = &ctx.options;
  Config& cfg = ctx.config;
  model_name_ = ctx.model;
  device_ = ctx.device;
  ADREC_RETURN_IF_ERROR(ReadSeqSettings(cfg, &s_));
  if (!cfg.Has("data.split")) ADREC_RETURN_IF_ERROR(cfg.SetString("data", "split", "loo"));
  ADREC_RETURN_IF_ERROR(ReadSplitOptions(cfg, &split_options_));
  if (split_options_.method != "loo") {
    return InvalidArgumentError(o_->config.string() + ": data.split '" + split_options_.method + "': " + model_name_ +
                                " trains on the leave-one-out protocol (data.split = \"loo\")");
  }

  LogInfo("loading " + o_->data.string());
  ADREC_ASSIGN_OR_RETURN(ds_, data::ReadDataset(o_->data));
  data::Split split;
  if (!o_->split_dir.empty()) {
    ADREC_ASSIGN_OR_RETURN(split, data::ReadSplit(o_->split_dir, ds_));
    if (split.method != "loo") {
      return InvalidArgumentError("--split " + o_->split_dir.string() + " is a '" + split.method + "' split; " +
                                  model_name_ + " needs a leave-one-out (loo) split");
    }
  } else {
    ADREC_ASSIGN_OR_RETURN(split, data::MakeSplit(ds_, split_options_));
  }
  ADREC_ASSIGN_OR_RETURN(seqs_, data::BuildUserSequences(ds_, split));
  if (data::EvalRows(seqs_, data::SplitPart::kValid).empty()) {
    return FailedPreconditionError(o_->data.string() + ": no user has the 3 positive events leave-one-out needs (one to train on, one for valid, one for test)");
  }

  torch::manual_seed(o_->seed);
  const models::SequenceShape shape{static_cast<int64_t>(ds_.num_items()), s_.max_len};
  ADREC_ASSIGN_OR_RETURN(model_, models::MakeSequenceModel(model_name_, shape, cfg));
  if (Status st = CheckSeqLossAndSamples(s_.loss, s_.samples, model_.get(), s_.first_item); !st.ok()) {
    return InvalidArgumentError(o_->config.string() + ": " + st.message());
  }
  model_->to(device_);
  const auto betas = std::make_tuple(0.9, s_.adam_beta2);
  if (s_.optimizer == "adamw") {
    opt_ = std::make_unique<torch::optim::AdamW>(
        model_->parameters(), torch::optim::AdamWOptions(s_.lr).betas(betas).weight_decay(s_.weight_decay));
  } else {
    opt_ = std::make_unique<torch::optim::Adam>(
        model_->parameters(), torch::optim::AdamOptions(s_.lr).betas(betas).weight_decay(s_.weight_decay));
  }
  if (ctx.dist != nullptr) {
    dist_ = ctx.dist;
    sync_ = std::make_unique<GradientSync>(*dist_, model_->parameters());
  }
  if (s_.ema > 0) {
    std::vector<std::pair<std::string, torch::Tensor>> params;
    for (const auto& p : model_->named_parameters()) params.emplace_back(p.key(), p.value());
    average_ = std::make_unique<WeightAverage>(std::move(params), s_.ema);
  }
  uint64_t tokens = 0, longer = 0;
  for (size_t r = 0; r < seqs_.size(); ++r) {
    tokens += seqs_.length(r);
    units_per_epoch_ += s_.samples == "prefixes" ? seqs_.length(r) - (s_.first_item ? 0 : 1) : 1;
    longer += seqs_.length(r) > static_cast<uint64_t>(s_.max_len) + 1;
  }
  LogInfo(model_name_ + ": " + std::to_string(seqs_.size()) + " users, " + std::to_string(tokens) + " train items, " +
          std::to_string(ds_.num_items()) + " items in the catalog; " + std::to_string(longer) +
          " histories are longer than model.max_len " + std::to_string(s_.max_len) + " and train on their newest items");
  return Status::Ok();
}

StatusOr<TrainChunk> SequenceTask::Train(const RunProgress& p, Progress& progress) {
  SeqStepOptions so;
  so.batch_size = s_.batch_size;
  so.loss = s_.loss;
  so.samples = s_.samples;
  so.first_item = s_.first_item;
  so.softmax = s_.softmax;
  so.clip_norm = s_.clip_norm;
  so.device = device_;
  so.bf16 = s_.bf16;
  so.length_buckets = s_.length_buckets;
  // A distributed run stops between epochs, when the ranks agree (run_loop.cc).
  so.stop = dist_ != nullptr ? nullptr : o_->stop;
  so.progress = &progress;
  so.dist = dist_;
  so.sync = sync_.get();
  so.average = average_.get();
  // One shuffle stream per epoch, so a resumed run draws the same orders.
  std::mt19937_64 rng(o_->seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(p.epoch));
  ADREC_ASSIGN_OR_RETURN(SeqEpochResult r, TrainSequenceEpoch(*model_, *opt_, seqs_, so, rng));
  TrainChunk chunk;
  if (r.interrupted) {
    chunk.interrupted = true;
    return chunk;
  }
  rows_seen_ += r.rows;
  tokens_seen_ += r.tokens;
  padded_seen_ += r.padded;
  truncated_ = r.truncated;
  chunk.steps = r.steps;
  chunk.loss_sum = r.mean_loss * static_cast<double>(r.steps);
  chunk.epoch_done = true;
  return chunk;
}

StatusOr<ordered_json> SequenceTask::EvaluateValid() {
  SeqEvalOptions eo;
  eo.part = data::SplitPart::kValid;
  eo.batch_size = s_.eval_batch_size;
  eo.l2_normalize = s_.softmax.l2_normalize;
  eo.ranking.exclude_seen = s_.eval_exclude_seen;
  eo.ranking.coverage_ks = {};
  eo.ranking.threads = o_->threads > 0 ? static_cast<size_t>(o_->threads) : 0;
  eo.device = device_;
  WeightAverage::Swapped averaged(average_.get());
  ADREC_ASSIGN_OR_RETURN(eval::RankingResult r, EvaluateSequenceModel(*model_, seqs_, eo));
  model_->train();
  return MetricsJson(r);
}

void SequenceTask::AddManifestFields(ordered_json* m) const {
  (*m)["shape"] = {{"num_items", model_->shape().num_items}, {"max_len", model_->shape().max_len}};
  (*m)["score"] = s_.softmax.l2_normalize ? "cosine" : "dot";
  (*m)["split"] = SplitJson(split_options_);
  if (!o_->split_dir.empty()) (*m)["split"]["dir"] = std::filesystem::absolute(o_->split_dir).string();
  (*m)["data"] = {{"name", ds_.info.name},
                  {"source_format", ds_.info.source_format},
                  {"events", ds_.num_events()},
                  {"users", ds_.num_users()},
                  {"items", ds_.num_items()},
                  {"item_vocabulary_hash", ItemVocabularyHash(ds_)}};
}

}  // namespace

StatusOr<ordered_json> TrainSequence(const TrainOptions& options) {
  SequenceTask task;
  return RunTraining(options, task);
}

StatusOr<ordered_json> EvaluateSequence(const EvalOptions& o) {
  try {
    if (!o.protocol.empty() && o.protocol != "loo") {
      return InvalidArgumentError("--protocol " + o.protocol + ": a sequence bundle is evaluated with --protocol loo");
    }
    if (o.part != "test" && o.part != "valid") {
      return InvalidArgumentError("--split " + o.part + ": leave-one-out evaluates the valid or the test item");
    }
    ADREC_ASSIGN_OR_RETURN(torch::Device device, tensor::ParseDevice(o.device));
    if (o.threads > 0) at::set_num_threads(o.threads);
    ADREC_ASSIGN_OR_RETURN(SequenceBundle b, LoadSequenceBundle(o.bundle, device));
    ADREC_ASSIGN_OR_RETURN(data::Dataset ds, data::ReadDataset(o.data));
    const nlohmann::json data = b.manifest.value("data", nlohmann::json::object());
    const uint64_t want_items = data.value("items", uint64_t{0}), want_hash = data.value("item_vocabulary_hash", uint64_t{0});
    if (ds.num_items() != want_items || ItemVocabularyHash(ds) != want_hash) {
      return FailedPreconditionError("the bundle was trained on " + std::to_string(want_items) + " items of dataset '" +
                                     data.value("name", "") + "'; " + o.data.string() + " has " +
                                     std::to_string(ds.num_items()) +
                                     (ds.num_items() == want_items ? " items with other IDs" : " items") +
                                     ": item vectors would score the wrong items (evaluate on the dataset it was trained on)");
    }
    ADREC_ASSIGN_OR_RETURN(data::Split split, EvalSplit(b.manifest, o.split_dir, ds));
    if (split.method != "loo") return InvalidArgumentError("the split is '" + split.method + "', not leave-one-out (loo)");
    ADREC_ASSIGN_OR_RETURN(data::UserSequences seqs, data::BuildUserSequences(ds, split));
    SeqEvalOptions eo;
    eo.part = o.part == "valid" ? data::SplitPart::kValid : data::SplitPart::kTest;
    eo.batch_size = static_cast<int64_t>(std::max<size_t>(1, std::min<size_t>(o.batch_size, 4096)));
    eo.l2_normalize = b.cosine;
    eo.ranking.exclude_seen = o.exclude_seen;
    eo.ranking.threads = o.threads > 0 ? static_cast<size_t>(o.threads) : 0;
    eo.device = device;
    ADREC_ASSIGN_OR_RETURN(eval::RankingResult r, EvaluateSequenceModel(*b.model, seqs, eo));
    const int64_t max_len = b.model->shape().max_len;
    uint64_t truncated = 0;
    for (uint32_t row : data::EvalRows(seqs, eo.part)) {
      truncated += seqs.length(row) + (eo.part == data::SplitPart::kTest ? 1 : 0) > static_cast<uint64_t>(max_len);
    }
    ordered_json out;
    out["bundle"] = o.bundle.string();
    out["model"] = b.manifest.value("model", "");
    out["part"] = o.part;
    out.update(MetricsJson(r));
    out["protocol"] = {{"name", "loo"},
                       {"part", o.part},
                       {"ranking", "full"},
                       {"num_items", r.num_items},
                       {"exclude_seen", o.exclude_seen},
                       {"ties", std::string(eval::TieRuleName(r.ties))},
                       {"score", b.cosine ? "cosine" : "dot"},
                       {"history", eo.part == data::SplitPart::kTest ? "train items + the valid item" : "train items"},
                       {"max_len", max_len},
                       {"truncated", truncated}};
    return out;
  } catch (const c10::Error& e) {
    return InternalError(std::string("libtorch: ") + e.what_without_backtrace());
  }
}

}  // namespace adrec::train

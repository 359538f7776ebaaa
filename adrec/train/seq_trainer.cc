#include "adrec/train/seq_trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>

#include "adrec/core/config.h"
#include "adrec/core/file.h"
#include "adrec/core/hash.h"
#include "adrec/core/log_line.h"
#include "adrec/core/progress.h"
#include "adrec/core/text.h"
#include "adrec/data/dataset_io.h"
#include "adrec/models/sequence_model.h"
#include "adrec/text/tensor_io.h"
#include "adrec/train/ranking_model.h"
#include "adrec/train/run_files.h"
#include "adrec/train/seq_train.h"
#include "adrec/train/train_config.h"

#ifndef ADREC_VERSION
#define ADREC_VERSION "dev"
#endif

namespace adrec::train {
namespace {

using nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;
constexpr const char* kModelPrefix = "model/";  // tensor names in bundles and checkpoints

// [train] of a sequence config. Defaults are the HSTU reference's ML-1M settings (AdamW 1e-3,
// batch 128, 128 uniform negatives plus in-batch, cosine / 0.05).
struct SeqSettings {
  int epochs = 100;
  int64_t batch_size = 128;
  int64_t eval_batch_size = 512;
  std::string optimizer = "adamw";  // adam | adamw
  double lr = 1e-3, weight_decay = 0.0, adam_beta2 = 0.98;
  std::string loss = "sampled_softmax";
  SampledSoftmaxOptions softmax;
  double clip_norm = 0.0;
  int eval_every = 1;  // epochs
  int patience = 10;   // evaluations without a better valid NDCG@10 before stopping
  bool eval_exclude_seen = false;
  bool bf16 = true;
  bool deterministic = false;
  int64_t max_len = 200;  // model.max_len
  int64_t length_buckets = 1;  // train.length_buckets (SeqStepOptions; 1 = off)
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
  ADREC_RETURN_IF_ERROR(cfg.Get("train.num_negatives", &s->softmax.num_negatives));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.in_batch_negatives", &s->softmax.in_batch));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.in_batch_max", &s->softmax.in_batch_max));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.temperature", &s->softmax.temperature));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.l2_normalize", &s->softmax.l2_normalize));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.clip_norm", &s->clip_norm));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.eval_every", &s->eval_every));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.patience", &s->patience));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.eval_exclude_seen", &s->eval_exclude_seen));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.bf16", &s->bf16));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.deterministic", &s->deterministic));
  ADREC_RETURN_IF_ERROR(cfg.Get("model.max_len", &s->max_len));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.length_buckets", &s->length_buckets));
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
  if (s->loss != "sampled_softmax" && s->loss != "bce") {
    return InvalidArgumentError(src + "train.loss '" + s->loss + "' is not one of sampled_softmax, bce");
  }
  if (s->softmax.num_negatives < 0 || (s->softmax.num_negatives == 0 && !s->softmax.in_batch)) {
    return InvalidArgumentError(src + "train.num_negatives must be >= 0, and > 0 without in-batch negatives");
  }
  if (s->softmax.in_batch_max <= 0) return InvalidArgumentError(src + "train.in_batch_max must be positive");
  if (!(s->softmax.temperature > 0)) return InvalidArgumentError(src + "train.temperature must be positive");
  if (s->clip_norm < 0 || s->eval_every <= 0 || s->patience < 0) {
    return InvalidArgumentError(src + "train.clip_norm and train.patience must be >= 0, train.eval_every > 0");
  }
  if (s->max_len <= 0 || s->max_len > 65536) return InvalidArgumentError(src + "model.max_len must be in [1, 65536]");
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
  ADREC_ASSIGN_OR_RETURN(b.manifest, ReadBundleManifest(dir, "sequence"));
  const nlohmann::json& j = b.manifest;
  const std::string manifest_path = (dir / kBundleManifestFile).string();
  if (!j.contains("config") || !j.contains("shape") || !j["config"].is_string() || !j["shape"].is_object()) {
    return DataLossError(manifest_path + ": missing config or shape");
  }
  const std::string model = j.value("model", "");
  ADREC_ASSIGN_OR_RETURN(Config cfg, ParseTrainConfig(j["config"].get<std::string>(), manifest_path + " [config]", model));
  models::SequenceShape shape{j["shape"].value("num_items", int64_t{0}), j["shape"].value("max_len", int64_t{0})};
  ADREC_ASSIGN_OR_RETURN(b.model, models::MakeSequenceModel(model, shape, cfg));
  b.model->to(device);
  b.cosine = j.value("score", "cosine") == "cosine";
  const auto weights = dir / kBundleWeightsFile;
  if (!std::filesystem::exists(weights)) return NotFoundError("bundle " + dir.string() + ": no " + kBundleWeightsFile);
  ADREC_ASSIGN_OR_RETURN(auto tensors, text::LoadTensors(weights, device));
  ADREC_RETURN_IF_ERROR(LoadModuleTensors(*b.model, tensors, kModelPrefix, weights.string()));
  b.model->eval();
  return b;
}

struct SeqProgression {
  int64_t epoch = 0, step = 0;
  double best_ndcg = -1.0;
  int64_t best_epoch = -1;
  int evals_since_best = 0;
  double trained_seconds = 0.0;
  int64_t rows_seen = 0, tokens_seen = 0, padded_seen = 0;
};

class SeqTrainer {
 public:
  explicit SeqTrainer(const TrainOptions& o) : o_(o) {}
  StatusOr<ordered_json> Run();

 private:
  Status Prepare();
  StatusOr<ordered_json> EvaluateValid();
  Status WriteCheckpoint();
  Status LoadCheckpoint();
  Status WriteBundle(const ordered_json& valid);
  std::filesystem::path checkpoint_dir() const { return o_.out / "checkpoint"; }

  TrainOptions o_;
  std::string config_text_, model_name_;
  uint64_t config_hash_ = 0;
  SeqSettings s_;
  data::SplitOptions split_options_;
  data::Dataset ds_;
  data::UserSequences seqs_;
  torch::Device device_ = torch::kCPU;
  std::shared_ptr<models::SequenceModel> model_;
  std::unique_ptr<torch::optim::Optimizer> opt_;
  SeqProgression prog_;
  ordered_json best_valid_;
};

Status SeqTrainer::Prepare() {
  if (!o_.resume && std::filesystem::exists(o_.out / kBundleManifestFile) && !o_.overwrite) {
    return AlreadyExistsError("bundle " + o_.out.string() + " exists; pass --overwrite to replace it or --resume to continue it");
  }
  ADREC_ASSIGN_OR_RETURN(config_text_, ReadFile(o_.config));
  ADREC_ASSIGN_OR_RETURN(Config cfg, ParseTrainConfig(config_text_, o_.config.string(), o_.model));
  config_hash_ = TrainConfigHash(config_text_, o_.model);
  ADREC_RETURN_IF_ERROR(cfg.Require("model.name", &model_name_));
  ADREC_RETURN_IF_ERROR(ReadSeqSettings(cfg, &s_));
  if (!cfg.Has("data.split")) ADREC_RETURN_IF_ERROR(cfg.SetString("data", "split", "loo"));
  ADREC_RETURN_IF_ERROR(ReadSplitOptions(cfg, &split_options_));
  if (split_options_.method != "loo") {
    return InvalidArgumentError(o_.config.string() + ": data.split '" + split_options_.method + "': " + model_name_ +
                                " trains on the leave-one-out protocol (data.split = \"loo\")");
  }
  if (s_.deterministic) o_.deterministic = true;
  ADREC_ASSIGN_OR_RETURN(device_, ParseDevice(o_.device));
  if (o_.threads > 0) at::set_num_threads(o_.threads);
  if (o_.deterministic) {
    setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", 0);
    at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/false);
  }

  LogInfo("loading " + o_.data.string());
  ADREC_ASSIGN_OR_RETURN(ds_, data::ReadDataset(o_.data));
  data::Split split;
  if (!o_.split_dir.empty()) {
    ADREC_ASSIGN_OR_RETURN(split, data::ReadSplit(o_.split_dir, ds_));
    if (split.method != "loo") {
      return InvalidArgumentError("--split " + o_.split_dir.string() + " is a '" + split.method + "' split; " +
                                  model_name_ + " needs a leave-one-out (loo) split");
    }
  } else {
    ADREC_ASSIGN_OR_RETURN(split, data::MakeSplit(ds_, split_options_));
  }
  ADREC_ASSIGN_OR_RETURN(seqs_, data::BuildUserSequences(ds_, split));
  if (data::EvalRows(seqs_, data::SplitPart::kValid).empty()) {
    return FailedPreconditionError(o_.data.string() + ": no user has the 3 positive events leave-one-out needs (one to train on, one for valid, one for test)");
  }

  torch::manual_seed(o_.seed);
  const models::SequenceShape shape{static_cast<int64_t>(ds_.num_items()), s_.max_len};
  ADREC_ASSIGN_OR_RETURN(model_, models::MakeSequenceModel(model_name_, shape, cfg));
  ADREC_RETURN_IF_ERROR(cfg.CheckNoUnknownKeys());
  model_->to(device_);
  const auto betas = std::make_tuple(0.9, s_.adam_beta2);
  if (s_.optimizer == "adamw") {
    opt_ = std::make_unique<torch::optim::AdamW>(
        model_->parameters(), torch::optim::AdamWOptions(s_.lr).betas(betas).weight_decay(s_.weight_decay));
  } else {
    opt_ = std::make_unique<torch::optim::Adam>(
        model_->parameters(), torch::optim::AdamOptions(s_.lr).betas(betas).weight_decay(s_.weight_decay));
  }
  uint64_t tokens = 0, longer = 0;
  for (size_t r = 0; r < seqs_.size(); ++r) {
    tokens += seqs_.length(r);
    longer += seqs_.length(r) > static_cast<uint64_t>(s_.max_len) + 1;
  }
  LogInfo(model_name_ + ": " + std::to_string(seqs_.size()) + " users, " + std::to_string(tokens) + " train items, " +
          std::to_string(ds_.num_items()) + " items in the catalog; " + std::to_string(longer) +
          " histories are longer than model.max_len " + std::to_string(s_.max_len) + " and train on their newest items");
  return Status::Ok();
}

StatusOr<ordered_json> SeqTrainer::EvaluateValid() {
  SeqEvalOptions eo;
  eo.part = data::SplitPart::kValid;
  eo.batch_size = s_.eval_batch_size;
  eo.l2_normalize = s_.softmax.l2_normalize;
  eo.ranking.exclude_seen = s_.eval_exclude_seen;
  eo.ranking.coverage_ks = {};
  eo.ranking.threads = o_.threads > 0 ? static_cast<size_t>(o_.threads) : 0;
  eo.device = device_;
  ADREC_ASSIGN_OR_RETURN(eval::RankingResult r, EvaluateSequenceModel(*model_, seqs_, eo));
  model_->train();
  return MetricsJson(r);
}

Status SeqTrainer::WriteBundle(const ordered_json& valid) {
  ordered_json m;
  m["format"] = "adrec-bundle";
  m["format_version"] = kBundleFormatVersion;
  m["kind"] = "sequence";
  m["model"] = model_name_;
  m["adrec_version"] = ADREC_VERSION;
  m["created_utc"] = NowUtc();
  m["shape"] = {{"num_items", model_->shape().num_items}, {"max_len", model_->shape().max_len}};
  m["score"] = s_.softmax.l2_normalize ? "cosine" : "dot";
  m["config"] = config_text_;
  m["split"] = SplitJson(split_options_);
  if (!o_.split_dir.empty()) m["split"]["dir"] = std::filesystem::absolute(o_.split_dir).string();
  m["data"] = {{"name", ds_.info.name},
               {"source_format", ds_.info.source_format},
               {"events", ds_.num_events()},
               {"users", ds_.num_users()},
               {"items", ds_.num_items()},
               {"item_vocabulary_hash", ItemVocabularyHash(ds_)}};
  m["epoch"] = prog_.epoch;
  m["step"] = prog_.step;
  m["seed"] = o_.seed;
  m["metrics"] = {{"valid", valid}};
  m["weights"] = kBundleWeightsFile;
  std::error_code ec;
  std::filesystem::create_directories(o_.out, ec);
  ADREC_RETURN_IF_ERROR(text::SaveTensors(o_.out / kBundleWeightsFile, ModuleTensors(*model_, kModelPrefix),
                                          {{"format", "pt"}, {"adrec_model", model_name_}}));
  return AtomicWriteFile(o_.out / kBundleManifestFile, m.dump(2) + "\n");
}

Status SeqTrainer::WriteCheckpoint() {
  ordered_json j;
  j["model"] = model_name_;
  j["config_hash"] = config_hash_;
  j["epoch"] = prog_.epoch;
  j["step"] = prog_.step;
  j["best_ndcg"] = prog_.best_ndcg;
  j["best_epoch"] = prog_.best_epoch;
  j["evals_since_best"] = prog_.evals_since_best;
  j["trained_seconds"] = prog_.trained_seconds;
  j["rows_seen"] = prog_.rows_seen;
  j["tokens_seen"] = prog_.tokens_seen;
  j["best_valid"] = best_valid_;
  return WriteCheckpointDir(checkpoint_dir(), ModuleTensors(*model_, kModelPrefix), *opt_, j);
}

Status SeqTrainer::LoadCheckpoint() {
  ADREC_ASSIGN_OR_RETURN(nlohmann::json j, ReadCheckpointJson(checkpoint_dir(), model_name_, config_hash_));
  prog_.epoch = j.value("epoch", int64_t{0});
  prog_.step = j.value("step", int64_t{0});
  prog_.best_ndcg = j.value("best_ndcg", -1.0);
  prog_.best_epoch = j.value("best_epoch", int64_t{-1});
  prog_.evals_since_best = j.value("evals_since_best", 0);
  prog_.trained_seconds = j.value("trained_seconds", 0.0);
  prog_.rows_seen = j.value("rows_seen", int64_t{0});
  prog_.tokens_seen = j.value("tokens_seen", int64_t{0});
  if (j.contains("best_valid")) best_valid_ = j["best_valid"];
  ADREC_RETURN_IF_ERROR(LoadCheckpointState(checkpoint_dir(), device_, *opt_, [&](const auto& tensors, const std::string& source) {
    return LoadModuleTensors(*model_, tensors, kModelPrefix, source);
  }));
  LogInfo("resuming after epoch " + std::to_string(prog_.epoch) + " (step " + std::to_string(prog_.step) + ")");
  return Status::Ok();
}

StatusOr<ordered_json> SeqTrainer::Run() {
  ADREC_RETURN_IF_ERROR(Prepare());
  std::error_code ec;
  if (!o_.resume && o_.overwrite) {
    std::filesystem::remove(o_.out / "metrics.jsonl", ec);
    std::filesystem::remove_all(checkpoint_dir(), ec);
  }
  std::filesystem::create_directories(o_.out, ec);
  if (ec) return IoError("cannot create " + o_.out.string() + ": " + ec.message());
  if (o_.resume) ADREC_RETURN_IF_ERROR(LoadCheckpoint());

  ProgressOptions po;
  po.unit = "sequences";
  po.enabled = o_.show_progress;
  Progress progress("train " + model_name_, static_cast<uint64_t>(s_.epochs) * seqs_.size(), po);
  progress.Add(static_cast<uint64_t>(prog_.epoch) * seqs_.size());
  SeqStepOptions so;
  so.batch_size = s_.batch_size;
  so.loss = s_.loss;
  so.softmax = s_.softmax;
  so.clip_norm = s_.clip_norm;
  so.device = device_;
  so.bf16 = s_.bf16;
  so.length_buckets = s_.length_buckets;
  so.stop = o_.stop;
  so.progress = &progress;

  std::string stopped = "completed";
  const double seconds_before = prog_.trained_seconds;
  const int64_t rows_before = prog_.rows_seen, tokens_before = prog_.tokens_seen;
  uint64_t truncated = 0;
  const auto t0 = Clock::now();
  while (prog_.epoch < s_.epochs) {
    // One shuffle stream per epoch, so a resumed run draws the same orders.
    std::mt19937_64 rng(o_.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(prog_.epoch));
    ADREC_ASSIGN_OR_RETURN(SeqEpochResult r, TrainSequenceEpoch(*model_, *opt_, seqs_, so, rng));
    if (r.interrupted) {
      progress.Finish();
      return Status(StatusCode::kCancelled, "interrupted in epoch " + std::to_string(prog_.epoch + 1) +
                                                "; the checkpoint after epoch " + std::to_string(prog_.epoch) +
                                                " is in " + checkpoint_dir().string() +
                                                "; --resume continues from there");
    }
    ++prog_.epoch;
    prog_.step += r.steps;
    prog_.rows_seen += r.rows;
    prog_.tokens_seen += r.tokens;
    prog_.padded_seen += r.padded;
    truncated = r.truncated;
    prog_.trained_seconds = seconds_before + std::chrono::duration<double>(Clock::now() - t0).count();
    const bool last = prog_.epoch == s_.epochs;
    if (prog_.epoch % s_.eval_every == 0 || last) {
      ADREC_ASSIGN_OR_RETURN(ordered_json valid, EvaluateValid());
      const double ndcg = valid.value("ndcg@10", 0.0);
      ordered_json line;
      line["epoch"] = prog_.epoch;
      line["step"] = prog_.step;
      line["train_loss"] = r.mean_loss;
      line["elapsed_s"] = prog_.trained_seconds;
      line["valid"] = valid;
      std::ofstream log(o_.out / "metrics.jsonl", std::ios::app);
      log << line.dump() << "\n";
      if (!log) return IoError("cannot append to " + (o_.out / "metrics.jsonl").string());
      LogInfo("epoch " + std::to_string(prog_.epoch) + ": loss " + FixedDigits(r.mean_loss, 4) + ", valid hr@10 " +
              FixedDigits(valid.value("hr@10", 0.0), 4) + " ndcg@10 " + FixedDigits(ndcg, 4));
      if (ndcg > prog_.best_ndcg) {
        prog_.best_ndcg = ndcg;
        prog_.best_epoch = prog_.epoch;
        prog_.evals_since_best = 0;
        best_valid_ = valid;
        ADREC_RETURN_IF_ERROR(WriteBundle(valid));
      } else if (++prog_.evals_since_best > s_.patience) {
        stopped = "early_stopping";
      }
    }
    ADREC_RETURN_IF_ERROR(WriteCheckpoint());
    if (stopped != "completed") break;
    if (o_.max_steps > 0 && prog_.step >= o_.max_steps) {
      stopped = "max_steps";
      break;
    }
  }
  progress.Finish();

  ordered_json summary;
  summary["bundle"] = o_.out.string();
  summary["model"] = model_name_;
  summary["epochs"] = prog_.epoch;
  summary["steps"] = prog_.step;
  summary["best_epoch"] = prog_.best_epoch;
  summary["stopped"] = stopped;
  summary["train_seconds"] = prog_.trained_seconds;
  const double secs = prog_.trained_seconds - seconds_before;
  summary["sequences_per_s"] = secs > 0 ? static_cast<double>(prog_.rows_seen - rows_before) / secs : 0.0;
  summary["tokens_per_s"] = secs > 0 ? static_cast<double>(prog_.tokens_seen - tokens_before) / secs : 0.0;
  summary["truncated"] = truncated;
  // Share of the computed positions that were padding (this run's epochs).
  summary["padding_share"] = prog_.padded_seen > 0 ? 1.0 - static_cast<double>(prog_.tokens_seen - tokens_before) /
                                                               static_cast<double>(prog_.padded_seen) : 0.0;
  // Stopped before the first evaluation, or at --max-steps (to be resumed): no test yet.
  if (prog_.best_epoch < 0 || stopped == "max_steps") return summary;

  // The bundle holds the best weights by valid NDCG@10: test them from disk, as a user would.
  EvalOptions eo = EvalOptionsFor(o_);
  eo.batch_size = static_cast<size_t>(s_.eval_batch_size);
  eo.exclude_seen = s_.eval_exclude_seen;
  ADREC_ASSIGN_OR_RETURN(ordered_json test, EvaluateSequence(eo));
  ADREC_RETURN_IF_ERROR(AddFinalMetrics(o_.out, best_valid_, "test", test, &summary));
  return summary;
}

}  // namespace

StatusOr<ordered_json> TrainSequence(const TrainOptions& options) {
  try {
    SeqTrainer t(options);
    return t.Run();
  } catch (const c10::Error& e) {
    return InternalError(std::string("libtorch: ") + e.what_without_backtrace());
  }
}

StatusOr<ordered_json> EvaluateSequence(const EvalOptions& o) {
  try {
    if (!o.protocol.empty() && o.protocol != "loo") {
      return InvalidArgumentError("--protocol " + o.protocol + ": a sequence bundle is evaluated with --protocol loo");
    }
    if (o.part != "test" && o.part != "valid") {
      return InvalidArgumentError("--split " + o.part + ": leave-one-out evaluates the valid or the test item");
    }
    ADREC_ASSIGN_OR_RETURN(torch::Device device, ParseDevice(o.device));
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
    data::Split split;
    if (const auto dir = EvalSplitDir(b.manifest, o.split_dir); !dir.empty()) {
      ADREC_ASSIGN_OR_RETURN(split, data::ReadSplit(dir, ds));
    } else {
      ADREC_ASSIGN_OR_RETURN(split, data::MakeSplit(ds, SplitFromJson(b.manifest.value("split", nlohmann::json::object()))));
    }
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

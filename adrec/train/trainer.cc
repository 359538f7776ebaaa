#include "adrec/train/trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>

#include "adrec/core/config.h"
#include "adrec/core/file.h"
#include "adrec/core/log_line.h"
#include "adrec/core/progress.h"
#include "adrec/core/text.h"
#include "adrec/data/dataset_io.h"
#include "adrec/data/split.h"
#include "adrec/text/tensor_io.h"
#include "adrec/models/sequence_model.h"
#include "adrec/train/autocast.h"
#include "adrec/train/ctrl.h"
#include "adrec/train/ranking_model.h"
#include "adrec/train/run_files.h"
#include "adrec/train/seq_ranker.h"
#include "adrec/train/seq_trainer.h"
#include "adrec/train/train_config.h"

#ifndef ADREC_VERSION
#define ADREC_VERSION "dev"
#endif

namespace adrec::train {
namespace {

using nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

// [train] of a config. Defaults follow common CTR practice (Adam 1e-3 for dense parts,
// row-wise Adagrad for embeddings as in TorchRec/FBGEMM).
struct TrainSettings {
  int epochs = 5;
  size_t batch_size = 4096;
  size_t eval_batch_size = 16384;
  std::string optimizer = "adam";  // adam | adamw (dense parameters)
  double lr = 1e-3;
  double weight_decay = 0.0;
  std::string embedding_optimizer = "adagrad";
  double embedding_lr = 0.05;
  double embedding_weight_decay = 0.0;
  std::string linear_optimizer;  // "" = embedding_optimizer (LR configs use ftrl)
  // FTRL-proximal (McMahan et al. 2013): per-coordinate rate alpha / (beta + sqrt(n)); l1 makes
  // rare features exactly zero, l2 shrinks them.
  double ftrl_alpha = 0.05, ftrl_beta = 1.0, ftrl_l1 = 0.0, ftrl_l2 = 0.0;
  double clip_norm = 0.0;        // global L2 norm of dense gradients; 0 = no clipping
  std::string schedule = "constant";  // constant | cosine | linear (decay to 0), all with warmup
  int64_t warmup_steps = 0;
  int64_t eval_every = 0;         // steps; 0 = once per epoch
  int64_t checkpoint_every = 1000;
  int patience = 2;               // evaluations without a better valid AUC before stopping
  bool deterministic = false;
  bool bf16 = true;               // autocast to bf16 on CUDA (ignored on CPU)
  std::string primary_target;     // "" = the first target
  // Which valid figure picks the kept weights and drives early stopping: the primary target's
  // AUC, or the mean AUC of every target with a loss weight (multi-task towers peak at
  // different epochs: the sparse conversion tower overfits while click still improves).
  std::string select = "primary_auc";  // primary_auc | mean_auc
  bool init_output_bias = true;   // start each target's output at its train base rate
};

Status ReadSettings(Config& cfg, TrainSettings* s) {
  ADREC_RETURN_IF_ERROR(cfg.Get("train.epochs", &s->epochs));
  int64_t bs = static_cast<int64_t>(s->batch_size), ebs = static_cast<int64_t>(s->eval_batch_size);
  ADREC_RETURN_IF_ERROR(cfg.Get("train.batch_size", &bs));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.eval_batch_size", &ebs));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.optimizer", &s->optimizer));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.lr", &s->lr));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.weight_decay", &s->weight_decay));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.embedding_optimizer", &s->embedding_optimizer));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.embedding_lr", &s->embedding_lr));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.embedding_weight_decay", &s->embedding_weight_decay));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.linear_optimizer", &s->linear_optimizer));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.ftrl_alpha", &s->ftrl_alpha));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.ftrl_beta", &s->ftrl_beta));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.ftrl_l1", &s->ftrl_l1));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.ftrl_l2", &s->ftrl_l2));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.clip_norm", &s->clip_norm));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.schedule", &s->schedule));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.warmup_steps", &s->warmup_steps));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.eval_every", &s->eval_every));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.checkpoint_every", &s->checkpoint_every));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.patience", &s->patience));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.deterministic", &s->deterministic));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.bf16", &s->bf16));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.primary_target", &s->primary_target));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.select", &s->select));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.init_output_bias", &s->init_output_bias));
  const std::string src = cfg.source() + ": ";
  if (s->epochs <= 0) return InvalidArgumentError(src + "train.epochs must be positive");
  if (bs <= 0 || bs > (1 << 24)) return InvalidArgumentError(src + "train.batch_size must be in [1, 16777216]");
  if (ebs <= 0 || ebs > (1 << 24)) return InvalidArgumentError(src + "train.eval_batch_size must be in [1, 16777216]");
  s->batch_size = static_cast<size_t>(bs);
  s->eval_batch_size = static_cast<size_t>(ebs);
  if (s->optimizer != "adam" && s->optimizer != "adamw") {
    return InvalidArgumentError(src + "train.optimizer '" + s->optimizer + "' is not one of adam, adamw");
  }
  if (!(s->lr > 0) || !(s->embedding_lr > 0)) return InvalidArgumentError(src + "train.lr and train.embedding_lr must be positive");
  if (s->schedule != "constant" && s->schedule != "cosine" && s->schedule != "linear") {
    return InvalidArgumentError(src + "train.schedule '" + s->schedule + "' is not one of constant, cosine, linear");
  }
  if (s->select != "primary_auc" && s->select != "mean_auc") {
    return InvalidArgumentError(src + "train.select '" + s->select + "' is not one of primary_auc, mean_auc");
  }
  if (s->clip_norm < 0 || s->warmup_steps < 0 || s->eval_every < 0 || s->checkpoint_every < 0 || s->patience < 0) {
    return InvalidArgumentError(src + "train.clip_norm, warmup_steps, eval_every, checkpoint_every and patience must be >= 0");
  }
  return Status::Ok();
}

double LearningRate(const TrainSettings& s, int64_t step, int64_t total_steps) {
  if (s.warmup_steps > 0 && step < s.warmup_steps) return s.lr * static_cast<double>(step + 1) / s.warmup_steps;
  const double span = std::max<double>(1.0, static_cast<double>(total_steps - s.warmup_steps));
  const double progress = std::clamp(static_cast<double>(step - s.warmup_steps) / span, 0.0, 1.0);
  if (s.schedule == "cosine") return s.lr * 0.5 * (1.0 + std::cos(M_PI * progress));
  if (s.schedule == "linear") return s.lr * (1.0 - progress);
  return s.lr;
}

// The valid figure that train.select names; -1 where it is undefined (no positives).
double SelectionScore(const ordered_json& valid, const data::FeatureSpec& spec, const std::string& select) {
  if (select != "mean_auc") return valid.value("auc", -1.0);
  double sum = 0;
  int n = 0;
  const ordered_json& targets = valid.contains("targets") ? valid["targets"] : ordered_json::object();
  for (const auto& t : spec.targets) {
    if (!(t.weight > 0) || !targets.contains(t.name) || !targets[t.name].contains("auc")) continue;
    sum += targets[t.name]["auc"].get<double>();
    ++n;
  }
  return n > 0 ? sum / n : -1.0;
}

// Mean BCE per target over the samples where it is defined, weighted-summed over targets.
torch::Tensor MaskedBce(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& mask,
                        const torch::Tensor& target_weights) {
  torch::Tensor per = torch::binary_cross_entropy_with_logits(logits.to(torch::kFloat32), labels, mask, {},
                                                              at::Reduction::None);
  torch::Tensor per_target = per.sum(0) / mask.sum(0).clamp_min(1.0);
  return (per_target * target_weights).sum();
}

// Everything a checkpoint restores beyond the tensors.
struct Progression {
  uint64_t epoch = 0;
  uint64_t batch_in_epoch = 0;
  int64_t step = 0;
  double best_auc = -1.0;
  int64_t best_step = -1;
  int evals_since_best = 0;
  double trained_seconds = 0.0;
  uint64_t samples_seen = 0;
};

ordered_json ProgressionJson(const Progression& p, const std::string& model, uint64_t config_hash) {
  ordered_json j;
  j["model"] = model;
  j["config_hash"] = config_hash;
  j["epoch"] = p.epoch;
  j["batch_in_epoch"] = p.batch_in_epoch;
  j["step"] = p.step;
  j["best_auc"] = p.best_auc;
  j["best_step"] = p.best_step;
  j["evals_since_best"] = p.evals_since_best;
  j["trained_seconds"] = p.trained_seconds;
  j["samples_seen"] = p.samples_seen;
  return j;
}

class Trainer {
 public:
  explicit Trainer(const TrainOptions& o) : o_(o) {}
  StatusOr<ordered_json> Run();

 private:
  Status Prepare();
  Status Evaluate(ordered_json* out, double train_loss);
  Status WriteCheckpoint();
  Status LoadCheckpoint();
  ordered_json Manifest(const ordered_json& metrics) const;
  std::filesystem::path checkpoint_dir() const { return o_.out / "checkpoint"; }

  TrainOptions o_;
  std::string config_text_;
  uint64_t config_hash_ = 0;
  std::unique_ptr<Config> cfg_;
  TrainSettings s_;
  data::SplitOptions split_options_;
  data::Dataset ds_;
  data::Split split_;
  data::FeatureSpec spec_;
  CtrlSettings ctrl_;
  data::FeatureSpec ctrl_spec_;   // the text fields only CTRL's pretraining reads
  ordered_json ctrl_summary_;     // what PretrainCtrl returned (null without a CTRL stage)
  data::SampleSet train_, valid_, test_;
  torch::Device device_ = torch::kCPU;
  RankingModel model_;
  std::string model_name_;
  std::unique_ptr<torch::optim::Optimizer> opt_;
  torch::Tensor target_weights_;
  int primary_ = 0;
  Progression prog_;
  ordered_json best_valid_;
};

Status Trainer::Prepare() {
  if (!o_.resume && std::filesystem::exists(o_.out / kBundleManifestFile) && !o_.overwrite) {
    return AlreadyExistsError("bundle " + o_.out.string() + " exists; pass --overwrite to replace it or --resume to continue it");
  }
  ADREC_ASSIGN_OR_RETURN(config_text_, ReadFile(o_.config));
  config_hash_ = TrainConfigHash(config_text_, o_.model);
  ADREC_ASSIGN_OR_RETURN(Config cfg, ParseTrainConfig(config_text_, o_.config.string(), o_.model));
  cfg_ = std::make_unique<Config>(std::move(cfg));
  ADREC_RETURN_IF_ERROR(ReadSettings(*cfg_, &s_));
  ADREC_RETURN_IF_ERROR(ReadSplitOptions(*cfg_, &split_options_));
  ADREC_ASSIGN_OR_RETURN(spec_, data::FeatureSpec::FromConfig(*cfg_));
  ADREC_RETURN_IF_ERROR(ReadCtrlSettings(*cfg_, &ctrl_));
  if (ctrl_.enabled()) {
    ADREC_ASSIGN_OR_RETURN(ctrl_spec_, TakeCtrlFields(&spec_, ctrl_, o_.config.string()));
  }
  ADREC_RETURN_IF_ERROR(cfg_->Require("model.name", &model_name_));
  if (s_.deterministic) o_.deterministic = true;

  ADREC_ASSIGN_OR_RETURN(device_, ParseDevice(o_.device));
  if (o_.threads > 0) at::set_num_threads(o_.threads);
  if (o_.deterministic) {
    // cuBLAS needs a fixed workspace to be deterministic; must be set before CUDA starts.
    setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", 0);
    at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/false);
  }

  LogInfo("loading " + o_.data.string());
  ADREC_ASSIGN_OR_RETURN(ds_, data::ReadDataset(o_.data));
  if (!o_.split_dir.empty()) {
    ADREC_ASSIGN_OR_RETURN(split_, data::ReadSplit(o_.split_dir, ds_));
  } else {
    ADREC_ASSIGN_OR_RETURN(split_, data::MakeSplit(ds_, split_options_));
  }
  ADREC_RETURN_IF_ERROR(spec_.Bind(ds_));
  if (ctrl_.enabled()) ADREC_RETURN_IF_ERROR(ctrl_spec_.Bind(ds_));
  primary_ = s_.primary_target.empty() ? 0 : spec_.TargetIndex(s_.primary_target);
  if (primary_ < 0) return InvalidArgumentError(o_.config.string() + ": train.primary_target '" + s_.primary_target + "' is not a target");
  ADREC_ASSIGN_OR_RETURN(train_, data::MakeSamples(ds_, spec_, &split_, data::SplitPart::kTrain));
  ADREC_ASSIGN_OR_RETURN(valid_, data::MakeSamples(ds_, spec_, &split_, data::SplitPart::kValid));
  ADREC_ASSIGN_OR_RETURN(test_, data::MakeSamples(ds_, spec_, &split_, data::SplitPart::kTest));
  if (train_.size() == 0) {
    return FailedPreconditionError(o_.data.string() + ": the train part of split '" + split_.method +
                                   "' has no samples (samples are events of action " +
                                   data::ActionMaskNames(spec_.sample_actions) + ")");
  }
  spec_.FitNormalization(ds_, train_.events);

  BuildOptions bo;
  bo.device = device_;
  bo.seed = o_.seed;
  bo.embedding_optimizer.kind = s_.embedding_optimizer;
  bo.embedding_optimizer.lr = s_.embedding_lr;
  bo.embedding_optimizer.weight_decay = s_.embedding_weight_decay;
  bo.embedding_optimizer.ftrl_alpha = s_.ftrl_alpha;
  bo.embedding_optimizer.ftrl_beta = s_.ftrl_beta;
  bo.embedding_optimizer.ftrl_l1 = s_.ftrl_l1;
  bo.embedding_optimizer.ftrl_l2 = s_.ftrl_l2;
  bo.linear_optimizer = s_.linear_optimizer;
  ADREC_ASSIGN_OR_RETURN(model_, BuildRankingModel(spec_, ds_.scenes, *cfg_, bo));
  ADREC_RETURN_IF_ERROR(cfg_->CheckNoUnknownKeys());
  if (s_.init_output_bias) {
    if (!InitOutputBias(*model_.net, BaseRates(train_))) LogWarn(model_name_ + ": no output bias found to start at the base rate");
  }

  if (s_.optimizer == "adamw") {
    opt_ = std::make_unique<torch::optim::AdamW>(model_.net->parameters(),
                                                 torch::optim::AdamWOptions(s_.lr).weight_decay(s_.weight_decay));
  } else {
    opt_ = std::make_unique<torch::optim::Adam>(model_.net->parameters(),
                                                torch::optim::AdamOptions(s_.lr).weight_decay(s_.weight_decay));
  }
  std::vector<float> w;
  for (const auto& t : spec_.targets) w.push_back(t.weight);
  target_weights_ = torch::tensor(w).to(device_);
  LogInfo(model_name_ + ": " + std::to_string(train_.size()) + " train / " + std::to_string(valid_.size()) + " valid / " +
          std::to_string(test_.size()) + " test samples, " + std::to_string(spec_.targets.size()) + " targets, split " +
          split_.method);
  return Status::Ok();
}

Status Trainer::Evaluate(ordered_json* out, double train_loss) {
  PredictOptions po;
  po.batch_size = s_.eval_batch_size;
  po.threads = o_.threads > 0 ? o_.threads : 0;
  po.primary = primary_;
  po.with_truth = TruthMatchesPrimary(ds_, spec_, primary_);
  eval::CtrPredictions p = Predict(model_, ds_, valid_.size() > 0 ? valid_ : train_, po);
  model_.net->train();
  *out = eval::CtrReport(p);
  ordered_json line;
  line["step"] = prog_.step;
  line["epoch"] = prog_.epoch;
  line["train_loss"] = train_loss;
  line["elapsed_s"] = prog_.trained_seconds;
  line["valid"] = *out;
  std::ofstream log(o_.out / "metrics.jsonl", std::ios::app);
  log << line.dump() << "\n";
  if (!log) return IoError("cannot append to " + (o_.out / "metrics.jsonl").string());
  return Status::Ok();
}

ordered_json Trainer::Manifest(const ordered_json& metrics) const {
  ordered_json m;
  m["format"] = "adrec-bundle";
  m["format_version"] = kBundleFormatVersion;
  m["kind"] = "ranking";
  m["model"] = model_name_;
  m["adrec_version"] = ADREC_VERSION;
  m["created_utc"] = NowUtc();
  m["targets"] = nlohmann::json::array();
  for (const auto& t : spec_.targets) m["targets"].push_back(t.name);
  m["primary_target"] = spec_.targets[primary_].name;
  m["scenes"] = ds_.scenes;
  m["feature_spec"] = spec_.ToJson();
  m["config"] = config_text_;
  m["split"] = SplitJson(split_options_);
  if (!o_.split_dir.empty()) m["split"]["dir"] = std::filesystem::absolute(o_.split_dir).string();
  m["data"] = {{"name", ds_.info.name},
               {"source_format", ds_.info.source_format},
               {"provenance", ds_.info.provenance},
               {"events", ds_.num_events()},
               {"users", ds_.num_users()},
               {"items", ds_.num_items()}};
  m["step"] = prog_.step;
  m["seed"] = o_.seed;
  if (!ctrl_summary_.is_null()) m["ctrl"] = ctrl_summary_;
  m["metrics"] = metrics;
  m["weights"] = kBundleWeightsFile;
  return m;
}

Status Trainer::WriteCheckpoint() {
  ordered_json tj = ProgressionJson(prog_, model_name_, config_hash_);
  tj["best_valid"] = best_valid_;
  if (!ctrl_summary_.is_null()) tj["ctrl"] = ctrl_summary_;
  return WriteCheckpointDir(checkpoint_dir(), ModelTensors(model_, /*with_optimizer=*/true), *opt_, tj);
}

Status Trainer::LoadCheckpoint() {
  ADREC_ASSIGN_OR_RETURN(nlohmann::json j, ReadCheckpointJson(checkpoint_dir(), model_name_, config_hash_));
  prog_.epoch = j.value("epoch", uint64_t{0});
  prog_.batch_in_epoch = j.value("batch_in_epoch", uint64_t{0});
  prog_.step = j.value("step", int64_t{0});
  prog_.best_auc = j.value("best_auc", -1.0);
  prog_.best_step = j.value("best_step", int64_t{-1});
  prog_.evals_since_best = j.value("evals_since_best", 0);
  prog_.trained_seconds = j.value("trained_seconds", 0.0);
  prog_.samples_seen = j.value("samples_seen", uint64_t{0});
  if (j.contains("best_valid")) best_valid_ = j["best_valid"];
  if (j.contains("ctrl")) ctrl_summary_ = j["ctrl"];
  ADREC_RETURN_IF_ERROR(LoadCheckpointState(checkpoint_dir(), device_, *opt_, [&](const auto& tensors, const std::string& source) {
    return LoadModelTensors(model_, tensors, /*with_optimizer=*/true, source);
  }));
  LogInfo("resuming at epoch " + std::to_string(prog_.epoch) + " batch " + std::to_string(prog_.batch_in_epoch) +
          " (step " + std::to_string(prog_.step) + ")");
  return Status::Ok();
}

StatusOr<ordered_json> Trainer::Run() {
  ADREC_RETURN_IF_ERROR(Prepare());
  std::error_code ec;
  if (!o_.resume && o_.overwrite) {
    std::filesystem::remove(o_.out / "metrics.jsonl", ec);
    std::filesystem::remove_all(checkpoint_dir(), ec);
  }
  std::filesystem::create_directories(o_.out, ec);
  if (ec) return IoError("cannot create " + o_.out.string() + ": " + ec.message());
  if (o_.resume) ADREC_RETURN_IF_ERROR(LoadCheckpoint());
  if (ctrl_.enabled() && !o_.resume) {
    CtrlRunOptions co;
    co.seed = o_.seed;
    co.threads = o_.threads > 0 ? o_.threads : 0;
    co.show_progress = o_.show_progress;
    co.autocast = device_.is_cuda() && s_.bf16;
    co.stop = o_.stop;
    ADREC_ASSIGN_OR_RETURN(ctrl_summary_, PretrainCtrl(model_, ds_, ctrl_spec_, train_, s_.batch_size, ctrl_, co));
    LogInfo("ctrl: contrastive loss " + FixedDigits(ctrl_summary_.value("first_loss", 0.0), 3) + " -> " +
            FixedDigits(ctrl_summary_.value("last_epoch_loss", 0.0), 3) + " (chance " +
            FixedDigits(ctrl_summary_.value("chance_loss", 0.0), 3) + ") in " +
            FixedDigits(ctrl_summary_.value("seconds", 0.0), 1) + " s; fine-tuning the tabular model alone");
  }

  data::BatchStreamOptions so;
  so.batch_size = s_.batch_size;
  so.shuffle = true;
  so.seed = o_.seed;
  so.threads = o_.threads > 0 ? o_.threads : 0;
  data::BatchStream stream(ds_, spec_, train_, so);
  const int64_t per_epoch = static_cast<int64_t>(stream.batches_per_epoch());
  const int64_t total_steps = per_epoch * s_.epochs;
  const int64_t eval_every = s_.eval_every > 0 ? s_.eval_every : per_epoch;
  ProgressOptions po;
  po.unit = "samples";
  po.enabled = o_.show_progress;
  Progress progress("train " + model_name_, static_cast<uint64_t>(total_steps) * s_.batch_size, po);
  progress.Add(prog_.samples_seen);

  const bool autocast = device_.is_cuda() && s_.bf16;
  std::string stopped = "completed";
  double loss_sum = 0;
  int64_t loss_n = 0, last_good_checkpoint = prog_.step;
  model_.net->train();
  data::Batch batch;
  auto t0 = Clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  const double seconds_before = prog_.trained_seconds;
  const uint64_t samples_before = prog_.samples_seen;
  bool done = false;
  while (!done && prog_.epoch < static_cast<uint64_t>(s_.epochs)) {
    stream.StartEpoch(prog_.epoch, prog_.batch_in_epoch);
    while (!done && stream.Next(&batch)) {
      const double lr = LearningRate(s_, prog_.step, total_steps);
      for (auto& g : opt_->param_groups()) g.options().set_lr(lr);
      auto lookup = model_.embeddings->Forward(batch, /*train=*/true, prog_.step);
      torch::Tensor logits = MaybeAutocastBf16(autocast, [&] { return model_.net->forward(lookup.input); });
      const int64_t B = static_cast<int64_t>(batch.size), T = static_cast<int64_t>(spec_.targets.size());
      torch::Tensor labels = torch::from_blob(batch.labels.data(), {B, T}, torch::kFloat32).to(device_);
      torch::Tensor mask = torch::from_blob(batch.mask.data(), {B, T}, torch::kFloat32).to(device_);
      torch::Tensor loss = MaskedBce(logits, labels, mask, target_weights_);
      const double loss_value = loss.item<double>();
      if (!std::isfinite(loss_value)) {
        return DataLossError("training diverged: the loss is " + std::to_string(loss_value) + " at step " +
                             std::to_string(prog_.step) + "; the last good checkpoint (step " +
                             std::to_string(last_good_checkpoint) + ") is kept in " + checkpoint_dir().string() +
                             " (lower train.lr or train.embedding_lr, or set train.clip_norm)");
      }
      opt_->zero_grad();
      loss.backward();
      if (s_.clip_norm > 0) torch::nn::utils::clip_grad_norm_(model_.net->parameters(), s_.clip_norm);
      opt_->step();
      model_.embeddings->Step(lookup, prog_.step);
      loss_sum += loss_value;
      ++loss_n;
      ++prog_.step;
      ++prog_.batch_in_epoch;
      prog_.samples_seen += batch.size;
      progress.Add(batch.size);
      prog_.trained_seconds = seconds_before + elapsed();

      const bool epoch_end = prog_.batch_in_epoch == static_cast<uint64_t>(per_epoch);
      if (epoch_end) {
        ++prog_.epoch;
        prog_.batch_in_epoch = 0;
      }
      bool checkpoint = s_.checkpoint_every > 0 && prog_.step % s_.checkpoint_every == 0;
      if (epoch_end || prog_.step % eval_every == 0) {
        ordered_json valid;
        ADREC_RETURN_IF_ERROR(Evaluate(&valid, loss_n ? loss_sum / loss_n : 0.0));
        loss_sum = 0;
        loss_n = 0;
        const double score = SelectionScore(valid, spec_, s_.select);
        LogInfo("step " + std::to_string(prog_.step) + ": valid auc " + FixedDigits(valid.value("auc", -1.0), 4) +
                " logloss " + FixedDigits(valid.value("logloss", 0.0), 4) +
                (s_.select == "primary_auc" ? "" : ", " + s_.select + " " + FixedDigits(score, 4)));
        if (score > prog_.best_auc || prog_.best_step < 0) {
          prog_.best_auc = score;
          prog_.best_step = prog_.step;
          prog_.evals_since_best = 0;
          best_valid_ = valid;
          ADREC_RETURN_IF_ERROR(WriteBundle(o_.out, model_, Manifest({{"valid", valid}})));
        } else if (++prog_.evals_since_best > s_.patience) {
          stopped = "early_stopping";
          done = true;
        }
        checkpoint = true;
      }
      const bool interrupted = o_.stop != nullptr && o_.stop->load();
      const bool at_limit = o_.max_steps > 0 && prog_.step >= o_.max_steps;
      if (checkpoint || interrupted || at_limit) {
        ADREC_RETURN_IF_ERROR(WriteCheckpoint());
        last_good_checkpoint = prog_.step;
      }
      if (interrupted) {
        progress.Finish();
        return Status(StatusCode::kCancelled, "interrupted at step " + std::to_string(prog_.step) +
                                                  "; checkpoint written to " + checkpoint_dir().string() +
                                                  "; continue with --resume");
      }
      if (at_limit && !done) {
        stopped = "max_steps";
        done = true;
      }
    }
  }
  progress.Finish();

  ordered_json summary;
  summary["bundle"] = o_.out.string();
  summary["model"] = model_name_;
  summary["steps"] = prog_.step;
  summary["epochs"] = prog_.epoch;
  summary["best_step"] = prog_.best_step;
  summary["select"] = s_.select;
  summary["stopped"] = stopped;
  summary["train_seconds"] = prog_.trained_seconds;
  const uint64_t seen = prog_.samples_seen - samples_before;
  const double secs = prog_.trained_seconds - seconds_before;
  summary["samples_per_s"] = secs > 0 ? static_cast<double>(seen) / secs : 0.0;
  if (!ctrl_summary_.is_null()) summary["ctrl"] = ctrl_summary_;
  if (stopped == "max_steps") return summary;

  // The bundle holds the best weights by the train.select figure: test them from disk, as a user would.
  EvalOptions eo = EvalOptionsFor(o_);
  eo.batch_size = s_.eval_batch_size;
  eo.part = test_.size() > 0 ? "test" : "valid";
  ADREC_ASSIGN_OR_RETURN(ordered_json test, EvaluateRanking(eo));
  // Only the manifest gains the final metrics, without rebuilding the model just loaded.
  ADREC_RETURN_IF_ERROR(AddFinalMetrics(o_.out, best_valid_, eo.part, test, &summary));
  return summary;
}

}  // namespace

StatusOr<ordered_json> TrainRanking(const TrainOptions& options) {
  try {
    Trainer t(options);
    return t.Run();
  } catch (const c10::Error& e) {
    return InternalError(std::string("libtorch: ") + e.what_without_backtrace());
  }
}

StatusOr<ordered_json> EvaluateRanking(const EvalOptions& o) {
  try {
    ADREC_ASSIGN_OR_RETURN(torch::Device device, ParseDevice(o.device));
    if (o.threads > 0) at::set_num_threads(o.threads);
    ADREC_ASSIGN_OR_RETURN(LoadedBundle b, LoadBundle(o.bundle, device));
    ADREC_ASSIGN_OR_RETURN(data::Dataset ds, data::ReadDataset(o.data));
    RankingModel& m = b.model;
    if (Status s = m.spec.Bind(ds); !s.ok()) {
      return Status(s.code(), "the dataset does not fit the bundle's features: " + s.message());
    }
    data::Split split;
    const data::Split* split_ptr = nullptr;
    data::SplitPart part = data::SplitPart::kTest;
    if (o.part != "all") {
      if (o.part == "train") part = data::SplitPart::kTrain;
      else if (o.part == "valid") part = data::SplitPart::kValid;
      else if (o.part != "test") return InvalidArgumentError("--split '" + o.part + "' is not one of test, valid, train, all");
      if (const auto dir = EvalSplitDir(b.manifest, o.split_dir); !dir.empty()) {
        ADREC_ASSIGN_OR_RETURN(split, data::ReadSplit(dir, ds));
      } else {
        ADREC_ASSIGN_OR_RETURN(split, data::MakeSplit(ds, SplitFromJson(b.manifest.value("split", nlohmann::json::object()))));
      }
      split_ptr = &split;
    }
    ADREC_ASSIGN_OR_RETURN(data::SampleSet samples, data::MakeSamples(ds, m.spec, split_ptr, part));
    if (samples.size() == 0) return FailedPreconditionError("no samples in the '" + o.part + "' part");
    PredictOptions po;
    po.batch_size = o.batch_size;
    po.threads = o.threads > 0 ? o.threads : 0;
    po.primary = std::max(0, m.spec.TargetIndex(b.manifest.value("primary_target", "")));
    po.with_truth = TruthMatchesPrimary(ds, m.spec, po.primary);
    eval::CtrPredictions p = Predict(m, ds, samples, po);
    if (split_ptr != nullptr && part != data::SplitPart::kTrain && o.cold_threshold > 0) {
      // Cold items: those the model saw fewer than cold_threshold times while training (train
      // samples: sample-action events of the train part; no labels or histories needed).
      std::vector<uint32_t> seen(ds.num_items(), 0);
      for (uint64_t e = 0; e < ds.num_events(); ++e) {
        if (((m.spec.sample_actions >> ds.events.action[e]) & 1u) && split_ptr->PartOf(e) == data::SplitPart::kTrain) {
          ++seen[ds.events.item[e]];
        }
      }
      p.cold_threshold = o.cold_threshold;
      p.item_cold.reserve(p.size());
      for (uint32_t item : p.item) p.item_cold.push_back(seen[item] < o.cold_threshold ? 1 : 0);
    }
    ordered_json out;
    out["bundle"] = o.bundle.string();
    out["model"] = b.manifest.value("model", "");
    out["part"] = o.part;
    const ordered_json report = eval::CtrReport(p);
    for (auto it = report.begin(); it != report.end(); ++it) out[it.key()] = *it;
    return out;
  } catch (const c10::Error& e) {
    return InternalError(std::string("libtorch: ") + e.what_without_backtrace());
  }
}

StatusOr<ordered_json> Train(const TrainOptions& options) {
  std::string name = options.model;
  if (name.empty()) {
    ADREC_ASSIGN_OR_RETURN(Config cfg, Config::LoadFile(options.config));
    ADREC_RETURN_IF_ERROR(cfg.Require("model.name", &name));
  }
  if (name == "hstu_ranker") return TrainSequenceRanker(options);
  return models::IsSequenceModel(name) ? TrainSequence(options) : TrainRanking(options);
}

StatusOr<ordered_json> Evaluate(const EvalOptions& options) {
  ADREC_ASSIGN_OR_RETURN(nlohmann::json manifest, ReadBundleManifest(options.bundle, ""));
  if (manifest.value("kind", "") == "sequence") return EvaluateSequence(options);
  if (manifest.value("kind", "") == "sequence_ranking") return EvaluateSequenceRanker(options);
  if (!options.protocol.empty() && options.protocol != "ctr") {
    return InvalidArgumentError("--protocol " + options.protocol + ": " + options.bundle.string() +
                                " is a ranking bundle, evaluated with --protocol ctr (AUC, GAUC, log loss per target)");
  }
  return EvaluateRanking(options);
}

}  // namespace adrec::train

// The ranking trainer (LR … PLE, the two-tower model): a TrainingTask of the run loop that
// steps over shuffled sample batches with the masked BCE, evaluates the CTR report on the valid
// part, and keeps the weights of the best train.select figure.
#include "adrec/train/trainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <set>
#include <tuple>
#include <type_traits>

#include "adrec/core/config.h"
#include "adrec/core/log_line.h"
#include "adrec/core/progress.h"
#include "adrec/core/text.h"
#include "adrec/data/dataset_io.h"
#include "adrec/data/ranking_data.h"
#include "adrec/data/split.h"
#include "adrec/models/bundle.h"
#include "adrec/tensor/device.h"
#include "adrec/tensor/tensor_io.h"
#include "adrec/train/adversarial.h"
#include "adrec/train/autocast.h"
#include "adrec/train/distributed.h"
#include "adrec/train/dp_sgd.h"
#include "adrec/train/federated.h"
#include "adrec/train/finetune.h"
#include "adrec/train/ctrl.h"
#include "adrec/train/losses.h"
#include "adrec/models/per_sample.h"
#include "adrec/models/two_tower.h"
#include "adrec/train/ranking_model.h"
#include "adrec/train/retrieval_towers.h"
#include "adrec/train/retrieval_vectors.h"
#include "adrec/train/run_loop.h"
#include "adrec/train/secure_aggregation.h"
#include "adrec/train/train_config.h"

namespace adrec::train {
namespace {

using nlohmann::ordered_json;

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
  // Row-wise Adagrad's starting sum of g² (FBGEMM's initial accumulator; 0 = TorchRec's default).
  double embedding_initial_accumulator = 0.0;
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
  bool bf16 = true;               // autocast to bf16 on CUDA (ignored on CPU)
  std::string primary_target;     // "" = the first target
  // Which valid figure picks the kept weights and drives early stopping: the primary target's
  // AUC, or the mean AUC of every target with a loss weight (multi-task towers peak at
  // different epochs: the sparse conversion tower overfits while click still improves).
  std::string select = "primary_auc";  // primary_auc | mean_auc (retrieval: hr@K, ndcg@K, mrr)
  bool init_output_bias = true;   // start each target's output at its train base rate
  // pointwise: the masked BCE over every sample. in_batch_softmax (two_tower only): retrieval,
  // each positive of the primary target against the batch's other items and uniform negatives
  // with logQ correction (losses.h), evaluated by HR@K over the whole catalogue.
  std::string objective = "pointwise";
  int64_t uniform_negatives = 128;  // per batch, shared by its rows (Mixed Negative Sampling)
  double temperature = 0.05;
  bool logq_correction = true;
  bool l2_normalize = true;         // cosine similarity; the index then holds unit vectors
  int64_t eval_queries = 5000;      // valid positives per retrieval evaluation (a seeded sample)
  // train.adversarial (none | fgsm | pgd), adv_eps, adv_weight, adv_steps: the loss at
  // adversarially perturbed embeddings joins the clean loss (adversarial.h; pointwise only).
  AdversarialOptions adversarial;
  // train.dp_epsilon, dp_delta, dp_clip, dp_noise_multiplier: DP-SGD (dp_sgd.h; pointwise only).
  DpSgdOptions dp;
  // train.federated_clients …: federated averaging (federated.h); with dp, DP-FedAvg per client.
  FederatedOptions fed;
  // --teacher: the loss mixes (1 − distill_weight) × the labels' BCE with distill_weight × the
  // distillation loss against the teacher's predictions at distill_temperature (losses.h).
  double distill_weight = 0.5;
  double distill_temperature = 1.0;
  // A distributed run's tables: row (row g on rank g % world) or table (table t on rank t % world).
  std::string sharding = "row";
  bool retrieval() const { return objective == "in_batch_softmax"; }
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
  ADREC_RETURN_IF_ERROR(cfg.Get("train.embedding_initial_accumulator", &s->embedding_initial_accumulator));
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
  ADREC_RETURN_IF_ERROR(cfg.Get("train.bf16", &s->bf16));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.primary_target", &s->primary_target));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.select", &s->select));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.init_output_bias", &s->init_output_bias));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.objective", &s->objective));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.uniform_negatives", &s->uniform_negatives));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.temperature", &s->temperature));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.logq_correction", &s->logq_correction));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.l2_normalize", &s->l2_normalize));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.eval_queries", &s->eval_queries));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.adversarial", &s->adversarial.method));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.adv_eps", &s->adversarial.eps));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.adv_weight", &s->adversarial.weight));
  int64_t adv_steps = s->adversarial.steps;
  ADREC_RETURN_IF_ERROR(cfg.Get("train.adv_steps", &adv_steps));
  s->adversarial.steps = static_cast<int>(std::clamp<int64_t>(adv_steps, 0, 1000));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.dp_epsilon", &s->dp.epsilon));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.dp_delta", &s->dp.delta));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.dp_clip", &s->dp.clip));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.dp_noise_multiplier", &s->dp.noise_multiplier));
  ADREC_RETURN_IF_ERROR(ReadFederatedOptions(cfg, &s->fed));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.distill_weight", &s->distill_weight));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.sharding", &s->sharding));
  if (s->sharding != "row" && s->sharding != "table") {
    return InvalidArgumentError(cfg.source() + ": train.sharding '" + s->sharding + "' is not one of row, table");
  }
  ADREC_RETURN_IF_ERROR(cfg.Get("train.distill_temperature", &s->distill_temperature));
  const std::string src = cfg.source() + ": ";
  ADREC_RETURN_IF_ERROR(CheckAdversarial(s->adversarial, src + "train.adversarial"));
  if (s->adversarial.enabled() && s->objective != "pointwise") {
    return InvalidArgumentError(src + "train.adversarial applies to the pointwise objective only");
  }
  if (s->objective != "pointwise" && s->objective != "in_batch_softmax") {
    return InvalidArgumentError(src + "train.objective '" + s->objective + "' is not one of pointwise, in_batch_softmax");
  }
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
  if (s->retrieval()) {
    if (!cfg.Has("train.select")) s->select = "hr@50";
    static const std::set<std::string> kRetrievalSelect = {"hr@10", "hr@50", "hr@100", "ndcg@10", "ndcg@50", "ndcg@100", "mrr"};
    if (!kRetrievalSelect.count(s->select)) {
      return InvalidArgumentError(src + "train.select '" + s->select +
                                  "' is not one of hr@10, hr@50, hr@100, ndcg@10, ndcg@50, ndcg@100, mrr (in_batch_softmax)");
    }
    if (s->uniform_negatives < 0 || !(s->temperature > 0) || s->eval_queries <= 0) {
      return InvalidArgumentError(src + "train.uniform_negatives must be >= 0, train.temperature and train.eval_queries > 0");
    }
  } else if (s->select != "primary_auc" && s->select != "mean_auc") {
    return InvalidArgumentError(src + "train.select '" + s->select + "' is not one of primary_auc, mean_auc");
  }
  if (!(s->distill_weight >= 0 && s->distill_weight <= 1) || !(s->distill_temperature > 0)) {
    return InvalidArgumentError(src + "train.distill_weight must be in [0, 1] and train.distill_temperature > 0");
  }
  if (s->clip_norm < 0 || s->warmup_steps < 0 || s->eval_every < 0 || s->checkpoint_every < 0 || s->patience < 0) {
    return InvalidArgumentError(src + "train.clip_norm, warmup_steps, eval_every, checkpoint_every and patience must be >= 0");
  }
  return Status::Ok();
}

// The samples at `keep` (ascending), with their labels and masks.
data::SampleSet Subset(data::SampleSet in, const std::vector<uint64_t>& keep, size_t num_targets) {
  data::SampleSet out;
  out.history_actions = in.history_actions;
  out.history = std::move(in.history);
  const size_t T = num_targets;
  for (uint64_t s : keep) {
    out.events.push_back(in.events[s]);
    out.labels.insert(out.labels.end(), in.labels.begin() + s * T, in.labels.begin() + (s + 1) * T);
    out.mask.insert(out.mask.end(), in.mask.begin() + s * T, in.mask.begin() + (s + 1) * T);
  }
  return out;
}

// The samples whose event is in one of `scenes` (scene names of ds); InvalidArgument names an
// unknown scene.
StatusOr<data::SampleSet> KeepScenes(data::SampleSet in, const data::Dataset& ds, const std::vector<std::string>& scenes,
                                     size_t num_targets) {
  if (scenes.empty()) return in;
  std::vector<bool> keep(ds.scenes.size(), false);
  for (const std::string& name : scenes) {
    auto it = std::find(ds.scenes.begin(), ds.scenes.end(), name);
    if (it == ds.scenes.end()) {
      return InvalidArgumentError("--scenes: the dataset has no scene '" + name + "' (it has " + Join(ds.scenes) + ")");
    }
    keep[static_cast<size_t>(it - ds.scenes.begin())] = true;
  }
  std::vector<uint64_t> rows;
  for (size_t s = 0; s < in.size(); ++s) {
    if (keep[ds.events.scene[in.events[s]]]) rows.push_back(s);
  }
  return Subset(std::move(in), rows, num_targets);
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

// Samples k·world + rank of `in` (a distributed rank's share of a global batch).
void TakeStrided(const data::Batch& in, size_t rank, size_t world, data::Batch* out) {
  std::vector<size_t> rows;
  for (size_t i = rank; i < in.size; i += world) rows.push_back(i);
  const size_t n = rows.size();
  out->size = n;
  out->sparse.resize(in.sparse.size());
  for (size_t f = 0; f < in.sparse.size(); ++f) {
    const data::SparseFieldBatch& a = in.sparse[f];
    data::SparseFieldBatch& b = out->sparse[f];
    b.ids.clear();
    b.offsets.assign(1, 0);
    for (size_t i : rows) {
      b.ids.insert(b.ids.end(), a.ids.begin() + a.offsets[i], a.ids.begin() + a.offsets[i + 1]);
      b.offsets.push_back(static_cast<int64_t>(b.ids.size()));
    }
  }
  // Per-sample columns of any width (width = values / samples).
  auto rows_of = [&](const auto& src, auto& dst) {
    dst.clear();
    if (in.size == 0 || src.empty()) return;
    const size_t w = src.size() / in.size;
    for (size_t i : rows) dst.insert(dst.end(), src.begin() + i * w, src.begin() + (i + 1) * w);
  };
  rows_of(in.dense, out->dense);
  out->text.resize(in.text.size());
  for (size_t t = 0; t < in.text.size(); ++t) rows_of(in.text[t], out->text[t]);
  rows_of(in.labels, out->labels);
  rows_of(in.mask, out->mask);
  rows_of(in.event, out->event);
  rows_of(in.user, out->user);
  rows_of(in.scene, out->scene);
  rows_of(in.truth, out->truth);
}

class RankingTask : public TrainingTask {
 public:
  std::string_view bundle_kind() const override { return models::kRankingBundle; }
  Status Prepare(const RunContext& ctx) override;
  Status PrepareRetrieval();
  LoopSettings loop() const override {
    LoopSettings l;
    l.cadence = Cadence::kSteps;
    l.epochs = s_.epochs;
    l.eval_every = s_.eval_every;
    l.checkpoint_every = s_.checkpoint_every;
    l.patience = s_.patience;
    return l;
  }
  torch::optim::Optimizer& optimizer() override { return *opt_; }
  // Distributed: the tables are each rank's shard of the checkpoint, the rest is rank 0's.
  std::vector<std::pair<std::string, torch::Tensor>> CheckpointTensors() override {
    if (dist_ != nullptr) return tensor::ModuleTensors(*model_.net, "dense/");
    return ModelTensors(model_, /*with_optimizer=*/true);
  }
  std::vector<std::pair<std::string, torch::Tensor>> CheckpointShard() override {
    if (dist_ == nullptr) return {};
    return model_.embeddings->ShardState(/*with_optimizer=*/true);
  }
  Status RestoreCheckpointShards(const std::vector<std::map<std::string, torch::Tensor>>& shards,
                                 const std::string& source) override {
    Status st = model_.embeddings->LoadShardStates(shards, /*with_optimizer=*/true);
    if (!st.ok()) return Status(st.code(), source + ": " + st.message());
    tables_from_shards_ = true;
    return Status::Ok();
  }
  Status RestoreCheckpointTensors(const std::map<std::string, torch::Tensor>& tensors, const std::string& source) override {
    if (tables_from_shards_) return tensor::LoadModuleTensors(*model_.net, tensors, "dense/", source);
    return LoadModelTensors(model_, tensors, /*with_optimizer=*/true, source);
  }
  void SaveCounters(ordered_json* j) const override {
    (*j)["samples_seen"] = samples_seen_;
    if (s_.dp.enabled()) (*j)["dp_steps"] = dp_steps_;
    if (s_.fed.enabled()) (*j)["federated"] = fed_last_;
    if (!ctrl_summary_.is_null()) (*j)["ctrl"] = ctrl_summary_;
  }
  void RestoreCounters(const nlohmann::json& j) override {
    samples_seen_ = j.value("samples_seen", uint64_t{0});
    dp_steps_ = j.value("dp_steps", int64_t{0});
    if (j.contains("ctrl")) ctrl_summary_ = j["ctrl"];
    if (j.contains("federated")) fed_last_ = j["federated"];
  }
  Status BeforeLoop(bool resumed) override;
  std::string progress_unit() const override { return "samples"; }
  uint64_t progress_total() const override {
    if (s_.fed.enabled()) {  // every round, each client's local epochs over the part it holds
      return static_cast<uint64_t>(static_cast<double>(total_steps_) * s_.fed.local_epochs * s_.fed.client_fraction *
                                   static_cast<double>(train_.size()));
    }
    return static_cast<uint64_t>(total_steps_) * s_.batch_size;
  }
  uint64_t progress_done(const RunProgress&) const override { return samples_seen_; }
  StatusOr<TrainChunk> Train(const RunProgress& p, Progress& progress) override;
  StatusOr<ordered_json> EvaluateValid() override;
  StatusOr<ordered_json> EvaluateValidHere();
  // Distributed: this rank's block of `part` scored, then every rank's gathered (the same
  // predictions as one process's, on every rank).
  StatusOr<eval::CtrPredictions> PredictSplit(const data::SampleSet& part, const PredictOptions& po);
  double SelectionScore(const ordered_json& valid) const override {
    if (s_.retrieval()) return valid.value(s_.select, 0.0);
    return train::SelectionScore(valid, spec_, s_.select);
  }
  std::string DescribeValid(const ordered_json& valid, double score) const override {
    if (s_.retrieval()) {
      return "valid hr@10 " + FixedDigits(valid.value("hr@10", 0.0), 4) + " hr@50 " + FixedDigits(valid.value("hr@50", 0.0), 4) +
             " mrr " + FixedDigits(valid.value("mrr", 0.0), 4);
    }
    return "valid auc " + FixedDigits(valid.value("auc", -1.0), 4) + " logloss " + FixedDigits(valid.value("logloss", 0.0), 4) +
           (s_.select == "primary_auc" ? "" : ", " + s_.select + " " + FixedDigits(score, 4));
  }
  void AddManifestFields(ordered_json* m) const override;
  std::vector<std::pair<std::string, torch::Tensor>> BundleTensors() override {
    return ModelTensors(model_, /*with_optimizer=*/false);
  }
  void AddSummary(ordered_json* summary, double seconds) const override {
    (*summary)["select"] = s_.select;
    const uint64_t seen = samples_seen_ - samples_before_;
    (*summary)["samples_per_s"] = seconds > 0 ? static_cast<double>(seen) / seconds : 0.0;
    if (!ctrl_summary_.is_null()) (*summary)["ctrl"] = ctrl_summary_;
    (*summary)["finetune"] = finetuner_->Summary();  // mode full (everything) without --init-from
    if (!o_->init_from.empty()) (*summary)["finetune"]["init_from"] = o_->init_from.string();
    if (!o_->scenes.empty()) (*summary)["sample_scenes"] = o_->scenes;
    (*summary)["train_samples"] = train_.size();
    if (s_.dp.enabled()) {
      if (auto dp = DpJson(); dp.ok()) (*summary)["dp"] = *dp;
    }
    if (s_.fed.enabled()) (*summary)["federated"] = FederatedJson();
    if (!distill_summary_.is_null()) (*summary)["distill"] = distill_summary_;
  }
  StatusOr<TestReport> Test(EvalOptions eo) override {
    eo.batch_size = s_.eval_batch_size;
    eo.part = test_.size() > 0 ? "test" : "valid";
    ADREC_ASSIGN_OR_RETURN(ordered_json report, s_.retrieval() ? EvaluateRetrieval(eo) : EvaluateRanking(eo));
    return TestReport{eo.part, std::move(report)};
  }

 private:
  const TrainOptions* o_ = nullptr;
  std::filesystem::path split_dir_;
  TrainSettings s_;
  data::SplitOptions split_options_;
  data::Dataset ds_;
  data::Split split_;
  data::FeatureSpec spec_;
  CtrlSettings ctrl_;
  data::FeatureSpec ctrl_spec_;   // the text fields only CTRL's pretraining reads
  ordered_json ctrl_summary_;     // what PretrainCtrl returned (null without a CTRL stage)
  data::SampleSet train_, valid_, test_;
  std::unique_ptr<Finetuner> finetuner_;  // what of the network trains (all of it unless fine-tuning)
  // --init-from: the trained bundle's network and embedding rows, which must fit this model.
  Status InitFrom(const std::filesystem::path& bundle);
  torch::Device device_ = torch::kCPU;
  RankingModel model_;
  std::string model_name_;
  std::unique_ptr<torch::optim::Optimizer> opt_;
  torch::Tensor target_weights_;
  int primary_ = 0;
  std::unique_ptr<data::BatchStream> stream_;
  int64_t per_epoch_ = 0, total_steps_ = 0, stream_epoch_ = -1;
  uint64_t samples_seen_ = 0, samples_before_ = 0;
  data::Batch batch_;
  // in_batch_softmax: the two towers, log of each item's share of train positives (logQ), the
  // uniform negatives' rows, and the valid positives an evaluation ranks.
  models::TwoTowerModel* towers_ = nullptr;
  torch::Tensor log_p_;
  data::Batch neg_batch_;
  std::vector<uint64_t> eval_order_;
  StatusOr<TrainChunk> RetrievalStep(const RunProgress& p, Progress& progress);
  // The batch's labels and their mask [B, targets] on the device.
  std::pair<torch::Tensor, torch::Tensor> BatchLabels() {
    const int64_t B = static_cast<int64_t>(batch_.size), T = static_cast<int64_t>(spec_.targets.size());
    return {torch::from_blob(batch_.labels.data(), {B, T}, torch::kFloat32).to(device_),
            torch::from_blob(batch_.mask.data(), {B, T}, torch::kFloat32).to(device_)};
  }
  // DP-SGD: a Poisson sample, per-sample clipping, noise on every coordinate (dp_sgd.h).
  StatusOr<TrainChunk> PrivateStep(const RunProgress& p, Progress& progress);
  StatusOr<ordered_json> DpJson() const {
    ADREC_ASSIGN_OR_RETURN(ordered_json j, DpSummary(s_.dp, dp_plan_, dp_steps_));
    j["mean_grad_norm"] = dp_last_.mean_norm;
    j["clipped_fraction"] = dp_last_.clipped_fraction;
    return j;
  }
  DpPlan dp_plan_;
  int64_t dp_steps_ = 0;
  bool dp_checked_ = false;  // the coverage of the per-sample norms, checked at the first step
  DpStepStats dp_last_;      // of the last step
  // Federated averaging: each client's train samples, the clients' masking keys (new each
  // invocation: the masks cancel whatever the keys), and what the last round did.
  StatusOr<TrainChunk> FederatedRound(const RunProgress& p, Progress& progress);
  ordered_json FederatedJson() const;
  std::vector<std::vector<uint64_t>> client_samples_;
  std::vector<MaskingKeys> client_keys_;
  ordered_json fed_last_;
  // The masked BCE of the batch (its adversarial term, its distillation term) from its lookup.
  torch::Tensor BatchLoss(const embedding::EmbeddingCollection::Lookup& lookup);
  // --teacher: the teacher's logit of each of this run's targets per event ([events × targets],
  // NaN where the teacher has no such target), and what the summary says of it.
  Status PrepareTeacher(const std::filesystem::path& bundle);
  std::vector<float> teacher_logits_;
  ordered_json distill_summary_;
  // The backward pass of `loss` and every update it feeds: the dense optimiser (clipped, through
  // the fine-tuner's hooks) and the embedding rows the lookup read.
  Status Update(const torch::Tensor& loss, embedding::EmbeddingCollection::Lookup& lookup, int64_t step);
  // The step's backward and updates; a non-finite loss reports divergence instead.
  StatusOr<TrainChunk> ApplyLoss(const torch::Tensor& loss, embedding::EmbeddingCollection::Lookup& lookup,
                                 size_t samples, const RunProgress& p, Progress& progress);
  // A distributed run (distributed.h): the process group, the tables' row exchange, the dense
  // gradients' all-reduce, and the global batch this rank took its share of.
  Distributed* dist_ = nullptr;
  std::unique_ptr<embedding::ShardExchange> exchange_;
  std::unique_ptr<GradientSync> sync_;
  data::Batch global_batch_;
  bool tables_from_shards_ = false;  // the resumed checkpoint was sharded: its state file has no tables
  StatusOr<TrainChunk> TrainStep(const RunProgress& p, Progress& progress);
  // Runs f, turning a failed collective inside the embedding exchange into an IoError.
  template <typename F>
  auto Collective(F&& f) -> decltype(f());
};

Status RankingTask::Prepare(const RunContext& ctx) {
  o_ = &ctx.options;
  Config& cfg = ctx.config;
  model_name_ = ctx.model;
  device_ = ctx.device;
  ADREC_RETURN_IF_ERROR(ReadSettings(cfg, &s_));
  dist_ = ctx.dist;
  if (dist_ != nullptr) {
    // Data parallel with sharded tables covers the pointwise step; these modes mix samples or
    // clients in ways one rank cannot see.
    std::string what;
    if (s_.retrieval()) what = "train.objective = \"in_batch_softmax\" (its negatives are the whole batch's)";
    if (s_.dp.enabled() || o_->dp_epsilon > 0) what = "DP-SGD (its Poisson batches and noise are one process's)";
    if (s_.fed.enabled() || o_->federated_clients > 0) what = "federated averaging (its clients are one process's)";
    if (s_.adversarial.enabled()) what = "train.adversarial";
    if (o_->finetune != "full" || !o_->init_from.empty()) what = "--init-from / --finetune";
    if (!what.empty()) {
      return UnimplementedError("distributed training (WORLD_SIZE > 1) does not cover " + what +
                                " yet: train it on one process");
    }
  }
  if (o_->dp_epsilon > 0) {
    s_.dp.epsilon = o_->dp_epsilon;
    s_.dp.noise_multiplier = -1;
  }
  if (o_->dp_delta > 0) s_.dp.delta = o_->dp_delta;
  if (o_->federated_clients > 0) s_.fed.clients = o_->federated_clients;
  if (s_.fed.enabled() && (s_.objective != "pointwise" || o_->finetune != "full")) {
    return InvalidArgumentError(o_->config.string() + ": federated averaging (--federated-clients) trains the pointwise "
                                "objective of a whole model, not " +
                                (s_.objective != "pointwise" ? "train.objective = \"" + s_.objective + "\""
                                                             : "--finetune " + o_->finetune));
  }
  // After --dp-epsilon: the budget may come from the config or the command line. Federated, it
  // is per client and clips whole updates, so any loss goes.
  if (s_.dp.enabled() && !s_.fed.enabled() && (s_.objective != "pointwise" || s_.adversarial.enabled())) {
    return InvalidArgumentError(o_->config.string() + ": DP-SGD (train.dp_epsilon, --dp-epsilon) applies to the pointwise "
                                "objective without train.adversarial: an in-batch softmax or an adversarial step mixes "
                                "samples in one sample's loss");
  }
  ADREC_RETURN_IF_ERROR(ReadSplitOptions(cfg, &split_options_));
  ADREC_ASSIGN_OR_RETURN(spec_, data::FeatureSpec::FromConfig(cfg));
  ADREC_RETURN_IF_ERROR(ReadCtrlSettings(cfg, &ctrl_));
  if (dist_ != nullptr && ctrl_.enabled()) {
    return UnimplementedError("distributed training (WORLD_SIZE > 1) does not cover a [ctrl] stage yet: train it on one process");
  }
  if (ctrl_.enabled()) {
    ADREC_ASSIGN_OR_RETURN(ctrl_spec_, TakeCtrlFields(&spec_, ctrl_, o_->config.string()));
  }

  LogInfo("loading " + o_->data.string());
  data::RankingDataOptions ro;
  ro.data = o_->data;
  ro.split_dir = o_->split_dir;
  ro.split = split_options_;
  ADREC_ASSIGN_OR_RETURN(data::RankingData d, data::PrepareRankingData(std::move(spec_), ro));
  ds_ = std::move(d.ds);
  split_ = std::move(d.split);
  spec_ = std::move(d.spec);
  const size_t num_targets = spec_.targets.size();
  ADREC_ASSIGN_OR_RETURN(train_, KeepScenes(std::move(d.train), ds_, o_->scenes, num_targets));
  ADREC_ASSIGN_OR_RETURN(valid_, KeepScenes(std::move(d.valid), ds_, o_->scenes, num_targets));
  ADREC_ASSIGN_OR_RETURN(test_, KeepScenes(std::move(d.test), ds_, o_->scenes, num_targets));
  if (train_.size() == 0) return FailedPreconditionError("no train samples in the scenes given (--scenes)");
  if (o_->max_train_samples > 0 && train_.size() > o_->max_train_samples) {
    const std::vector<uint64_t> keep = SeededSubset(train_.size(), o_->max_train_samples, o_->seed);  // sorted
    train_ = Subset(std::move(train_), keep, num_targets);
  }
  if (ctrl_.enabled()) ADREC_RETURN_IF_ERROR(ctrl_spec_.Bind(ds_));
  primary_ = s_.primary_target.empty() ? 0 : spec_.TargetIndex(s_.primary_target);
  if (primary_ < 0) return InvalidArgumentError(o_->config.string() + ": train.primary_target '" + s_.primary_target + "' is not a target");

  BuildOptions bo;
  bo.device = device_;
  bo.seed = o_->seed;
  bo.embedding_optimizer.kind = s_.embedding_optimizer;
  bo.embedding_optimizer.lr = s_.embedding_lr;
  bo.embedding_optimizer.weight_decay = s_.embedding_weight_decay;
  bo.embedding_optimizer.initial_accumulator = s_.embedding_initial_accumulator;
  bo.embedding_optimizer.ftrl_alpha = s_.ftrl_alpha;
  bo.embedding_optimizer.ftrl_beta = s_.ftrl_beta;
  bo.embedding_optimizer.ftrl_l1 = s_.ftrl_l1;
  bo.embedding_optimizer.ftrl_l2 = s_.ftrl_l2;
  bo.linear_optimizer = s_.linear_optimizer;
  if (dist_ != nullptr) {
    exchange_ = MakeShardExchange(*dist_);
    bo.sharding.exchange = exchange_.get();
    bo.sharding.mode = s_.sharding;
  }
  ADREC_ASSIGN_OR_RETURN(model_, BuildRankingModel(spec_, ds_.scenes, cfg, bo));
  if (s_.retrieval()) ADREC_RETURN_IF_ERROR(PrepareRetrieval());
  if (s_.fed.enabled()) {
    if (ctrl_.enabled()) return InvalidArgumentError("federated averaging: a [ctrl] stage pretrains on every client's data at once");
    for (size_t i = 0; i < model_.embeddings->num_tables(); ++i) {
      const data::TableSpec& t = model_.embeddings->table(i).spec();
      if (t.kind == data::TableKind::kDynamic) {
        return FailedPreconditionError("federated averaging: table '" + t.name +
                                       "' is dynamic: each client would allocate its own rows; declare it hashed or fixed");
      }
    }
    std::vector<uint32_t> sample_user(train_.size());
    for (size_t i = 0; i < train_.size(); ++i) sample_user[i] = ds_.events.user[train_.events[i]];
    ADREC_ASSIGN_OR_RETURN(client_samples_, ClientSamples(sample_user, ds_.num_users(), s_.fed.clients, o_->seed));
    if (s_.dp.enabled()) {
      // Per client: each takes part in a round with probability client_fraction, one step per round.
      ADREC_ASSIGN_OR_RETURN(dp_plan_, PlanDp(s_.dp, s_.fed.client_fraction, s_.epochs, static_cast<uint64_t>(s_.fed.clients)));
    }
    LogInfo("federated averaging: " + std::to_string(s_.fed.clients) + " clients, " + std::to_string(s_.epochs) +
            " rounds of " + std::to_string(s_.fed.local_epochs) + " local epoch(s), " +
            (s_.fed.secure_aggregation ? "secure aggregation" : "plain sums") +
            (s_.dp.enabled() ? ", DP-FedAvg with noise multiplier " + FixedDigits(dp_plan_.noise_multiplier, 4) +
                                   " and update clip " + FixedDigits(s_.dp.clip, 3)
                             : ""));
  } else if (s_.dp.enabled()) {
    if (ctrl_.enabled() || o_->finetune != "full") {
      return InvalidArgumentError("DP-SGD clips and noises every parameter it trains: no [ctrl] stage and no --finetune " +
                                  o_->finetune);
    }
    ADREC_ASSIGN_OR_RETURN(dp_plan_, PlanDpSgd(s_.dp, train_.size(), s_.batch_size, s_.epochs));
    LogInfo("DP-SGD: noise multiplier " + FixedDigits(dp_plan_.noise_multiplier, 4) + ", clip " + FixedDigits(s_.dp.clip, 3) +
            ", sample rate " + FixedDigits(dp_plan_.sample_rate, 5) + ", " + std::to_string(dp_plan_.steps) + " steps" +
            (s_.dp.epsilon > 0 ? " for ε = " + FixedDigits(s_.dp.epsilon, 3) + " at δ = " + std::to_string(s_.dp.delta) : ""));
  }
  // The base rates are a statistic of the train labels: a private or federated run starts at 0.5.
  if (s_.init_output_bias && !s_.retrieval() && !s_.dp.enabled() && !s_.fed.enabled()) {  // a softmax over items has no base rate to start at
    if (!InitOutputBias(*model_.net, BaseRates(train_))) LogWarn(model_name_ + ": no output bias found to start at the base rate");
  }

  if (!o_->init_from.empty()) ADREC_RETURN_IF_ERROR(InitFrom(o_->init_from));
  if (!o_->teacher.empty()) ADREC_RETURN_IF_ERROR(PrepareTeacher(o_->teacher));
  if (o_->finetune != "full" && o_->init_from.empty()) {
    return InvalidArgumentError("--finetune " + o_->finetune + " trains part of a trained model: give it with --init-from");
  }
  if (o_->finetune == "lora" && o_->resume) return InvalidArgumentError("--resume: a LoRA fine-tune does not checkpoint its adapters");
  ADREC_ASSIGN_OR_RETURN(Finetuner ft, Finetuner::Create(*model_.net, {o_->finetune, o_->lora_rank}, o_->seed));
  finetuner_ = std::make_unique<Finetuner>(std::move(ft));
  if (s_.optimizer == "adamw") {
    opt_ = std::make_unique<torch::optim::AdamW>(finetuner_->trainable(),
                                                 torch::optim::AdamWOptions(s_.lr).weight_decay(s_.weight_decay));
  } else {
    opt_ = std::make_unique<torch::optim::Adam>(finetuner_->trainable(),
                                                torch::optim::AdamOptions(s_.lr).weight_decay(s_.weight_decay));
  }
  if (dist_ != nullptr) {
    sync_ = std::make_unique<GradientSync>(*dist_, finetuner_->trainable());
    LogInfo("data parallel over " + std::to_string(dist_->world_size()) + " ranks: each takes every " +
            std::to_string(dist_->world_size()) + "th sample of a batch of " + std::to_string(s_.batch_size) +
            "; tables sharded by " + s_.sharding + ", " + std::to_string(sync_->buckets()) + " gradient bucket(s)");
  }
  std::vector<float> w;
  for (const auto& t : spec_.targets) w.push_back(t.weight);
  target_weights_ = torch::tensor(w).to(device_);
  split_dir_ = o_->split_dir;
  LogInfo(model_name_ + ": " + std::to_string(train_.size()) + " train / " + std::to_string(valid_.size()) + " valid / " +
          std::to_string(test_.size()) + " test samples, " + std::to_string(spec_.targets.size()) + " targets, split " +
          split_.method);
  return Status::Ok();
}

Status RankingTask::InitFrom(const std::filesystem::path& bundle) {
  ADREC_ASSIGN_OR_RETURN(LoadedBundle from, LoadBundle(bundle, device_));
  if (const data::TableSpec* q = QuantizedTable(from.model.spec)) {
    return InvalidArgumentError("--init-from " + bundle.string() + " is compressed (table '" + q->name +
                                "'): start from the bundle it was compressed from");
  }
  if (from.manifest.value("model", "") != model_name_) {
    return InvalidArgumentError("--init-from " + bundle.string() + " holds a " + from.manifest.value("model", std::string("?")) +
                                " model; this run trains " + model_name_);
  }
  torch::NoGradGuard no_grad;
  auto src = from.model.net->named_parameters(), dst = model_.net->named_parameters();
  for (auto& item : dst) {
    const std::string& name = item.key();
    torch::Tensor& p = item.value();
    const torch::Tensor* s = src.find(name);
    if (s == nullptr || !s->sizes().equals(p.sizes())) {
      return InvalidArgumentError("--init-from " + bundle.string() + ": parameter '" + name +
                                  "' is missing or has another shape there; fine-tune with the config it was trained with");
    }
    p.copy_(*s);
  }
  auto src_b = from.model.net->named_buffers();
  for (auto& item : model_.net->named_buffers()) {
    if (const torch::Tensor* s = src_b.find(item.key()); s != nullptr && s->sizes().equals(item.value().sizes())) {
      item.value().copy_(*s);
    }
  }
  std::map<std::string, torch::Tensor> rows;
  for (auto& [name, t] : from.model.embeddings->State(/*with_optimizer=*/false)) rows[name] = t;
  if (Status s = model_.embeddings->LoadState(rows, /*with_optimizer=*/false); !s.ok()) {
    return Status(s.code(), "--init-from " + bundle.string() + ": " + s.message());
  }
  LogInfo("initialised from " + bundle.string());
  return Status::Ok();
}

// --teacher: the teacher bundle's predictions on its train part, as logits per event of this
// run's targets (matched by name); every train sample of this run must have one.
Status RankingTask::PrepareTeacher(const std::filesystem::path& bundle) {
  if (s_.dp.enabled() || s_.fed.enabled() || s_.retrieval()) {
    return InvalidArgumentError("--teacher " + bundle.string() + ": distillation trains the pointwise objective in one place; "
                                "not with DP-SGD or --federated-clients (the teacher's predictions carry every sample's "
                                "label) and not with in_batch_softmax");
  }
  ADREC_ASSIGN_OR_RETURN(LoadedBundle teacher, LoadBundle(bundle, device_));
  ADREC_RETURN_IF_ERROR(CheckBundleData(teacher.manifest, bundle, ds_));
  if (Status s = teacher.model.spec.Bind(ds_); !s.ok()) {
    return Status(s.code(), "--teacher " + bundle.string() + ": the dataset does not fit its features: " + s.message());
  }
  ADREC_ASSIGN_OR_RETURN(PartSamples part, SamplesOfPart(teacher.manifest, o_->split_dir, ds_, teacher.model.spec, "train"));
  PredictOptions po;
  po.batch_size = s_.eval_batch_size;
  po.threads = o_->threads > 0 ? o_->threads : 0;
  const eval::CtrPredictions p = Predict(teacher.model, ds_, part.samples, po);
  const size_t T = spec_.targets.size(), TT = p.targets.size();
  std::vector<int> from(T, -1);
  std::vector<std::string> matched;
  for (size_t t = 0; t < T; ++t) {
    auto it = std::find(p.targets.begin(), p.targets.end(), spec_.targets[t].name);
    if (it != p.targets.end()) {
      from[t] = static_cast<int>(it - p.targets.begin());
      matched.push_back(spec_.targets[t].name);
    }
  }
  if (matched.empty()) {
    return InvalidArgumentError("--teacher " + bundle.string() + " predicts " + Join(p.targets) +
                                "; this run has none of those targets");
  }
  teacher_logits_.assign(ds_.num_events() * T, std::nanf(""));
  for (size_t i = 0; i < part.samples.size(); ++i) {
    float* row = teacher_logits_.data() + part.samples.events[i] * T;
    for (size_t t = 0; t < T; ++t) {
      if (from[t] < 0) continue;
      const double q = std::clamp<double>(p.pred[i * TT + static_cast<size_t>(from[t])], 1e-6, 1 - 1e-6);
      row[t] = static_cast<float>(std::log(q / (1 - q)));
    }
  }
  const size_t first = static_cast<size_t>(std::find_if(from.begin(), from.end(), [](int f) { return f >= 0; }) - from.begin());
  size_t missing = 0;
  for (uint64_t e : train_.events) missing += std::isnan(teacher_logits_[e * T + first]);
  if (missing > 0) {
    return InvalidArgumentError("--teacher " + bundle.string() + ": " + std::to_string(missing) + " of this run's " +
                                std::to_string(train_.size()) + " train samples are not in the teacher's train part "
                                "(another split or other scenes): distil on the split the teacher was trained on");
  }
  distill_summary_ = {{"teacher", std::filesystem::absolute(bundle).string()},
                      {"teacher_model", teacher.manifest.value("model", "")},
                      {"targets", matched},
                      {"weight", s_.distill_weight},
                      {"temperature", s_.distill_temperature}};
  LogInfo("distilling " + distill_summary_["teacher_model"].get<std::string>() + " (" + bundle.string() + ") on " +
          Join(matched) + ", weight " + FixedDigits(s_.distill_weight, 2) + ", temperature " +
          FixedDigits(s_.distill_temperature, 2));
  return Status::Ok();
}

// in_batch_softmax: a two-tower model, and samples that are the primary target's positives.
Status RankingTask::PrepareRetrieval() {
  towers_ = dynamic_cast<models::TwoTowerModel*>(model_.net.get());
  if (towers_ == nullptr) {
    return InvalidArgumentError(o_->config.string() + ": train.objective = \"in_batch_softmax\" trains a two_tower model, not " +
                                model_name_);
  }
  const size_t T = spec_.targets.size(), t = static_cast<size_t>(primary_);
  train_ = data::PositiveSamples(train_, T, t);
  valid_ = data::PositiveSamples(valid_, T, t);
  test_ = data::PositiveSamples(test_, T, t);
  if (train_.size() < 2) {
    return FailedPreconditionError("in_batch_softmax: the train part has " + std::to_string(train_.size()) +
                                   " positives of '" + spec_.targets[t].name + "'; need at least 2");
  }
  // logQ: each item's share of the train positives, the rate at which it appears in a batch.
  std::vector<float> count(ds_.num_items(), 0.f);
  for (uint64_t e : train_.events) count[ds_.events.item[e]] += 1.f;
  const double total = static_cast<double>(train_.size());
  std::vector<float> log_p(count.size());
  for (size_t i = 0; i < count.size(); ++i) log_p[i] = static_cast<float>(std::log(std::max(1.f, count[i]) / total));
  log_p_ = torch::tensor(log_p).to(device_);
  const data::SampleSet& eval_set = valid_.size() > 0 ? valid_ : train_;
  eval_order_ = SeededSubset(eval_set.size(), static_cast<size_t>(s_.eval_queries), o_->seed);
  return Status::Ok();
}

Status RankingTask::BeforeLoop(bool resumed) {
  if (ctrl_.enabled() && !resumed) {
    CtrlRunOptions co;
    co.seed = o_->seed;
    co.threads = o_->threads > 0 ? o_->threads : 0;
    co.show_progress = o_->show_progress;
    co.autocast = device_.is_cuda() && s_.bf16;
    co.stop = o_->stop;
    ADREC_ASSIGN_OR_RETURN(ctrl_summary_, PretrainCtrl(model_, ds_, ctrl_spec_, train_, s_.batch_size, ctrl_, co));
    LogInfo("ctrl: contrastive loss " + FixedDigits(ctrl_summary_.value("first_loss", 0.0), 3) + " -> " +
            FixedDigits(ctrl_summary_.value("last_epoch_loss", 0.0), 3) + " (chance " +
            FixedDigits(ctrl_summary_.value("chance_loss", 0.0), 3) + ") in " +
            FixedDigits(ctrl_summary_.value("seconds", 0.0), 1) + " s; fine-tuning the tabular model alone");
  }
  data::BatchStreamOptions so;
  so.batch_size = s_.batch_size;
  so.shuffle = true;
  so.seed = o_->seed;
  so.threads = o_->threads > 0 ? o_->threads : 0;
  if (s_.fed.enabled()) {  // one round per epoch
    per_epoch_ = 1;
    client_keys_.clear();
    for (int c = 0; c < s_.fed.clients; ++c) {
      ADREC_ASSIGN_OR_RETURN(MaskingKeys k, NewMaskingKeys());
      client_keys_.push_back(k);
    }
  } else if (s_.dp.enabled()) {  // Poisson batches, drawn per step (PrivateStep)
    per_epoch_ = dp_plan_.steps / s_.epochs;
  } else {
    stream_ = std::make_unique<data::BatchStream>(ds_, spec_, train_, so);
    per_epoch_ = static_cast<int64_t>(stream_->batches_per_epoch());
  }
  total_steps_ = per_epoch_ * s_.epochs;
  samples_before_ = samples_seen_;
  model_.net->train();
  if (dist_ != nullptr) {
    // Every rank starts from rank 0's dense weights (the tables are each rank's own rows).
    std::vector<torch::Tensor> dense;
    for (const torch::Tensor& t : model_.net->parameters()) dense.push_back(t.detach());
    for (const torch::Tensor& t : model_.net->buffers()) dense.push_back(t.detach());
    ADREC_RETURN_IF_ERROR(dist_->Broadcast(dense, 0));
  }
  return Status::Ok();
}

template <typename F>
auto RankingTask::Collective(F&& f) -> decltype(f()) {
  if (dist_ == nullptr) return f();
  try {
    return f();
  } catch (const c10::Error&) {
    throw;  // libtorch's own errors keep their report (RunTraining)
  } catch (const std::exception& e) {
    return IoError(e.what());
  }
}

StatusOr<TrainChunk> RankingTask::Train(const RunProgress& p, Progress& progress) {
  return Collective([&] { return TrainStep(p, progress); });
}

StatusOr<TrainChunk> RankingTask::TrainStep(const RunProgress& p, Progress& progress) {
  const double lr = LearningRate(s_, p.step, total_steps_);
  for (auto& g : opt_->param_groups()) g.options().set_lr(lr);
  if (s_.fed.enabled()) return FederatedRound(p, progress);
  if (s_.dp.enabled()) return PrivateStep(p, progress);
  if (stream_epoch_ != p.epoch) {
    stream_->StartEpoch(static_cast<uint64_t>(p.epoch), static_cast<uint64_t>(p.batch_in_epoch));
    stream_epoch_ = p.epoch;
  }
  if (!stream_->Next(&batch_)) {
    return InternalError("the batch stream ended after " + std::to_string(p.batch_in_epoch) + " of " +
                         std::to_string(per_epoch_) + " batches of epoch " + std::to_string(p.epoch));
  }
  if (s_.retrieval()) return RetrievalStep(p, progress);
  size_t samples = batch_.size;
  if (dist_ != nullptr) {
    // Every rank drew the same global batch; it trains on every world-th sample of it.
    std::swap(global_batch_, batch_);
    TakeStrided(global_batch_, static_cast<size_t>(dist_->rank()), static_cast<size_t>(dist_->world_size()), &batch_);
    samples = global_batch_.size;
  }
  auto lookup = model_.embeddings->Forward(batch_, /*train=*/!finetuner_->embeddings_frozen(), p.step);
  return ApplyLoss(BatchLoss(lookup), lookup, samples, p, progress);
}

torch::Tensor RankingTask::BatchLoss(const embedding::EmbeddingCollection::Lookup& lookup) {
  const bool autocast = device_.is_cuda() && s_.bf16;
  torch::Tensor logits = MaybeAutocastBf16(autocast, [&] { return model_.net->forward(lookup.input); });
  torch::Tensor labels, mask;  // not a structured binding: the adversarial lambda captures them
  std::tie(labels, mask) = BatchLabels();
  torch::Tensor counts;
  if (dist_ != nullptr) {
    // The global batch's count of each target over the world size (losses.h): the ranks' mean
    // gradient is then the whole batch's, however its rare targets fell between the ranks. Every
    // rank holds the global batch, so no collective is needed.
    const size_t T = spec_.targets.size();
    std::vector<float> n(T, 0.f);
    for (size_t i = 0; i < global_batch_.mask.size(); ++i) n[i % T] += global_batch_.mask[i];
    counts = torch::tensor(n).clamp_min(1.0).div(static_cast<double>(dist_->world_size())).to(device_);
  }
  torch::Tensor loss = MaskedBce(logits, labels, mask, target_weights_, counts);
  if (!teacher_logits_.empty()) {
    const size_t T = spec_.targets.size();
    std::vector<float> z(batch_.size * T), has(batch_.size * T);
    for (size_t i = 0; i < batch_.size; ++i) {
      const float* row = teacher_logits_.data() + batch_.event[i] * T;
      for (size_t t = 0; t < T; ++t) {
        has[i * T + t] = std::isnan(row[t]) ? 0.f : 1.f;
        z[i * T + t] = std::isnan(row[t]) ? 0.f : row[t];
      }
    }
    const int64_t B = static_cast<int64_t>(batch_.size), TT = static_cast<int64_t>(T);
    const torch::Tensor teacher = torch::from_blob(z.data(), {B, TT}, torch::kFloat32).to(device_);
    const torch::Tensor dmask = mask * torch::from_blob(has.data(), {B, TT}, torch::kFloat32).to(device_);
    loss = (1.0 - s_.distill_weight) * loss +
           s_.distill_weight * DistillationLoss(logits, teacher, dmask, target_weights_, s_.distill_temperature);
  }
  if (s_.adversarial.enabled()) {
    const InputLoss at = [&](const embedding::ModelInput& x) {
      return MaskedBce(MaybeAutocastBf16(autocast, [&] { return model_.net->forward(x); }), labels, mask, target_weights_);
    };
    const std::vector<torch::Tensor> delta = AdversarialDelta(at, lookup.input, s_.adversarial);
    loss = loss + s_.adversarial.weight * at(Perturbed(lookup.input, delta));
  }
  return loss;
}

Status RankingTask::Update(const torch::Tensor& loss, embedding::EmbeddingCollection::Lookup& lookup, int64_t step) {
  opt_->zero_grad();
  loss.backward();
  if (sync_ != nullptr) ADREC_RETURN_IF_ERROR(sync_->Finish());
  finetuner_->BeforeStep();
  if (s_.clip_norm > 0) torch::nn::utils::clip_grad_norm_(finetuner_->trainable(), s_.clip_norm);
  opt_->step();
  finetuner_->AfterStep();
  if (!finetuner_->embeddings_frozen()) model_.embeddings->Step(lookup, step);
  return Status::Ok();
}

StatusOr<TrainChunk> RankingTask::ApplyLoss(const torch::Tensor& loss, embedding::EmbeddingCollection::Lookup& lookup,
                                            size_t samples, const RunProgress& p, Progress& progress) {
  TrainChunk chunk;
  double loss_value = loss.item<double>();
  if (dist_ != nullptr) {
    // The mean over the ranks: every rank sees the same value, so all stop if one diverges.
    std::vector<torch::Tensor> v{torch::tensor({loss_value}, torch::kFloat64).to(dist_->device())};
    ADREC_RETURN_IF_ERROR(dist_->AllReduceSum(v));
    loss_value = v[0].cpu().item<double>() / dist_->world_size();
  }
  if (!std::isfinite(loss_value)) {
    chunk.diverged = true;
    chunk.diverged_loss = loss_value;
    return chunk;
  }
  ADREC_RETURN_IF_ERROR(Update(loss, lookup, p.step));
  samples_seen_ += samples;
  progress.Add(samples);
  chunk.steps = 1;
  chunk.loss_sum = loss_value;
  chunk.epoch_done = p.batch_in_epoch + 1 == per_epoch_;
  return chunk;
}

StatusOr<TrainChunk> RankingTask::PrivateStep(const RunProgress& p, Progress& progress) {
  const std::vector<uint64_t> sample = PoissonSample(train_.size(), dp_plan_.sample_rate, o_->seed, p.step);
  const std::vector<torch::Tensor> params = finetuner_->trainable();
  TrainChunk chunk;
  models::PerSampleTape tape;
  torch::Tensor losses;
  std::optional<embedding::EmbeddingCollection::Lookup> lookup;
  if (!sample.empty()) {
    data::BuildBatch(ds_, spec_, train_, sample, &batch_);
    lookup.emplace(model_.embeddings->Forward(batch_, /*train=*/true, p.step));
    const bool autocast = device_.is_cuda() && s_.bf16;
    const torch::Tensor logits = MaybeAutocastBf16(autocast, [&] { return model_.net->forward(lookup->input); });
    const auto [labels, mask] = BatchLabels();
    // Each sample's own loss, unnormalised: the clipped sum is divided by the expected batch.
    losses = (torch::binary_cross_entropy_with_logits(logits.to(torch::kFloat32), labels, {}, {}, at::Reduction::None) *
              mask * target_weights_)
                 .sum(1);
    const double mean = losses.mean().item<double>();
    if (!std::isfinite(mean)) {
      chunk.diverged = true;
      chunk.diverged_loss = mean;
      return chunk;
    }
    chunk.loss_sum = mean;
    if (!dp_checked_) {
      std::vector<std::pair<std::string, torch::Tensor>> named;
      for (const auto& item : model_.net->named_parameters()) {
        if (item.value().requires_grad()) named.emplace_back(item.key(), item.value());
      }
      ADREC_RETURN_IF_ERROR(CheckDpCoverage(tape, named, *model_.embeddings, model_name_));
      dp_checked_ = true;
    }
  }
  const DpGradients g = PrivateGradients(losses, tape, *model_.embeddings, lookup ? &*lookup : nullptr, params, dp_plan_,
                                         s_.dp.clip, o_->seed, p.step);
  opt_->step();
  ApplyTableGradients(*model_.embeddings, g, p.step);
  dp_last_ = g.stats;
  ++dp_steps_;
  samples_seen_ += sample.size();
  progress.Add(sample.size());
  chunk.steps = 1;
  chunk.epoch_done = p.batch_in_epoch + 1 == per_epoch_;
  return chunk;
}

// One round of federated averaging: each participating client trains the round's global model
// on its own samples (with fresh optimiser state), sends its change — weighted by its share of
// the samples, or clipped and noised under DP — through secure aggregation, and the global
// model moves by the decoded sum over the total weight (under DP, the expected participants).
StatusOr<TrainChunk> RankingTask::FederatedRound(const RunProgress& p, Progress& progress) {
  const FederatedOptions& f = s_.fed;
  const bool dp = s_.dp.enabled();
  const uint64_t seed = o_->seed, round = static_cast<uint64_t>(p.step);
  const std::vector<uint64_t> who = PoissonSample(static_cast<uint64_t>(f.clients), f.client_fraction, seed ^ 0xFEDA5Eull, p.step);
  TrainChunk chunk;
  std::map<std::string, torch::Tensor> start;  // the global model and fresh optimiser state
  std::vector<std::string> weights;            // what is averaged: every floating-point tensor
  {
    torch::NoGradGuard no_grad;
    for (auto& [name, t] : ModelTensors(model_, /*with_optimizer=*/true)) start.emplace(name, t.detach().clone());
    for (const auto& [name, t] : ModelTensors(model_, /*with_optimizer=*/false)) {
      if (t.is_floating_point()) weights.push_back(name);
    }
  }
  size_t size = 0;
  for (const std::string& name : weights) size += static_cast<size_t>(start.at(name).numel());
  // Unweighted under DP (the sensitivity is one clipped update); else one more value, the weight.
  const size_t extra = dp ? 0 : 1;
  MaskedSum sum(size + extra);
  const int m = static_cast<int>(who.size());
  std::vector<std::array<uint8_t, 32>> public_keys;
  for (uint64_t c : who) public_keys.push_back(client_keys_[c].public_key);
  SecureAggregationOptions sa;
  sa.neighbours = f.secagg_neighbours;
  const std::vector<std::vector<int>> neighbours =
      f.secure_aggregation ? MaskingNeighbours(m, f.secagg_neighbours, seed * 0x9E3779B97F4A7C15ull + round)
                           : std::vector<std::vector<int>>(static_cast<size_t>(m));
  const double mean_client = static_cast<double>(train_.size()) / f.clients;
  double loss_sum = 0, norm_sum = 0;
  int64_t local_steps = 0, clipped = 0;
  for (int j = 0; j < m; ++j) {
    const size_t c = static_cast<size_t>(who[static_cast<size_t>(j)]);
    ADREC_RETURN_IF_ERROR(LoadModelTensors(model_, start, /*with_optimizer=*/true, "the round's global model"));
    opt_->state().clear();
    int64_t step = 0;
    for (int e = 0; e < f.local_epochs; ++e) {
      std::vector<uint64_t> order = client_samples_[c];
      std::mt19937_64 rng(seed * 0xD6E8FEB86659FD93ull + round * 0x9E3779B97F4A7C15ull + c * 0xA0761D6478BD642Full +
                          static_cast<uint64_t>(e));
      std::shuffle(order.begin(), order.end(), rng);
      for (size_t b = 0; b < order.size(); b += s_.batch_size) {
        const std::vector<uint64_t> rows(order.begin() + static_cast<std::ptrdiff_t>(b),
                                         order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), b + s_.batch_size)));
        data::BuildBatch(ds_, spec_, train_, rows, &batch_);
        auto lookup = model_.embeddings->Forward(batch_, /*train=*/true, step);
        const torch::Tensor loss = BatchLoss(lookup);
        const double value = loss.item<double>();
        if (!std::isfinite(value)) {  // nothing of the round is applied
          ADREC_RETURN_IF_ERROR(LoadModelTensors(model_, start, /*with_optimizer=*/true, "the round's global model"));
          chunk.diverged = true;
          chunk.diverged_loss = value;
          return chunk;
        }
        ADREC_RETURN_IF_ERROR(Update(loss, lookup, step));
        ++step;
        loss_sum += value;
        samples_seen_ += rows.size();
        progress.Add(rows.size());
      }
    }
    local_steps += step;
    // The client's change, flattened in the order of `weights`.
    std::vector<float> update(size + extra);
    {
      torch::NoGradGuard no_grad;
      std::map<std::string, torch::Tensor> now;
      for (auto& [name, t] : ModelTensors(model_, /*with_optimizer=*/false)) now.emplace(name, t);
      size_t off = 0;
      for (const std::string& name : weights) {
        const torch::Tensor d = (now.at(name) - start.at(name)).to(torch::kCPU, torch::kFloat32).contiguous();
        std::copy_n(d.data_ptr<float>(), d.numel(), update.begin() + static_cast<std::ptrdiff_t>(off));
        off += static_cast<size_t>(d.numel());
      }
    }
    std::span<float> change(update.data(), size);
    if (dp) {
      const double norm = ClipToNorm(change, s_.dp.clip);
      norm_sum += norm;
      clipped += norm > s_.dp.clip;
      // The client's share of the sum's noise N(0, σ²C²): m shares add up to it.
      AddGaussianNoise(change, dp_plan_.noise_multiplier * s_.dp.clip / std::sqrt(static_cast<double>(m)),
                       seed * 0xC2B2AE3D27D4EB4Full + round * 0x165667B19E3779F9ull + c);
    } else {
      double sq = 0;
      for (float x : change) sq += static_cast<double>(x) * x;
      norm_sum += std::sqrt(sq);
      const float w = static_cast<float>(static_cast<double>(client_samples_[c].size()) / mean_client);
      for (float& x : change) x *= w;
      update[size] = w;
    }
    ADREC_ASSIGN_OR_RETURN(std::vector<uint64_t> masked,
                           MaskUpdate(update, j, client_keys_[c], public_keys, neighbours[static_cast<size_t>(j)], round, sa));
    ADREC_RETURN_IF_ERROR(sum.Add(masked));
  }
  // The server sees the sum only.
  const std::vector<float> total = sum.Decode(sa.fraction_bits);
  const double denominator = dp ? dp_plan_.expected_batch : (m > 0 ? static_cast<double>(total[size]) : 0.0);
  if (denominator > 0) {
    torch::NoGradGuard no_grad;
    size_t off = 0;
    for (const std::string& name : weights) {
      torch::Tensor& t = start.at(name);
      const torch::Tensor avg = torch::from_blob(const_cast<float*>(total.data()) + off, t.sizes(), torch::kFloat32);
      t.add_(avg.to(t.device(), t.scalar_type()), f.server_lr / denominator);
      off += static_cast<size_t>(t.numel());
    }
  }
  ADREC_RETURN_IF_ERROR(LoadModelTensors(model_, start, /*with_optimizer=*/true, "the averaged model"));
  if (dp) {
    ++dp_steps_;
    dp_last_.mean_norm = m > 0 ? norm_sum / m : 0.0;
    dp_last_.clipped_fraction = m > 0 ? static_cast<double>(clipped) / m : 0.0;
  }
  fed_last_ = {{"round", p.step}, {"participants", m}, {"local_steps", local_steps},
               {"mean_update_norm", m > 0 ? norm_sum / m : 0.0}};
  chunk.steps = 1;
  chunk.loss_sum = local_steps > 0 ? loss_sum / static_cast<double>(local_steps) : 0.0;
  chunk.epoch_done = true;
  return chunk;
}

ordered_json RankingTask::FederatedJson() const {
  size_t lo = SIZE_MAX, hi = 0;
  for (const auto& c : client_samples_) {
    lo = std::min(lo, c.size());
    hi = std::max(hi, c.size());
  }
  ordered_json j = {{"clients", s_.fed.clients},
                    {"local_epochs", s_.fed.local_epochs},
                    {"client_fraction", s_.fed.client_fraction},
                    {"server_lr", s_.fed.server_lr},
                    {"secure_aggregation", s_.fed.secure_aggregation},
                    {"secagg_neighbours", s_.fed.secagg_neighbours},
                    {"client_samples", {{"min", lo}, {"mean", static_cast<double>(train_.size()) / s_.fed.clients}, {"max", hi}}}};
  if (!fed_last_.is_null()) j["last_round"] = fed_last_;
  return j;
}

// One in-batch softmax step: the batch's positives and M uniform item rows in one forward pass.
StatusOr<TrainChunk> RankingTask::RetrievalStep(const RunProgress& p, Progress& progress) {
  const int64_t B = static_cast<int64_t>(batch_.size);
  std::vector<int64_t> pos_items(batch_.size);
  for (size_t i = 0; i < batch_.size; ++i) pos_items[i] = ds_.events.item[batch_.event[i]];
  std::vector<uint32_t> neg(static_cast<size_t>(s_.uniform_negatives));
  // Seeded by the step, so a resumed run draws the same negatives as an uninterrupted one.
  std::mt19937_64 rng(o_->seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(p.step));
  std::uniform_int_distribution<uint32_t> pick(0, ds_.num_items() - 1);
  for (uint32_t& n : neg) n = pick(rng);
  if (!neg.empty()) {
    data::BuildItemBatch(ds_, spec_, neg, &neg_batch_);
    data::AppendBatch(neg_batch_, &batch_);
  }
  auto lookup = model_.embeddings->Forward(batch_, /*train=*/true, p.step);
  const bool autocast = device_.is_cuda() && s_.bf16;
  const torch::Tensor both = MaybeAutocastBf16(autocast, [&] {
    auto [qv, iv] = towers_->Vectors(lookup.input);
    return torch::stack({qv, iv});  // [2, B + M, T, dim]
  });
  const torch::Tensor q_all = both[0], v_all = both[1];
  const int64_t M = static_cast<int64_t>(neg.size());
  const torch::Tensor q = q_all.narrow(0, 0, B).select(1, primary_);
  const torch::Tensor v = v_all.select(1, primary_);
  const torch::Tensor item_ids = torch::tensor(pos_items).to(device_);
  const torch::Tensor neg_ids =
      torch::tensor(std::vector<int64_t>(neg.begin(), neg.end()), torch::kLong).to(device_);
  InBatchSoftmaxOptions lo;
  lo.temperature = s_.temperature;
  lo.logq = s_.logq_correction;
  lo.l2_normalize = s_.l2_normalize;
  const torch::Tensor loss = InBatchSoftmaxLoss(q, v.narrow(0, 0, B), item_ids, log_p_.index_select(0, item_ids),
                                                v.narrow(0, B, M), neg_ids, ds_.num_items(), lo);
  return ApplyLoss(loss, lookup, static_cast<size_t>(B), p, progress);
}

StatusOr<ordered_json> RankingTask::EvaluateValid() {
  // Distributed: each rank scores its block of the valid part (the lookups are collective) and
  // every rank builds the report from all the blocks.
  return Collective([&]() -> StatusOr<ordered_json> { return EvaluateValidHere(); });
}

StatusOr<ordered_json> RankingTask::EvaluateValidHere() {
  if (s_.retrieval()) {
    const data::SampleSet& set = valid_.size() > 0 ? valid_ : train_;
    const size_t threads = o_->threads > 0 ? static_cast<size_t>(o_->threads) : 0;
    const std::vector<float> items =
        CatalogueVectors(model_, *towers_, ds_, primary_, s_.eval_batch_size, s_.l2_normalize);
    const std::vector<float> queries =
        QueryTowerVectors(model_, *towers_, ds_, set, eval_order_, primary_, s_.eval_batch_size, s_.l2_normalize);
    std::vector<uint32_t> query_items;
    for (uint64_t i : eval_order_) query_items.push_back(ds_.events.item[set.events[i]]);
    model_.net->train();
    const int dim = static_cast<int>(items.size() / std::max<size_t>(1, ds_.num_items()));
    return RetrievalReport(items, queries, dim, query_items, {.ks = {10, 50, 100}, .threads = threads});
  }
  PredictOptions po;
  po.batch_size = s_.eval_batch_size;
  po.threads = o_->threads > 0 ? o_->threads : 0;
  po.primary = primary_;
  po.with_truth = TruthMatchesPrimary(ds_, spec_, primary_);
  const data::SampleSet& part = valid_.size() > 0 ? valid_ : train_;
  StatusOr<eval::CtrPredictions> p =
      dist_ == nullptr ? StatusOr<eval::CtrPredictions>(Predict(model_, ds_, part, po)) : PredictSplit(part, po);
  model_.net->train();
  if (!p.ok()) return p.status();
  return eval::CtrReport(*p);
}

StatusOr<eval::CtrPredictions> RankingTask::PredictSplit(const data::SampleSet& part, const PredictOptions& po) {
  // Rank r scores the r-th of W equal blocks of the part, the last one padded with repeats of
  // the part's last sample: every rank then makes the same number of (collective) lookups.
  const int W = dist_->world_size(), r = dist_->rank();
  const size_t n = part.size(), T = spec_.targets.size();
  const size_t m = (n + static_cast<size_t>(W) - 1) / static_cast<size_t>(W);
  std::vector<uint64_t> mine;
  for (size_t i = 0; i < m; ++i) mine.push_back(std::min(n - 1, static_cast<size_t>(r) * m + i));
  eval::CtrPredictions p = Predict(model_, ds_, Subset(part, mine, T), po);
  // Every rank's block, in rank order, cut to n: floats as floats, IDs and flags as int64.
  auto gather = [&](auto& column, size_t width) -> Status {
    if (column.empty()) return Status::Ok();
    using V = typename std::decay_t<decltype(column)>::value_type;
    using Wire = std::conditional_t<std::is_floating_point_v<V>, float, int64_t>;
    const std::vector<Wire> local(column.begin(), column.end());
    ADREC_ASSIGN_OR_RETURN(torch::Tensor all, dist_->AllGather(torch::tensor(local).to(dist_->device())));
    const torch::Tensor flat = all.cpu().reshape({-1}).narrow(0, 0, static_cast<int64_t>(n * width)).contiguous();
    const Wire* v = flat.data_ptr<Wire>();
    column.assign(v, v + flat.numel());
    return Status::Ok();
  };
  ADREC_RETURN_IF_ERROR(gather(p.pred, T));
  ADREC_RETURN_IF_ERROR(gather(p.labels, T));
  ADREC_RETURN_IF_ERROR(gather(p.mask, T));
  ADREC_RETURN_IF_ERROR(gather(p.user, 1));
  ADREC_RETURN_IF_ERROR(gather(p.scene, 1));
  ADREC_RETURN_IF_ERROR(gather(p.item, 1));
  ADREC_RETURN_IF_ERROR(gather(p.item_cold, 1));
  ADREC_RETURN_IF_ERROR(gather(p.truth, 1));
  return p;
}

void RankingTask::AddManifestFields(ordered_json* m) const {
  (*m)["targets"] = nlohmann::json::array();
  for (const auto& t : spec_.targets) (*m)["targets"].push_back(t.name);
  (*m)["primary_target"] = spec_.targets[primary_].name;
  (*m)["scenes"] = ds_.scenes;
  (*m)["feature_spec"] = spec_.ToJson();
  (*m)["split"] = SplitJson(split_options_);
  if (!split_dir_.empty()) (*m)["split"]["dir"] = std::filesystem::absolute(split_dir_).string();
  (*m)["data"] = {{"name", ds_.info.name},
                  {"source_format", ds_.info.source_format},
                  {"provenance", ds_.info.provenance},
                  {"events", ds_.num_events()},
                  {"users", ds_.num_users()},
                  {"items", ds_.num_items()}};
  if (!ctrl_summary_.is_null()) (*m)["ctrl"] = ctrl_summary_;
  if (!o_->scenes.empty()) (*m)["sample_scenes"] = o_->scenes;
  if (!o_->init_from.empty()) {
    (*m)["finetune"] = finetuner_->Summary();
    (*m)["finetune"]["init_from"] = std::filesystem::absolute(o_->init_from).string();
  }
  if (s_.fed.enabled()) (*m)["federated"] = FederatedJson();
  if (!distill_summary_.is_null()) (*m)["distill"] = distill_summary_;
  if (s_.adversarial.enabled()) {
    (*m)["adversarial"] = {{"method", s_.adversarial.method}, {"eps", s_.adversarial.eps},
                           {"weight", s_.adversarial.weight}, {"steps", s_.adversarial.steps}};
  }
  if (s_.retrieval()) {
    (*m)["retrieval"] = {{"objective", s_.objective},
                         {"l2_normalize", s_.l2_normalize},
                         {"temperature", s_.temperature},
                         {"logq_correction", s_.logq_correction},
                         {"uniform_negatives", s_.uniform_negatives}};
  }
}

}  // namespace

StatusOr<ordered_json> TrainRanking(const TrainOptions& options) {
  RankingTask task;
  return RunTraining(options, task);
}

StatusOr<ordered_json> EvaluateRanking(const EvalOptions& o) {
  try {
    if (!o.protocol.empty() && o.protocol != "ctr") {
      return InvalidArgumentError("--protocol " + o.protocol + ": " + o.bundle.string() +
                                  " is a ranking bundle, evaluated with --protocol ctr (AUC, GAUC, log loss per target) "
                                  "or, for a two_tower model, --protocol retrieval (HR@K over the catalogue)");
    }
    ADREC_ASSIGN_OR_RETURN(torch::Device device, tensor::ParseDevice(o.device));
    if (o.threads > 0) at::set_num_threads(o.threads);
    ADREC_ASSIGN_OR_RETURN(LoadedBundle b, LoadBundle(o.bundle, device));
    ADREC_ASSIGN_OR_RETURN(data::Dataset ds, data::ReadDataset(o.data));
    RankingModel& m = b.model;
    if (Status s = m.spec.Bind(ds); !s.ok()) {
      return Status(s.code(), "the dataset does not fit the bundle's features: " + s.message());
    }
    ADREC_ASSIGN_OR_RETURN(PartSamples ps, SamplesOfPart(b.manifest, o.split_dir, ds, m.spec, o.part));
    const data::Split* split_ptr = ps.split ? &*ps.split : nullptr;
    data::SampleSet samples = std::move(ps.samples);
    // A bundle trained on some scenes is evaluated on them.
    const std::vector<std::string> scenes =
        o.scenes.empty() ? b.manifest.value("sample_scenes", std::vector<std::string>{}) : o.scenes;
    ADREC_ASSIGN_OR_RETURN(samples, KeepScenes(std::move(samples), ds, scenes, m.spec.targets.size()));
    if (samples.size() == 0) return FailedPreconditionError("no samples in the '" + o.part + "' part");
    PredictOptions po;
    po.batch_size = o.batch_size;
    po.threads = o.threads > 0 ? o.threads : 0;
    po.primary = std::max(0, m.spec.TargetIndex(b.manifest.value("primary_target", "")));
    po.with_truth = TruthMatchesPrimary(ds, m.spec, po.primary);
    const auto scoring_start = std::chrono::steady_clock::now();
    eval::CtrPredictions p = Predict(m, ds, samples, po);
    const double scoring_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - scoring_start).count();
    if (split_ptr != nullptr && o.part != "train" && o.cold_threshold > 0) {
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
    // Batches of batch_size through the lookup and the model: what a compressed or distilled bundle saves.
    out["scoring"] = {{"seconds", scoring_seconds},
                      {"samples_per_s", scoring_seconds > 0 ? static_cast<double>(samples.size()) / scoring_seconds : 0.0},
                      {"batch_size", o.batch_size}};
    if (o.perturb != "none") {
      AdversarialOptions adv;
      adv.method = o.perturb;
      adv.eps = o.perturb_eps;
      adv.steps = o.perturb_steps;
      ADREC_RETURN_IF_ERROR(CheckAdversarial(adv, "--perturb"));
      po.perturb = &adv;
      po.with_truth = false;
      const ordered_json attacked = eval::CtrReport(Predict(m, ds, samples, po));
      out["adversarial"] = {{"method", adv.method}, {"eps", adv.eps}, {"steps", adv.method == "pgd" ? adv.steps : 1},
                            {"auc", attacked["auc"]}, {"logloss", attacked["logloss"]},
                            {"auc_drop", report["auc"].get<double>() - attacked["auc"].get<double>()}};
    }
    return out;
  } catch (const c10::Error& e) {
    return InternalError(std::string("libtorch: ") + e.what_without_backtrace());
  }
}

}  // namespace adrec::train

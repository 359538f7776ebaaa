#include "adrec/train/run_loop.h"

#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>

#include "adrec/core/config.h"
#include "adrec/core/file.h"
#include "adrec/core/log_line.h"
#include "adrec/core/progress.h"
#include "adrec/models/bundle.h"
#include "adrec/tensor/device.h"
#include "adrec/tensor/tensor_io.h"
#include "adrec/train/distributed.h"
#include "adrec/train/train_config.h"

namespace adrec::train {
namespace {

using nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

// The checkpoint directory: state.safetensors (the task's tensors and the CPU generator
// "rng/cpu"), optimizer.pt, trainer.json (RunProgress, the task's counters, the model name and
// the config hash). Written whole into a staging directory renamed over the old one.
class Checkpoint {
 public:
  Checkpoint(std::filesystem::path dir, std::string model, uint64_t config_hash)
      : dir_(std::move(dir)), model_(std::move(model)), config_hash_(config_hash) {}

  const std::filesystem::path& dir() const { return dir_; }
  // Whether a committed checkpoint is there to resume from.
  bool Exists() const { return std::filesystem::exists(dir_ / "trainer.json"); }

  // Every rank of a distributed run calls it: each writes its shard (where the task has one)
  // into <dir>.shards, and rank 0, once all are there, moves them into the checkpoint it
  // commits, so a reader sees one complete checkpoint or the one before.
  Status Write(TrainingTask& task, const RunProgress& p, Distributed* dist = nullptr) const {
    const std::vector<std::pair<std::string, torch::Tensor>> shard = task.CheckpointShard();
    std::vector<std::pair<std::string, torch::Tensor>> tensors = task.CheckpointTensors();
    const int rank = dist != nullptr ? dist->rank() : 0, world = dist != nullptr ? dist->world_size() : 1;
    const std::filesystem::path shards = dir_.parent_path() / (dir_.filename().string() + ".shards");
    if (!shard.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(shards, ec);
      if (ec) return IoError("cannot create " + shards.string() + ": " + ec.message());
      ADREC_RETURN_IF_ERROR(tensor::SaveTensors(shards / ShardName(rank, world), shard));
      if (dist != nullptr) ADREC_RETURN_IF_ERROR(dist->Barrier());
    }
    if (rank != 0) return dist != nullptr ? dist->Barrier() : Status::Ok();
    ordered_json j;
    j["model"] = model_;
    j["config_hash"] = config_hash_;
    j["epoch"] = p.epoch;
    j["batch_in_epoch"] = p.batch_in_epoch;
    j["step"] = p.step;
    j["best_score"] = p.best_score;
    j["best_at"] = p.best_at;
    j["evals_since_best"] = p.evals_since_best;
    j["trained_seconds"] = p.trained_seconds;
    j["best_valid"] = p.best_valid;
    task.SaveCounters(&j);
    tensors.emplace_back("rng/cpu", at::detail::getDefaultCPUGenerator().get_state());
    ADREC_ASSIGN_OR_RETURN(StagingDir stage, StagingDir::Create(dir_));
    ADREC_RETURN_IF_ERROR(tensor::SaveTensors(stage.path() / "state.safetensors", tensors));
    // Through AtomicWriteFile, so the optimiser state is encrypted at rest like every other file.
    std::ostringstream optimizer_bytes;
    try {
      torch::save(task.optimizer(), optimizer_bytes);
    } catch (const std::exception& e) {
      return IoError("cannot write the optimiser state: " + std::string(e.what()));
    }
    ADREC_RETURN_IF_ERROR(AtomicWriteFile(stage.path() / "optimizer.pt", optimizer_bytes.str()));
    if (!shard.empty()) {
      j["shards"] = world;
      for (int r = 0; r < world; ++r) {
        std::error_code ec;
        std::filesystem::rename(shards / ShardName(r, world), stage.path() / ShardName(r, world), ec);
        if (ec) return IoError("cannot move the checkpoint shard of rank " + std::to_string(r) + ": " + ec.message());
      }
    }
    ADREC_RETURN_IF_ERROR(AtomicWriteFile(stage.path() / "trainer.json", j.dump(2) + "\n"));
    ADREC_RETURN_IF_ERROR(stage.Commit(/*overwrite=*/true));
    std::error_code ec;
    std::filesystem::remove_all(shards, ec);
    return dist != nullptr ? dist->Barrier() : Status::Ok();  // no rank starts the next one before
  }

  static std::string ShardName(int rank, int world) {
    return "shard-" + std::to_string(rank) + "-of-" + std::to_string(world) + ".safetensors";
  }

  // NotFound without a checkpoint, DataLoss when unreadable, FailedPrecondition when written
  // for another model or config.
  Status Load(TrainingTask& task, torch::Device device, RunProgress* p) const {
    const auto tj = dir_ / "trainer.json";
    if (!Exists()) return NotFoundError("--resume: no checkpoint in " + dir_.string());
    ADREC_ASSIGN_OR_RETURN(std::string text, ReadFile(tj));
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const std::exception& e) {
      return DataLossError(tj.string() + ": not valid JSON: " + e.what());
    }
    if (!j.is_object()) return DataLossError(tj.string() + ": not a JSON object");
    if (j.value("model", "") != model_) {
      return FailedPreconditionError(tj.string() + ": the checkpoint is of model '" + j.value("model", "") +
                                     "', the config asks for '" + model_ + "'");
    }
    if (j.value("config_hash", uint64_t{0}) != config_hash_) {
      return FailedPreconditionError(tj.string() +
                                     ": the checkpoint was written with another config; resume with the same --config");
    }
    try {
      p->epoch = j.value("epoch", int64_t{0});
      p->batch_in_epoch = j.value("batch_in_epoch", int64_t{0});
      p->step = j.value("step", int64_t{0});
      p->best_score = j.value("best_score", -1.0);
      p->best_at = j.value("best_at", int64_t{-1});
      p->evals_since_best = j.value("evals_since_best", 0);
      p->trained_seconds = j.value("trained_seconds", 0.0);
      if (j.contains("best_valid")) p->best_valid = j["best_valid"];
      task.RestoreCounters(j);
    } catch (const nlohmann::json::exception& e) {
      return DataLossError(tj.string() + ": a field has the wrong type: " + e.what());
    }
    if (j.contains("shards")) {
      // Written by `shards` ranks; this run may have another number of them.
      const int written = j.value("shards", 0);
      if (written < 1) return DataLossError(tj.string() + ": \"shards\" must be a positive count");
      std::vector<std::map<std::string, torch::Tensor>> shards;
      for (int r = 0; r < written; ++r) {
        ADREC_ASSIGN_OR_RETURN(auto shard, tensor::LoadTensors(dir_ / ShardName(r, written), device));
        shards.push_back(std::move(shard));
      }
      ADREC_RETURN_IF_ERROR(task.RestoreCheckpointShards(shards, dir_.string()));
    }
    const auto state = dir_ / "state.safetensors";
    ADREC_ASSIGN_OR_RETURN(auto tensors, tensor::LoadTensors(state, device));
    ADREC_RETURN_IF_ERROR(task.RestoreCheckpointTensors(tensors, state.string()));
    if (auto it = tensors.find("rng/cpu"); it != tensors.end()) {
      at::Generator gen = at::detail::getDefaultCPUGenerator();
      gen.set_state(it->second.cpu());
    }
    ADREC_ASSIGN_OR_RETURN(std::string optimizer_bytes, ReadFile(dir_ / "optimizer.pt"));
    try {
      std::istringstream in(std::move(optimizer_bytes));
      torch::load(task.optimizer(), in, device);
    } catch (const std::exception& e) {
      return DataLossError((dir_ / "optimizer.pt").string() + ": cannot load the optimiser state: " + e.what());
    }
    return Status::Ok();
  }

 private:
  std::filesystem::path dir_;
  std::string model_;
  uint64_t config_hash_;
};

class Run {
 public:
  Run(const TrainOptions& o, TrainingTask& task) : o_(o), task_(task) {}

  StatusOr<ordered_json> Go() {
    ADREC_RETURN_IF_ERROR(Prepare());
    ADREC_RETURN_IF_ERROR(StartOrResume());
    ADREC_ASSIGN_OR_RETURN(std::string stopped, Loop());
    return Finish(stopped);
  }

 private:
  Status Prepare() {
    if (!o_.resume && std::filesystem::exists(o_.out / models::kBundleManifestFile) && !o_.overwrite) {
      return AlreadyExistsError("bundle " + o_.out.string() +
                                " exists; pass --overwrite to replace it or --resume to continue it");
    }
    ADREC_ASSIGN_OR_RETURN(config_text_, ReadFile(o_.config));
    ADREC_ASSIGN_OR_RETURN(Config cfg, ParseTrainConfig(config_text_, o_.config.string(), o_.model, o_.settings));
    cfg_ = std::make_unique<Config>(std::move(cfg));
    ADREC_RETURN_IF_ERROR(cfg_->Require("model.name", &model_));
    bool deterministic = o_.deterministic;
    bool cfg_deterministic = false;
    ADREC_RETURN_IF_ERROR(cfg_->Get("train.deterministic", &cfg_deterministic));
    deterministic = deterministic || cfg_deterministic;
    ADREC_ASSIGN_OR_RETURN(device_, tensor::ParseDevice(o_.device));
    const uint64_t config_hash = TrainConfigHash(config_text_, o_.model, o_.settings);
    ADREC_ASSIGN_OR_RETURN(std::optional<DistEnv> env, ReadDistEnv());
    if (env) {
      // One GPU per process: "cuda" means the launcher's LOCAL_RANK-th.
      if (device_.is_cuda() && !device_.has_index()) device_ = torch::Device(torch::kCUDA, env->local_rank);
      DistOptions dopt;
      if (o_.dist_timeout_s > 0) dopt.timeout = std::chrono::milliseconds(static_cast<int64_t>(o_.dist_timeout_s * 1000));
      ADREC_ASSIGN_OR_RETURN(dist_, Distributed::Init(*env, device_, dopt));
      ADREC_RETURN_IF_ERROR(dist_->CheckSame(
          "the config, its --set settings and the seed",
          std::to_string(config_hash) + " seed " + std::to_string(o_.seed) + (o_.resume ? " resume" : " new")));
      ADREC_RETURN_IF_ERROR(dist_->CheckSame("the data (manifest of --data)", DataFingerprint()));
      LogInfo("rank " + std::to_string(dist_->rank()) + " of " + std::to_string(dist_->world_size()) + " (" +
              dist_->backend() + ")");
    }
    if (o_.threads > 0) at::set_num_threads(o_.threads);
    if (deterministic) {
      // cuBLAS needs a fixed workspace to be deterministic; must be set before CUDA starts.
      setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", 0);
      at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/false);
    }
    checkpoint_.emplace(o_.out / "checkpoint", model_, config_hash);
    const RunContext ctx{o_, *cfg_, config_text_, model_, device_, dist_.get()};
    ADREC_RETURN_IF_ERROR(task_.Prepare(ctx));
    ADREC_RETURN_IF_ERROR(cfg_->CheckNoUnknownKeys());
    loop_ = task_.loop();
    return Status::Ok();
  }

  Status StartOrResume() {
    std::error_code ec;
    if (!o_.resume && o_.overwrite && lead()) {
      std::filesystem::remove(metrics_path(), ec);
      std::filesystem::remove_all(checkpoint_->dir(), ec);
    }
    if (lead()) std::filesystem::create_directories(o_.out, ec);
    if (ec) return IoError("cannot create " + o_.out.string() + ": " + ec.message());
    if (dist_) ADREC_RETURN_IF_ERROR(dist_->Barrier());  // the others wait for rank 0's clean-up
    if (o_.resume) {
      ADREC_RETURN_IF_ERROR(checkpoint_->Load(task_, device_, &p_));
      LogInfo(loop_.cadence == Cadence::kSteps
                  ? "resuming at epoch " + std::to_string(p_.epoch) + " batch " + std::to_string(p_.batch_in_epoch) +
                        " (step " + std::to_string(p_.step) + ")"
                  : "resuming after epoch " + std::to_string(p_.epoch) + " (step " + std::to_string(p_.step) + ")");
    }
    return task_.BeforeLoop(o_.resume);
  }

  StatusOr<std::string> Loop() {
    ProgressOptions po;
    po.unit = task_.progress_unit();
    po.enabled = o_.show_progress;
    Progress progress("train " + model_, task_.progress_total(), po);
    progress.Add(task_.progress_done(p_));
    seconds_before_ = p_.trained_seconds;
    const auto t0 = Clock::now();
    const bool by_steps = loop_.cadence == Cadence::kSteps;
    std::string stopped = "completed";
    double loss_sum = 0;
    int64_t loss_n = 0, last_checkpoint = p_.step;
    bool done = false;
    while (!done && p_.epoch < loop_.epochs) {
      StatusOr<TrainChunk> chunk = task_.Train(p_, progress);
      if (!chunk.ok()) {
        progress.Finish();
        return chunk.status();
      }
      if (chunk->diverged) {
        progress.Finish();
        return DataLossError(model_ + ": training diverged: the loss is " + std::to_string(chunk->diverged_loss) +
                             " at step " + std::to_string(p_.step + chunk->steps) + "; the last good checkpoint (step " +
                             std::to_string(last_checkpoint) + ") is kept in " + checkpoint_->dir().string() +
                             " and the bundle holds the best weights so far (lower train.lr or train.embedding_lr, "
                             "or set train.clip_norm)");
      }
      if (chunk->interrupted) {
        progress.Finish();
        const std::string where = "interrupted in epoch " + std::to_string(p_.epoch + 1);
        // A run stopped before its first checkpoint has nothing to resume from.
        if (!checkpoint_->Exists()) {
          return Status(StatusCode::kCancelled, where + " before the first checkpoint was written; nothing to resume: "
                                                        "start the run again");
        }
        return Status(StatusCode::kCancelled, where + "; the checkpoint of step " + std::to_string(last_checkpoint) +
                                                  " is in " + checkpoint_->dir().string() +
                                                  "; --resume continues from there");
      }
      p_.step += chunk->steps;
      loss_sum += chunk->loss_sum;
      loss_n += chunk->steps;
      if (by_steps) p_.batch_in_epoch += chunk->steps;
      if (chunk->epoch_done) {
        ++p_.epoch;
        p_.batch_in_epoch = 0;
      }
      p_.trained_seconds = seconds_before_ + std::chrono::duration<double>(Clock::now() - t0).count();

      bool evaluate, checkpoint;
      if (by_steps) {
        evaluate = chunk->epoch_done || (loop_.eval_every > 0 && p_.step % loop_.eval_every == 0);
        checkpoint = evaluate || (loop_.checkpoint_every > 0 && p_.step % loop_.checkpoint_every == 0);
      } else {
        evaluate = chunk->epoch_done && (p_.epoch % loop_.eval_every == 0 || p_.epoch == loop_.epochs);
        checkpoint = chunk->epoch_done;
      }
      bool out_of_time = false;
      if (evaluate) {
        ADREC_ASSIGN_OR_RETURN(done, Evaluate(loss_n > 0 ? loss_sum / static_cast<double>(loss_n) : 0.0));
        if (done) stopped = "early_stopping";
        loss_sum = 0;
        loss_n = 0;
        // Only at an evaluation, so the time limit never discards trained but unevaluated steps.
        out_of_time = !done && o_.max_seconds > 0 &&
                      std::chrono::duration<double>(Clock::now() - t0).count() >= o_.max_seconds &&
                      p_.epoch < loop_.epochs;
      }
      bool interrupted = o_.stop != nullptr && o_.stop->load();
      if (dist_) ADREC_RETURN_IF_ERROR(Agree(&interrupted, &out_of_time));
      const bool at_limit = o_.max_steps > 0 && p_.step >= o_.max_steps;
      if (checkpoint || interrupted || at_limit || out_of_time) {
        ADREC_RETURN_IF_ERROR(checkpoint_->Write(task_, p_, dist_.get()));
        last_checkpoint = p_.step;
      }
      if (interrupted) {
        progress.Finish();
        return Status(StatusCode::kCancelled, "interrupted at step " + std::to_string(p_.step) +
                                                  "; checkpoint written to " + checkpoint_->dir().string() +
                                                  "; continue with --resume");
      }
      if (at_limit && !done) {
        stopped = "max_steps";
        done = true;
        if (!by_steps && p_.step > o_.max_steps) {  // a step-cadence run can pass it only by resuming past it
          LogInfo("--max-steps " + std::to_string(o_.max_steps) + " fell inside epoch " + std::to_string(p_.epoch) +
                  "; " + model_ + " trains by whole epochs, so it stopped at the epoch's end (step " +
                  std::to_string(p_.step) + ")");
        }
      }
      if (out_of_time && !done) {
        stopped = "time_limit";
        done = true;
      }
    }
    progress.Finish();
    return stopped;
  }

  // Appends to metrics.jsonl, keeps the bundle when the score is the best so far; true when
  // patience has run out.
  StatusOr<bool> Evaluate(double train_loss) {
    ADREC_ASSIGN_OR_RETURN(ordered_json valid, task_.EvaluateValid());
    double score = task_.SelectionScore(valid);
    if (dist_) {
      // Rank 0's score decides for all: the same weights, but floating point may differ by host.
      std::vector<torch::Tensor> s{torch::tensor({score}, torch::kFloat64).to(dist_->device())};
      ADREC_RETURN_IF_ERROR(dist_->Broadcast(s, 0));
      score = s[0].cpu().item<double>();
    }
    ordered_json line;
    line["epoch"] = p_.epoch;
    line["step"] = p_.step;
    line["train_loss"] = train_loss;
    line["elapsed_s"] = p_.trained_seconds;
    line["valid"] = valid;
    if (lead()) {
      std::ofstream log(metrics_path(), std::ios::app);
      log << line.dump() << "\n";
      if (!log) return IoError("cannot append to " + metrics_path().string());
    }
    const bool by_steps = loop_.cadence == Cadence::kSteps;
    if (lead()) LogInfo((by_steps ? "step " + std::to_string(p_.step) : "epoch " + std::to_string(p_.epoch)) + ": loss " +
            FixedDigits(train_loss, 4) + ", " + task_.DescribeValid(valid, score));
    if (score > p_.best_score || p_.best_at < 0) {
      p_.best_score = score;
      p_.best_at = by_steps ? p_.step : p_.epoch;
      p_.evals_since_best = 0;
      p_.best_valid = valid;
      ADREC_RETURN_IF_ERROR(WriteBundle(valid));
      return false;
    }
    return ++p_.evals_since_best > loop_.patience;
  }

  Status WriteBundle(const ordered_json& valid) {
    std::vector<std::pair<std::string, torch::Tensor>> tensors = task_.BundleTensors();  // every rank: may gather
    if (!lead()) return Status::Ok();
    ordered_json m = models::NewBundleManifest(task_.bundle_kind(), model_);
    task_.AddManifestFields(&m);
    m["config"] = config_text_;
    if (!o_.settings.empty()) m["settings"] = o_.settings;
    m["epoch"] = p_.epoch;
    m["step"] = p_.step;
    m["seed"] = o_.seed;
    m["metrics"] = {{"valid", valid}};
    m["weights"] = models::kBundleWeightsFile;
    return models::WriteBundle(o_.out, tensors, m);
  }

  StatusOr<ordered_json> Finish(const std::string& stopped) {
    ordered_json summary;
    summary["bundle"] = o_.out.string();
    summary["model"] = model_;
    summary["steps"] = p_.step;
    summary["epochs"] = p_.epoch;
    summary[loop_.cadence == Cadence::kSteps ? "best_step" : "best_epoch"] = p_.best_at;
    summary["stopped"] = stopped;
    summary["train_seconds"] = p_.trained_seconds;
    task_.AddSummary(&summary, p_.trained_seconds - seconds_before_);
    if (dist_) {
      summary["ranks"] = dist_->world_size();
      summary["backend"] = dist_->backend();
      // Time this rank spent in collectives (waits for slower ranks included), and its share of
      // the run's training time (evaluations' collectives included).
      const double comm = dist_->TakeCommSeconds();
      summary["comm_seconds"] = comm;
      summary["comm_share"] = p_.trained_seconds - seconds_before_ > 0 ? comm / (p_.trained_seconds - seconds_before_) : 0.0;
    }
    // Stopped at --max-steps (to be resumed) or before any evaluation: no test yet.
    if (stopped == "max_steps" || p_.best_at < 0) return summary;
    if (dist_ && !lead()) return summary;  // the bundle is one process's: rank 0 tests it as `adrec eval` would
    // The bundle holds the best weights by the selection score: test them from disk, as a user would.
    ADREC_ASSIGN_OR_RETURN(TrainingTask::TestReport test, task_.Test(EvalOptionsFor(o_)));
    ADREC_RETURN_IF_ERROR(models::EditBundleManifest(o_.out, [&](ordered_json& manifest) {
      manifest["metrics"] = {{"valid", p_.best_valid}, {test.part, test.report}};
      manifest["train"] = summary;
    }));
    summary["valid"] = p_.best_valid;
    summary[test.part] = test.report;
    return summary;
  }

  std::filesystem::path metrics_path() const { return o_.out / "metrics.jsonl"; }
  bool lead() const { return dist_ == nullptr || dist_->rank() == 0; }

  // Every rank stops when one is interrupted, and when rank 0 is out of time: clocks differ,
  // and a rank that stopped alone would leave the others waiting in a collective.
  Status Agree(bool* interrupted, bool* out_of_time) {
    std::vector<torch::Tensor> flags{torch::tensor({*interrupted ? 1.0f : 0.0f,
                                                    (*out_of_time && lead()) ? 1.0f : 0.0f})
                                         .to(dist_->device())};
    ADREC_RETURN_IF_ERROR(dist_->AllReduceSum(flags));
    torch::Tensor f = flags[0].cpu();
    *interrupted = f[0].item<float>() > 0;
    *out_of_time = f[1].item<float>() > 0;
    return Status::Ok();
  }

  // What the ranks must agree on of the data: its description and the size of its events.
  std::string DataFingerprint() const {
    StatusOr<std::string> text = ReadFile(o_.data / "dataset.toml");
    std::error_code ec;
    const auto events = std::filesystem::file_size(o_.data / "events.bin", ec);
    return std::to_string(std::hash<std::string>()(text.ok() ? *text : std::string())) + " events " +
           (ec ? std::string("?") : std::to_string(events)) + " bytes";
  }

  const TrainOptions& o_;
  TrainingTask& task_;
  std::string config_text_, model_;
  std::unique_ptr<Config> cfg_;
  torch::Device device_ = torch::kCPU;
  std::optional<Checkpoint> checkpoint_;
  LoopSettings loop_;
  std::unique_ptr<Distributed> dist_;
  RunProgress p_;
  double seconds_before_ = 0;
};

}  // namespace

StatusOr<ordered_json> RunTraining(const TrainOptions& options, TrainingTask& task) {
  try {
    Run run(options, task);
    return run.Go();
  } catch (const c10::Error& e) {
    return InternalError(std::string("libtorch: ") + e.what_without_backtrace());
  } catch (const std::runtime_error& e) {
    return IoError(e.what());  // a collective of a distributed run (embedding::ShardExchange)
  }
}

}  // namespace adrec::train

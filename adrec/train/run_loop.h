// The one training-run driver. It owns a run's lifecycle — an existing bundle (--overwrite,
// --resume), the config and its hash, the device, threads and determinism, checkpoints and
// their resume, SIGINT/SIGTERM, --max-steps, evaluation on the valid part with patience, the
// best-valid bundle, metrics.jsonl, the summary and the final test of the bundle read back from
// disk — and asks a TrainingTask for what differs between models: its data, its step, its
// evaluation, its tensors and its manifest. A new way of training is one new task.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "adrec/core/status.h"
#include "adrec/train/trainer.h"

namespace torch::optim {
class Optimizer;
}
namespace adrec {
class Config;
class Progress;
}  // namespace adrec

namespace adrec::train {

class Distributed;

// How often a run evaluates and checkpoints. kSteps: evaluation every `eval_every` steps and
// at each epoch's end, checkpoints every `checkpoint_every` steps, after each evaluation and on
// a stop; a resumed run continues mid-epoch. kEpochs: one Train call is one epoch; evaluation
// every `eval_every` epochs and after the last, a checkpoint after every epoch; a stop inside an
// epoch keeps the checkpoint of the epoch before.
enum class Cadence { kSteps, kEpochs };

struct LoopSettings {
  Cadence cadence = Cadence::kEpochs;
  int64_t epochs = 1;
  int64_t eval_every = 1;        // steps (kSteps; 0 = once per epoch) or epochs (kEpochs)
  int64_t checkpoint_every = 0;  // steps (kSteps only); 0 = only at evaluations and stops
  int patience = 2;              // evaluations without a better selection score before stopping
};

// Where a run stands: what a checkpoint restores beyond the tensors and the task's counters.
struct RunProgress {
  int64_t epoch = 0;           // completed epochs
  int64_t batch_in_epoch = 0;  // steps done in the epoch under way (kSteps)
  int64_t step = 0;
  double best_score = -1.0;    // the selection score of the weights in the bundle
  int64_t best_at = -1;        // their step (kSteps) or epoch (kEpochs); -1 = no bundle yet
  int evals_since_best = 0;
  double trained_seconds = 0.0;
  nlohmann::ordered_json best_valid;  // the valid report of the weights in the bundle
};

// What one TrainingTask::Train call did.
struct TrainChunk {
  int64_t steps = 0;
  double loss_sum = 0.0;  // of the steps' mean losses (the mean train loss in metrics.jsonl)
  bool epoch_done = false;
  // The stop flag was seen before the chunk finished: its work is not kept (kEpochs).
  bool interrupted = false;
  // A step's loss was not finite (`steps` counts the good steps before it): nothing of it was
  // applied; the driver stops with DataLoss naming the step and what is kept.
  bool diverged = false;
  double diverged_loss = 0.0;
};

// What the driver settled before the task prepares: the parsed config (the task reads its own
// keys; unknown keys are an error after Prepare), its text, the model's name and the device.
struct RunContext {
  const TrainOptions& options;
  Config& config;
  const std::string& config_text;
  const std::string& model;
  torch::Device device;
  // The process group of a distributed run (RANK, WORLD_SIZE … in the environment), else null.
  // Every rank runs the same loop and takes the same decisions (rank 0's clock and stop flag);
  // rank 0 alone writes metrics.jsonl, the bundle and the summary's test.
  Distributed* dist = nullptr;
};

class TrainingTask {
 public:
  virtual ~TrainingTask() = default;

  virtual std::string_view bundle_kind() const = 0;
  // Reads its settings, loads the data, builds the model and its optimiser.
  virtual Status Prepare(const RunContext& ctx) = 0;
  virtual LoopSettings loop() const = 0;
  virtual torch::optim::Optimizer& optimizer() = 0;

  // Checkpoints: the model's tensors with whatever else resuming needs (sparse optimiser
  // state), the task's counters beyond RunProgress, and back.
  virtual std::vector<std::pair<std::string, torch::Tensor>> CheckpointTensors() = 0;
  virtual Status RestoreCheckpointTensors(const std::map<std::string, torch::Tensor>& tensors,
                                          const std::string& source) = 0;
  // Sharded checkpoints (a distributed run whose model is spread over the ranks): this rank's
  // tensors, which every rank writes beside the checkpoint (empty: rank 0's files hold it all);
  // and, when resuming one, every shard it was written with (any world size), given before
  // RestoreCheckpointTensors.
  virtual std::vector<std::pair<std::string, torch::Tensor>> CheckpointShard() { return {}; }
  virtual Status RestoreCheckpointShards(const std::vector<std::map<std::string, torch::Tensor>>& shards,
                                         const std::string& source) {
    return FailedPreconditionError(source + " is a sharded checkpoint, which this model does not write");
  }
  virtual void SaveCounters(nlohmann::ordered_json* checkpoint) const {}
  virtual void RestoreCounters(const nlohmann::json& checkpoint) {}

  // Once, after a resume if there is one, before the first step (a pretraining stage, the
  // batch stream).
  virtual Status BeforeLoop(bool resumed) { return Status::Ok(); }
  // The progress bar: its unit, its total and how much a resumed run has already done.
  virtual std::string progress_unit() const = 0;
  virtual uint64_t progress_total() const = 0;
  virtual uint64_t progress_done(const RunProgress& p) const = 0;
  // One step (kSteps) or one epoch (kEpochs) from where `p` stands.
  virtual StatusOr<TrainChunk> Train(const RunProgress& p, Progress& progress) = 0;

  // The valid report, the score that picks the kept weights (higher is better) and its log line.
  virtual StatusOr<nlohmann::ordered_json> EvaluateValid() = 0;
  virtual double SelectionScore(const nlohmann::ordered_json& valid) const = 0;
  virtual std::string DescribeValid(const nlohmann::ordered_json& valid, double score) const = 0;

  // The bundle: the model's fields of the manifest (after the common header: targets, feature
  // spec or shape, data) and its weights.
  virtual void AddManifestFields(nlohmann::ordered_json* manifest) const = 0;
  virtual std::vector<std::pair<std::string, torch::Tensor>> BundleTensors() = 0;

  // The summary's task figures (throughput of this invocation over `seconds`).
  virtual void AddSummary(nlohmann::ordered_json* summary, double seconds) const {}
  // The bundle's report on the test part (or valid, where there is no test part), evaluated
  // as `adrec eval` would from `eval` (the run's data, split, device and threads).
  struct TestReport {
    std::string part;
    nlohmann::ordered_json report;
  };
  virtual StatusOr<TestReport> Test(EvalOptions eval) = 0;
};

// Runs `task` as options say and returns the summary `adrec train --json` prints: "bundle",
// "model", "steps", "epochs", "best_step" (kSteps) or "best_epoch" (kEpochs), "stopped"
// (completed | early_stopping | max_steps | time_limit), "train_seconds", the task's figures, then "valid"
// and "test" reports. An interrupted run returns Cancelled after its checkpoint; a stop at
// --max-steps returns the summary without a test (the run is meant to be resumed).
StatusOr<nlohmann::ordered_json> RunTraining(const TrainOptions& options, TrainingTask& task);

}  // namespace adrec::train

// Trains a ranking model (LR … PLE, two-tower) from a config and a dataset into a bundle, and
// evaluates a bundle on a dataset; the lifecycle of a run is run_loop.h's, the ranking step
// ranking_trainer.cc's. Torch-free header: the CLI links the trainer without compiling libtorch.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "adrec/core/status.h"

namespace adrec::train {

struct TrainOptions {
  std::filesystem::path data;    // dataset directory
  std::filesystem::path config;  // TOML: [data] split, [features], [model], [train]
  std::filesystem::path out;     // bundle directory (checkpoints go to out/checkpoint)
  std::filesystem::path split_dir;  // optional: a split from `adrec split` instead of [data]
  std::string model;             // optional: overrides the config's model.name
  // Config settings "section.key=VALUE" applied over the file (Config::Set); the bundle records them.
  std::vector<std::string> settings;
  std::string device = "cpu";    // cpu | cuda | cuda:N
  int threads = 0;               // intra-op threads; 0 = all cores
  uint64_t seed = 42;
  bool resume = false;           // continue from out/checkpoint
  bool deterministic = false;    // deterministic algorithms (also set by train.deterministic)
  bool show_progress = true;
  bool overwrite = false;        // replace an existing bundle
  // Set asynchronously (SIGINT/SIGTERM): the trainer writes a checkpoint and stops.
  const std::atomic<bool>* stop = nullptr;
  // Stops after this many steps as if interrupted (tests of --resume); 0 = no limit.
  int64_t max_steps = 0;
  // Stops at the first evaluation after this invocation has trained this long (seconds) and
  // tests the best weights so far, with a checkpoint that --resume continues; 0 = no limit.
  double max_seconds = 0;
  // Ranking: samples of these scenes only, in every part (the bundle remembers them and is
  // evaluated on them); empty = all.
  std::vector<std::string> scenes;
  // Ranking: at most this many train samples, a seeded subset in dataset order (a scene or
  // market with little data, simulated); 0 = all.
  uint64_t max_train_samples = 0;
  // Ranking: start from this bundle's weights (same features and model), and what to train of
  // them (finetune.h: full, head, lora with lora_rank).
  std::filesystem::path init_from;
  std::string finetune = "full";
  int lora_rank = 4;
  // Ranking: DP-SGD for this budget (overrides train.dp_epsilon; the noise is chosen for it) and
  // δ (overrides train.dp_delta); 0 = the config's.
  double dp_epsilon = 0;
  double dp_delta = 0;
  // Ranking: federated averaging over this many clients (overrides train.federated_clients;
  // federated.h); with a DP budget, the budget is per client. 0 = the config's.
  int federated_clients = 0;
  // Ranking: distil this ranking bundle (trained on the same data and split) into the model
  // trained (train.distill_weight, train.distill_temperature).
  std::filesystem::path teacher;
  // Distributed runs (RANK, WORLD_SIZE … set): how long a collective waits for the other
  // ranks, seconds; 0 = 300.
  double dist_timeout_s = 0;
};

// Returns the summary printed by `adrec train --json`: "bundle", "model", "steps", "epochs",
// "best_step", "samples_per_s", "train_seconds", "valid" and "test" metric objects (as
// EvaluateRanking's), "stopped" (completed | early_stopping | interrupted | max_steps | time_limit).
// Interrupted runs return Cancelled after writing the checkpoint. A NaN/Inf loss stops with
// DataLoss naming the step; the last good checkpoint is kept.
StatusOr<nlohmann::ordered_json> TrainRanking(const TrainOptions& options);

struct EvalOptions {
  std::filesystem::path data;
  std::filesystem::path bundle;
  std::filesystem::path split_dir;  // optional; default: the split recorded in the bundle
  std::string part = "test";        // test | valid | train | all
  // "" = the bundle's own: ctr for ranking bundles, loo for sequence bundles (the only one each
  // kind supports; naming another is an error that says which one fits).
  std::string protocol;
  bool exclude_seen = false;        // loo: drop the user's history items from its ranking
  std::string device = "cpu";
  int threads = 0;
  size_t batch_size = 8192;
  // The dense layers' arithmetic (models/precision.h): fp32, bf16 or auto, as `adrec serve
  // --precision` scores; the report's "precision" says which ran.
  std::string precision = "fp32";
  // Ranking bundles: test items with fewer train-part samples than this are reported as cold
  // (report key "items"); 0 = no cold/warm report.
  uint32_t cold_threshold = 5;
  // Ranking bundles: also score the part at adversarially perturbed embeddings (fgsm | pgd,
  // radius perturb_eps relative to each sample's embedding norm; report key "adversarial").
  std::vector<std::string> scenes;  // ranking: only these scenes' samples (default: the bundle's own)
  std::string perturb = "none";
  double perturb_eps = 0.1;
  int perturb_steps = 3;
};

// Top-level "auc", "gauc", "logloss", "ne" of the primary target, then "targets" (each target),
// "scenes" (primary target per scene), "items" (cold and warm items, with a split),
// "bayes_auc" where the dataset has ground truth.
StatusOr<nlohmann::ordered_json> EvaluateRanking(const EvalOptions& options);

// A two-tower bundle as a retriever (protocol "retrieval"; the default for bundles trained with
// train.objective = "in_batch_softmax"): every positive of the part's primary target is a query
// ranked against the whole catalogue by the towers' inner product; HR@K, NDCG@K, MRR, coverage.
StatusOr<nlohmann::ordered_json> EvaluateRetrieval(const EvalOptions& options);

// The evaluation of the bundle a training run wrote: its data, split, device and threads.
inline EvalOptions EvalOptionsFor(const TrainOptions& o) {
  EvalOptions e;
  e.data = o.data;
  e.bundle = o.out;
  e.split_dir = o.split_dir;
  e.device = o.device;
  e.threads = o.threads;
  return e;
}

struct ExplainOptions {
  std::filesystem::path data;
  std::filesystem::path bundle;     // a ranking bundle
  std::filesystem::path split_dir;  // optional; default: the split recorded in the bundle
  std::string part = "test";        // test | valid | train | all
  std::vector<uint64_t> events;     // explain these events' samples; empty: `limit` seeded ones
  size_t limit = 5;
  uint64_t seed = 1;
  std::string target;               // "" = the bundle's primary target
  int steps = 32;                   // points of the integrated-gradients path
  int top = 5;                      // reasons listed per sample
  std::string device = "cpu";
  int threads = 0;
};

// `adrec explain`: integrated gradients (models/explain.h) of the target's logit over the
// bundle's input groups for samples of a part: per sample "score", "logit", "baseline_logit",
// "attributions" (group → value), "top" (the largest reasons) and "gap" (how far the
// attributions' sum is from logit − baseline_logit); "mean_abs" per group over the samples.
// InvalidArgument names an event that is not a sample of the part, or an unknown target.
StatusOr<nlohmann::ordered_json> ExplainRanking(const ExplainOptions& options);

struct CompressOptions {
  std::filesystem::path bundle;  // a ranking bundle
  std::filesystem::path out;     // the compressed bundle
  int bits = 8;                  // embedding rows: 8 or 4 (row-wise quantised), 32 = kept float
  double prune = 0;              // share of each dense weight matrix zeroed by magnitude, [0, 1)
  std::filesystem::path data;    // optional: evaluate both bundles on the test part
  int threads = 0;
  bool overwrite = false;
};

// `adrec compress`: a ranking bundle with its fixed and hashed tables stored as row-wise
// quantised codes (models serve them decoding only the rows a request reads) and, with prune,
// its dense matrices' smallest weights zeroed. Reports the embedding bytes before and after,
// and with data the test AUC and log loss of both and their change. The compressed bundle loads
// in `adrec eval` and `adrec serve`; it does not train (`adrec learn` refuses it).
StatusOr<nlohmann::ordered_json> CompressRanking(const CompressOptions& options);

// What `adrec train` and `adrec eval` call: the model's registry family (options.model, else the
// config's model.name; models/registry.h) or the bundle's kind picks the ranking trainer
// (TrainRanking/EvaluateRanking), the sequence trainer (sequence_trainer.h) or the HSTU
// ranker's (hstu_ranker_trainer.h). An unknown model name lists the registered ones.
StatusOr<nlohmann::ordered_json> Train(const TrainOptions& options);
StatusOr<nlohmann::ordered_json> Evaluate(const EvalOptions& options);

}  // namespace adrec::train

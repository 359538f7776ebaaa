// Trains a generative sequence model (SASRec, HSTU) from a config into a bundle and evaluates
// such a bundle on the leave-one-out protocol (HR@K, NDCG@K, MRR over the full item set).
// Torch-free header; reached through train::Train / train::Evaluate (trainer.h).
#pragma once

#include <nlohmann/json.hpp>

#include "adrec/core/status.h"
#include "adrec/train/trainer.h"

namespace adrec::train {

// Config: [data] split = "loo" (the default here; other splits are an error), positive_actions;
// [model] name, max_len and the model's options; [train] epochs, batch_size, lr, optimizer,
// weight_decay, adam_beta2, loss (ce | sampled_softmax | bce), samples (sequences | prefixes), num_negatives, in_batch_negatives,
// in_batch_max, temperature, l2_normalize, logq_correction, clip_norm, eval_every (epochs), patience (evaluations),
// eval_exclude_seen, eval_batch_size, length_buckets, bf16, deterministic, ema (valid, the bundle and test
// read a moving average of the weights). The bundle keeps the weights of
// the best valid NDCG@10; a checkpoint is written after every epoch, so SIGINT/SIGTERM loses at
// most the epoch under way, and --max-steps stops at the end of the epoch that reaches it.
// Returns "bundle", "model", "epochs", "steps", "best_epoch", "stopped", "train_seconds",
// "sequences_per_s" (rows of the batches: prefixes with train.samples = "prefixes"),
// "tokens_per_s", "truncated", "padding_share", "valid" and "test" metric objects.
StatusOr<nlohmann::ordered_json> TrainSequence(const TrainOptions& options);

// Top-level "hr@1", "hr@10", "hr@50", "hr@200", "ndcg@…", "mrr", "coverage@10",
// "users_evaluated", then "protocol" (name, part, ranking, exclude_seen, ties, history, max_len,
// truncated). FailedPrecondition when the dataset's item vocabulary is not the bundle's.
StatusOr<nlohmann::ordered_json> EvaluateSequence(const EvalOptions& options);

}  // namespace adrec::train

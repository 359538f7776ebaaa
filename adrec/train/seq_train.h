// Training and leave-one-out evaluation of the sequence models (SASRec, HSTU) over
// data::UserSequences: one epoch of next-item steps, and full ranking of every item for each
// user's held-out valid or test item (eval::EvaluateFullRanking: HR@K, NDCG@K, MRR).
#pragma once

#include <atomic>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include <torch/types.h>

#include "adrec/core/status.h"
#include "adrec/data/sequences.h"
#include "adrec/eval/ranking.h"
#include "adrec/models/sequence_model.h"
#include "adrec/train/losses.h"

namespace torch::optim {
class Optimizer;
}
namespace adrec {
class Progress;
}

namespace adrec::train {

class Distributed;
class GradientSync;
class WeightAverage;

struct SeqStepOptions {
  int64_t batch_size = 128;
  std::string loss = "sampled_softmax";  // ce (every item) | sampled_softmax | bce (SASRec's one negative)
  // sequences: a row is a user's train items, every position predicts the next (causal models
  // only); prefixes: a row is one prefix and predicts the one item after it (the S3-Rec family's
  // samples; every model). Same targets per epoch, ~length× the steps.
  std::string samples = "sequences";
  // With prefixes: each row's empty prefix (a window of padding only) predicts its first item
  // too, as the S3-Rec family's loaders make their samples; models that read a whole window only
  // (train.first_item).
  bool first_item = false;
  SampledSoftmaxOptions softmax;
  double clip_norm = 0;                  // 0 = no clipping
  torch::Device device = torch::kCPU;
  bool bf16 = false;                     // autocast the model to bf16 (CUDA only; the loss stays f32)
  // > 1: rows are sorted by length within runs of this many batches before batching (and the
  // batches shuffled), so little compute goes to padding (Beauty, length 50: padding 87% -> 28%
  // of the positions, an epoch 2.5-3x faster); 0 or 1: plain shuffled batches. Off by default:
  // per epoch it cost ~5% NDCG@10 there (batches of like lengths also change the negatives).
  int64_t length_buckets = 1;
  const std::atomic<bool>* stop = nullptr;  // checked between steps: the epoch ends early
  Progress* progress = nullptr;          // advanced by the rows of each step
  // Data parallel (distributed.h): every rank shuffles the same order and takes every
  // world-th unit of each batch of batch_size; `sync` averages the gradients over the ranks
  // after each backward. Every rank takes every step (one with nothing to predict contributes
  // zeros), and the epoch's mean loss is the mean over the ranks.
  Distributed* dist = nullptr;
  GradientSync* sync = nullptr;
  WeightAverage* average = nullptr;  // updated after every optimizer step (train.ema)
};

struct SeqEpochResult {
  double mean_loss = 0;
  int64_t steps = 0, positions = 0;
  int64_t rows = 0, tokens = 0;  // sequences and their real (unpadded) input items
  int64_t padded = 0;            // input positions computed, padding included (batch × length)
  uint64_t truncated = 0;  // rows cut to max_len (oldest items dropped)
  bool interrupted = false;  // options.stop was set before the epoch ended
};

// InvalidArgument naming the key: train.loss or train.samples not one of the known values, or
// (given a model) sequences for a model that is not causal; train.first_item without prefixes
// or (given a model) with a causal one. The config reader checks the names before any data is
// read; the trainer checks them again with the model.
Status CheckSeqLossAndSamples(std::string_view loss, std::string_view samples,
                              const models::SequenceModel* model = nullptr, bool first_item = false);

// One pass over the rows (or prefixes) in an order shuffled by `rng`. InvalidArgument as
// CheckSeqLossAndSamples; a non-finite loss is DataLoss naming the step.
StatusOr<SeqEpochResult> TrainSequenceEpoch(models::SequenceModel& model, torch::optim::Optimizer& optimizer,
                                            const data::UserSequences& seqs, const SeqStepOptions& options,
                                            std::mt19937_64& rng);

struct SeqEvalOptions {
  data::SplitPart part = data::SplitPart::kTest;
  int64_t batch_size = 256;
  bool l2_normalize = false;  // score by cosine (what the sampled-softmax training optimised)
  eval::RankingOptions ranking;  // ks, exclude_seen (the user's train items), threads
  torch::Device device = torch::kCPU;
};

// Encodes each evaluated user's history (train items, plus the valid item for test), scores all
// items by the last state and ranks the held-out one. FailedPrecondition when no user has a
// held-out item for the part.
StatusOr<eval::RankingResult> EvaluateSequenceModel(models::SequenceModel& model, const data::UserSequences& seqs,
                                                    const SeqEvalOptions& options);

}  // namespace adrec::train

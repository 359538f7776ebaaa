// Next-item losses of the sequence models. Sampled softmax as the HSTU reference trains: the
// positive against shared uniform negatives and the other rows' positives (in-batch), on
// L2-normalised embeddings with a temperature; and SASRec's original binary cross-entropy with
// one uniform negative per position.
#pragma once

#include <cstdint>

#include <torch/types.h>

namespace adrec::train {

struct SampledSoftmaxOptions {
  int64_t num_negatives = 128;  // uniform negatives shared by the batch (train.num_negatives)
  bool in_batch = true;         // the other rows' positives are negatives too (train.in_batch_negatives)
  // At most this many in-batch candidates, a random subset of the batch's positives (drawn with
  // the torch generator): every position of every row would make the logits [N, N] — 21k² per
  // step on ML-1M — for candidates mostly repeated (train.in_batch_max).
  int64_t in_batch_max = 128;
  double temperature = 0.05;    // logits are cosine / temperature (train.temperature)
  bool l2_normalize = true;     // cosine instead of dot product (train.l2_normalize)
};

// hidden [N, d]: the states of the N positions that have a target; targets [N] int64 (1-based
// item rows of `table` [V + 1, d]). Negatives equal to a row's positive are masked out
// ("accidental hits"). Mean over rows of −log softmax(positive). Candidates: `negatives`, then
// with options.in_batch the targets (all when N ≤ in_batch_max, else a random in_batch_max).
torch::Tensor SampledSoftmaxLoss(const torch::Tensor& hidden, const torch::Tensor& targets, const torch::Tensor& table,
                                 const SampledSoftmaxOptions& options, const torch::Tensor& negatives);

// Draws `options.num_negatives` uniform item rows in [1, V] on the table's device.
torch::Tensor UniformNegatives(int64_t num_items, const SampledSoftmaxOptions& options, const torch::Device& device);

// SASRec (Kang & McAuley 2018): −log σ(h·e_pos) − log σ(−h·e_neg) per position, mean over
// positions; negatives [N] one per position.
torch::Tensor BceOneNegativeLoss(const torch::Tensor& hidden, const torch::Tensor& targets, const torch::Tensor& table,
                                 const torch::Tensor& negatives);

}  // namespace adrec::train

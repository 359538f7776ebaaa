// The training losses, in one place. Ranking (the CTR models and the HSTU ranker): masked
// binary cross-entropy over several targets. Next item (SASRec, HSTU): sampled softmax as the
// HSTU reference trains it (the positive against shared uniform negatives and the other rows'
// positives, on L2-normalised embeddings with a temperature) and SASRec's original binary
// cross-entropy with one uniform negative per position. Retrieval (the two-tower model): in-batch
// softmax with logQ correction plus uniform negatives.
#pragma once

#include <cstdint>

#include <torch/types.h>

namespace adrec::train {

// logits, labels, mask [N, T] (mask 1 where target t is defined for sample n, float32 labels and
// mask), target_weights [T]: the mean BCE of each target over the samples where it is defined
// (0 where none is), weighted-summed over targets. Logits of any float dtype (bf16 under
// autocast) are computed in float32. `counts` [T], when given, replaces each target's number
// of defined samples as the divisor (a distributed rank divides by the batch's global count over
// the world size, so the ranks' mean loss is the whole batch's).
torch::Tensor MaskedBce(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& mask,
                        const torch::Tensor& target_weights, const torch::Tensor& counts = {});

// Knowledge distillation (Hinton et al. 2015) for binary targets: T² × MaskedBce of the
// student's logits / T against the teacher's probabilities at the same temperature,
// sigmoid(teacher_logits / T); zero with zero gradient where the two agree. All [N, T].
torch::Tensor DistillationLoss(const torch::Tensor& student_logits, const torch::Tensor& teacher_logits,
                               const torch::Tensor& mask, const torch::Tensor& target_weights, double temperature);

struct SampledSoftmaxOptions {
  int64_t num_negatives = 128;  // uniform negatives shared by the batch (train.num_negatives)
  bool in_batch = true;         // the other rows' positives are negatives too (train.in_batch_negatives)
  // At most this many in-batch candidates, a random subset of the batch's positives (drawn with
  // the torch generator): every position of every row would make the logits [N, N] — 21k² per
  // step on ML-1M — for candidates mostly repeated (train.in_batch_max).
  int64_t in_batch_max = 128;
  double temperature = 0.05;    // logits are cosine / temperature (train.temperature)
  bool l2_normalize = true;     // cosine instead of dot product (train.l2_normalize)
  // logQ correction (train.logq_correction): every candidate's logit less the log of how often
  // it is expected among the candidates, n_in_batch · p_j + num_negatives / V (p_j: item j's
  // share of the training targets, given to the loss as log_p), so that popular items, which
  // come as in-batch negatives far more often, are not pushed down for it.
  bool logq = false;
  // Full cross-entropy only: the target keeps 1 - ε of the probability mass and every item
  // shares ε, which keeps the logits of a small catalogue from growing without bound
  // (train.label_smoothing).
  double label_smoothing = 0.0;
  // Full cross-entropy only: the items a row has already seen are no negatives of its softmax
  // (nor shares of the smoothing), as the ranking of --exclude-seen leaves them out
  // (train.exclude_seen).
  bool exclude_seen = false;
};

// hidden [N, d]: the states of the N positions that have a target; targets [N] int64 (1-based
// item rows of `table` [V + 1, d]). Negatives equal to a row's positive are masked out
// ("accidental hits"). Mean over rows of −log softmax(positive). Candidates: `negatives`, then
// with options.in_batch the targets (all when N ≤ in_batch_max, else a random in_batch_max).
// log_p [V + 1]: log share of each item among the training targets, read with options.logq.
torch::Tensor SampledSoftmaxLoss(const torch::Tensor& hidden, const torch::Tensor& targets, const torch::Tensor& table,
                                 const SampledSoftmaxOptions& options, const torch::Tensor& negatives,
                                 const torch::Tensor& log_p = {});

// Draws `options.num_negatives` uniform item rows in [1, V] on the table's device.
torch::Tensor UniformNegatives(int64_t num_items, const SampledSoftmaxOptions& options, const torch::Device& device);

// Full-catalogue cross-entropy (the loss of the S3-Rec family: FMLP-Rec, BSARec, …): every item
// of `table` [V + 1, d] but the padding row 0 is a candidate; mean over rows of
// −log softmax(target). Dot products unless options.l2_normalize (then cosine / temperature);
// the negatives options do not apply. O(N · V) memory: for catalogues up to ~10^5 items.
// `seen` [N, S] int64 (1-based items, 0 for none), read with options.exclude_seen: row n's
// candidates leave out seen[n] but its target.
torch::Tensor FullSoftmaxLoss(const torch::Tensor& hidden, const torch::Tensor& targets, const torch::Tensor& table,
                              const SampledSoftmaxOptions& options, const torch::Tensor& seen = {});

// SASRec (Kang & McAuley 2018): −log σ(h·e_pos) − log σ(−h·e_neg) per position, mean over
// positions; negatives [N] one per position.
torch::Tensor BceOneNegativeLoss(const torch::Tensor& hidden, const torch::Tensor& targets, const torch::Tensor& table,
                                 const torch::Tensor& negatives);

// Retrieval by a two-tower model (Yi et al. 2019, "Sampling-Bias-Corrected Neural Modeling for
// Large Corpus Item Recommendations"; Yang et al. 2020, "Mixed Negative Sampling"). Row i's
// query q_i [B, d] should score its own item v_i [B, d] above the other rows' items and the
// uniform negatives neg [M, d]. Each candidate's logit is q·v / temperature − log(expected times
// it is sampled): log(B · p_j) for in-batch items (p_j: the item's share of training positives,
// `log_p` [B]) and log(M / num_items) for uniform ones, so popular items are not pushed down
// merely for appearing often. Candidates with the row's own item ID (repeats in the batch,
// accidental uniform hits) are masked. Mean over rows of −log softmax(own item).
struct InBatchSoftmaxOptions {
  double temperature = 0.05;  // train.temperature
  bool logq = true;           // train.logq_correction
  bool l2_normalize = true;   // cosine instead of dot product (train.l2_normalize)
};
torch::Tensor InBatchSoftmaxLoss(const torch::Tensor& q, const torch::Tensor& v, const torch::Tensor& item_ids,
                                 const torch::Tensor& log_p, const torch::Tensor& neg, const torch::Tensor& neg_ids,
                                 int64_t num_items, const InBatchSoftmaxOptions& options);

}  // namespace adrec::train

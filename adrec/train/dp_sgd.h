// DP-SGD for the ranking trainer (Abadi et al. 2016): each step takes a Poisson sample of the
// train samples, clips every sample's gradient — the dense layers' and the embedding rows it
// read, together — to norm C, sums, adds Gaussian noise N(0, σ²C²) to every coordinate (every
// row of every table, not only the rows the batch touched: which rows move would tell which IDs
// were sampled) and divides by the expected batch size. Per-sample norms come from activations
// (models/per_sample.h) and the embedding lookup (EmbeddingCollection::PerSampleSquaredNorms),
// so a step costs two backward passes instead of one per sample. ε is dp_accountant.h's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "adrec/core/status.h"
#include "adrec/embedding/embedding.h"

namespace adrec::models {
class PerSampleTape;
}

namespace adrec::train {

// [train] dp_epsilon, dp_delta, dp_clip, dp_noise_multiplier (adrec train --dp-epsilon/--dp-delta).
struct DpSgdOptions {
  double epsilon = 0;             // the budget the noise is chosen for; 0 = off
  double delta = 1e-5;
  double clip = 1.0;              // C: each sample's gradient norm is clipped to it
  double noise_multiplier = -1;   // σ given directly instead of a budget (0: clipping alone); < 0 = from ε
  bool enabled() const { return epsilon > 0 || noise_multiplier >= 0; }
};

// The run's plan: q = batch_size / N, steps = epochs × ⌈1/q⌉, σ for (ε, δ) over those steps.
struct DpPlan {
  double sample_rate = 0;
  int64_t steps = 0;
  double noise_multiplier = 0;
  double expected_batch = 0;  // q N: what the noisy sum is divided by
};
// InvalidArgument naming the key for a bad value, or a budget too small to train at all.
StatusOr<DpPlan> PlanDpSgd(const DpSgdOptions& options, uint64_t num_samples, size_t batch_size, int epochs);
// The plan for `steps` steps at `sample_rate` over `population` units (samples, or federated
// clients), after PlanDpSgd's checks of the options: σ for the budget, or the one given.
StatusOr<DpPlan> PlanDp(const DpSgdOptions& options, double sample_rate, int64_t steps, uint64_t population);

// Step `step`'s Poisson sample of [0, n): each index independently with probability q, in
// ascending order; a function of (seed, step) alone, so a resumed run draws the same batches.
std::vector<uint64_t> PoissonSample(uint64_t n, double q, uint64_t seed, int64_t step);

struct DpStepStats {
  double mean_norm = 0;         // of the samples' unclipped gradients
  double clipped_fraction = 0;  // share of samples whose norm passed C
};

// After a forward pass recorded on `tape` that gave `sample_losses` [B] (each sample's own,
// unnormalised loss) from `lookup`: fills each of `params`' .grad with its noisy clipped mean,
// and returns the tables' noisy gradients over all their rows (TableGradients order: the
// collection's tables). B = 0 (an empty Poisson sample) gives noise alone.
struct DpGradients {
  std::vector<torch::Tensor> tables;  // [rows, dim] per table of the collection
  DpStepStats stats;
};
DpGradients PrivateGradients(const torch::Tensor& sample_losses, const models::PerSampleTape& tape,
                             embedding::EmbeddingCollection& embeddings, const embedding::EmbeddingCollection::Lookup* lookup,
                             const std::vector<torch::Tensor>& params, const DpPlan& plan, double clip, uint64_t seed,
                             int64_t step);
// Applies PrivateGradients' table gradients to every row with each table's own optimiser.
void ApplyTableGradients(embedding::EmbeddingCollection& embeddings, const DpGradients& g, int64_t step);

// FailedPrecondition naming what DP-SGD cannot clip per sample: a trainable parameter the
// tape did not record (a batch or layer norm mixes or is not covered), one recorded twice, or a
// dynamic table (its rows are allocated by the IDs seen, which is itself a leak).
Status CheckDpCoverage(const models::PerSampleTape& tape,
                       const std::vector<std::pair<std::string, torch::Tensor>>& named_params,
                       embedding::EmbeddingCollection& embeddings, const std::string& model);

// "dp" of the summary and manifest: the plan, the steps taken and the ε they spent at δ.
StatusOr<nlohmann::ordered_json> DpSummary(const DpSgdOptions& options, const DpPlan& plan, int64_t steps_taken);

}  // namespace adrec::train

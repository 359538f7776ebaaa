#include "adrec/train/seq_train.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "adrec/core/progress.h"
#include "adrec/train/autocast.h"
#include "adrec/train/distributed.h"
#include "adrec/train/weight_average.h"

namespace adrec::train {

namespace {
// To the GPU through pinned memory without waiting for it: the caching host allocator keeps the
// staging block until the copy has run, so the step's kernels queue behind the copy.
torch::Tensor Int64(std::vector<int64_t>& v, int64_t rows, int64_t cols, const torch::Device& device) {
  torch::Tensor host = torch::from_blob(v.data(), {rows, cols}, torch::kInt64);
  if (!device.is_cuda()) return host;
  return host.pin_memory().to(device, /*non_blocking=*/true);
}

// Steps between two reads of the loss on the GPU: each read waits for the queue to drain.
constexpr int64_t kCudaLossCheckEvery = 50;

// Units (rows or prefixes) in an order shuffled by `rng`. With length buckets, units of similar
// length share a batch, so a batch pads to little more than its units: each run of
// length_buckets batches is sorted by length, then the batches' order is shuffled.
template <typename Unit, typename Length>
void ShuffleUnits(std::vector<Unit>& order, size_t bs, int64_t length_buckets, Length len, std::mt19937_64& rng) {
  std::shuffle(order.begin(), order.end(), rng);
  if (length_buckets <= 1) return;
  const size_t run = bs * static_cast<size_t>(length_buckets);
  for (size_t b = 0; b < order.size(); b += run) {
    auto first = order.begin() + static_cast<int64_t>(b);
    auto last = order.begin() + static_cast<int64_t>(std::min(order.size(), b + run));
    std::stable_sort(first, last, [&](const Unit& x, const Unit& y) { return len(x) < len(y); });
  }
  std::vector<size_t> batches;
  for (size_t b = 0; b < order.size(); b += bs) batches.push_back(b);
  std::shuffle(batches.begin(), batches.end(), rng);
  std::vector<Unit> shuffled;
  shuffled.reserve(order.size());
  for (size_t b : batches) {
    shuffled.insert(shuffled.end(), order.begin() + static_cast<int64_t>(b),
                    order.begin() + static_cast<int64_t>(std::min(order.size(), b + bs)));
  }
  order.swap(shuffled);
}
}  // namespace

Status CheckSeqLossAndSamples(std::string_view loss, std::string_view samples, const models::SequenceModel* model,
                              bool first_item) {
  if (loss != "ce" && loss != "sampled_softmax" && loss != "bce") {
    return InvalidArgumentError("train.loss '" + std::string(loss) + "' is not one of ce, sampled_softmax, bce");
  }
  if (samples != "sequences" && samples != "prefixes") {
    return InvalidArgumentError("train.samples '" + std::string(samples) + "' is not one of sequences, prefixes");
  }
  if (model != nullptr && samples == "sequences" && !model->causal()) {
    return InvalidArgumentError(model->kind() + " is not causal (a position's state sees later items), so it trains on "
                                "prefixes: set train.samples = \"prefixes\"");
  }
  if (first_item && (samples != "prefixes" || (model != nullptr && model->causal()))) {
    // A causal model's state at a padding position is no state (SASRec's attention has no key).
    return InvalidArgumentError("train.first_item needs train.samples = \"prefixes\" and a model that reads a whole "
                                "window (bsarec, wearec)" + (model != nullptr ? ", not " + model->kind() : std::string()));
  }
  return Status::Ok();
}

StatusOr<SeqEpochResult> TrainSequenceEpoch(models::SequenceModel& model, torch::optim::Optimizer& optimizer,
                                            const data::UserSequences& seqs, const SeqStepOptions& options,
                                            std::mt19937_64& rng) {
  ADREC_RETURN_IF_ERROR(CheckSeqLossAndSamples(options.loss, options.samples, &model, options.first_item));
  model.train();
  const int64_t num_items = model.shape().num_items, max_len = model.shape().max_len;
  const size_t bs = static_cast<size_t>(options.batch_size);
  const bool prefixes = options.samples == "prefixes";
  std::vector<uint32_t> order;
  std::vector<data::SequencePrefix> prefix_order;
  if (prefixes) {
    prefix_order = data::TrainPrefixes(seqs, options.first_item);
    ShuffleUnits(prefix_order, bs, options.length_buckets,
                 [&](const data::SequencePrefix& p) { return std::min<int64_t>(p.end, max_len); }, rng);
  } else {
    order.resize(seqs.size());
    std::iota(order.begin(), order.end(), 0u);
    ShuffleUnits(order, bs, options.length_buckets,
                 [&](uint32_t r) { return std::min<uint64_t>(seqs.length(r), static_cast<uint64_t>(max_len) + 1); }, rng);
  }
  const size_t units = prefixes ? prefix_order.size() : order.size();
  torch::Tensor log_p;
  if (options.loss == "sampled_softmax" && options.softmax.logq) {
    // Each item's share of the targets: every train item but each row's first.
    std::vector<float> counts(static_cast<size_t>(num_items) + 1, 0.f);
    for (size_t r = 0; r < seqs.size(); ++r) {
      for (uint64_t i = seqs.offsets[r] + 1; i < seqs.offsets[r + 1]; ++i) counts[seqs.items[i] + 1] += 1.f;
    }
    torch::Tensor c = torch::tensor(counts);
    log_p = c.div_(std::max(1.0, c.sum().item<double>())).log_().to(options.device);
  }
  SeqEpochResult out;
  torch::Tensor loss_sum;  // on the model's device
  const int64_t check_every = options.device.is_cuda() ? kCudaLossCheckEvery : 1;
  std::vector<int64_t> where_host, seen_host;
  int64_t loss_steps = 0;
  const int rank = options.dist != nullptr ? options.dist->rank() : 0;
  const int world = options.dist != nullptr ? options.dist->world_size() : 1;
  std::vector<data::SequencePrefix> mine_prefixes;
  std::vector<uint32_t> mine_rows;
  data::SequenceBatch batch;
  const bool autocast = options.bf16 && options.device.is_cuda();
  for (size_t begin = 0; begin < units; begin += bs) {
    if (options.stop != nullptr && options.stop->load()) {
      out.interrupted = true;
      break;
    }
    const size_t end = std::min(units, begin + bs);
    size_t first = begin, count = end - begin;
    if (world > 1) {
      // This rank's share of the batch: units begin + rank, begin + rank + world, …
      mine_prefixes.clear();
      mine_rows.clear();
      for (size_t u = begin + static_cast<size_t>(rank); u < end; u += static_cast<size_t>(world)) {
        if (prefixes) mine_prefixes.push_back(prefix_order[u]); else mine_rows.push_back(order[u]);
      }
      first = 0;
      count = prefixes ? mine_prefixes.size() : mine_rows.size();
    }
    const data::SequencePrefix* prefix_base = world > 1 ? mine_prefixes.data() : prefix_order.data();
    const uint32_t* row_base = world > 1 ? mine_rows.data() : order.data();
    if (prefixes) {
      data::BuildPrefixBatch(seqs, std::span<const data::SequencePrefix>(prefix_base + first, count), max_len, &batch);
    } else {
      data::BuildTrainBatch(seqs, std::span<const uint32_t>(row_base + first, count), max_len, &batch);
    }
    out.truncated += batch.truncated;
    out.rows += static_cast<int64_t>(count);
    if (options.progress != nullptr) options.progress->Add(count);
    for (int64_t x : batch.items) out.tokens += x != 0;
    out.padded += static_cast<int64_t>(batch.items.size());
    // The predicted positions, found on the host: nonzero() on the GPU would wait for it.
    where_host.clear();
    for (size_t i = 0; i < batch.targets.size(); ++i) {
      if (batch.targets[i] != 0) where_host.push_back(static_cast<int64_t>(i));
    }
    if (where_host.empty()) {  // rows of one item: nothing to predict
      if (options.sync == nullptr) continue;
      // The others step: this rank adds zeros to their gradients.
      optimizer.zero_grad();
      ADREC_RETURN_IF_ERROR(options.sync->Finish());
      optimizer.step();
      if (options.average != nullptr) options.average->Update();
      ++out.steps;
      continue;
    }
    torch::Tensor targets = Int64(batch.targets, batch.batch, batch.length, options.device).reshape(-1);
    torch::Tensor where = Int64(where_host, 1, static_cast<int64_t>(where_host.size()), options.device).reshape(-1);
    models::SequenceInput in{Int64(batch.items, batch.batch, batch.length, options.device),
                             Int64(batch.times, batch.batch, batch.length, options.device)};
    torch::Tensor encoded = MaybeAutocastBf16(autocast, [&] { return model.Encode(in); });
    torch::Tensor hidden = encoded.reshape({-1, model.ItemTable().size(1)}).index_select(0, where);
    torch::Tensor pos = targets.index_select(0, where);
    torch::Tensor loss;
    if (options.loss == "ce") {
      torch::Tensor seen;
      if (options.softmax.exclude_seen) {
        // Row n's items up to its predicting position, built on the host as the positions are.
        const int64_t L = batch.length;
        seen_host.assign(where_host.size() * static_cast<size_t>(L), 0);
        for (size_t n = 0; n < where_host.size(); ++n) {
          const int64_t row = where_host[n] / L, upto = where_host[n] % L;
          std::copy_n(batch.items.begin() + row * L, upto + 1, seen_host.begin() + static_cast<int64_t>(n) * L);
        }
        seen = Int64(seen_host, static_cast<int64_t>(where_host.size()), L, options.device);
      }
      loss = FullSoftmaxLoss(hidden, pos, model.ItemTable(), options.softmax, seen);
    } else if (options.loss == "bce") {
      torch::Tensor neg = torch::randint(1, num_items + 1, {pos.size(0)}, pos.options());
      loss = BceOneNegativeLoss(hidden, pos, model.ItemTable(), neg);
    } else {
      loss = SampledSoftmaxLoss(hidden, pos, model.ItemTable(), options.softmax,
                                UniformNegatives(num_items, options.softmax, options.device), log_p);
    }
    // The sum of the losses so far, read every check_every steps: a non-finite one stops the
    // epoch before its update reaches the weights only where it is read each step (the CPU).
    loss_sum = loss_sum.defined() ? loss_sum + loss.detach().to(torch::kFloat64) : loss.detach().to(torch::kFloat64);
    ++loss_steps;
    ++out.steps;
    if (out.steps % check_every == 0) {
      const double value = loss_sum.item<double>();
      if (!std::isfinite(value)) {
        return DataLossError("sequence training: the loss is " + std::to_string(value) + " by step " +
                             std::to_string(out.steps) + " of the epoch");
      }
    }
    optimizer.zero_grad();
    loss.backward();
    if (options.sync != nullptr) ADREC_RETURN_IF_ERROR(options.sync->Finish());
    if (options.clip_norm > 0) torch::nn::utils::clip_grad_norm_(model.parameters(), options.clip_norm);
    optimizer.step();
    if (options.average != nullptr) options.average->Update();
    out.positions += static_cast<int64_t>(where_host.size());
  }
  if (options.dist != nullptr) {
    // The mean loss over every rank's steps; rows and tokens of every rank (the run's throughput).
    std::vector<torch::Tensor> sums{torch::tensor({loss_sum.defined() ? loss_sum.item<double>() : 0.0,
                                                   static_cast<double>(loss_steps), static_cast<double>(out.rows),
                                                   static_cast<double>(out.tokens), static_cast<double>(out.padded)},
                                                  torch::kFloat64)
                                        .to(options.dist->device())};
    ADREC_RETURN_IF_ERROR(options.dist->AllReduceSum(sums));
    torch::Tensor s = sums[0].cpu();
    loss_sum = s[0];
    loss_steps = static_cast<int64_t>(s[1].item<double>());
    out.rows = static_cast<int64_t>(s[2].item<double>());
    out.tokens = static_cast<int64_t>(s[3].item<double>());
    out.padded = static_cast<int64_t>(s[4].item<double>());
  }
  out.mean_loss = loss_steps > 0 ? loss_sum.item<double>() / static_cast<double>(loss_steps) : 0.0;
  if (!std::isfinite(out.mean_loss)) {
    return DataLossError("sequence training: the loss is " + std::to_string(out.mean_loss) + " by the end of the epoch");
  }
  return out;
}

namespace {
// The ranking on the GPU, the same counts as eval::EvaluateFullRanking's: a [chunk, items] score
// block per GEMM, excluded items set to NaN (they drop out of both counts), the target restored.
// Top-K lists for coverage come from topk, whose order among equal scores is the device's.
StatusOr<eval::RankingResult> RankOnDevice(const eval::RankingTask& task, const torch::Tensor& states,
                                           const torch::Tensor& table, const eval::RankingOptions& options) {
  const int64_t nq = static_cast<int64_t>(task.size()), n_items = table.size(0);
  const auto dev = states.device();
  const auto long_opts = torch::TensorOptions().dtype(torch::kInt64);
  std::vector<uint64_t> greater(static_cast<size_t>(nq)), tied(static_cast<size_t>(nq));
  uint32_t max_cov_k = 0;
  for (uint32_t k : options.coverage_ks) max_cov_k = std::max<uint32_t>(max_cov_k, std::min<uint32_t>(k, static_cast<uint32_t>(n_items)));
  torch::Tensor best = torch::full({n_items}, static_cast<int64_t>(UINT32_MAX), long_opts.device(dev));
  const int64_t chunk = std::max<int64_t>(1, (int64_t{1} << 26) / std::max<int64_t>(1, n_items));  // ≤ 256 MiB of scores
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t b = 0; b < nq; b += chunk) {
    const int64_t e = std::min(nq, b + chunk);
    torch::Tensor s = torch::matmul(states.narrow(0, b, e - b), table.t());  // [n, items]
    std::vector<int64_t> tgt(task.targets.begin() + b, task.targets.begin() + e);
    torch::Tensor t_idx = torch::from_blob(tgt.data(), {e - b, 1}, long_opts).to(dev);
    torch::Tensor t_score = s.gather(1, t_idx);
    if (torch::isnan(t_score).any().item<bool>()) {
      return InvalidArgumentError("full ranking: the model scored a target of queries " + std::to_string(b) + ".." +
                                  std::to_string(e - 1) + " as NaN");
    }
    if (options.exclude_seen) {
      std::vector<int64_t> rows, cols;
      for (int64_t q = b; q < e; ++q) {
        for (uint32_t x : task.ExcludeOf(static_cast<size_t>(q))) {
          rows.push_back(q - b);
          cols.push_back(x);
        }
      }
      if (!rows.empty()) {
        const int64_t n = static_cast<int64_t>(rows.size());
        s.index_put_({torch::from_blob(rows.data(), {n}, long_opts).to(dev), torch::from_blob(cols.data(), {n}, long_opts).to(dev)},
                     torch::tensor(nan, s.options()));
        s.scatter_(1, t_idx, t_score);  // the target is never excluded
      }
    }
    torch::Tensor g = s.gt(t_score).sum(1).cpu(), t = s.eq(t_score).sum(1).sub(1).cpu();
    const int64_t* gp = g.data_ptr<int64_t>();
    const int64_t* tp = t.data_ptr<int64_t>();
    for (int64_t q = b; q < e; ++q) {
      greater[static_cast<size_t>(q)] = static_cast<uint64_t>(gp[q - b]);
      tied[static_cast<size_t>(q)] = static_cast<uint64_t>(tp[q - b]);
    }
    if (max_cov_k > 0) {
      torch::Tensor top = std::get<1>(torch::nan_to_num(s, -std::numeric_limits<float>::infinity()).topk(max_cov_k, 1));
      torch::Tensor pos = torch::arange(static_cast<int64_t>(max_cov_k), long_opts.device(dev)).expand_as(top);
      best.scatter_reduce_(0, top.reshape(-1), pos.reshape(-1), "amin");
    }
  }
  std::vector<uint32_t> best_pos;
  if (max_cov_k > 0) {
    torch::Tensor bc = best.cpu();
    const int64_t* bp = bc.data_ptr<int64_t>();
    best_pos.assign(bp, bp + n_items);
  }
  return eval::RankingResultFromRanks(std::move(greater), std::move(tied), best_pos, static_cast<uint32_t>(n_items), options);
}
}  // namespace

StatusOr<eval::RankingResult> EvaluateSequenceModel(models::SequenceModel& model, const data::UserSequences& seqs,
                                                    const SeqEvalOptions& options) {
  const std::vector<uint32_t> rows = data::EvalRows(seqs, options.part);
  if (rows.empty()) {
    return FailedPreconditionError("no user has a held-out " + std::string(data::SplitPartName(options.part)) +
                                   " item (leave-one-out needs 3 positives per user)");
  }
  torch::NoGradGuard no_grad;
  model.eval();
  const int64_t num_items = model.shape().num_items, max_len = model.shape().max_len;
  torch::Tensor table = model.ItemTable().narrow(0, 1, num_items);  // row 0 is padding
  if (options.l2_normalize) table = torch::nn::functional::normalize(table, torch::nn::functional::NormalizeFuncOptions().dim(-1));
  // Each evaluated row's last state; scores are dot products taken per query while ranking, so
  // memory stays O((users + items) · dim) on catalogs of any size.
  const int64_t dim = table.size(1);
  // On the evaluation device: the GPU ranking reads them there, the CPU ranking on the host.
  torch::Tensor states = torch::empty({static_cast<int64_t>(rows.size()), dim},
                                      torch::TensorOptions().dtype(torch::kFloat32).device(options.device));
  data::SequenceBatch batch;
  for (size_t begin = 0; begin < rows.size(); begin += static_cast<size_t>(options.batch_size)) {
    const size_t end = std::min(rows.size(), begin + static_cast<size_t>(options.batch_size));
    data::BuildEvalBatch(seqs, std::span<const uint32_t>(rows.data() + begin, end - begin), options.part, max_len,
                         &batch);
    models::SequenceInput in{Int64(batch.items, batch.batch, batch.length, options.device),
                             Int64(batch.times, batch.batch, batch.length, options.device)};
    torch::Tensor hidden = model.Encode(in);
    torch::Tensor last = in.items.ne(0).sum(1) - 1;  // right padding: the last real position
    torch::Tensor state = hidden.gather(1, last.view({-1, 1, 1}).expand({-1, 1, hidden.size(2)})).squeeze(1);
    if (options.l2_normalize) state = torch::nn::functional::normalize(state, torch::nn::functional::NormalizeFuncOptions().dim(-1));
    states.narrow(0, static_cast<int64_t>(begin), static_cast<int64_t>(end - begin))
        .copy_(state.to(torch::kFloat32));
  }
  eval::RankingTask task;
  task.num_items = static_cast<uint32_t>(num_items);
  std::vector<int64_t> query_row(seqs.size(), -1);
  for (size_t q = 0; q < rows.size(); ++q) {
    const uint32_t r = rows[q];
    query_row[r] = static_cast<int64_t>(q);
    const uint32_t target = options.part == data::SplitPart::kTest ? seqs.test_item[r] : seqs.valid_item[r];
    std::vector<uint32_t> seen(seqs.items.begin() + static_cast<int64_t>(seqs.offsets[r]),
                               seqs.items.begin() + static_cast<int64_t>(seqs.offsets[r + 1]));
    if (options.part == data::SplitPart::kTest) seen.push_back(seqs.valid_item[r]);
    task.Add(r, target, seen);  // the query's "user" is the row, for the score lookup below
  }
  if (options.device.is_cuda()) return RankOnDevice(task, states, table.to(torch::kFloat32), options.ranking);
  // Dimension-major [dim, items]: the inner loop runs over items, which the compiler vectorises.
  torch::Tensor items_t = table.to(torch::kFloat32).cpu().t().contiguous();
  const float* cols = items_t.data_ptr<float>();
  const float* state_rows = states.data_ptr<float>();
  auto score = [&](uint32_t row, std::span<float> out) {
    const float* h = state_rows + query_row[row] * dim;
    std::fill(out.begin(), out.begin() + num_items, 0.f);
    for (int64_t k = 0; k < dim; ++k) {
      const float hk = h[k];
      const float* c = cols + k * num_items;
      float* o = out.data();
      for (int64_t i = 0; i < num_items; ++i) o[i] += hk * c[i];
    }
  };
  return eval::EvaluateFullRanking(task, score, options.ranking);
}

}  // namespace adrec::train

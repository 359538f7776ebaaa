// Training throughput of SASRec and HSTU, adrec's side (the PyTorch eager side is
// bench/reference/train_sequence.py; scripts/bench-sequence runs both and prints the ratio). The
// step is the sequence trainer's (adrec/train/seq_train.cc): Encode → the states of positions
// with a target → sampled softmax (uniform + in-batch negatives, cosine / 0.05) → loss.item()
// → zero_grad → backward → AdamW step. Batches hold full-length random sequences (ML-1M shape by
// default), built before timing as on both sides.
//
//   train_sequence_bench [--model sasrec|hstu|bsarec|wearec] [--device cpu|cuda] [--threads 2] [--batch 128]
//       [--len 200] [--items 3706] [--dim 50] [--blocks 2] [--heads 1] [--negatives 128]
//       [--warmup 3] [--steps 20] [--bf16 -1|0|1] [--encode-latency 0|1]
//
// Prints one JSON object on stdout: sequences/s and tokens/s (mean and median step), and with
// --encode-latency the p50/p99 latency of encoding one history of --len items (eval mode).
#include "bench/ranking_bench_common.h"

#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <random>

#include "adrec/models/sequence_model.h"
#include "adrec/train/autocast.h"
#include "adrec/train/losses.h"

namespace adrec::bench {
namespace {

using Clock = std::chrono::steady_clock;

int Run(int argc, char** argv) {
  Flags flags(argc, argv);
  const std::string kind = flags.Str("model", "hstu");
  const torch::Device device = ParseDevice(flags.Str("device", "cpu"));
  const int64_t threads = flags.Int("threads", 2);
  const int64_t batch = flags.Int("batch", 128);
  const int64_t len = flags.Int("len", 200);
  const int64_t items = flags.Int("items", 3706);
  const int64_t dim = flags.Int("dim", 50);
  const int64_t blocks = flags.Int("blocks", 2);
  const int64_t heads = flags.Int("heads", 1);
  const int64_t negatives = flags.Int("negatives", 128);
  const int64_t warmup = flags.Int("warmup", 3);
  const int64_t steps = flags.Int("steps", 20);
  const int64_t bf16_flag = flags.Int("bf16", -1);
  const bool latency = flags.Int("encode-latency", 0) != 0;
  flags.CheckAllUsed();
  const bool bf16 = bf16_flag < 0 ? device.is_cuda() : bf16_flag != 0;  // the trainer's train.bf16 default

  at::set_num_threads(static_cast<int>(threads));
  torch::manual_seed(42);
  auto cfg = Config::Parse("[model]\ndim = " + std::to_string(dim) + "\nblocks = " + std::to_string(blocks) +
                           "\nheads = " + std::to_string(heads) + "\ndropout = 0.2\n");
  if (!cfg.ok()) Die(cfg.status().ToString());
  auto made = models::MakeSequenceModel(kind, {items, len}, *cfg);
  if (!made.ok()) Die(made.status().ToString());
  std::shared_ptr<models::SequenceModel> model = *made;
  model->to(device);
  model->train();
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-3).betas({0.9, 0.98}).weight_decay(0));
  train::SampledSoftmaxOptions so;
  so.num_negatives = negatives;

  // A few distinct batches, cycled: full rows, increasing times, targets = the next item.
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int64_t> item(1, items);
  const int kBatches = 4;
  std::vector<models::SequenceInput> inputs;
  std::vector<torch::Tensor> targets;
  for (int b = 0; b < kBatches; ++b) {
    torch::Tensor seq = torch::empty({batch, len + 1}, torch::kInt64);
    torch::Tensor ts = torch::empty({batch, len}, torch::kInt64);
    auto s = seq.accessor<int64_t, 2>();
    auto t = ts.accessor<int64_t, 2>();
    for (int64_t r = 0; r < batch; ++r) {
      int64_t now = 1000000000;
      for (int64_t i = 0; i <= len; ++i) s[r][i] = item(rng);
      for (int64_t i = 0; i < len; ++i) t[r][i] = now += 1 + static_cast<int64_t>(rng() % 86400);
    }
    inputs.push_back({seq.narrow(1, 0, len).contiguous().to(device), ts.to(device)});
    targets.push_back(seq.narrow(1, 1, len).reshape(-1).contiguous().to(device));
  }

  std::vector<double> losses, step_s;
  auto step = [&](int64_t i) {
    const models::SequenceInput& in = inputs[i % kBatches];
    torch::Tensor encoded = train::MaybeAutocastBf16(bf16, [&] { return model->Encode(in); });
    // A window model (bsarec, wearec) is read at the last position only, as it trains on prefixes.
    const bool all = model->causal();
    torch::Tensor hidden = all ? encoded.reshape({-1, dim}) : encoded.select(1, len - 1);
    torch::Tensor target = all ? targets[i % kBatches] : targets[i % kBatches].view({batch, len}).select(1, len - 1);
    torch::Tensor loss = train::SampledSoftmaxLoss(hidden, target, model->ItemTable(), so,
                                                   train::UniformNegatives(items, so, device));
    losses.push_back(loss.item<double>());
    opt.zero_grad();
    loss.backward();
    opt.step();
  };
  for (int64_t i = 0; i < warmup; ++i) step(i);
  Sync(device);
  if (const char* prof = std::getenv("ADREC_PROFILE_TRACE"); prof && *prof) {
    torch::autograd::profiler::RecordProfile guard(prof);
    for (int64_t i = 0; i < 3; ++i) step(i);
  }
  const auto t0 = Clock::now();
  for (int64_t i = 0; i < steps; ++i) {
    const auto s0 = Clock::now();
    step(warmup + i);
    Sync(device);
    step_s.push_back(std::chrono::duration<double>(Clock::now() - s0).count());
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  std::sort(step_s.begin(), step_s.end());
  const double median_s = step_s[step_s.size() / 2];

  nlohmann::ordered_json out;
  out["side"] = "adrec";
  out["model"] = kind;
  out["device"] = device.str();
  out["threads"] = threads;
  out["batch"] = batch;
  out["len"] = len;
  out["items"] = items;
  out["dim"] = dim;
  out["blocks"] = blocks;
  out["heads"] = heads;
  out["negatives"] = negatives;
  out["bf16"] = bf16;
  out["steps"] = steps;
  out["sequences_per_s"] = static_cast<double>(steps * batch) / seconds;
  out["tokens_per_s"] = static_cast<double>(steps * batch * len) / seconds;
  out["ms_per_step"] = 1e3 * seconds / static_cast<double>(steps);
  out["ms_per_step_median"] = 1e3 * median_s;
  out["ms_per_step_min"] = 1e3 * step_s.front();
  out["loss_first"] = losses.front();
  out["loss_last"] = losses.back();

  if (latency) {
    // One history of `len` items, encoded in eval mode: what a server pays per request before
    // scoring candidates against the last state.
    torch::NoGradGuard no_grad;
    model->eval();
    models::SequenceInput one{inputs[0].items.narrow(0, 0, 1), inputs[0].timestamps.narrow(0, 0, 1)};
    const std::vector<double> us = LatenciesUs(device, 10, 200, [&] { model->Encode(one).select(1, len - 1); });
    out["encode_p50_us"] = us[us.size() / 2];
    out["encode_p99_us"] = us[us.size() * 99 / 100];
  }
  out["peak_rss_mib"] = PeakRssMiB();
  std::cout << out.dump() << std::endl;
  return 0;
}

}  // namespace
}  // namespace adrec::bench

int main(int argc, char** argv) { return adrec::bench::Run(argc, argv); }

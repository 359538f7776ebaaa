// Training throughput of DCN-V2 on Criteo-shaped data, adrec's side (the PyTorch eager side is
// bench/reference/train_ranking.py; scripts/bench-ranking runs both on the same data and prints
// the ratio). The step is the trainer's (adrec/train/trainer.cc): EmbeddingCollection::Forward →
// model → masked BCE → loss.item() → zero_grad → backward → Adam step → collection Step.
//
//   train_ranking_bench --data DIR [--device cpu|cuda] [--threads 2] [--batch 4096]
//       [--rows 1000000] [--dim 16] [--hidden 256,128] [--cross-layers 3] [--low-rank 0] [--warmup 5]
//       [--steps 40] [--lr 1e-3] [--embedding-lr 0.05] [--bf16 -1|0|1] [--phases]
//       [--tables hashed|dynamic] [--trace FILE]
//
// --tables dynamic trains on collision-free tables keyed by the raw IDs (growing from --rows
// capacity, 0 = the default) and reports their bytes (weights + ID index) against the raw row
// bytes (rows in use × dim × 4), the issue's ≤ 1.5× target.
// --trace FILE writes a Chrome trace (torch profiler) of the timed steps; bench/reference/
// trace_summary.py turns it into self time per op and step.
// Prints one JSON object on stdout. --phases times the step's phases (on CUDA it syncs between
// them, which costs throughput; the headline figure is taken without it there).
#include "bench/ranking_bench_common.h"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/profiler_kineto.h>

#include <algorithm>
#include <chrono>
#include <iostream>

#include "adrec/train/autocast.h"

namespace adrec::bench {
namespace {

using Clock = std::chrono::steady_clock;

// adrec/train/trainer.cc's MaskedBce: mean BCE per target over defined samples, weighted sum.
torch::Tensor MaskedBce(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& mask,
                        const torch::Tensor& target_weights) {
  torch::Tensor per = torch::binary_cross_entropy_with_logits(logits.to(torch::kFloat32), labels, mask, {},
                                                              at::Reduction::None);
  torch::Tensor per_target = per.sum(0) / mask.sum(0).clamp_min(1.0);
  return (per_target * target_weights).sum();
}

int Run(int argc, char** argv) {
  Flags flags(argc, argv);
  const std::string dir = flags.Str("data", "");
  const torch::Device device = ParseDevice(flags.Str("device", "cpu"));
  const int64_t threads = flags.Int("threads", 2);
  const int64_t batch_size = flags.Int("batch", 4096);
  const int64_t rows = flags.Int("rows", 1000000);
  const int dim = static_cast<int>(flags.Int("dim", 16));
  const std::string hidden = flags.Str("hidden", "256,128");
  const int64_t cross_layers = flags.Int("cross-layers", 3);
  const int64_t low_rank = flags.Int("low-rank", 0);
  const int64_t warmup = flags.Int("warmup", 5);
  const int64_t steps = flags.Int("steps", 40);
  const double lr = flags.Double("lr", 1e-3);
  const double embedding_lr = flags.Double("embedding-lr", 0.05);
  const int64_t bf16_flag = flags.Int("bf16", -1);
  const bool phases_on = flags.Int("phases", 0) != 0;
  const std::string tables = flags.Str("tables", "hashed");
  const std::string trace = flags.Str("trace", "");
  flags.CheckAllUsed();
  if (dir.empty()) Die("--data DIR is required (bench/reference/ranking_data.py writes it)");
  if (tables != "hashed" && tables != "dynamic") Die("--tables must be hashed or dynamic, not '" + tables + "'");
  const data::TableKind table_kind = tables == "dynamic" ? data::TableKind::kDynamic : data::TableKind::kHashed;
  // The trainer autocasts to bf16 on CUDA by default (train.bf16).
  const bool bf16 = bf16_flag < 0 ? device.is_cuda() : bf16_flag != 0;

  at::set_num_threads(static_cast<int>(threads));
  torch::manual_seed(42);
  const RankingData d = LoadRankingData(dir, 26, 13);
  const int64_t batches = d.samples / batch_size;
  if (batches < 1) Die(dir + ": fewer samples than one batch");

  auto t_setup = Clock::now();
  embedding::CollectionOptions co;
  co.table.device = device;
  co.table.optimizer.kind = "adagrad";
  co.table.optimizer.lr = embedding_lr;
  co.table.optimizer.eps = 1e-8;
  auto collection = embedding::EmbeddingCollection::Create(CriteoSpec(d.fields, d.dense_width, rows, dim, table_kind), co);
  if (!collection.ok()) Die(collection.status().ToString());
  embedding::EmbeddingCollection& emb = **collection;
  std::shared_ptr<models::RankingModel> model = MakeDcnV2(d.fields, d.dense_width, dim, hidden, cross_layers, low_rank);
  model->to(device);
  model->train();
  torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(lr));
  const torch::Tensor target_weights = torch::ones({1}, torch::TensorOptions().device(device));
  Sync(device);
  const double setup_s = std::chrono::duration<double>(Clock::now() - t_setup).count();

  // Batches are built before timing, as the trainer's BatchStream builds them ahead on its pool.
  std::vector<data::Batch> host(batches);
  for (int64_t b = 0; b < batches; ++b) {
    FillBatch(d, batch_size, [&](int64_t, int64_t i) { return b * batch_size + i; }, &host[b]);
  }

  const char* kPhases[] = {"copy_lookup", "forward_loss", "backward", "dense_adam", "sparse_adagrad"};
  double phase_s[5] = {0, 0, 0, 0, 0};
  std::vector<double> losses;
  std::vector<double> step_s;  // timed steps (the median resists other processes' bursts)

  auto step = [&](int64_t i, bool timed) {
    data::Batch& batch = host[i % batches];
    auto clock = Clock::now();
    auto mark = [&](int phase) {
      if (!timed || !phases_on) return;
      Sync(device);
      const auto now = Clock::now();
      phase_s[phase] += std::chrono::duration<double>(now - clock).count();
      clock = now;
    };
    auto lookup = emb.Forward(batch, /*train=*/true, i);
    mark(0);
    torch::Tensor logits = train::MaybeAutocastBf16(bf16, [&] { return model->forward(lookup.input); });
    const int64_t B = static_cast<int64_t>(batch.size);
    torch::Tensor labels = torch::from_blob(batch.labels.data(), {B, 1}, torch::kFloat32).to(device);
    torch::Tensor mask = torch::from_blob(batch.mask.data(), {B, 1}, torch::kFloat32).to(device);
    torch::Tensor loss = MaskedBce(logits, labels, mask, target_weights);
    losses.push_back(loss.item<double>());
    mark(1);
    adam.zero_grad();
    loss.backward();
    mark(2);
    adam.step();
    mark(3);
    emb.Step(lookup, i);
    mark(4);
  };

  for (int64_t i = 0; i < warmup; ++i) step(i, false);
  Sync(device);
  namespace prof = torch::autograd::profiler;
  const torch::profiler::impl::ProfilerConfig trace_config(torch::profiler::impl::ProfilerState::KINETO);
  const std::set<torch::profiler::impl::ActivityType> activities{torch::profiler::impl::ActivityType::CPU};
  if (!trace.empty()) {
    prof::prepareProfiler(trace_config, activities);
    prof::enableProfiler(trace_config, activities);
  }
  const auto t0 = Clock::now();
  for (int64_t i = warmup; i < warmup + steps; ++i) {
    const auto s0 = Clock::now();
    step(i, true);
    Sync(device);  // loss.item() has synchronised already; this only closes the step on CUDA
    step_s.push_back(std::chrono::duration<double>(Clock::now() - s0).count());
  }
  Sync(device);
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!trace.empty()) prof::disableProfiler()->save(trace);

  auto mean3 = [](const double* p) { return (p[0] + p[1] + p[2]) / 3.0; };
  nlohmann::ordered_json out;
  out["side"] = "adrec";
  out["device"] = device.str();
  out["threads"] = threads;
  out["batch"] = batch_size;
  out["rows"] = rows;
  out["dim"] = dim;
  out["fields"] = d.fields;
  out["steps"] = steps;
  out["warmup"] = warmup;
  out["bf16"] = bf16;
  out["seconds"] = seconds;
  out["samples_per_s"] = static_cast<double>(steps * batch_size) / seconds;
  out["ms_per_step"] = 1e3 * seconds / static_cast<double>(steps);
  std::sort(step_s.begin(), step_s.end());
  const double median_s = step_s[step_s.size() / 2];
  out["samples_per_s_median"] = static_cast<double>(batch_size) / median_s;
  out["ms_per_step_median"] = 1e3 * median_s;
  out["ms_per_step_min"] = 1e3 * step_s.front();  // other processes only ever add time
  out["low_rank"] = low_rank;
  out["setup_s"] = setup_s;
  out["peak_rss_mib"] = PeakRssMiB();
  out["tables"] = tables;
  uint64_t rows_in_use = 0;
  for (size_t i = 0; i < emb.num_tables(); ++i) rows_in_use += emb.table(i).rows_in_use();
  const double raw_bytes = static_cast<double>(rows_in_use) * dim * sizeof(float);
  out["rows_in_use"] = rows_in_use;
  out["table_mib"] = static_cast<double>(emb.MemoryBytes()) / (1 << 20);
  out["raw_row_mib"] = raw_bytes / (1 << 20);
  out["table_bytes_ratio"] = static_cast<double>(emb.MemoryBytes()) / raw_bytes;
  if (losses.size() >= 3) {
    out["loss_first"] = mean3(losses.data());
    out["loss_last"] = mean3(losses.data() + losses.size() - 3);
  }
  if (phases_on) {
    nlohmann::ordered_json p;
    for (int k = 0; k < 5; ++k) p[kPhases[k]] = 1e3 * phase_s[k] / static_cast<double>(steps);
    out["phases_ms"] = p;
  }
  std::cout << out.dump() << std::endl;
  return 0;
}

}  // namespace
}  // namespace adrec::bench

int main(int argc, char** argv) { return adrec::bench::Run(argc, argv); }

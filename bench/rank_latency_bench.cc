// Serving latency of DCN-V2: score `candidates` items for one request (the user's fields
// broadcast over the candidates, batch = candidates), no grad, eval mode; adrec's side (the
// PyTorch eager side is bench/reference/rank_latency.py; scripts/bench-ranking runs both).
// A request's time covers EmbeddingCollection::Forward (hashing, dedup, gather, copies), the
// model and the sigmoid scores copied out to a host vector.
//
//   rank_latency_bench --data DIR [--threads 1,2] [--candidates 100] [--requests 2000]
//       [--warmup 200] [--user-fields 13] [--rows 1000000] [--dim 16] [--hidden 256,128]
//       [--cross-layers 3] [--device cpu|cuda] [--precision fp32|bf16|int8|auto]
//
// Request r reads data row base = r * candidates mod (N - candidates): fields C1..C<user-fields>
// of row base for every candidate (the user), the other fields and the dense columns of row
// base + i for candidate i (the items). --precision picks the dense layers' inference arithmetic
// (models/precision.h; bf16 = oneDNN with weights cast and packed once, int8 = FBGEMM with
// weights quantised once, as `adrec serve`).
// Prints one JSON object on stdout.
#include "bench/ranking_bench_common.h"

#include <ATen/Parallel.h>

#include "adrec/models/precision.h"

#include <algorithm>
#include <chrono>
#include <iostream>

namespace adrec::bench {
namespace {

using Clock = std::chrono::steady_clock;

int Run(int argc, char** argv) {
  Flags flags(argc, argv);
  const std::string dir = flags.Str("data", "");
  const torch::Device device = ParseDevice(flags.Str("device", "cpu"));
  const std::vector<int64_t> thread_counts = IntList(flags.Str("threads", "1,2"));
  const int64_t candidates = flags.Int("candidates", 100);
  const int64_t requests = flags.Int("requests", 2000);
  const int64_t warmup = flags.Int("warmup", 200);
  const int64_t user_fields = flags.Int("user-fields", 13);
  const int64_t rows = flags.Int("rows", 1000000);
  const int dim = static_cast<int>(flags.Int("dim", 16));
  const std::string hidden = flags.Str("hidden", "256,128");
  const int64_t cross_layers = flags.Int("cross-layers", 3);
  auto precision = models::ParseInferencePrecision(flags.Str("precision", "fp32"));
  flags.CheckAllUsed();
  if (!precision.ok()) Die(precision.status().ToString());
  models::SetInferencePrecision(*precision);
  if (dir.empty()) Die("--data DIR is required (bench/reference/ranking_data.py writes it)");
  if (thread_counts.empty()) Die("--threads: give at least one count");

  torch::manual_seed(42);
  const RankingData d = LoadRankingData(dir, 26, 13);
  if (d.samples <= candidates) Die(dir + ": fewer samples than candidates");
  embedding::CollectionOptions co;
  co.table.device = device;
  auto collection = embedding::EmbeddingCollection::Create(CriteoSpec(d.fields, d.dense_width, rows, dim), co);
  if (!collection.ok()) Die(collection.status().ToString());
  embedding::EmbeddingCollection& emb = **collection;
  std::shared_ptr<models::RankingModel> model = MakeDcnV2(d.fields, d.dense_width, dim, hidden, cross_layers);
  model->to(device);
  model->eval();

  const int64_t total = warmup + requests;
  std::vector<data::Batch> reqs(total);
  for (int64_t r = 0; r < total; ++r) {
    const int64_t base = (r * candidates) % (d.samples - candidates);
    FillBatch(d, candidates, [&](int64_t f, int64_t i) { return f >= 0 && f < user_fields ? base : base + i; },
              &reqs[r]);
  }

  torch::NoGradGuard no_grad;
  std::vector<float> scores(candidates);
  double checksum = 0;
  double lookup_us = 0;  // the embedding lookups' share, summed over the timed requests
  auto score = [&](const data::Batch& b) {
    const auto t0 = Clock::now();
    auto lookup = emb.Forward(b, /*train=*/false, 0);
    lookup_us += std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
    torch::Tensor s = torch::sigmoid(model->forward(lookup.input)).reshape({-1});
    if (!s.device().is_cpu()) s = s.cpu();  // synchronises with the device
    s = s.contiguous();
    std::copy_n(s.data_ptr<float>(), candidates, scores.data());
    checksum += scores[0];
  };

  nlohmann::ordered_json out;
  out["side"] = "adrec";
  out["device"] = device.str();
  out["precision"] = std::string(models::PrecisionName(*precision));
  out["candidates"] = candidates;
  out["requests"] = requests;
  out["warmup"] = warmup;
  out["rows"] = rows;
  out["user_fields"] = user_fields;
  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  for (int64_t threads : thread_counts) {
    at::set_num_threads(static_cast<int>(threads));
    for (int64_t r = 0; r < warmup; ++r) score(reqs[r]);
    lookup_us = 0;
    std::vector<double> us(requests);
    for (int64_t r = 0; r < requests; ++r) {
      const auto t0 = Clock::now();
      score(reqs[warmup + r]);
      us[r] = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
    }
    double sum = 0;
    for (double v : us) sum += v;
    std::sort(us.begin(), us.end());
    auto pct = [&](double p) { return us[std::min<size_t>(us.size() - 1, static_cast<size_t>(p * us.size()))]; };
    results.push_back({{"threads", threads},
                       {"p50_us", pct(0.50)},
                       {"p99_us", pct(0.99)},
                       {"mean_us", sum / static_cast<double>(requests)},
                       {"lookup_mean_us", lookup_us / static_cast<double>(requests)}});
  }
  out["latency"] = results;
  out["checksum"] = checksum;
  out["peak_rss_mib"] = PeakRssMiB();
  std::cout << out.dump() << std::endl;
  return 0;
}

}  // namespace
}  // namespace adrec::bench

int main(int argc, char** argv) { return adrec::bench::Run(argc, argv); }

// The HSTU ranker's serving split (models/hstu_ranker.h): encode one user's history once, then
// score candidates with the light head. Reports the encode latency, the head latency for K
// candidates, and the cost per extra candidate — against re-encoding the history per candidate,
// which is what a ranker without the split pays.
//
//   hstu_ranker_serving_bench [--device cpu|cuda] [--threads 1] [--len 256] [--items 100000]
//       [--dim 64] [--blocks 2] [--heads 2] [--candidates 1,10,100,1000] [--requests 200]
//
// Prints one JSON object on stdout.
#include "bench/ranking_bench_common.h"

#include <algorithm>
#include <chrono>
#include <iostream>

#include "adrec/models/hstu_ranker.h"

namespace adrec::bench {
namespace {

int Run(int argc, char** argv) {
  Flags flags(argc, argv);
  const torch::Device device = ParseDevice(flags.Str("device", "cpu"));
  const int64_t threads = flags.Int("threads", 1);
  const int64_t len = flags.Int("len", 256);
  const int64_t items = flags.Int("items", 100000);
  const int64_t dim = flags.Int("dim", 64);
  const int64_t blocks = flags.Int("blocks", 2);
  const int64_t heads = flags.Int("heads", 2);
  const std::vector<int64_t> ks = IntList(flags.Str("candidates", "1,10,100,1000"));
  const int64_t requests = flags.Int("requests", 200);
  flags.CheckAllUsed();
  at::set_num_threads(static_cast<int>(threads));
  torch::manual_seed(1);
  auto cfg = Config::Parse("[model]\ndim = " + std::to_string(dim) + "\nblocks = " + std::to_string(blocks) +
                           "\nheads = " + std::to_string(heads) + "\ndropout = 0.0\nhead_hidden = [64]\n");
  if (!cfg.ok()) Die(cfg.status().ToString());
  auto o = models::ReadHstuRankerOptions(*cfg, "model");
  if (!o.ok()) Die(o.status().ToString());
  models::HstuRankerShape shape;
  shape.num_items = items;
  shape.num_scenes = 4;
  shape.max_len = len;
  shape.targets = 3;
  models::HstuRanker model(shape, *o);
  model->to(device);
  model->eval();
  torch::NoGradGuard no_grad;
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64).device(device);
  models::EventTokens history{torch::randint(1, items + 1, {1, len}, i64), torch::randint(1, 5, {1, len}, i64),
                              torch::randint(1, 5, {1, len}, i64),         torch::randint(1, 10, {1, len}, i64),
                              torch::randint(1, 25, {1, len}, i64),
                              torch::arange(len, i64).mul(600).add(1700000000).unsqueeze(0)};
  auto time_us = [&](auto&& fn) {
    const std::vector<double> us = LatenciesUs(device, 10, requests, fn);
    return us[us.size() / 2];  // p50
  };
  torch::Tensor state;
  const double encode_us = time_us([&] { state = model->EncodeHistory(history).select(1, len - 1).squeeze(0); });
  nlohmann::ordered_json out;
  out["device"] = device.str();
  out["threads"] = threads;
  out["len"] = len;
  out["items"] = items;
  out["dim"] = dim;
  out["blocks"] = blocks;
  out["encode_p50_us"] = encode_us;
  nlohmann::ordered_json score = nlohmann::ordered_json::object();
  std::vector<double> head_us;
  for (int64_t k : ks) {
    torch::Tensor cand = torch::randint(1, items + 1, {k}, i64), ones = torch::ones({k}, i64);
    const double us = time_us([&] { model->Score(state, cand, {ones, ones, ones}); });
    head_us.push_back(us);
    score[std::to_string(k)] = us;
  }
  out["head_p50_us"] = score;
  if (ks.size() >= 2) {
    out["us_per_extra_candidate"] = (head_us.back() - head_us.front()) / static_cast<double>(ks.back() - ks.front());
    // Without the split every candidate pays a pass over the history.
    out["us_per_candidate_without_split"] = encode_us;
  }
  out["peak_rss_mib"] = PeakRssMiB();
  std::cout << out.dump() << std::endl;
  return 0;
}

}  // namespace
}  // namespace adrec::bench

int main(int argc, char** argv) { return adrec::bench::Run(argc, argv); }

// Decoder tokens per second, adrec's side (the reference is `bench/reference/decoder_models.py
// speed`, transformers' generate on the same model directory; scripts/bench-decode runs both and
// prints the ratio). Greedy decoding through the KV cache, one prompt, a fixed number of new
// tokens (no end-of-sequence stop), as the reference runs it.
//
//   generate_bench --model DIR [--device cpu|cuda] [--threads 2] [--prompt-len 16]
//       [--new-tokens 64] [--repeats 3] [--bf16 0|1]
//
// Prints one JSON object: tokens/s of the best and the median run.
#include "bench/ranking_bench_common.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <iostream>

#include <nlohmann/json.hpp>

#include "adrec/text/llama.h"

namespace adrec::bench {
namespace {

int Run(int argc, char** argv) {
  Flags flags(argc, argv);
  const std::string model = flags.Str("model", "");
  const std::string device = flags.Str("device", "cpu");
  const int64_t threads = flags.Int("threads", 2);
  const int64_t prompt_len = flags.Int("prompt-len", 16);
  const int64_t new_tokens = flags.Int("new-tokens", 64);
  const int64_t repeats = flags.Int("repeats", 3);
  const bool bf16 = flags.Int("bf16", 0) != 0;
  flags.CheckAllUsed();
  torch::set_num_threads(static_cast<int>(threads));
  text::LlamaOptions o;
  if (device == "cuda") {
    o.device = torch::kCUDA;
    if (bf16) o.dtype = torch::kBFloat16;
  }
  auto m = text::LlamaModel::Load(model, o);
  if (!m.ok()) Die(m.status().ToString());
  // IDs 1..prompt_len, as the reference's prompt.
  torch::Tensor prompt = torch::arange(1, prompt_len + 1, torch::kLong) % m->config().vocab_size;
  text::GenerateOptions g;
  g.max_new_tokens = new_tokens;
  g.eos_token_ids = std::vector<int64_t>{};  // never stop early: every run makes new_tokens
  auto once = [&] {
    const auto t0 = std::chrono::steady_clock::now();
    auto out = m->Generate(prompt, g);
    if (!out.ok()) Die(out.status().ToString());
    if (device == "cuda") torch::cuda::synchronize();
    if (static_cast<int64_t>(out->size()) != new_tokens) Die("generated " + std::to_string(out->size()) + " tokens");
    return static_cast<double>(new_tokens) / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  once();  // warm-up
  std::vector<double> rates;
  for (int64_t r = 0; r < repeats; ++r) rates.push_back(once());
  std::sort(rates.begin(), rates.end());
  const auto& c = m->config();
  std::cout << nlohmann::json{{"side", "adrec"},
                              {"model_type", c.model_type},
                              {"layers", c.num_hidden_layers},
                              {"hidden", c.hidden_size},
                              {"new_tokens", new_tokens},
                              {"tokens_per_s_best", rates.back()},
                              {"tokens_per_s_median", rates[rates.size() / 2]},
                              {"peak_rss_mib", PeakRssMiB()}}
                   .dump()
            << "\n";
  return 0;
}

}  // namespace
}  // namespace adrec::bench

int main(int argc, char** argv) { return adrec::bench::Run(argc, argv); }

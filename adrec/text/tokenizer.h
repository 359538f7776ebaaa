// A Hugging Face tokenizer.json, run in C++: normaliser, pre-tokenizer, WordPiece or BPE model,
// added and special tokens, post-processor (the [CLS] … [SEP] template) and decoder. The IDs
// equal those of the `tokenizers` library for what we support (tests compare them); anything
// else in a tokenizer.json is an Unimplemented error naming the component and what we support.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "adrec/core/status.h"

namespace adrec::text {

struct EncodeOptions {
  bool add_special_tokens = true;  // the post-processor's template ([CLS] text [SEP], <|begin_of_text|> text)
  // At most this many IDs including the special tokens; the text's own tokens are cut at the
  // end (the reference's "longest first" for one sequence). 0: no limit.
  size_t max_length = 0;
};

struct Encoding {
  std::vector<int32_t> ids;
  std::vector<int32_t> type_ids;
  size_t truncated = 0;  // tokens cut by max_length
};

class Tokenizer {
 public:
  // Reads tokenizer.json; an unreadable or malformed file is an error naming it and the field.
  static StatusOr<Tokenizer> FromFile(const std::filesystem::path& path);
  static StatusOr<Tokenizer> FromJson(std::string_view json, std::string source);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Invalid UTF-8 is InvalidArgument naming the byte offset; an empty text gives only the
  // special tokens.
  StatusOr<Encoding> Encode(std::string_view text, const EncodeOptions& options = {}) const;
  // Tokens back to text (byte-level and WordPiece decoders); unknown IDs are OutOfRange.
  StatusOr<std::string> Decode(std::span<const int32_t> ids, bool skip_special_tokens = true) const;

  // -1 when absent.
  int32_t TokenToId(std::string_view token) const;
  // Empty when out of range.
  std::string_view IdToToken(int32_t id) const;
  // The largest ID + 1 (vocabulary and added tokens).
  size_t vocab_size() const;
  // "WordPiece" or "BPE", and a one-line description of the pipeline for logs and manifests.
  std::string_view model_type() const;
  const std::string& description() const;
  const std::string& source() const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace adrec::text

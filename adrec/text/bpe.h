// Byte-pair encoding (GPT-2, Llama-3, Qwen2): a word starts as its characters and the adjacent
// pair with the lowest merge rank is merged until no merge applies.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace adrec::text {

struct BpeOptions {
  std::string unk_token;  // empty: characters outside the vocabulary are dropped, as the reference does
  bool ignore_merges = false;  // a word that is itself in the vocabulary is one token (Llama-3)
};

class Bpe {
 public:
  // `merges` in rank order, as token pairs; each pair's merge must be in `vocab`.
  Bpe(std::unordered_map<std::string, int32_t> vocab, const std::vector<std::pair<std::string, std::string>>& merges,
      BpeOptions options);

  // `word` is in the model's alphabet (byte-level characters for the byte-level tokenizers).
  void Tokenize(std::u32string_view word, std::vector<int32_t>* ids) const;
  // Merges whose parts or result are not in the vocabulary (skipped at construction).
  size_t skipped_merges() const { return skipped_merges_; }

 private:
  struct Merge {
    int32_t rank;
    int32_t id;
  };
  static uint64_t PairKey(int32_t a, int32_t b) { return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b); }

  std::unordered_map<std::string, int32_t> vocab_;
  std::unordered_map<uint64_t, Merge> merges_;
  BpeOptions options_;
  int32_t unk_id_ = -1;
  size_t skipped_merges_ = 0;
};

}  // namespace adrec::text

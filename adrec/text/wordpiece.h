// WordPiece (BERT): each word becomes its longest vocabulary prefix, then the longest
// "##"-prefixed continuations; a word with no such cover is one unknown token.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace adrec::text {

struct WordPieceOptions {
  std::string unk_token = "[UNK]";
  std::string continuing_subword_prefix = "##";
  size_t max_input_chars_per_word = 100;
};

class WordPiece {
 public:
  // `vocab` maps UTF-8 tokens to IDs; the unknown token must be in it (the caller checks).
  WordPiece(std::unordered_map<std::string, int32_t> vocab, WordPieceOptions options);

  void Tokenize(std::u32string_view word, std::vector<int32_t>* ids) const;
  int32_t unk_id() const { return unk_id_; }

 private:
  std::unordered_map<std::string, int32_t> vocab_;
  WordPieceOptions options_;
  int32_t unk_id_ = -1;
};

}  // namespace adrec::text

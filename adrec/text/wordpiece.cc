#include "adrec/text/wordpiece.h"

#include <utility>

#include "adrec/text/unicode.h"

namespace adrec::text {

WordPiece::WordPiece(std::unordered_map<std::string, int32_t> vocab, WordPieceOptions options)
    : vocab_(std::move(vocab)), options_(std::move(options)) {
  auto it = vocab_.find(options_.unk_token);
  unk_id_ = it == vocab_.end() ? -1 : it->second;
}

void WordPiece::Tokenize(std::u32string_view word, std::vector<int32_t>* ids) const {
  if (word.size() > options_.max_input_chars_per_word) {
    ids->push_back(unk_id_);
    return;
  }
  const size_t first = ids->size();
  std::string piece;
  for (size_t start = 0; start < word.size();) {
    int32_t found = -1;
    size_t end = word.size();
    for (; end > start; --end) {
      piece = start > 0 ? options_.continuing_subword_prefix : std::string();
      piece += EncodeUtf8(word.substr(start, end - start));
      if (auto it = vocab_.find(piece); it != vocab_.end()) {
        found = it->second;
        break;
      }
    }
    if (found < 0) {
      ids->resize(first);
      ids->push_back(unk_id_);
      return;
    }
    ids->push_back(found);
    start = end;
  }
}

}  // namespace adrec::text

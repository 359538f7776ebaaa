#include "adrec/text/bpe.h"

#include <limits>

#include "adrec/text/unicode.h"

namespace adrec::text {

Bpe::Bpe(std::unordered_map<std::string, int32_t> vocab, const std::vector<std::pair<std::string, std::string>>& merges,
         BpeOptions options)
    : vocab_(std::move(vocab)), options_(std::move(options)) {
  if (!options_.unk_token.empty()) {
    auto it = vocab_.find(options_.unk_token);
    unk_id_ = it == vocab_.end() ? -1 : it->second;
  }
  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    auto ia = vocab_.find(a), ib = vocab_.find(b), im = vocab_.find(a + b);
    if (ia == vocab_.end() || ib == vocab_.end() || im == vocab_.end()) {
      ++skipped_merges_;
      continue;
    }
    merges_.try_emplace(PairKey(ia->second, ib->second), Merge{static_cast<int32_t>(rank), im->second});
  }
}

void Bpe::Tokenize(std::u32string_view word, std::vector<int32_t>* ids) const {
  std::string utf8 = EncodeUtf8(word);
  if (options_.ignore_merges) {
    if (auto it = vocab_.find(utf8); it != vocab_.end()) {
      ids->push_back(it->second);
      return;
    }
  }
  std::vector<int32_t> symbols;
  symbols.reserve(word.size());
  std::string ch;
  for (char32_t c : word) {
    ch.clear();
    AppendUtf8(c, &ch);
    if (auto it = vocab_.find(ch); it != vocab_.end()) {
      symbols.push_back(it->second);
    } else if (unk_id_ >= 0) {
      symbols.push_back(unk_id_);
    }
  }
  // Merge the lowest-ranked adjacent pair (leftmost on ties) until none applies. Words are short,
  // so a linear scan per merge beats a heap.
  while (symbols.size() > 1) {
    int32_t best_rank = std::numeric_limits<int32_t>::max(), best_id = -1;
    size_t best = 0;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      auto it = merges_.find(PairKey(symbols[i], symbols[i + 1]));
      if (it != merges_.end() && it->second.rank < best_rank) {
        best_rank = it->second.rank;
        best_id = it->second.id;
        best = i;
      }
    }
    if (best_id < 0) break;
    symbols[best] = best_id;
    symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(best) + 1);
  }
  ids->insert(ids->end(), symbols.begin(), symbols.end());
}

}  // namespace adrec::text

#include "adrec/text/hashed_ngram_encoder.h"

#include <cmath>
#include <unordered_map>

#include "adrec/core/hash.h"
#include "adrec/text/pre_tokenizer.h"
#include "adrec/text/unicode.h"

namespace adrec::text {
namespace {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

HashedNgramEncoder::HashedNgramEncoder(HashedNgramOptions options) : options_(options) {}

void HashedNgramEncoder::EmbedOne(std::u32string_view text, float* out) const {
  std::u32string lowered;
  for (char32_t c : unicode::Nfc(text)) unicode::AppendLowercase(c, &lowered);
  // Words as BERT cuts them, with every CJK ideograph its own word (no spaces in Chinese).
  std::u32string spaced;
  for (char32_t c : lowered) {
    if (unicode::IsCjkIdeograph(c)) {
      spaced += U' ';
      spaced += c;
      spaced += U' ';
    } else {
      spaced += c;
    }
  }
  std::vector<std::u32string> words;
  BertPreTokenize(spaced, &words);
  std::unordered_map<uint64_t, double> counts;
  for (size_t w = 0; w < words.size(); ++w) {
    const std::string word = EncodeUtf8(words[w]);
    counts[Hash64(word, options_.seed)] += 1.0;
    if (w + 1 < words.size()) counts[Hash64(word + " " + EncodeUtf8(words[w + 1]), options_.seed + 1)] += 1.0;
    const std::u32string marked = U"<" + words[w] + U">";
    for (int n = options_.min_n; n <= options_.max_n; ++n) {
      for (size_t i = 0; i + n <= marked.size(); ++i) {
        counts[Hash64(EncodeUtf8(marked.substr(i, n)), options_.seed + 2 + n)] += options_.ngram_weight;
      }
    }
  }
  std::fill(out, out + options_.dim, 0.f);
  for (const auto& [h, count] : counts) {
    const float weight = static_cast<float>(1.0 + std::log(1.0 + count));
    // 64 signs per draw: dimension d takes bit d % 64 of draw d / 64.
    for (int64_t base = 0; base < options_.dim; base += 64) {
      const uint64_t bits = SplitMix64(h ^ static_cast<uint64_t>(base));
      for (int64_t d = base; d < std::min(options_.dim, base + 64); ++d) {
        out[d] += (bits >> (d - base)) & 1 ? weight : -weight;
      }
    }
  }
  double norm = 0;
  for (int64_t d = 0; d < options_.dim; ++d) norm += double(out[d]) * out[d];
  if (norm > 0) {
    const float inv = static_cast<float>(1.0 / std::sqrt(norm));
    for (int64_t d = 0; d < options_.dim; ++d) out[d] *= inv;
  }
}

StatusOr<std::vector<float>> HashedNgramEncoder::Embed(std::span<const std::string> texts) const {
  std::vector<float> out(texts.size() * static_cast<size_t>(options_.dim));
  for (size_t i = 0; i < texts.size(); ++i) {
    auto chars = DecodeUtf8(texts[i]);
    if (!chars.ok()) return InvalidArgumentError("text " + std::to_string(i) + ": " + chars.status().message());
    EmbedOne(*chars, out.data() + i * options_.dim);
  }
  return out;
}

}  // namespace adrec::text

// The built-in fallback text encoder, for when no language model is given: words and character
// n-grams of the NFC-lowercased text, hashed (XXH3) and summed as fixed pseudo-random ±1 vectors
// (a random projection of the sparse bag of n-grams), sublinear term weights, L2-normalised.
// Texts that share words or spellings get close vectors; meaning beyond spelling is not seen.
// Its name says so in logs and manifests.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "adrec/core/status.h"

namespace adrec::text {

inline constexpr std::string_view kHashedNgramEncoderName = "hashed-ngram-v1 (built-in fallback, no language model)";

struct HashedNgramOptions {
  int64_t dim = 384;
  int min_n = 2, max_n = 4;   // character n-grams of "<word>"
  double ngram_weight = 0.5;  // relative to whole words
  uint64_t seed = 0x5eed;
};

class HashedNgramEncoder {
 public:
  explicit HashedNgramEncoder(HashedNgramOptions options = {});
  // Row-major [texts.size(), dim]; invalid UTF-8 is InvalidArgument naming the text's index.
  // An empty text gives the zero vector.
  StatusOr<std::vector<float>> Embed(std::span<const std::string> texts) const;
  int64_t dim() const { return options_.dim; }

 private:
  void EmbedOne(std::u32string_view text, float* out) const;
  HashedNgramOptions options_;
};

}  // namespace adrec::text

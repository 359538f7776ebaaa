// Pre-tokenizers: how a normalised text is cut into words before the subword model sees them
// (BERT's whitespace-and-punctuation split; the GPT-2 / Llama-3 / Qwen2 regexes of byte-level
// BPE), and the byte-level alphabet that maps every byte to a printable character.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace adrec::text {

// BertPreTokenizer: drops whitespace and isolates every punctuation character.
void BertPreTokenize(std::u32string_view text, std::vector<std::u32string>* words);

// The split regexes of the byte-level BPE tokenizers we support, matched by hand-written
// scanners that give the regex engine's pieces (leftmost alternative, greedy, with its
// backtracking for "\s+(?!\S)").
enum class SplitPattern {
  kGpt2,    // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kLlama3,  // (?i:'s|…)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  kQwen2,   // as kLlama3 with \p{N} (one digit per piece)
};
// The pattern a tokenizer.json regex string is, or nullopt for one we do not support.
std::optional<SplitPattern> FindSplitPattern(std::string_view regex);
std::string_view SplitPatternName(SplitPattern pattern);
void SplitByPattern(SplitPattern pattern, std::u32string_view text, std::vector<std::u32string>* pieces);

// GPT-2's bytes_to_unicode: byte b -> a printable code point (printable Latin-1 bytes map to
// themselves, the rest to U+0100 + n). ByteLevelEncode maps each UTF-8 byte of `utf8`.
char32_t ByteToChar(unsigned char b);
std::u32string ByteLevelEncode(std::string_view utf8);
// The inverse; a character outside the alphabet is kept as its UTF-8.
std::string ByteLevelDecode(std::u32string_view chars);

}  // namespace adrec::text

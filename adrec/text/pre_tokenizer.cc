#include "adrec/text/pre_tokenizer.h"

#include <array>

#include "adrec/text/unicode.h"

namespace adrec::text {
namespace {

using unicode::IsLetter;
using unicode::IsNumber;
using unicode::IsWhitespace;

bool IsNewline(char32_t c) { return c == '\r' || c == '\n'; }
bool IsOther(char32_t c) { return !IsWhitespace(c) && !IsLetter(c) && !IsNumber(c); }  // [^\s\p{L}\p{N}]

char32_t FoldAscii(char32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

// 's|'t|'re|'ve|'m|'ll|'d at i: the match length or 0.
size_t Contraction(std::u32string_view s, size_t i, bool ignore_case) {
  if (s[i] != '\'' || i + 1 >= s.size()) return 0;
  auto at = [&](size_t k) { return k < s.size() ? (ignore_case ? FoldAscii(s[k]) : s[k]) : 0; };
  const char32_t a = at(i + 1), b = at(i + 2);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

template <typename Pred>
size_t RunEnd(std::u32string_view s, size_t i, Pred pred) {
  while (i < s.size() && pred(s[i])) ++i;
  return i;
}

// \s+(?!\S)|\s+ at a whitespace character i: the end of the match.
size_t TrailingSpace(std::u32string_view s, size_t i) {
  const size_t j = RunEnd(s, i, IsWhitespace);
  if (j == s.size() || j - i == 1) return j;
  return j - 1;  // leave the last space to prefix the next word
}

size_t Gpt2Match(std::u32string_view s, size_t i) {
  if (size_t n = Contraction(s, i, false)) return i + n;
  const size_t p = s[i] == ' ' && i + 1 < s.size() ? i + 1 : i;  // the optional leading space
  if (IsLetter(s[p])) return RunEnd(s, p, IsLetter);
  if (IsNumber(s[p])) return RunEnd(s, p, IsNumber);
  if (IsOther(s[p])) return RunEnd(s, p, IsOther);
  return TrailingSpace(s, i);
}

size_t Llama3Match(std::u32string_view s, size_t i, size_t max_digits) {
  if (size_t n = Contraction(s, i, true)) return i + n;
  const char32_t c = s[i];
  if (IsLetter(c)) return RunEnd(s, i, IsLetter);
  if (!IsNewline(c) && !IsNumber(c) && i + 1 < s.size() && IsLetter(s[i + 1])) return RunEnd(s, i + 1, IsLetter);
  if (IsNumber(c)) {
    size_t j = i;
    while (j < s.size() && j - i < max_digits && IsNumber(s[j])) ++j;
    return j;
  }
  const size_t p = c == ' ' && i + 1 < s.size() ? i + 1 : i;
  if (IsOther(s[p])) return RunEnd(s, RunEnd(s, p, IsOther), IsNewline);
  // \s*[\r\n]+: through the last newline of the whitespace run.
  const size_t j = RunEnd(s, i, IsWhitespace);
  for (size_t k = j; k > i; --k) {
    if (IsNewline(s[k - 1])) return k;
  }
  return TrailingSpace(s, i);
}

const std::array<char32_t, 256>& ByteChars() {
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> t{};
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[b] = printable ? static_cast<char32_t>(b) : next++;
    }
    return t;
  }();
  return table;
}

}  // namespace

void BertPreTokenize(std::u32string_view text, std::vector<std::u32string>* words) {
  std::u32string word;
  auto flush = [&] {
    if (!word.empty()) words->push_back(std::move(word));
    word.clear();
  };
  for (char32_t c : text) {
    if (IsWhitespace(c)) {
      flush();
    } else if (unicode::IsBertPunctuation(c)) {
      flush();
      words->push_back(std::u32string(1, c));
    } else {
      word.push_back(c);
    }
  }
  flush();
}

std::optional<SplitPattern> FindSplitPattern(std::string_view regex) {
  if (regex == R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)") return SplitPattern::kGpt2;
  if (regex == R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)") {
    return SplitPattern::kLlama3;
  }
  if (regex == R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)") {
    return SplitPattern::kQwen2;
  }
  return std::nullopt;
}

std::string_view SplitPatternName(SplitPattern pattern) {
  switch (pattern) {
    case SplitPattern::kGpt2: return "gpt2";
    case SplitPattern::kLlama3: return "llama3";
    case SplitPattern::kQwen2: return "qwen2";
  }
  return "?";
}

void SplitByPattern(SplitPattern pattern, std::u32string_view text, std::vector<std::u32string>* pieces) {
  for (size_t i = 0; i < text.size();) {
    size_t end = pattern == SplitPattern::kGpt2 ? Gpt2Match(text, i)
                                                 : Llama3Match(text, i, pattern == SplitPattern::kLlama3 ? 3 : 1);
    if (end <= i) end = i + 1;  // every character belongs to some alternative; never loop
    pieces->emplace_back(text.substr(i, end - i));
    i = end;
  }
}

char32_t ByteToChar(unsigned char b) { return ByteChars()[b]; }

std::u32string ByteLevelEncode(std::string_view utf8) {
  std::u32string out;
  out.reserve(utf8.size());
  for (char b : utf8) out.push_back(ByteToChar(static_cast<unsigned char>(b)));
  return out;
}

std::string ByteLevelDecode(std::u32string_view chars) {
  static const auto inverse = [] {
    std::array<int, 324> t;
    t.fill(-1);
    for (int b = 0; b < 256; ++b) t[ByteChars()[b]] = b;
    return t;
  }();
  std::string out;
  for (char32_t c : chars) {
    if (c < inverse.size() && inverse[c] >= 0) {
      out.push_back(static_cast<char>(inverse[c]));
    } else {
      AppendUtf8(c, &out);
    }
  }
  return out;
}

}  // namespace adrec::text

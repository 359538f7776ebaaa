#include "adrec/text/unicode.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <utility>
#include <vector>

namespace adrec::text {
namespace {

struct ClassRange {
  char32_t first, last;
  uint8_t value;
};
struct CodePointString {
  char32_t cp;
  const char* utf8;
};
struct Composition {
  char32_t first, second, composite;
};

#include "adrec/text/unicode_tables.inc"

enum ClassBit : uint8_t { kLetter = 1, kNumber = 2, kMark = 4, kControl = 8, kSpace = 16, kPunct = 32 };

uint8_t RangeValue(const ClassRange* begin, const ClassRange* end, char32_t c) {
  const ClassRange* it = std::upper_bound(begin, end, c, [](char32_t v, const ClassRange& r) { return v < r.first; });
  if (it == begin) return 0;
  --it;
  return c <= it->last ? it->value : 0;
}

uint8_t Classes(char32_t c) {
  // ASCII is most text: a direct table avoids the binary search.
  static const auto ascii = [] {
    std::array<uint8_t, 128> t{};
    for (char32_t c = 0; c < 128; ++c) t[c] = RangeValue(std::begin(kClassRanges), std::end(kClassRanges), c);
    return t;
  }();
  return c < 128 ? ascii[c] : RangeValue(std::begin(kClassRanges), std::end(kClassRanges), c);
}

template <typename T>
const T* FindCodePoint(const T* begin, const T* end, char32_t c) {
  const T* it = std::lower_bound(begin, end, c, [](const T& e, char32_t v) { return e.cp < v; });
  return it != end && it->cp == c ? it : nullptr;
}

void AppendDecoded(const char* utf8, std::u32string* out) {
  // Table strings are valid UTF-8 by construction (the generator encodes them).
  if (auto decoded = DecodeUtf8(utf8); decoded.ok()) out->append(*decoded);
}

// Hangul syllables decompose and compose algorithmically (Unicode §3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

void Decompose(char32_t c, std::u32string* out) {
  if (c >= kSBase && c < kSBase + kSCount) {
    const char32_t s = c - kSBase;
    out->push_back(kLBase + s / kNCount);
    out->push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount) out->push_back(kTBase + s % kTCount);
    return;
  }
  if (const CodePointString* d = FindCodePoint(std::begin(kDecompositions), std::end(kDecompositions), c)) {
    AppendDecoded(d->utf8, out);
  } else {
    out->push_back(c);
  }
}

uint8_t CombiningClass(char32_t c) { return RangeValue(std::begin(kCombiningClasses), std::end(kCombiningClasses), c); }

char32_t Compose(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  }
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount) {
    return a + (b - kTBase);
  }
  const Composition* it = std::lower_bound(std::begin(kCompositions), std::end(kCompositions), std::pair{a, b},
                                           [](const Composition& e, const std::pair<char32_t, char32_t>& v) {
                                             return std::pair{e.first, e.second} < v;
                                           });
  return it != std::end(kCompositions) && it->first == a && it->second == b ? it->composite : 0;
}

}  // namespace

StatusOr<std::u32string> DecodeUtf8(std::string_view bytes) {
  if (const size_t bad = FindInvalidUtf8(bytes); bad != std::string_view::npos) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned char>(bytes[bad]));
    return InvalidArgumentError(std::string("invalid UTF-8: the sequence at offset ") + std::to_string(bad) +
                                " (byte " + hex + ") is ill-formed, overlong, a surrogate or past U+10FFFF");
  }
  // Validated above: every lead byte starts a complete, well-formed sequence.
  std::u32string out;
  out.reserve(bytes.size());
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  for (size_t i = 0; i < n;) {
    const unsigned char b = s[i];
    int len = 1;
    char32_t cp = b;
    if (b >= 0xF0) len = 4, cp = b & 0x07;
    else if (b >= 0xE0) len = 3, cp = b & 0x0F;
    else if (b >= 0xC0) len = 2, cp = b & 0x1F;
    for (int k = 1; k < len; ++k) cp = (cp << 6) | (s[i + k] & 0x3F);
    out.push_back(cp);
    i += static_cast<size_t>(len);
  }
  return out;
}

std::string EncodeUtf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) AppendUtf8(c, &out);
  return out;
}

namespace unicode {

bool IsLetter(char32_t c) { return Classes(c) & kLetter; }
bool IsNumber(char32_t c) { return Classes(c) & kNumber; }
bool IsWhitespace(char32_t c) { return Classes(c) & kSpace; }
bool IsNonspacingMark(char32_t c) { return Classes(c) & kMark; }
bool IsBertControl(char32_t c) { return Classes(c) & kControl; }
bool IsBertPunctuation(char32_t c) { return Classes(c) & kPunct; }

bool IsCjkIdeograph(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

void AppendLowercase(char32_t c, std::u32string* out) {
  if (c < 128) {
    out->push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
    return;
  }
  if (const CodePointString* l = FindCodePoint(std::begin(kLowercase), std::end(kLowercase), c)) {
    AppendDecoded(l->utf8, out);
  } else {
    out->push_back(c);
  }
}

std::u32string Nfd(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (c < 0xC0) {
      out.push_back(c);  // nothing below U+00C0 decomposes
    } else {
      Decompose(c, &out);
    }
  }
  // Canonical ordering: a stable sort of each run of non-starters by combining class.
  for (size_t i = 0; i < out.size();) {
    if (CombiningClass(out[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < out.size() && CombiningClass(out[j]) != 0) ++j;
    std::stable_sort(out.begin() + i, out.begin() + j,
                     [](char32_t a, char32_t b) { return CombiningClass(a) < CombiningClass(b); });
    i = j;
  }
  return out;
}

std::u32string Nfc(std::u32string_view text) {
  std::u32string d = Nfd(text);
  if (d.empty()) return d;
  // Canonical composition (Unicode §3.11): a character joins the last starter unless a
  // character between them is a starter or has a combining class >= its own (blocked).
  std::u32string out;
  out.reserve(d.size());
  size_t starter = std::u32string::npos;
  int last_class = 0;  // of the last character appended after the starter
  for (char32_t c : d) {
    const int cc = CombiningClass(c);
    if (starter != std::u32string::npos) {
      const bool adjacent = out.size() == starter + 1;
      if (adjacent || (last_class != 0 && last_class < cc)) {
        if (char32_t composite = Compose(out[starter], c)) {
          out[starter] = composite;
          continue;
        }
      }
    }
    if (cc == 0) starter = out.size();
    out.push_back(c);
    last_class = cc;
  }
  return out;
}

}  // namespace unicode
}  // namespace adrec::text

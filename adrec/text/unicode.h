// UTF-8 and the Unicode properties the tokenizers need: character classes, lowercase, NFD and
// NFC. The tables (unicode_tables.inc, scripts/gen-unicode-tables) hold the classes as the
// Hugging Face `tokenizers` library applies them, so our token IDs match its.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "adrec/core/status.h"
#include "adrec/core/text.h"  // AppendUtf8, FindInvalidUtf8

namespace adrec::text {

// Decodes UTF-8; invalid bytes, overlong forms, surrogates and code points past U+10FFFF are
// InvalidArgument naming the byte offset.
StatusOr<std::u32string> DecodeUtf8(std::string_view bytes);
std::string EncodeUtf8(std::u32string_view text);

namespace unicode {

bool IsLetter(char32_t c);          // \p{L}
bool IsNumber(char32_t c);          // \p{N}
bool IsWhitespace(char32_t c);      // the White_Space property (\s, Rust's char::is_whitespace)
bool IsNonspacingMark(char32_t c);  // Mn: what BERT's accent stripping removes after NFD
bool IsBertControl(char32_t c);     // what BERT's text cleaning removes (Cc, Cf, Co, Cn but \t \n \r)
bool IsBertPunctuation(char32_t c); // ASCII punctuation or P*: BERT splits each into its own word
bool IsCjkIdeograph(char32_t c);    // the CJK blocks BERT puts spaces around

// Full lowercase mapping (one code point may become several, e.g. U+0130).
void AppendLowercase(char32_t c, std::u32string* out);
// Canonical decomposition with canonical ordering (NFD) and composition (NFC).
std::u32string Nfd(std::u32string_view text);
std::u32string Nfc(std::u32string_view text);

}  // namespace unicode
}  // namespace adrec::text

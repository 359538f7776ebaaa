// Text helpers shared by importers, the dataset writer and reports: UTF-8 checks and repair,
// UTC time stamps, lists of names in messages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace adrec {

// Well-formed UTF-8: no overlong forms, surrogates or code points past U+10FFFF. The one
// validator of the project (importers, safetensors headers, tokenizers).
bool IsValidUtf8(std::string_view s);
// The offset of the first byte of the first ill-formed sequence; npos when `s` is valid.
size_t FindInvalidUtf8(std::string_view s);
// Appends the UTF-8 form of a code point (the caller keeps it a Unicode scalar value).
void AppendUtf8(char32_t cp, std::string* out);
// Valid UTF-8 is returned as is; anything else is taken as latin-1 (MovieLens 100k/1M files)
// and converted, so the result is always valid UTF-8.
std::string ToUtf8FromUtf8OrLatin1(std::string_view s);
// Descriptive text (a provenance may hold any bytes of a path) with invalid bytes made U+FFFD.
std::string SanitizeUtf8(std::string_view s);

// "2026-11-25T05:31:30Z"
std::string FormatUtc(int64_t unix_seconds);
std::string NowUtc();

// "a, b, c": the items with `sep` between them (error messages that list what is known).
std::string Join(const std::vector<std::string>& items, std::string_view sep = ", ");

}  // namespace adrec

// Text helpers shared by importers, the dataset writer and reports: UTF-8 checks and repair,
// UTC time stamps.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace adrec {

// Well-formed UTF-8: no overlong forms, surrogates or code points past U+10FFFF.
bool IsValidUtf8(std::string_view s);
// Valid UTF-8 is returned as is; anything else is taken as latin-1 (MovieLens 100k/1M files)
// and converted, so the result is always valid UTF-8.
std::string ToUtf8FromUtf8OrLatin1(std::string_view s);
// Descriptive text (a provenance may hold any bytes of a path) with invalid bytes made U+FFFD.
std::string SanitizeUtf8(std::string_view s);

// "2026-11-25T05:31:30Z"
std::string FormatUtc(int64_t unix_seconds);
std::string NowUtc();

}  // namespace adrec

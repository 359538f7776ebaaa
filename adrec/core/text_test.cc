#include "adrec/core/text.h"

#include <gtest/gtest.h>

namespace adrec {
namespace {

TEST(TextTest, Utf8Validation) {
  EXPECT_TRUE(IsValidUtf8("plain ascii text, long enough for the 8-byte path"));
  EXPECT_TRUE(IsValidUtf8("王者荣耀 🎮"));
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_FALSE(IsValidUtf8("Mis\xE9rables"));
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));      // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));  // surrogate
  EXPECT_FALSE(IsValidUtf8("\xE4\xB8"));      // truncated
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // past U+10FFFF
}

TEST(TextTest, Latin1AndSanitizing) {
  EXPECT_EQ(ToUtf8FromUtf8OrLatin1("Mis\xE9rables"), "Misérables");
  EXPECT_EQ(ToUtf8FromUtf8OrLatin1("Misérables"), "Misérables");
  EXPECT_EQ(SanitizeUtf8("ok 美团"), "ok 美团");
  EXPECT_EQ(SanitizeUtf8("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_TRUE(IsValidUtf8(SanitizeUtf8("\xE4\xB8 tail \xC0")));
}

TEST(TextTest, UtcFormatting) {
  EXPECT_EQ(FormatUtc(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatUtc(1735689651), "2025-01-01T00:00:51Z");
  std::string now = NowUtc();
  EXPECT_EQ(now.size(), 20u);
  EXPECT_EQ(now.back(), 'Z');
}

}  // namespace
}  // namespace adrec

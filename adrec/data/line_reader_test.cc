#include "adrec/data/line_reader.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "adrec/core/file.h"

namespace adrec::data {
namespace {

std::vector<std::string> AllLines(LineReader& r) {
  std::vector<std::string> out;
  std::string_view l;
  while (r.Next(&l)) out.emplace_back(l);
  return out;
}

TEST(LineReaderTest, SplitsLinesStripsCrLfAndBom) {
  auto r = LineReader::FromBuffer("\xEF\xBB\xBF" "a,b\r\n\nlast", "mem");
  EXPECT_EQ(AllLines(*r), (std::vector<std::string>{"a,b", "", "last"}));
  EXPECT_EQ(r->line_number(), 3u);
  EXPECT_TRUE(r->status().ok());
}

TEST(LineReaderTest, EmptyInputHasNoLines) {
  auto r = LineReader::FromBuffer("", "mem");
  std::string_view l;
  EXPECT_FALSE(r->Next(&l));
  EXPECT_TRUE(r->status().ok());
}

TEST(LineReaderTest, FileWithLinesAcrossSmallBuffersAndGrowth) {
  ScopedTempDir dir("line-reader");
  std::string text;
  std::vector<std::string> want;
  for (int i = 0; i < 500; ++i) {
    want.push_back(std::string(static_cast<size_t>(i % 97), 'x') + std::to_string(i));
    text += want.back() + "\n";
  }
  want.push_back(std::string(300, 'y'));  // longer than the buffer: it must grow
  text += want.back();
  ASSERT_TRUE(AtomicWriteFile(dir.path() / "f.txt", text).ok());
  auto r = LineReader::Open(dir.path() / "f.txt", {.buffer_bytes = 64});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Progress p("t", (*r)->size_bytes(), {.enabled = false});
  (*r)->set_progress(&p);
  EXPECT_EQ(AllLines(**r), want);
  EXPECT_EQ((*r)->name(), "f.txt");
  EXPECT_EQ((*r)->bytes_consumed(), text.size());
  EXPECT_EQ(p.done(), text.size());
}

TEST(LineReaderTest, TooLongLineIsAnErrorNamingTheLine) {
  ScopedTempDir dir("line-reader");
  ASSERT_TRUE(AtomicWriteFile(dir.path() / "f.txt", "ok\n" + std::string(1000, 'z') + "\n").ok());
  auto r = LineReader::Open(dir.path() / "f.txt", {.buffer_bytes = 64, .max_line_bytes = 256});
  ASSERT_TRUE(r.ok());
  std::string_view l;
  EXPECT_TRUE((*r)->Next(&l));
  EXPECT_FALSE((*r)->Next(&l));
  EXPECT_EQ((*r)->status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE((*r)->status().message().find("f.txt:2"), std::string::npos) << (*r)->status().message();
}

TEST(LineReaderTest, MissingFileIsAnError) {
  auto r = LineReader::Open("/nonexistent/adrec/x.txt");
  EXPECT_FALSE(r.ok());
}

TEST(LineReaderTest, SplitHelpers) {
  std::vector<std::string_view> f;
  EXPECT_EQ(SplitFields("a\tb\t\tc", '\t', &f), 4u);
  EXPECT_EQ(f[2], "");
  EXPECT_EQ(SplitFields("1::Toy Story::A|B", "::", &f), 3u);
  EXPECT_EQ(f[1], "Toy Story");
  EXPECT_EQ(SplitFields("", ',', &f), 1u);
  EXPECT_EQ(SplitWhitespace("  u1 \t i1  i2 ", &f), 3u);
  EXPECT_EQ(f[2], "i2");
}

TEST(LineReaderTest, NumberParsing) {
  uint32_t u;
  int64_t i;
  float x;
  EXPECT_TRUE(ParseU32("4294967295", &u));
  EXPECT_FALSE(ParseU32("4294967296", &u));
  EXPECT_FALSE(ParseU32("-1", &u));
  EXPECT_FALSE(ParseU32("12a", &u));
  EXPECT_FALSE(ParseU32("", &u));
  EXPECT_TRUE(ParseI64("-5", &i));
  EXPECT_EQ(i, -5);
  EXPECT_TRUE(ParseFloat("3.5", &x));
  EXPECT_EQ(x, 3.5f);
  EXPECT_FALSE(ParseFloat("nan", &x));
  EXPECT_FALSE(ParseFloat("1e999", &x));
  EXPECT_TRUE(ParseHexU32("68fd1e64", &u));
  EXPECT_EQ(u, 0x68fd1e64u);
  EXPECT_FALSE(ParseHexU32("168fd1e64", &u));
  EXPECT_FALSE(ParseHexU32("xyz", &u));
}

std::vector<std::vector<std::string>> AllRecords(std::string_view text, std::vector<std::string>* errors = nullptr) {
  auto lines = LineReader::FromBuffer(text, "mem");
  CsvRecordReader csv(lines.get());
  std::vector<std::string_view> f;
  std::vector<std::vector<std::string>> out;
  while (csv.Next(&f)) {
    if (csv.has_error()) {
      if (errors) errors->push_back(std::to_string(csv.line_number()) + ":" + csv.error());
      continue;
    }
    out.emplace_back(f.begin(), f.end());
  }
  return out;
}

TEST(LineReaderCsvTest, Rfc4180Quoting) {
  auto recs = AllRecords(
      "1,\"Shawshank Redemption, The (1994)\",Drama\n"
      "2,\"Say \"\"Cheese\"\"\",\n"
      "3,\"two\nlines\",x\n"
      "4,plain,\"\"\n");
  ASSERT_EQ(recs.size(), 4u);
  EXPECT_EQ(recs[0], (std::vector<std::string>{"1", "Shawshank Redemption, The (1994)", "Drama"}));
  EXPECT_EQ(recs[1], (std::vector<std::string>{"2", "Say \"Cheese\"", ""}));
  EXPECT_EQ(recs[2], (std::vector<std::string>{"3", "two\nlines", "x"}));
  EXPECT_EQ(recs[3], (std::vector<std::string>{"4", "plain", ""}));
}

TEST(LineReaderCsvTest, MalformedRecordsAreReportedAndSkipped) {
  std::vector<std::string> errors;
  auto recs = AllRecords("1,\"a\"b,c\n2,ok,ok\n3,\"never closed\n", &errors);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0][0], "2");
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].substr(0, 2), "1:");
  EXPECT_EQ(errors[1].substr(0, 2), "3:");
}

}  // namespace
}  // namespace adrec::data

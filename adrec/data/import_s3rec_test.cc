#include <gtest/gtest.h>

#include "adrec/core/file.h"
#include "adrec/data/import.h"
#include "adrec/data/import_test_util.h"

namespace adrec::data {
namespace {

TEST(ImportS3RecTest, SequencesBecomeClicksWithPositionTimes) {
  ScopedTempDir tmp("s3rec");
  auto path = tmp.path() / "Beauty.txt";
  ASSERT_TRUE(AtomicWriteFile(path, "u7 i3 i1 i3\n\nu2 i1\ti9\n").ok());
  auto ds = ImportS3Rec(Opts(path));
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->info.name, "s3rec-Beauty");
  EXPECT_EQ(ds->info.provenance, "s3rec: Beauty.txt");
  EXPECT_EQ(ds->num_users(), 2u);
  EXPECT_EQ(ds->num_items(), 3u);
  ASSERT_EQ(ds->num_events(), 5u);
  auto [b, e] = ds->UserRange(*ds->users.Find("u7"));
  ASSERT_EQ(e - b, 3u);
  std::vector<std::string> items;
  for (uint64_t i = b; i < e; ++i) {
    items.push_back(ds->items.Name(ds->events.item[i]));
    EXPECT_EQ(ds->events.time[i], i - b + 1);
    EXPECT_EQ(ds->events.action[i], uint8_t(Action::kClick));
    EXPECT_EQ(ds->events.value[i], 1.f);
  }
  EXPECT_EQ(items, (std::vector<std::string>{"i3", "i1", "i3"}));
}

TEST(ImportS3RecTest, MalformedLinesAndEmptyInput) {
  ScopedTempDir tmp("s3rec");
  auto path = tmp.path() / "x.txt";
  ASSERT_TRUE(AtomicWriteFile(path, "u1 a b\nlonely\nu1 c\nu2 \xff\nu3 d\n").ok());
  auto ds = ImportS3Rec(Opts(path));
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("x.txt:2: user 'lonely' has no items"), std::string::npos)
      << ds.status().message();
  ds = ImportS3Rec(Opts(path, 3));
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->info.malformed_rows, 3u);  // lonely, second u1 line, bad UTF-8
  EXPECT_EQ(ds->num_events(), 3u);
  EXPECT_FALSE(ImportS3RecFromBuffer("", Opts("e.txt")).ok());
  EXPECT_FALSE(ImportS3Rec(Opts(tmp.path() / "missing.txt")).ok());
}

}  // namespace
}  // namespace adrec::data

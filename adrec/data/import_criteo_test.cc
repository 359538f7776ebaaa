#include <gtest/gtest.h>

#include "adrec/core/file.h"
#include "adrec/data/import.h"
#include "adrec/data/import_test_util.h"

namespace adrec::data {
namespace {

// label, 13 ints, 26 hex categoricals; `blank` empties I2 and C3.
std::string Row(int label, int seed, bool blank = false) {
  std::string r = std::to_string(label);
  for (int k = 1; k <= 13; ++k) r += "\t" + ((blank && k == 2) ? std::string() : std::to_string(seed * 100 + k - 5));
  for (int k = 1; k <= 26; ++k) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "%08x", static_cast<unsigned>(seed * 1000 + k));
    r += "\t" + ((blank && k == 3) ? std::string() : std::string(buf));
  }
  return r + "\n";
}

TEST(ImportCriteoTest, ColumnsMissingMaskAndOneUser) {
  ScopedTempDir tmp("criteo");
  auto path = tmp.path() / "day_0.tsv";
  ASSERT_TRUE(AtomicWriteFile(path, Row(0, 1) + Row(1, 2, true) + Row(0, 1)).ok());
  auto ds = ImportCriteo(Opts(path));
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->info.provenance, "criteo: day_0.tsv");
  EXPECT_EQ(ds->num_users(), 1u);
  EXPECT_EQ(ds->users.Name(0), "all");
  EXPECT_EQ(ds->num_events(), 3u);
  EXPECT_EQ(ds->num_items(), 2u);  // C1 values 000003e9 and 000007d1
  EXPECT_EQ(ds->items.Name(ds->events.item[1]), "000007d1");
  EXPECT_EQ(ds->events.action[1], uint8_t(Action::kClick));
  EXPECT_EQ(ds->events.value[1], 1.f);
  EXPECT_EQ(ds->events.time[2], 3u);
  EXPECT_EQ(ds->event_table.columns.size(), 13u + 1 + 26);
  EXPECT_EQ(ds->event_table.Find("I1")->f32[0], 96.f);
  EXPECT_EQ(ds->event_table.Find("I2")->f32[1], 0.f);
  EXPECT_EQ(ds->event_table.Find("I_missing")->u32[1], 1u << 1);
  EXPECT_EQ(ds->event_table.Find("I_missing")->u32[0], 0u);
  EXPECT_EQ(ds->event_table.Find("C3")->u32[1], 0u);
  EXPECT_EQ(ds->event_table.Find("C26")->u32[1], 2026u);
  EXPECT_EQ(ds->event_table.Find("C1")->type, ColumnType::kUInt32);
}

TEST(ImportCriteoTest, ItemColumnOption) {
  ImportOptions o = Opts("c.tsv");
  o.criteo.item_column = 26;
  auto ds = ImportCriteoFromBuffer(Row(1, 5), o);
  ASSERT_TRUE(ds.ok());
  EXPECT_EQ(ds->items.Name(0), "000013a2");
  o.criteo.item_column = 27;
  EXPECT_FALSE(ImportCriteoFromBuffer(Row(1, 5), o).ok());
}

TEST(ImportCriteoTest, MalformedRows) {
  std::string bad_label = Row(1, 1);
  bad_label[0] = '2';
  std::string bad_hex = Row(0, 1);
  bad_hex.replace(bad_hex.rfind('\t') + 1, 8, "zzzzzzzz");
  std::string text = Row(0, 1) + bad_label + "0\t1\t2\n" + bad_hex + Row(1, 3);
  auto ds = ImportCriteoFromBuffer(text, Opts("c.tsv"));
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("c.tsv:2: label '2'"), std::string::npos) << ds.status().message();
  ds = ImportCriteoFromBuffer(text, Opts("c.tsv", 2));
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("c.tsv:4: C26 'zzzzzzzz'"), std::string::npos) << ds.status().message();
  ds = ImportCriteoFromBuffer(text, Opts("c.tsv", 3));
  ASSERT_TRUE(ds.ok());
  EXPECT_EQ(ds->info.malformed_rows, 3u);
  EXPECT_EQ(ds->event_table.rows(), 2u);
  EXPECT_FALSE(ImportCriteoFromBuffer("", Opts("c.tsv")).ok());
}

}  // namespace
}  // namespace adrec::data

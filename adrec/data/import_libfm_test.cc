#include <gtest/gtest.h>

#include "adrec/core/file.h"
#include "adrec/data/import.h"
#include "adrec/data/import_test_util.h"

namespace adrec::data {
namespace {

TEST(ImportLibFmTest, FrappeLayoutKeepsAllFeatures) {
  ScopedTempDir tmp("libfm");
  auto path = tmp.path() / "frappe.train.libfm";
  ASSERT_TRUE(AtomicWriteFile(path,
                              "-1 451:1 4149:1 5041:1\n"
                              "1 452:1 4150:1 5041:0.5\n"
                              "1 451:1 4150:1 5042:1\n").ok());
  auto ds = ImportLibFm(Opts(path));
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->info.source_format, "libfm");
  EXPECT_EQ(ds->num_users(), 2u);
  EXPECT_EQ(ds->num_items(), 2u);
  ASSERT_EQ(ds->num_events(), 3u);
  const Column* f = ds->event_table.Find("features");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->type, ColumnType::kSparseVector);
  // User 451 holds lines 1 and 3 (time = line number), sorted together with their features.
  auto [b, e] = ds->UserRange(*ds->users.Find("451"));
  ASSERT_EQ(e - b, 2u);
  EXPECT_EQ(ds->events.time[b], 1u);
  EXPECT_EQ(ds->events.action[b], uint8_t(Action::kImpression));
  EXPECT_EQ(ds->events.value[b], -1.f);
  EXPECT_EQ(ds->events.time[b + 1], 3u);
  EXPECT_EQ(ds->events.action[b + 1], uint8_t(Action::kClick));
  EXPECT_EQ(ds->items.Name(ds->events.item[b + 1]), "4150");
  auto row = f->ListAt(b + 1);
  EXPECT_EQ(std::vector<uint32_t>(row.begin(), row.end()), (std::vector<uint32_t>{451, 4150, 5042}));
  auto u452 = ds->UserRange(*ds->users.Find("452")).first;
  EXPECT_EQ(f->f32[f->offsets[u452] + 2], 0.5f);
}

TEST(ImportLibFmTest, ConfigurableUserAndItemPositions) {
  ImportOptions o = Opts("t.libfm");
  o.libfm.user_feature = 2;
  o.libfm.item_feature = 0;
  auto ds = ImportLibFmFromBuffer("1 7:1 8:1 9:1\n", o);
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->users.Name(0), "9");
  EXPECT_EQ(ds->items.Name(0), "7");
  o.libfm.item_feature = 2;
  EXPECT_EQ(ImportLibFmFromBuffer("1 7:1 8:1 9:1\n", o).status().code(), StatusCode::kInvalidArgument);
}

TEST(ImportLibFmTest, MalformedLines) {
  std::string text = "1 1:1 2:1\nx 1:1 2:1\n1 1:1\n0 1:1 2:z\n0 3:1 4:1\n";
  auto ds = ImportLibFmFromBuffer(text, Opts("t.libfm"));
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("t.libfm:2: label 'x'"), std::string::npos) << ds.status().message();
  ds = ImportLibFmFromBuffer(text, Opts("t.libfm", 3));
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->info.malformed_rows, 3u);
  EXPECT_EQ(ds->num_events(), 2u);
  EXPECT_EQ(ds->event_table.rows(), 2u);
  EXPECT_FALSE(ImportLibFmFromBuffer("\n\n", Opts("t.libfm")).ok());
}

}  // namespace
}  // namespace adrec::data

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

TEST(ImportLibFmTest, AFieldMapMakesOneCategoricalColumnPerField) {
  auto fields = ParseLibFmFieldMap("# Frappe-like\nuser 0 9\nitem 10 99   # apps\n\nweekday 100 106\n", "f.fields");
  ASSERT_TRUE(fields.ok()) << fields.status().ToString();
  ImportOptions o = Opts("t.libfm");
  o.libfm.fields = *fields;
  // Features in any order on a line; line 3 lacks a weekday.
  auto ds = ImportLibFmFromBuffer("1 3:1 12:1 101:1\n-1 4:1 104:1 12:1\n1 3:1 50:1\n", o);
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->event_table.Find("features"), nullptr);
  for (const char* name : {"user", "item", "weekday"}) {
    const Column* c = ds->event_table.Find(name);
    ASSERT_NE(c, nullptr) << name;
    EXPECT_EQ(c->type, ColumnType::kCategorical) << name;
  }
  const Column& weekday = *ds->event_table.Find("weekday");
  const Column& item = *ds->event_table.Find("item");
  // User 4 holds line 2 only: weekday index 104, item 12.
  const uint64_t e4 = ds->UserRange(*ds->users.Find("4")).first;
  EXPECT_EQ(weekday.vocab->Name(weekday.u32[e4]), "104");
  EXPECT_EQ(item.vocab->Name(item.u32[e4]), "12");
  // User 3's second line (time 3) has no weekday: code 0, missing.
  const uint64_t e3 = ds->UserRange(*ds->users.Find("3")).first;
  EXPECT_EQ(ds->events.time[e3 + 1], 3u);
  EXPECT_EQ(weekday.u32[e3 + 1], 0u);
  EXPECT_EQ(item.vocab->Name(item.u32[e3 + 1]), "50");
}

TEST(ImportLibFmTest, FieldMapFaultsNameTheLineOrTheFeature) {
  auto fields = ParseLibFmFieldMap("user 0 9\nitem 10 99\n", "f.fields");
  ASSERT_TRUE(fields.ok());
  ImportOptions o = Opts("t.libfm");
  o.libfm.fields = *fields;
  auto stray = ImportLibFmFromBuffer("1 3:1 12:1 500:1\n", o);
  ASSERT_FALSE(stray.ok());
  EXPECT_NE(stray.status().message().find("t.libfm:1: feature index 500 is in no field"), std::string::npos)
      << stray.status().message();
  auto twice = ImportLibFmFromBuffer("1 3:1 12:1 13:1\n", o);
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.status().message().find("two features of field 'item' (12 and 13)"), std::string::npos)
      << twice.status().message();

  struct Case { const char* text; const char* want; };
  for (const Case& c : {Case{"user 0\n", "f.fields:1: expected 'name first last'"},
                        Case{"user 0 9\nitem 9 20\n", "f.fields:2: field 'item' overlaps field 'user' (line 1)"},
                        Case{"user 5 1\n", "first index above last"},
                        Case{"user 0 1\nuser 2 3\n", "declared twice"},
                        Case{"us-er 0 1\n", "is not [A-Za-z0-9_]+"},
                        Case{"# nothing\n", "declares no field"}}) {
    auto r = ParseLibFmFieldMap(c.text, "f.fields");
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.want), std::string::npos) << r.status().message();
  }
}

}  // namespace
}  // namespace adrec::data

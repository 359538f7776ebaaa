#include "adrec/data/dataset.h"

#include <gtest/gtest.h>

namespace adrec::data {
namespace {

TEST(DatasetBuilderTest, SortsStablyByUserTimeArrivalAndBuildsOffsets) {
  DatasetBuilder b({.name = "t", .source_format = "test", .provenance = "", .with_truth = true});
  uint32_t u0 = b.UserId("u0"), u1 = b.UserId("u1"), u2 = b.UserId("u2");
  uint32_t i0 = b.ItemId("i0");
  b.event_table().Add("row", ColumnType::kUInt32);
  b.event_table().Add("sparse", ColumnType::kSparseVector);
  // (user, time, arrival tag): ties in (user, time) must keep arrival order.
  struct In {
    uint32_t u;
    int64_t t;
  };
  std::vector<In> in = {{u2, 5}, {u0, 9}, {u1, 3}, {u0, 1}, {u0, 9}, {u2, 5}, {u0, 4}};
  for (size_t k = 0; k < in.size(); ++k) {
    ASSERT_TRUE(b.AddEvent({.user = in[k].u, .item = i0, .timestamp = in[k].t, .position = uint8_t(k),
                            .value = float(k), .truth = 0.1f * float(k)})
                    .ok());
    b.event_table().columns[0].PushU32(uint32_t(k));
    std::vector<uint32_t> idx(k, uint32_t(k));  // row k has k entries, all equal to k
    std::vector<float> val(k, float(k));
    b.event_table().columns[1].PushSparse(idx, val);
  }
  auto ds = std::move(b).Finish();
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  // Expected order of arrival tags: u0: t1(3), t4(6), t9(1), t9(4); u1: t3(2); u2: t5(0), t5(5).
  const std::vector<uint32_t> want = {3, 6, 1, 4, 2, 0, 5};
  std::vector<uint32_t> got_pos(ds->events.position.begin(), ds->events.position.end());
  EXPECT_EQ(got_pos, want);
  EXPECT_EQ(ds->events.user, (std::vector<uint32_t>{0, 0, 0, 0, 1, 2, 2}));
  EXPECT_EQ(ds->events.time, (std::vector<uint32_t>{1, 4, 9, 9, 3, 5, 5}));
  EXPECT_EQ(ds->user_offsets, (std::vector<uint64_t>{0, 4, 5, 7}));
  EXPECT_EQ(ds->UserRange(1), (std::pair<uint64_t, uint64_t>{4, 5}));
  for (size_t n = 0; n < want.size(); ++n) {
    EXPECT_FLOAT_EQ(ds->events.value[n], float(want[n]));
    EXPECT_FLOAT_EQ(ds->events.truth[n], 0.1f * float(want[n]));
  }
  // The event table moved with its events, list columns included.
  EXPECT_EQ(ds->event_table.columns[0].u32, want);
  const Column& sp = ds->event_table.columns[1];
  ASSERT_EQ(sp.rows(), want.size());
  for (size_t n = 0; n < want.size(); ++n) {
    auto row = sp.ListAt(n);
    EXPECT_EQ(row.size(), want[n]);
    for (uint32_t x : row) EXPECT_EQ(x, want[n]);
    for (uint64_t k = sp.offsets[n]; k < sp.offsets[n + 1]; ++k) EXPECT_FLOAT_EQ(sp.f32[k], float(want[n]));
  }
  EXPECT_TRUE(ds->Validate().ok());
  EXPECT_EQ(ds->scenes, std::vector<std::string>{"default"});
}

TEST(DatasetBuilderTest, AlreadySortedInputIsKept) {
  DatasetBuilder b({});
  uint32_t u0 = b.UserId("a"), u1 = b.UserId("b");
  uint32_t i = b.ItemId("x");
  ASSERT_TRUE(b.AddEvent({.user = u0, .item = i, .timestamp = 1}).ok());
  ASSERT_TRUE(b.AddEvent({.user = u0, .item = i, .timestamp = 1, .action = Action::kClick}).ok());
  ASSERT_TRUE(b.AddEvent({.user = u1, .item = i, .timestamp = 0}).ok());
  auto ds = std::move(b).Finish();
  ASSERT_TRUE(ds.ok());
  EXPECT_EQ(ds->events.action, (std::vector<uint8_t>{0, 1, 0}));
  EXPECT_EQ(ds->user_offsets, (std::vector<uint64_t>{0, 2, 3}));
  EXPECT_FALSE(ds->has_truth());
}

TEST(DatasetBuilderTest, UsersWithoutEventsGetEmptySlicesAndPaddedRows) {
  DatasetBuilder b({});
  b.UserId("silent");
  uint32_t u = b.UserId("active");
  uint32_t i = b.ItemId("x");
  b.ItemId("never-seen");
  b.user_table().Add("age", ColumnType::kCategorical);
  b.item_table().Add("title", ColumnType::kString).PushString("only the first");
  ASSERT_TRUE(b.AddEvent({.user = u, .item = i, .timestamp = 3}).ok());
  auto ds = std::move(b).Finish();
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->user_offsets, (std::vector<uint64_t>{0, 0, 1}));
  EXPECT_EQ(ds->user_table.rows(), 2u);
  EXPECT_EQ(ds->item_table.columns[0].str, (std::vector<std::string>{"only the first", ""}));
}

TEST(DatasetBuilderTest, EmptyBuilderIsAnError) {
  auto ds = DatasetBuilder({}).Finish();
  EXPECT_EQ(ds.status().code(), StatusCode::kInvalidArgument);
}

TEST(DatasetBuilderTest, TimestampOutOfRange) {
  DatasetBuilder b({});
  uint32_t u = b.UserId("a"), i = b.ItemId("x");
  EXPECT_EQ(b.AddEvent({.user = u, .item = i, .timestamp = -1}).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(b.AddEvent({.user = u, .item = i, .timestamp = int64_t{1} << 32}).code(), StatusCode::kOutOfRange);
  EXPECT_TRUE(b.AddEvent({.user = u, .item = i, .timestamp = UINT32_MAX}).ok());
  EXPECT_EQ(b.num_events(), 1u);  // refused events were not stored
}

TEST(DatasetBuilderTest, IdsOutsideTheVocabulariesAreErrors) {
  DatasetBuilder b({});
  uint32_t u = b.UserId("a");
  b.ItemId("x");
  ASSERT_TRUE(b.AddEvent({.user = u + 5, .item = 0, .timestamp = 1}).ok());
  EXPECT_FALSE(std::move(b).Finish().ok());
  DatasetBuilder c({});
  c.UserId("a");
  c.ItemId("x");
  ASSERT_TRUE(c.AddEvent({.user = 0, .item = 3, .timestamp = 1}).ok());
  EXPECT_FALSE(std::move(c).Finish().ok());
}

TEST(DatasetBuilderTest, EventTableWithWrongRowCountIsAnError) {
  DatasetBuilder b({});
  b.event_table().Add("f", ColumnType::kFloat32);
  ASSERT_TRUE(b.AddEvent({.user = b.UserId("a"), .item = b.ItemId("x"), .timestamp = 1}).ok());
  EXPECT_FALSE(std::move(b).Finish().ok());
}

// DESIGN/ARCHITECTURE promise: 19 bytes per event, 23 with ground truth (≤ 24).
TEST(DatasetBuilderTest, EventMemoryIsAtMost24BytesPerEventWithTruth) {
  DatasetBuilderOptions options;
  options.with_truth = true;
  DatasetBuilder b(options);
  const size_t n = 10000;
  for (size_t k = 0; k < n; ++k) {
    uint32_t u = b.UserId("u" + std::to_string(k % 97));
    uint32_t i = b.ItemId("i" + std::to_string(k % 13));
    ASSERT_TRUE(b.AddEvent({.user = u, .item = i, .timestamp = int64_t(n - k), .truth = 0.5f}).ok());
  }
  auto ds = std::move(b).Finish();
  ASSERT_TRUE(ds.ok());
  EventColumns& ev = ds->events;
  for (auto* v : {&ev.user, &ev.item, &ev.time}) v->shrink_to_fit();
  for (auto* v : {&ev.scene, &ev.position, &ev.action}) v->shrink_to_fit();
  ev.value.shrink_to_fit();
  ev.truth.shrink_to_fit();
  EXPECT_EQ(ev.MemoryBytes(), 23 * n);
  EXPECT_LE(ev.MemoryBytes(), 24 * n);
  EventColumns no_truth = ev;
  no_truth.truth.clear();
  no_truth.truth.shrink_to_fit();
  EXPECT_EQ(no_truth.MemoryBytes(), 19 * n);
}

Dataset TwoUsers() {
  DatasetBuilder b({});
  uint32_t a = b.UserId("a"), c = b.UserId("c");
  uint32_t x = b.ItemId("x"), y = b.ItemId("y");
  EXPECT_TRUE(b.AddEvent({.user = a, .item = x, .timestamp = 1}).ok());
  EXPECT_TRUE(b.AddEvent({.user = a, .item = y, .timestamp = 2}).ok());
  EXPECT_TRUE(b.AddEvent({.user = c, .item = y, .timestamp = 3}).ok());
  auto& tags = b.item_table().Add("tags", ColumnType::kCategoricalList);
  std::vector<std::string_view> t = {"p", "q"};
  tags.PushCategoricalList(t);
  return std::move(b).Finish().value();
}

TEST(DatasetValidateTest, CatchesBrokenInvariants) {
  ASSERT_TRUE(TwoUsers().Validate().ok());
  auto expect_bad = [](const Dataset& ds, std::string_view needle) {
    Status s = ds.Validate();
    ASSERT_FALSE(s.ok()) << needle;
    EXPECT_EQ(s.code(), StatusCode::kDataLoss);
    EXPECT_NE(s.message().find(needle), std::string::npos) << s.message();
  };
  Dataset ds = TwoUsers();
  std::swap(ds.events.time[0], ds.events.time[1]);
  expect_bad(ds, "not sorted by time");
  ds = TwoUsers();
  ds.events.item[2] = 2;
  expect_bad(ds, "item ID out of range");
  ds = TwoUsers();
  ds.events.user[0] = 1;
  expect_bad(ds, "not in its user's slice");
  ds = TwoUsers();
  ds.events.scene[1] = 1;
  expect_bad(ds, "scene out of range");
  ds = TwoUsers();
  ds.events.action[1] = kNumActions;
  expect_bad(ds, "unknown action");
  ds = TwoUsers();
  ds.events.value.pop_back();
  expect_bad(ds, "different lengths");
  ds = TwoUsers();
  ds.user_offsets = {0, 9, 3};  // 9 runs past the events before the decrease is seen
  expect_bad(ds, "user offset index");
  ds = TwoUsers();
  ds.user_offsets.pop_back();
  expect_bad(ds, "users + 1");
  ds = TwoUsers();
  ds.item_table.columns[0].offsets.clear();  // must not read offsets.back() of an empty vector
  expect_bad(ds, "tags");
  ds = TwoUsers();
  ds.item_table.columns[0].u32[0] = 99;
  expect_bad(ds, "code out of range");
  ds = TwoUsers();
  ds.item_table.columns[0].vocab.reset();
  expect_bad(ds, "no vocabulary");
  ds = TwoUsers();
  ds.item_table.Add("short", ColumnType::kFloat32, 1);
  expect_bad(ds, "'short' has 1 rows");
  ds = TwoUsers();
  ds.taxonomy.Add(0, "a");
  ds.taxonomy.nodes[1].parent = 1;
  expect_bad(ds, "taxonomy");
  ds = TwoUsers();
  ds.scenes.clear();
  expect_bad(ds, "no scenes");
}

TEST(VocabularyTest, DenseIdsInOrderOfFirstAppearance) {
  Vocabulary v;
  EXPECT_EQ(v.GetOrAdd("b"), 0u);
  EXPECT_EQ(v.GetOrAdd("a"), 1u);
  EXPECT_EQ(v.GetOrAdd("b"), 0u);
  EXPECT_EQ(v.GetOrAdd("王者"), 2u);
  EXPECT_EQ(v.size(), 3u);
  EXPECT_EQ(v.Find("王者"), 2u);
  EXPECT_EQ(v.Find("zzz"), std::nullopt);
  EXPECT_EQ(v.Name(1), "a");
  EXPECT_GT(v.MemoryBytes(), 0u);
  auto w = Vocabulary::FromNames({"", "x", "y"});
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->Find(""), 0u);
  EXPECT_EQ(w->Find("y"), 2u);
  auto dup = Vocabulary::FromNames({"x", "y", "x"});
  EXPECT_EQ(dup.status().code(), StatusCode::kDataLoss);
}

TEST(ColumnTest, TypedPushesAndDefaults) {
  Column c = MakeColumn("genre", ColumnType::kCategorical);
  c.PushCategorical("drama");
  c.PushCategorical("");
  c.PushDefault();
  EXPECT_EQ(c.u32, (std::vector<uint32_t>{1, 0, 0}));
  EXPECT_EQ(c.vocab->Name(0), "");
  Column l = MakeColumn("tags", ColumnType::kCategoricalList);
  std::vector<std::string_view> a = {"x", "y"};
  l.PushCategoricalList(a);
  l.PushDefault();
  ASSERT_EQ(l.rows(), 2u);
  EXPECT_EQ(l.ListAt(0).size(), 2u);
  EXPECT_EQ(l.ListAt(1).size(), 0u);
  Column s = MakeColumn("sv", ColumnType::kSparseVector);
  std::vector<uint32_t> idx = {4};
  std::vector<float> val = {2.f};
  s.PushSparse(idx, val);
  s.PushDefault();
  EXPECT_EQ(s.rows(), 2u);
  EXPECT_EQ(s.offsets, (std::vector<uint64_t>{0, 1, 1}));
  Table t;
  t.Add("f", ColumnType::kFloat32, 3);
  EXPECT_EQ(t.rows(), 3u);
  EXPECT_NE(t.Find("f"), nullptr);
  EXPECT_EQ(t.Find("g"), nullptr);
  PadTable(t, 5);
  EXPECT_EQ(t.Find("f")->f32.size(), 5u);
  EXPECT_EQ(ColumnTypeName(ColumnType::kSparseVector), "sparse_vector");
}

TEST(TaxonomyTest, PathsAndChildren) {
  Taxonomy t;
  uint32_t g = t.Add(0, "games", "游戏");
  uint32_t m = t.Add(g, "MOBA");
  uint32_t a = t.Add(m, "5v5 arena");
  uint32_t l = t.Add(0, "lifestyle");
  EXPECT_EQ(t.nodes[0].name_en, "root");
  EXPECT_EQ(t.nodes[a].level, 3);
  EXPECT_EQ(t.Path(a), "games › MOBA › 5v5 arena");
  EXPECT_EQ(t.Path(0), "");
  EXPECT_EQ(t.Path(999), "");
  EXPECT_EQ(t.Children(0), (std::vector<uint32_t>{g, l}));
  EXPECT_EQ(t.Children(m), std::vector<uint32_t>{a});
}

TEST(ActionTest, NamesRoundTrip) {
  for (int i = 0; i < kNumActions; ++i) {
    auto a = static_cast<Action>(i);
    auto parsed = ParseAction(ActionName(a));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, a);
    EXPECT_EQ(*ParseAction(std::to_string(i)), a);
  }
  EXPECT_EQ(ParseAction("clik").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace adrec::data

// Fixtures the feature pipeline's tests share (feature_spec_test.cc, samples_test.cc,
// batch_test.cc, batch_stream_test.cc): spec parsing helpers, a tiny hand-made dataset and a
// timed one with their specs, and a small synthetic world.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "adrec/core/config.h"
#include "adrec/data/features.h"
#include "adrec/data/synthetic.h"

// Options structs are filled with designated initializers; unnamed fields keep their defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace adrec::data::feature_testing {

inline StatusOr<FeatureSpec> ParseSpec(std::string_view toml) {
  auto cfg = Config::Parse(toml, "spec.toml");
  if (!cfg.ok()) return cfg.status();
  return FeatureSpec::FromConfig(*cfg);
}

inline FeatureSpec MustParse(std::string_view toml) {
  auto spec = ParseSpec(toml);
  EXPECT_TRUE(spec.ok()) << spec.status().ToString();
  return spec.ok() ? std::move(spec).value() : FeatureSpec{};
}

inline constexpr std::string_view kGoodSpec = R"(
[features]
samples = ["impression"]

[[features.tables]]
name = "items"
kind = "fixed"
dim = 8

[[features.tables]]
name = "ids"
kind = "dynamic"
dim = 4
admit_after = 3
max_rows = 1000
eviction = "lru"
ttl_steps = 50
optimizer = "adam"

[[features.fields]]
name = "user"
kind = "categorical"
source = "user"
table_kind = "dynamic"

[[features.fields]]
name = "item"
kind = "categorical"
source = "item"
table = "items"

[[features.fields]]
name = "hist"
kind = "sequence"
source = "history.item"
table = "items"
dim = 8
max_len = 20
pooling = "sum"
history_actions = ["click", "download"]

[[features.fields]]
name = "camp"
kind = "categorical"
source = "item.camp"
dim = 6
rows = 1000

[[features.fields]]
name = "hour"
source = "hour"

[[features.fields]]
name = "price"
kind = "dense"
source = "item.price"
normalize = "standard"

[[features.fields]]
name = "emb"
kind = "text"
source = "item.emb"

[[features.fields]]
name = "cat_id"
kind = "categorical"
source = "event.c"
table = "ids"

[[features.targets]]
name = "click"
rule = "follows"
action = "click"

[[features.targets]]
name = "download"
action = "download"
given = "click"
weight = 0.5

[[features.targets]]
name = "rich"
rule = "value_ge"
threshold = 4
)";

// Users u0, u1, u2; items i0..i3. Every event's value is its time / 100 (value_ge target).
// Item columns: cat (categorical), cat_id (u32), tags (categorical list), price (f32), emb
// (sparse vector). User column: age. Event columns: I1 (f32) with I_missing (Criteo layout).
struct TinyEvent {
  uint32_t user, item;
  int64_t time;
  Action action;
  uint8_t position = 0;
  float i1 = 0.f;
  bool i1_missing = false;
};

inline constexpr int64_t kDay = 86400;
// 2025-01-01 (a Wednesday) 00:00 UTC; hour and weekday features read these.
inline constexpr int64_t kT0 = 1735689600;

inline const std::vector<TinyEvent>& TinyEvents() {
  static const std::vector<TinyEvent> events = {
      // u0: imp i0 → click → download; imp i1 (nothing); imp i0 again (nothing after);
      // imp i2 → click → conversion.
      {0, 0, kT0 + 100, Action::kImpression, 1, 3.f},
      {0, 1, kT0 + 101, Action::kImpression, 2, 0.f, true},
      {0, 0, kT0 + 103, Action::kClick},
      {0, 0, kT0 + 110, Action::kDownload},
      {0, 0, kT0 + 5 * 3600, Action::kImpression, 0, -7.f},
      {0, 2, kT0 + kDay + 13 * 3600 + 300, Action::kImpression, 3, 10.f},
      {0, 2, kT0 + kDay + 13 * 3600 + 301, Action::kClick},
      {0, 2, kT0 + kDay + 13 * 3600 + 302, Action::kConversion},
      // u1: two impressions of i1, each followed by its own click; a late impression of i0.
      {1, 1, kT0 + 50, Action::kImpression},
      {1, 1, kT0 + 60, Action::kClick},
      {1, 1, kT0 + 70, Action::kImpression},
      {1, 1, kT0 + 80, Action::kClick},
      {1, 0, kT0 + 2 * kDay + 23 * 3600 + 450, Action::kImpression},
      // u2: two impressions of i3, then two clicks: NextStageLabels credits both impressions,
      // "follows" only the later one (the first one's window ends at the second impression).
      {2, 3, kT0 + 10, Action::kImpression},
      {2, 3, kT0 + 11, Action::kImpression},
      {2, 3, kT0 + 12, Action::kClick},
      {2, 3, kT0 + 13, Action::kClick},
  };
  return events;
}

inline Dataset TinyDataset() {
  DatasetBuilder b({.name = "tiny", .source_format = "test"});
  for (int u = 0; u < 3; ++u) b.UserId("u" + std::to_string(u));
  for (int i = 0; i < 4; ++i) b.ItemId("i" + std::to_string(i));
  b.SceneId("feed");
  b.SceneId("search");
  b.event_table().columns.reserve(2);  // the references below must stay valid
  Column& i1 = b.event_table().Add("I1", ColumnType::kFloat32);
  Column& missing = b.event_table().Add("I_missing", ColumnType::kUInt32);
  for (const TinyEvent& t : TinyEvents()) {
    Event e{.user = t.user, .item = t.item, .timestamp = t.time, .scene = static_cast<uint8_t>(t.user == 1),
            .position = t.position, .action = t.action, .value = static_cast<float>(t.time - kT0) / 100.f};
    EXPECT_TRUE(b.AddEvent(e).ok());
    i1.PushFloat(t.i1);
    missing.PushU32(t.i1_missing ? 1u : 0u);  // bit 0 = I1
  }
  Table& it = b.item_table();
  it.columns.reserve(6);
  Column& cat = it.Add("cat", ColumnType::kCategorical);
  for (const char* c : {"games", "shop", "games", ""}) cat.PushCategorical(c);  // codes 1, 2, 1, 0
  Column& cat_id = it.Add("cat_id", ColumnType::kUInt32);
  for (uint32_t v : {7u, 9u, 7u, 40u}) cat_id.PushU32(v);
  Column& hashed_id = it.Add("hashed_id", ColumnType::kUInt32);
  for (uint32_t v : {5000000u, 1u, 2u, 3u}) hashed_id.PushU32(v);
  Column& tags = it.Add("tags", ColumnType::kCategoricalList);
  std::vector<std::vector<std::string_view>> tag_rows = {{"a", "b", "c"}, {}, {"b"}, {"d", "a"}};
  for (const auto& row : tag_rows) tags.PushCategoricalList(row);  // a=1 b=2 c=3 d=4
  Column& price = it.Add("price", ColumnType::kFloat32);
  for (float p : {1.f, 2.f, 3.f, 4.f}) price.PushFloat(p);
  Column& emb = it.Add("emb", ColumnType::kSparseVector);
  emb.PushSparse(std::vector<uint32_t>{0, 2}, std::vector<float>{0.5f, -1.f});
  emb.PushSparse(std::vector<uint32_t>{}, std::vector<float>{});
  emb.PushSparse(std::vector<uint32_t>{4}, std::vector<float>{2.f});
  emb.PushSparse(std::vector<uint32_t>{1}, std::vector<float>{3.f});
  Column& age = b.user_table().Add("age", ColumnType::kCategorical);
  for (const char* a : {"18-24", "25-34", "18-24"}) age.PushCategorical(a);
  auto ds = std::move(b).Finish();
  EXPECT_TRUE(ds.ok()) << ds.status().ToString();
  return std::move(ds).value();
}

// The dataset event index of the TinyEvents() entry `k` (they are added in sorted order).
inline uint64_t Ev(size_t k) { return k; }

inline constexpr std::string_view kTinySpec = R"(
[features]
samples = ["impression"]

[[features.fields]]
name = "user"
kind = "categorical"
source = "user"

[[features.fields]]
name = "item"
kind = "categorical"
source = "item"
dim = 8

[[features.fields]]
name = "scene"
kind = "categorical"
source = "scene"

[[features.fields]]
name = "position"
kind = "categorical"
source = "position"

[[features.fields]]
name = "hour"
kind = "categorical"
source = "hour"

[[features.fields]]
name = "weekday"
kind = "categorical"
source = "weekday"

[[features.fields]]
name = "cat"
kind = "categorical"
source = "item.cat"

[[features.fields]]
name = "cat_id"
kind = "categorical"
source = "item.cat_id"
table_kind = "fixed"

[[features.fields]]
name = "age"
kind = "categorical"
source = "user.age"

[[features.fields]]
name = "tags"
kind = "multi_hot"
source = "item.tags"
max_len = 2

[[features.fields]]
name = "hist"
kind = "sequence"
source = "history.item"
table = "item"
max_len = 2

[[features.fields]]
name = "hist_cat"
kind = "sequence"
source = "history.cat"
table = "cat"
history_actions = ["click"]

[[features.fields]]
name = "price"
kind = "dense"
source = "item.price"
normalize = "standard"

[[features.fields]]
name = "i1"
kind = "dense"
source = "event.I1"
normalize = "log1p"

[[features.fields]]
name = "emb"
kind = "text"
source = "item.emb"

[[features.targets]]
name = "click"
action = "click"

[[features.targets]]
name = "download"
action = "download"
given = "click"

[[features.targets]]
name = "conversion"
action = "conversion"
given = "click"

[[features.targets]]
name = "install_after_download"
action = "install"
given = "download"

[[features.targets]]
name = "late"
rule = "value_ge"
threshold = 10

[[features.targets]]
name = "is_click"
rule = "action"
action = "click"
)";

inline FeatureSpec BoundTinySpec(const Dataset& ds) {
  FeatureSpec spec = MustParse(kTinySpec);
  Status s = spec.Bind(ds);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return spec;
}

inline SyntheticOptions SmallWorld() {
  return {.users = 300, .ads = 100, .advertisers = 20, .days = 3, .seed = 7, .show_progress = false};
}

// Two users on items i0..i3; item columns cat (categorical: i0 a, i1 a, i2 b, i3 missing) and
// node (u32: 7 7 9 9). Times are seconds after kT0; 100-second windows put events right on the
// edge (100 s old counts, 101 s does not) and events at a sample's own second on both sides of it.
struct TimedEvent {
  uint32_t user, item;
  int64_t time;
  Action action;
};

inline const std::vector<TimedEvent>& TimedEvents() {
  static const std::vector<TimedEvent> events = {
      {0, 0, 1000, Action::kImpression},  // e0  sample 0
      {0, 0, 1000, Action::kClick},       // e1  the same second as e0, after it in the log
      {0, 1, 1050, Action::kImpression},  // e2  sample 1
      {0, 1, 1060, Action::kClick},       // e3
      {0, 3, 1080, Action::kClick},       // e4  on i3, whose cat is missing
      {0, 0, 1100, Action::kImpression},  // e5  sample 2: e0 is exactly 100 s old
      {0, 2, 1100, Action::kClick},       // e6  the same second as e5, after it
      {0, 0, 1101, Action::kImpression},  // e7  sample 3: e0 is 101 s old
      {0, 3, 1101, Action::kImpression},  // e8  sample 4: e7 at the same second, before it
      {0, 2, 1200, Action::kImpression},  // e9  sample 5
      {1, 0, 1100, Action::kImpression},  // e10 sample 6: u0's events never count for u1
      {1, 0, 1150, Action::kClick},       // e11
      {1, 1, 1160, Action::kImpression},  // e12 sample 7
  };
  return events;
}

inline Dataset TimedDataset() {
  DatasetBuilder b({.name = "timed", .source_format = "test"});
  for (int u = 0; u < 2; ++u) b.UserId("u" + std::to_string(u));
  for (int i = 0; i < 4; ++i) b.ItemId("i" + std::to_string(i));
  b.SceneId("feed");
  for (const TimedEvent& t : TimedEvents()) {
    EXPECT_TRUE(b.AddEvent({.user = t.user, .item = t.item, .timestamp = kT0 + t.time, .action = t.action}).ok());
  }
  Table& it = b.item_table();
  it.columns.reserve(3);
  Column& cat = it.Add("cat", ColumnType::kCategorical);
  for (const char* c : {"a", "a", "b", ""}) cat.PushCategorical(c);
  Column& node = it.Add("node", ColumnType::kUInt32);
  for (uint32_t v : {7u, 7u, 9u, 9u}) node.PushU32(v);
  Column& price = it.Add("price", ColumnType::kFloat32);
  for (float p : {1.f, 2.f, 3.f, 4.f}) price.PushFloat(p);
  auto ds = std::move(b).Finish();
  EXPECT_TRUE(ds.ok()) << ds.status().ToString();
  return std::move(ds).value();
}

inline constexpr std::string_view kTimedSpec = R"(
[features]
[[features.fields]]
name = "imp_all"
kind = "dense"
source = "recent.impression"
window_s = 100
[[features.fields]]
name = "imp_item"
kind = "dense"
source = "recent.impression"
window_s = 100
match = "item"
[[features.fields]]
name = "click_cat"
kind = "dense"
source = "recent.click"
window_s = 100
match = "cat"
[[features.fields]]
name = "click_node_decay"
kind = "dense"
source = "recent.click"
window_s = 100
match = "node"
decay_s = 50
[[features.fields]]
name = "clicks_log"
kind = "dense"
source = "recent.click"
window_s = 100
normalize = "log1p"
[[features.fields]]
name = "imp_std"
kind = "dense"
source = "recent.impression"
window_s = 100
normalize = "standard"
[[features.fields]]
name = "recent_clicks"
kind = "sequence"
source = "history.item"
history_actions = ["click"]
max_age_s = 100
[[features.fields]]
name = "recent_clicks2"
kind = "sequence"
source = "history.item"
table = "recent_clicks"
history_actions = ["click"]
max_age_s = 100
max_len = 2
[[features.fields]]
name = "all_clicks"
kind = "sequence"
source = "history.item"
table = "recent_clicks"
history_actions = ["click"]
[[features.targets]]
name = "click"
action = "click"
)";

// Two batches hold the same samples, values and labels.
inline void ExpectSameBatch(const Batch& a, const Batch& b, const std::string& where) {
  ASSERT_EQ(a.size, b.size) << where;
  EXPECT_EQ(a.event, b.event) << where;
  EXPECT_EQ(a.user, b.user) << where;
  EXPECT_EQ(a.scene, b.scene) << where;
  EXPECT_EQ(a.truth, b.truth) << where;
  EXPECT_EQ(a.labels, b.labels) << where;
  EXPECT_EQ(a.mask, b.mask) << where;
  EXPECT_EQ(a.dense, b.dense) << where;
  EXPECT_EQ(a.text, b.text) << where;
  ASSERT_EQ(a.sparse.size(), b.sparse.size()) << where;
  for (size_t k = 0; k < a.sparse.size(); ++k) {
    EXPECT_EQ(a.sparse[k].ids, b.sparse[k].ids) << where << " field " << k;
    EXPECT_EQ(a.sparse[k].offsets, b.sparse[k].offsets) << where << " field " << k;
  }
}

}  // namespace adrec::data::feature_testing

#include "adrec/data/feature_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <numeric>
#include <set>

#include "adrec/core/config.h"
#include "adrec/data/features_testing.h"
#include "adrec/data/synthetic.h"

// Options structs are filled with designated initializers; unnamed fields keep their defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace adrec::data {
namespace {

using ::testing::HasSubstr;
using namespace feature_testing;

TEST(FeatureSpecTest, ParsesTablesFieldsTargetsAndImplicitTables) {
  auto cfg = Config::Parse(kGoodSpec, "spec.toml");
  ASSERT_TRUE(cfg.ok());
  auto spec = FeatureSpec::FromConfig(*cfg);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_TRUE(cfg->CheckNoUnknownKeys().ok()) << cfg->CheckNoUnknownKeys().ToString();
  EXPECT_EQ(spec->sample_actions, ActionBit(Action::kImpression));
  ASSERT_EQ(spec->fields.size(), 8u);
  // Explicit tables first, then the implicit ones in field order.
  ASSERT_EQ(spec->tables.size(), 5u);
  EXPECT_EQ(spec->tables[0].name, "items");
  EXPECT_EQ(spec->tables[1].kind, TableKind::kDynamic);
  EXPECT_EQ(spec->tables[1].admit_after, 3u);
  EXPECT_EQ(spec->tables[1].max_rows, 1000u);
  EXPECT_EQ(spec->tables[1].eviction, "lru");
  EXPECT_EQ(spec->tables[1].ttl_steps, 50u);
  EXPECT_EQ(spec->tables[1].optimizer, "adam");
  const TableSpec* user = spec->FindTable("user");
  ASSERT_NE(user, nullptr);
  EXPECT_EQ(user->kind, TableKind::kDynamic);  // table_kind overrides the fixed default of "user"
  EXPECT_EQ(user->dim, 16);
  const TableSpec* camp = spec->FindTable("camp");
  ASSERT_NE(camp, nullptr);
  EXPECT_EQ(camp->dim, 6);
  EXPECT_EQ(camp->rows, 1000u);
  EXPECT_TRUE(camp->kind_from_source);  // a column: Bind decides fixed or hashed
  const TableSpec* hour = spec->FindTable("hour");
  ASSERT_NE(hour, nullptr);
  EXPECT_EQ(hour->kind, TableKind::kFixed);
  EXPECT_FALSE(hour->kind_from_source);
  EXPECT_EQ(spec->FindTable("price"), nullptr);  // dense fields have no table

  const FieldSpec& hist = spec->fields[2];
  EXPECT_EQ(hist.kind, FieldKind::kSequence);
  EXPECT_EQ(hist.table, "items");
  EXPECT_EQ(hist.pooling, Pooling::kSum);
  EXPECT_EQ(hist.max_len, 20u);
  EXPECT_EQ(hist.history_actions, (std::vector<Action>{Action::kClick, Action::kDownload}));
  EXPECT_EQ(spec->fields[0].pooling, Pooling::kMean);
  EXPECT_EQ(spec->fields[5].normalize, "standard");

  ASSERT_EQ(spec->targets.size(), 3u);
  EXPECT_EQ(spec->targets[1].rule, TargetRule::kFollows);  // the default rule
  EXPECT_EQ(spec->targets[1].action, Action::kDownload);
  EXPECT_EQ(spec->targets[1].given, "click");
  EXPECT_FLOAT_EQ(spec->targets[1].weight, 0.5f);
  EXPECT_EQ(spec->targets[2].rule, TargetRule::kValueAtLeast);
  EXPECT_FLOAT_EQ(spec->targets[2].threshold, 4.f);
  EXPECT_EQ(spec->TargetIndex("rich"), 2);
  EXPECT_EQ(spec->TargetIndex("nope"), -1);

  auto sparse = spec->SparseFields();
  ASSERT_EQ(sparse.size(), 6u);
  EXPECT_EQ(sparse[0]->name, "user");
  EXPECT_EQ(sparse[2]->name, "hist");
  EXPECT_EQ(sparse[4]->name, "hour");
  EXPECT_EQ(sparse[5]->name, "cat_id");
  ASSERT_EQ(spec->DenseFields().size(), 1u);
  ASSERT_EQ(spec->TextFields().size(), 1u);
  EXPECT_EQ(spec->DenseWidth(), 1);
}

// A minimal valid spec with one field replaced or added.
std::string WithFields(std::string_view fields, std::string_view extra = "") {
  return std::string("[features]\n") + std::string(extra) + "\n" +
         "[[features.fields]]\nname = \"user\"\nkind = \"categorical\"\nsource = \"user\"\n" + std::string(fields);
}

struct BadCase {
  std::string toml;
  std::vector<std::string> message_parts;
};

TEST(FeatureSpecTest, BadConfigsNameTheField) {
  const std::vector<BadCase> cases = {
      {WithFields("[[features.fields]]\nname = \"hist\"\nkind = \"sequence\"\nsource = \"histroy.item\"\n"),
       {"spec.toml", "fields[1] 'hist'", "unknown source 'histroy.item'"}},
      {WithFields("[[features.fields]]\nname = \"hist\"\nkind = \"sequence\"\nsource = \"item\"\n"),
       {"fields[1] 'hist'", "does not fit kind sequence"}},
      {WithFields("[[features.fields]]\nname = \"x\"\nkind = \"categorial\"\nsource = \"item\"\n"),
       {"fields[1] 'x'", "unknown kind 'categorial'"}},
      {WithFields("[[features.fields]]\nname = \"x\"\nkind = \"categorical\"\nsource = \"item\"\ntable = \"nope\"\n"),
       {"fields[1] 'x'", "table 'nope' is not declared"}},
      {WithFields("[[features.fields]]\nname = \"h\"\nkind = \"sequence\"\nsource = \"history.item\"\n"
                  "table = \"user\"\ndim = 32\n"),
       {"fields[1] 'h'", "dim 32 differs from table 'user'"}},
      {WithFields("[[features.fields]]\nname = \"user\"\nkind = \"categorical\"\nsource = \"item\"\n"),
       {"fields[1] 'user'", "duplicate field name"}},
      {WithFields("[[features.fields]]\nname = \"m\"\nkind = \"multi_hot\"\nsource = \"item.tags\"\npoolng = \"sum\"\n"),
       {"fields[1] 'm'", "unknown key 'poolng'"}},
      {WithFields("[[features.fields]]\nname = \"c\"\nkind = \"categorical\"\nsource = \"item\"\npooling = \"sum\"\n"),
       {"fields[1] 'c'", "'pooling' applies to multi_hot and sequence"}},
      {WithFields("[[features.fields]]\nname = \"d\"\nkind = \"dense\"\nsource = \"item.bid\"\nnormalize = \"zscore\"\n"),
       {"fields[1] 'd'", "unknown normalize 'zscore'"}},
      {WithFields("[[features.fields]]\nname = \"d\"\nkind = \"dense\"\nsource = \"item.bid\"\ndim = 4\n"),
       {"fields[1] 'd'", "'dim' applies to sparse fields only"}},
      {WithFields("[[features.fields]]\nname = \"h\"\nkind = \"sequence\"\nsource = \"history.item\"\n"
                  "history_actions = [\"clack\"]\n"),
       {"fields[1] 'h'", "clack"}},
      {WithFields("[[features.fields]]\nname = \"c\"\nkind = \"categorical\"\nsource = \"item.camp\"\n"
                  "table_kind = \"hashed\"\n"),
       {"fields[1] 'c'", "hashed table needs rows"}},
      {WithFields("[[features.fields]]\nname = \"c\"\nkind = \"categorical\"\nsource = \"item\"\n"
                  "table_kind = \"lookup\"\n"),
       {"fields[1] 'c'", "unknown table_kind 'lookup'"}},
      {WithFields("", "[[features.tables]]\nname = \"t\"\nkind = \"fixed\"\nadmit_after = 2\n"),
       {"tables[0] 't'", "'admit_after' applies to dynamic tables only"}},
      {WithFields("", "[[features.tables]]\nname = \"t\"\nkind = \"fixed\"\n"),
       {"tables[0] 't'", "no field uses this table"}},
      {WithFields("", "[[features.tables]]\nname = \"user\"\nkind = \"fixed\"\ndim = 8\n") + "dim = 4\n",
       {"fields[0] 'user'", "dim 4 differs from table 'user'"}},
      {WithFields("[[features.fields]]\nname = \"item\"\nsource = \"item\"\ntable = \"item\"\ndim = 4\n",
                  "[[features.tables]]\nname = \"item\"\nkind = \"fixed\"\ndim = 8\n"),
       {"fields[1] 'item'", "dim 4 differs from table 'item'"}},
      {WithFields("[[features.targets]]\nname = \"dl\"\naction = \"download\"\ngiven = \"click\"\n"
                  "[[features.targets]]\nname = \"click\"\naction = \"click\"\n"),
       {"targets[0] 'dl'", "given 'click' must name an earlier target"}},
      {WithFields("[[features.targets]]\nname = \"click\"\nrule = \"follows\"\n"),
       {"targets[0] 'click'", "needs an action"}},
      {WithFields("[[features.targets]]\nname = \"like\"\nrule = \"value_ge\"\naction = \"rating\"\nthreshold = 4\n"),
       {"targets[0] 'like'", "not an action"}},
      {WithFields("[[features.targets]]\nname = \"like\"\nrule = \"above\"\n"), {"targets[0] 'like'", "unknown rule 'above'"}},
      {WithFields("[[features.fields]]\nname = \"r\"\nkind = \"dense\"\nsource = \"recent.click\"\n"),
       {"fields[1] 'r'", "needs 'window_s'"}},
      {WithFields("[[features.fields]]\nname = \"r\"\nkind = \"dense\"\nsource = \"recent.click\"\nwindow_s = 0\n"),
       {"fields[1] 'r'", "'window_s' must be > 0"}},
      {WithFields("[[features.fields]]\nname = \"r\"\nkind = \"dense\"\nsource = \"recent.click\"\nwindow_s = -5\n"),
       {"window_s"}},
      {WithFields("[[features.fields]]\nname = \"r\"\nkind = \"dense\"\nsource = \"recent.clik\"\nwindow_s = 60\n"),
       {"fields[1] 'r'", "source 'recent.clik'", "unknown action 'clik'"}},
      {WithFields("[[features.fields]]\nname = \"r\"\nkind = \"dense\"\nsource = \"recent.click\"\nwindow_s = 60\n"
                  "decay_s = 0\n"),
       {"fields[1] 'r'", "'decay_s' must be > 0"}},
      {WithFields("[[features.fields]]\nname = \"r\"\nkind = \"dense\"\nsource = \"recent.click\"\nwindow_s = 60\n"
                  "decay_s = -30.0\n"),
       {"fields[1] 'r'", "'decay_s' must be > 0"}},
      {WithFields("[[features.fields]]\nname = \"r\"\nkind = \"dense\"\nsource = \"recent.click\"\nwindow_s = 60\n"
                  "match = \"\"\n"),
       {"fields[1] 'r'", "'match' is empty"}},
      {WithFields("[[features.fields]]\nname = \"r\"\nkind = \"dense\"\nsource = \"recent.click\"\nwindow_s = 60\n"
                  "windw_s = 60\n"),
       {"fields[1] 'r'", "unknown key 'windw_s'"}},
      {WithFields("[[features.fields]]\nname = \"r\"\nkind = \"categorical\"\nsource = \"recent.click\"\n"
                  "window_s = 60\n"),
       {"fields[1] 'r'", "does not fit kind categorical"}},
      {WithFields("[[features.fields]]\nname = \"d\"\nkind = \"dense\"\nsource = \"item.bid\"\nwindow_s = 60\n"),
       {"fields[1] 'd'", "'window_s' applies to recent.<action> fields only"}},
      {WithFields("[[features.fields]]\nname = \"h\"\nkind = \"sequence\"\nsource = \"history.item\"\n"
                  "match = \"item\"\n"),
       {"fields[1] 'h'", "'match' applies to recent.<action> fields only"}},
      {WithFields("[[features.fields]]\nname = \"d\"\nkind = \"dense\"\nsource = \"item.bid\"\nmax_age_s = 60\n"),
       {"fields[1] 'd'", "'max_age_s' applies to sequence fields only"}},
      {WithFields("[[features.fields]]\nname = \"r\"\nkind = \"dense\"\nsource = \"recent\"\n"),
       {"fields[1] 'r'", "unknown source 'recent'", "recent.<action>"}},
      {WithFields("", "samples = [\"impresion\"]\n"), {"samples", "impresion"}},
      {WithFields("", "sample = [\"impression\"]\n"), {"unknown key 'sample'"}},
      {"[other]\nx = 1\n", {"missing section [features]"}},
  };
  for (const BadCase& c : cases) {
    auto spec = ParseSpec(c.toml);
    ASSERT_FALSE(spec.ok()) << c.toml;
    EXPECT_EQ(spec.status().code(), StatusCode::kInvalidArgument) << spec.status().ToString();
    for (const std::string& part : c.message_parts) {
      EXPECT_THAT(spec.status().message(), HasSubstr(part)) << c.toml;
    }
  }
}

TEST(FeatureSpecTest, BindFillsRowsWidthsAndKinds) {
  Dataset ds = TinyDataset();
  FeatureSpec spec = BoundTinySpec(ds);
  auto rows = [&](std::string_view t) { return spec.FindTable(t) ? spec.FindTable(t)->rows : 0; };
  EXPECT_EQ(rows("user"), 4u);      // 3 users + 1
  EXPECT_EQ(rows("item"), 5u);      // 4 items + 1 (shared with hist)
  EXPECT_EQ(rows("scene"), 3u);     // 2 scenes + 1
  EXPECT_EQ(rows("position"), 257u);
  EXPECT_EQ(rows("hour"), 25u);
  EXPECT_EQ(rows("weekday"), 8u);
  EXPECT_EQ(rows("cat"), 4u);       // vocabulary {"", games, shop} + 1 (shared with hist_cat)
  EXPECT_EQ(rows("cat_id"), 42u);   // u32 max 40 + 2
  EXPECT_EQ(rows("age"), 4u);
  EXPECT_EQ(rows("tags"), 6u);      // {"", a, b, c, d} + 1
  EXPECT_EQ(spec.FindTable("item")->dim, 8);
  EXPECT_EQ(spec.FindTable("cat")->kind, TableKind::kFixed);  // a vocabulary column
  EXPECT_FALSE(spec.FindTable("cat")->kind_from_source);
  EXPECT_EQ(spec.TextFields()[0]->width, 5);  // max index 4 + 1
  EXPECT_EQ(spec.DenseWidth(), 2);

  // Implicit tables on u32 columns: hashed into the rows given; given none, fixed for a small
  // value range (one row per value).
  FeatureSpec u32 = MustParse(WithFields(
      "[[features.fields]]\nname = \"small\"\nsource = \"item.cat_id\"\n"
      "[[features.fields]]\nname = \"hashed\"\nsource = \"item.hashed_id\"\nrows = 1000\n"));
  ASSERT_TRUE(u32.Bind(ds).ok());
  EXPECT_EQ(u32.FindTable("small")->kind, TableKind::kFixed);
  EXPECT_EQ(u32.FindTable("small")->rows, 42u);
  EXPECT_EQ(u32.FindTable("hashed")->kind, TableKind::kHashed);
  EXPECT_EQ(u32.FindTable("hashed")->rows, 1000u);
  EXPECT_FALSE(u32.FindTable("hashed")->kind_from_source);
}

TEST(FeatureSpecTest, BindErrorsNameTheFieldAndListColumns) {
  Dataset ds = TinyDataset();
  struct Case {
    std::string field;
    std::vector<std::string> parts;
  };
  const std::vector<Case> cases = {
      {"[[features.fields]]\nname = \"hist\"\nkind = \"sequence\"\nsource = \"history.foo\"\n",
       {"fields[1] 'hist'", "unknown source 'history.foo'", "item table has no column 'foo'", "cat_id (u32)", "tags"}},
      {"[[features.fields]]\nname = \"d\"\nkind = \"dense\"\nsource = \"item.cat\"\n",
       {"fields[1] 'd'", "categorical column", "a f32 or u32 column"}},
      {"[[features.fields]]\nname = \"m\"\nkind = \"multi_hot\"\nsource = \"item.cat\"\n",
       {"fields[1] 'm'", "categorical_list"}},
      {"[[features.fields]]\nname = \"t\"\nkind = \"text\"\nsource = \"item.price\"\n", {"fields[1] 't'", "sparse_vector"}},
      {"[[features.fields]]\nname = \"a\"\nkind = \"categorical\"\nsource = \"user.agee\"\n",
       {"fields[1] 'a'", "user table has no column 'agee'", "age (categorical)"}},
      {"[[features.fields]]\nname = \"c\"\nkind = \"categorical\"\nsource = \"item.hashed_id\"\n",
       {"tables[1] 'c' (of fields[1] 'c')", "no vocabulary and values up to 5000000", "give the table rows"}},
      {"[[features.fields]]\nname = \"c\"\nkind = \"categorical\"\nsource = \"item.cat_id\"\ntable_kind = \"fixed\"\n"
       "rows = 10\n",
       {"'c'", "fixed table of 10 rows", "needs 42"}},
  };
  for (const Case& c : cases) {
    FeatureSpec spec = MustParse(WithFields(c.field));
    const std::string before = spec.ToJson().dump();
    Status s = spec.Bind(ds);
    ASSERT_FALSE(s.ok()) << c.field;
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    for (const std::string& part : c.parts) EXPECT_THAT(s.message(), HasSubstr(part)) << c.field;
    EXPECT_EQ(spec.ToJson().dump(), before) << "a failed Bind must leave the spec as it was";
  }
  // Without an event table, event columns do not bind.
  DatasetBuilder b({.name = "plain"});
  ASSERT_TRUE(b.AddEvent({.user = b.UserId("u"), .item = b.ItemId("i"), .timestamp = 1}).ok());
  auto plain = std::move(b).Finish();
  ASSERT_TRUE(plain.ok());
  FeatureSpec spec = MustParse(WithFields("[[features.fields]]\nname = \"x\"\nkind = \"dense\"\nsource = \"event.I1\"\n"));
  Status s = spec.Bind(*plain);
  EXPECT_THAT(s.message(), HasSubstr("fields[1] 'x'"));
  EXPECT_THAT(s.message(), HasSubstr("event table has no column 'I1'"));
}

TEST(FeatureSpecTest, CountersAndMaxAgeRoundTripThroughJson) {
  Dataset ds = TimedDataset();
  FeatureSpec spec = MustParse(kTimedSpec);
  ASSERT_TRUE(spec.Bind(ds).ok());
  const nlohmann::json j = spec.ToJson();
  EXPECT_EQ(j["fields"][3]["window_s"], 100);
  EXPECT_EQ(j["fields"][3]["match"], "node");
  EXPECT_EQ(j["fields"][3]["decay_s"], 50.0);
  EXPECT_EQ(j["fields"][6]["max_age_s"], 100);
  // Unset keys are left out, so a spec that uses none of them writes the JSON it always did.
  EXPECT_FALSE(j["fields"][0].contains("match"));
  EXPECT_FALSE(j["fields"][0].contains("decay_s"));
  EXPECT_FALSE(j["fields"][0].contains("max_age_s"));
  EXPECT_FALSE(j["fields"][8].contains("window_s"));
  auto back = FeatureSpec::FromJson(nlohmann::json::parse(j.dump()));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->ToJson(), j);
  for (size_t i = 0; i < spec.fields.size(); ++i) {
    EXPECT_EQ(back->fields[i].max_age_s, spec.fields[i].max_age_s);
    EXPECT_EQ(back->fields[i].window_s, spec.fields[i].window_s);
    EXPECT_EQ(back->fields[i].match, spec.fields[i].match);
    EXPECT_EQ(back->fields[i].decay_s, spec.fields[i].decay_s);
  }
  // JSON is validated like a config: a counter without its window names the field.
  nlohmann::json bad = j;
  bad["fields"][1].erase("window_s");
  auto r = FeatureSpec::FromJson(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("fields[1] 'imp_item'"));
  EXPECT_THAT(r.status().message(), HasSubstr("window_s"));
  bad = j;
  bad["fields"][3]["decay_s"] = -1.0;
  r = FeatureSpec::FromJson(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("fields[3] 'click_node_decay': decay_s must be > 0"));
  bad = j;
  bad["fields"][8]["match"] = "item";  // a sequence
  r = FeatureSpec::FromJson(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("fields[8] 'all_clicks': window_s, match and decay_s belong to"));
}

TEST(FeatureSpecTest, CounterBindChecksTheMatchColumn) {
  Dataset ds = TimedDataset();
  const std::string counter = "[[features.fields]]\nname = \"r\"\nkind = \"dense\"\nsource = \"recent.click\"\n"
                              "window_s = 60\n";
  for (const std::string match : {"item", "cat", "node"}) {
    FeatureSpec spec = MustParse(WithFields(counter + "match = \"" + match + "\"\n"));
    EXPECT_TRUE(spec.Bind(ds).ok()) << match;
  }
  FeatureSpec spec = MustParse(WithFields(counter + "match = \"cat4\"\n"));
  Status s = spec.Bind(ds);
  EXPECT_THAT(s.message(), HasSubstr("fields[1] 'r'"));
  EXPECT_THAT(s.message(), HasSubstr("match 'cat4': the item table has no column 'cat4'"));
  EXPECT_THAT(s.message(), HasSubstr("node (u32)"));
  spec = MustParse(WithFields(counter + "match = \"price\"\n"));
  s = spec.Bind(ds);
  EXPECT_THAT(s.message(), HasSubstr("fields[1] 'r'"));
  EXPECT_THAT(s.message(), HasSubstr("match 'price' is a f32 column"));
  // Unbound on another dataset: BuildBatch reads the counter as 0 (and warns once).
  DatasetBuilder b({.name = "plain"});
  ASSERT_TRUE(b.AddEvent({.user = b.UserId("u"), .item = b.ItemId("i"), .timestamp = 1}).ok());
  ASSERT_TRUE(b.AddEvent({.user = b.UserId("u"), .item = b.ItemId("i"), .timestamp = 2}).ok());
  auto plain = std::move(b).Finish();
  ASSERT_TRUE(plain.ok());
  spec = MustParse(WithFields(counter + "match = \"cat\"\n"));
  auto samples = MakeSamples(*plain, spec, nullptr, SplitPart::kTrain);
  ASSERT_TRUE(samples.ok());
  ASSERT_EQ(samples->size(), 2u);
  Batch batch;
  const std::vector<uint64_t> order = {0, 1};
  BuildBatch(*plain, spec, *samples, order, &batch);
  EXPECT_EQ(batch.dense, (std::vector<float>{0, 0}));
}

TEST(FeatureSpecTest, JsonNumbersOutOfRangeAreErrorsNamingTheKey) {
  // Found by feature_spec_fuzz: rows = 7.8e62 was cast to uint64 with undefined behaviour.
  nlohmann::json j = MustParse(kGoodSpec).ToJson();
  for (const auto& [key, value] : std::vector<std::pair<std::string, nlohmann::json>>{
           {"rows", 7.8e62}, {"dim", 1e12}, {"rows", -1}, {"dim", 2.5e9}}) {
    nlohmann::json bad = j;
    bad["tables"][0][key] = value;
    auto r = FeatureSpec::FromJson(bad);
    ASSERT_FALSE(r.ok()) << key << " = " << value.dump();
    EXPECT_THAT(r.status().message(), HasSubstr("tables[0]: '" + key + "' must be an integer in range")) << r.status().message();
  }
}

TEST(FeatureSpecTest, JsonRoundTripsEverything) {
  Dataset ds = TinyDataset();
  FeatureSpec spec = MustParse(kTinySpec);
  // Before Bind: the implicit column table still carries kind_from_source.
  auto early = FeatureSpec::FromJson(spec.ToJson());
  ASSERT_TRUE(early.ok()) << early.status().ToString();
  EXPECT_TRUE(early->FindTable("cat")->kind_from_source);
  EXPECT_EQ(early->ToJson(), spec.ToJson());

  ASSERT_TRUE(spec.Bind(ds).ok());
  auto samples = MakeSamples(ds, spec, nullptr, SplitPart::kTrain);
  ASSERT_TRUE(samples.ok());
  spec.FitNormalization(ds, samples->events);
  spec.targets[1].weight = 0.25f;
  spec.tables[0].init_std = 0.123f;
  const nlohmann::json j = spec.ToJson();
  auto back = FeatureSpec::FromJson(nlohmann::json::parse(j.dump()));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->ToJson(), j);
  EXPECT_EQ(back->sample_actions, spec.sample_actions);
  ASSERT_EQ(back->fields.size(), spec.fields.size());
  for (size_t i = 0; i < spec.fields.size(); ++i) {
    const FieldSpec &a = spec.fields[i], &b = back->fields[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.kind, b.kind);
    EXPECT_EQ(a.source, b.source);
    EXPECT_EQ(a.table, b.table);
    EXPECT_EQ(a.pooling, b.pooling);
    EXPECT_EQ(a.max_len, b.max_len);
    EXPECT_EQ(a.history_actions, b.history_actions);
    EXPECT_EQ(a.normalize, b.normalize);
    EXPECT_EQ(a.width, b.width);
    EXPECT_EQ(a.mean, b.mean);  // floats survive exactly
    EXPECT_EQ(a.stddev, b.stddev);
  }
  EXPECT_EQ(back->fields[12].mean.size(), 1u);
  EXPECT_EQ(back->TextFields()[0]->width, 5);
  for (size_t i = 0; i < spec.tables.size(); ++i) {
    EXPECT_EQ(back->tables[i].name, spec.tables[i].name);
    EXPECT_EQ(back->tables[i].kind, spec.tables[i].kind);
    EXPECT_EQ(back->tables[i].rows, spec.tables[i].rows);
    EXPECT_EQ(back->tables[i].dim, spec.tables[i].dim);
    EXPECT_EQ(back->tables[i].init_std, spec.tables[i].init_std);
  }
  for (size_t i = 0; i < spec.targets.size(); ++i) {
    EXPECT_EQ(back->targets[i].name, spec.targets[i].name);
    EXPECT_EQ(back->targets[i].rule, spec.targets[i].rule);
    EXPECT_EQ(back->targets[i].action, spec.targets[i].action);
    EXPECT_EQ(back->targets[i].threshold, spec.targets[i].threshold);
    EXPECT_EQ(back->targets[i].given, spec.targets[i].given);
    EXPECT_EQ(back->targets[i].weight, spec.targets[i].weight);
  }
  // Bad JSON names where it broke.
  nlohmann::json bad = j;
  bad["fields"][2]["kind"] = "sparse";
  auto r = FeatureSpec::FromJson(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("fields[2]"));
  bad = j;
  bad["fields"][3].erase("source");
  r = FeatureSpec::FromJson(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("fields[3]"));
  bad = j;
  bad["fields"][10]["table"] = "nope";
  r = FeatureSpec::FromJson(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("fields[10] 'hist': table 'nope' is not declared"));
}

}  // namespace
}  // namespace adrec::data

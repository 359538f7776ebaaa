#include <gtest/gtest.h>

#include "adrec/core/build_paths.h"
#include "adrec/core/file.h"
#include "adrec/data/import.h"
#include "adrec/data/import_test_util.h"

namespace adrec::data {
namespace {

const std::filesystem::path kSchemas = std::filesystem::path(adrec::build_paths::SourceDir()) / "configs" / "schemas";

std::string Cat(const Column* c, size_t row) { return c->vocab->Name(c->u32[row]); }

TEST(ImportCsvTest, ExampleSchemaWithQuotingChineseIsoTimesAndFeatures) {
  ScopedTempDir tmp("csv");
  auto path = tmp.path() / "clicks.csv";
  ASSERT_TRUE(AtomicWriteFile(path,
                              "user_id,ad_id,event_time,event,price,placement,slot,device,city,bid\n"
                              "u1,ad42,2024-05-01T12:30:00+08:00,imp,,feed,3,android,深圳,1.25\n"
                              "u1,ad42,2024-05-01T04:30:05Z,clk,,feed,3,android,深圳,1.25\n"
                              "u2,\"ad,7\",2024-05-01 00:00:00,dl,0.99,search,,ios,\"北京 \"\"朝阳\"\"\",\n"
                              "u1,ad1,2024-04-30,conv,12.5,feed,0,,,2\n")
                  .ok());
  auto ds = ImportCsv(Opts(path, kSchemas / "ad_clicks_csv.toml"));
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->info.name, "ad-clicks");
  EXPECT_EQ(ds->info.source_format, "csv");
  EXPECT_EQ(ds->info.provenance, "csv: clicks.csv (schema ad_clicks_csv.toml)");
  ASSERT_EQ(ds->num_events(), 4u);
  EXPECT_EQ(ds->scenes, (std::vector<std::string>{"default", "feed", "search"}));
  auto [b, e] = ds->UserRange(*ds->users.Find("u1"));
  ASSERT_EQ(e - b, 3u);
  // Sorted by time: conversion (Apr 30), impression (12:30+08 = 04:30Z), click (04:30:05Z).
  EXPECT_EQ(ds->events.action[b], uint8_t(Action::kConversion));
  EXPECT_EQ(ds->events.time[b], 1714435200u);
  EXPECT_EQ(ds->events.value[b], 12.5f);
  EXPECT_EQ(ds->events.action[b + 1], uint8_t(Action::kImpression));
  EXPECT_EQ(ds->events.time[b + 1], 1714537800u);
  EXPECT_EQ(ds->events.position[b + 1], 3);
  EXPECT_EQ(ds->scenes[ds->events.scene[b + 1]], "feed");
  EXPECT_EQ(ds->events.action[b + 2], uint8_t(Action::kClick));
  EXPECT_EQ(ds->events.time[b + 2], 1714537805u);
  // Event features follow the sort.
  const Column* device = ds->event_table.Find("device");
  const Column* city = ds->event_table.Find("city");
  const Column* bid = ds->event_table.Find("bid_cpm");
  ASSERT_TRUE(device && city && bid);
  EXPECT_EQ(Cat(device, b), "");  // missing
  EXPECT_EQ(Cat(device, b + 1), "android");
  EXPECT_EQ(Cat(city, b + 1), "深圳");
  EXPECT_EQ(bid->f32[b], 2.f);
  uint64_t u2 = ds->UserRange(*ds->users.Find("u2")).first;
  EXPECT_EQ(ds->items.Name(ds->events.item[u2]), "ad,7");
  EXPECT_EQ(Cat(city, u2), "北京 \"朝阳\"");
  EXPECT_EQ(ds->events.action[u2], uint8_t(Action::kDownload));
  EXPECT_EQ(ds->events.value[u2], 0.99f);
  EXPECT_EQ(bid->f32[u2], 0.f);
}

TEST(ImportCsvTest, HeaderlessTsvWithoutTimeUsesLineNumbers) {
  std::string schema =
      "[csv]\ndelimiter = \"\\t\"\nheader = false\nquote = \"\"\ncolumns = [\"u\", \"i\", \"n\"]\n"
      "[fields]\nuser = \"u\"\nitem = \"i\"\ndefault_action = \"view\"\n"
      "[[features]]\ncolumn = \"n\"\ntype = \"int\"\n";
  auto ds = ImportCsvFromBuffer("a\t\"x\t7\nb\ty\t8\na\tz\t\n", schema, Opts("v.tsv", ""));
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->items.Name(0), "\"x");  // quoting off: quotes are data
  EXPECT_EQ(ds->events.action[0], uint8_t(Action::kView));
  EXPECT_EQ(ds->events.time[1], 3u);
  EXPECT_EQ(ds->event_table.Find("n")->u32, (std::vector<uint32_t>{7, 0, 8}));
}

TEST(ImportCsvTest, MalformedRowsAndSchemaErrors) {
  std::string schema =
      "[fields]\nuser = \"u\"\nitem = \"i\"\ntime = \"t\"\naction = \"a\"\n[actions]\nimp = \"impression\"\n";
  std::string text = "u,i,t,a\n1,2,100,imp\n1,2,abc,imp\n1,2,100,clk\n1,,100,imp\n1,2\n1,2,99999999999,imp\n\xff,2,1,imp\n";
  auto ds = ImportCsvFromBuffer(text, schema, Opts("l.csv", ""));
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("l.csv:3: time 'abc' is not a valid unix time"), std::string::npos)
      << ds.status().message();
  ds = ImportCsvFromBuffer(text, schema, Opts("l.csv", "", 6));
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->info.malformed_rows, 6u);
  EXPECT_EQ(ds->num_events(), 1u);
  // Schema problems are errors naming the key or column.
  auto bad = ImportCsvFromBuffer(text, schema + "typo = 1\n", Opts("l.csv", ""));
  EXPECT_NE(bad.status().message().find("typo"), std::string::npos) << bad.status().message();
  bad = ImportCsvFromBuffer(text, "[fields]\nuser = \"u\"\nitem = \"nope\"\n", Opts("l.csv", ""));
  EXPECT_NE(bad.status().message().find("column 'nope'"), std::string::npos) << bad.status().message();
  bad = ImportCsvFromBuffer(text, "[fields]\nuser = \"u\"\n", Opts("l.csv", ""));
  EXPECT_FALSE(bad.ok());
  bad = ImportCsvFromBuffer("", "[fields]\nuser = \"u\"\nitem = \"i\"\n", Opts("l.csv", ""));
  EXPECT_FALSE(bad.ok());
  bad = ImportCsvFromBuffer("u,i\n", "[fields]\nuser = \"u\"\nitem = \"i\"\n", Opts("l.csv", ""));
  EXPECT_NE(bad.status().message().find("no events"), std::string::npos);
}

TEST(ImportJsonlTest, ExampleSchemaWithChineseEscapesAndNumbers) {
  ScopedTempDir tmp("jsonl");
  auto path = tmp.path() / "events.jsonl";
  ASSERT_TRUE(AtomicWriteFile(path,
                              "{\"uid\": \"u1\", \"ad\": 42, \"ts\": 1714537800, \"type\": \"click\", \"scene\": "
                              "\"search\", \"query\": \"王者荣耀\", \"extra\": {\"x\": [1, 2]}}\n"
                              "\n"
                              "{\"uid\": \"u1\", \"ad\": \"42\", \"ts\": 1714537700.5, \"type\": \"impression\", "
                              "\"query\": \"\\u7f8e\\u56e2\", \"dwell_ms\": 1500, \"scene\": null}\n")
                  .ok());
  auto ds = ImportJsonl(Opts(path, kSchemas / "ad_clicks_jsonl.toml"));
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->info.name, "jsonl-events");
  ASSERT_EQ(ds->num_events(), 2u);
  EXPECT_EQ(ds->num_items(), 1u);  // 42 and "42" name the same item
  EXPECT_EQ(ds->events.time[0], 1714537700u);
  EXPECT_EQ(ds->events.action[0], uint8_t(Action::kImpression));
  EXPECT_EQ(ds->scenes[ds->events.scene[0]], "default");
  EXPECT_EQ(ds->scenes[ds->events.scene[1]], "search");
  const Column* q = ds->event_table.Find("query");
  EXPECT_EQ(Cat(q, 0), "美团");
  EXPECT_EQ(Cat(q, 1), "王者荣耀");
  EXPECT_EQ(ds->event_table.Find("dwell_ms")->u32, (std::vector<uint32_t>{1500, 0}));
}

TEST(ImportJsonlTest, MalformedLines) {
  std::string schema = "format = \"jsonl\"\n[fields]\nuser = \"u\"\nitem = \"i\"\nvalue = \"v\"\n";
  std::string text =
      "{\"u\": 1, \"i\": 2, \"v\": 0.5}\n"
      "{\"u\": 1, \"i\": \n"
      "[1, 2]\n"
      "{\"u\": {\"a\": 1}, \"i\": 2}\n"
      "{\"u\": 1, \"i\": 2, \"v\": \"x\"}\n"
      "\"just a string\"\n"
      "{\"i\": 3}\n";
  auto ds = ImportJsonlFromBuffer(text, schema, Opts("e.jsonl", ""));
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("e.jsonl:2: invalid JSON"), std::string::npos) << ds.status().message();
  ds = ImportJsonlFromBuffer(text, schema, Opts("e.jsonl", "", 6));
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->info.malformed_rows, 6u);
  EXPECT_EQ(ds->events.value[0], 0.5f);
  EXPECT_FALSE(ImportJsonlFromBuffer(text, "format = \"csv\"\n[fields]\nuser = \"u\"\nitem = \"i\"\n", Opts("e", "")).ok());
}

}  // namespace
}  // namespace adrec::data

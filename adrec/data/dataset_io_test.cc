#include "adrec/data/dataset_io.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "adrec/core/file.h"
#include "adrec/core/hash.h"
#include "adrec/core/thread_pool.h"
#include "adrec/data/column_file.h"

namespace adrec::data {
namespace {
namespace fs = std::filesystem;

struct Shape {
  bool truth = true;
  bool event_table = true;
  bool taxonomy = true;
};

// A small dataset with every column type, Chinese and empty strings, unsorted input.
Dataset FullDataset(Shape shape = {}) {
  DatasetBuilder b({.name = "full", .source_format = "test", .provenance = "dataset_io_test \"quoted\"\n",
                    .with_truth = shape.truth});
  uint8_t feed = b.SceneId("feed"), search = b.SceneId("搜索");
  uint32_t u0 = b.UserId("alice"), u1 = b.UserId("用户二"), u2 = b.UserId("");
  uint32_t i0 = b.ItemId("ad0"), i1 = b.ItemId("广告1"), i2 = b.ItemId("ad2");
  if (shape.event_table) {
    b.event_table().Add("f_cat", ColumnType::kCategorical);
    b.event_table().Add("f_sparse", ColumnType::kSparseVector);
    b.event_table().Add("f_u32", ColumnType::kUInt32);
  }
  struct E {
    uint32_t u, i;
    int64_t t;
    uint8_t s;
    Action a;
  };
  std::vector<E> events = {{u1, i1, 500, search, Action::kImpression}, {u0, i0, 100, feed, Action::kImpression},
                           {u0, i0, 101, feed, Action::kClick},        {u2, i2, 7, feed, Action::kConversion},
                           {u0, i1, 50, search, Action::kImpression},  {u1, i0, 500, feed, Action::kDownload}};
  for (size_t k = 0; k < events.size(); ++k) {
    const E& e = events[k];
    EXPECT_TRUE(b.AddEvent({.user = e.u, .item = e.i, .timestamp = e.t, .scene = e.s, .position = uint8_t(k),
                            .action = e.a, .value = 0.5f * k, .truth = 0.01f * k})
                    .ok());
    if (shape.event_table) {
      auto& t = b.event_table();
      t.columns[0].PushCategorical(k % 2 ? "odd" : "偶数");
      std::vector<uint32_t> idx(k % 3);
      std::vector<float> val(k % 3);
      for (size_t j = 0; j < idx.size(); ++j) idx[j] = uint32_t(10 * k + j), val[j] = 1.f / float(j + 1);
      t.columns[1].PushSparse(idx, val);
      t.columns[2].PushU32(uint32_t(k * 1000));
    }
  }
  auto& it = b.item_table();
  auto& title = it.Add(std::string(cols::kTitle), ColumnType::kString);
  title.PushString("王者荣耀 5v5");
  title.PushString("");
  title.PushString("Meituan \"food\"\n\t");
  auto& adv = it.Add(std::string(cols::kAdvertiser), ColumnType::kCategorical);
  adv.PushCategorical("腾讯");
  adv.PushCategorical("");
  adv.PushCategorical("meituan");
  auto& cat1 = it.Add(std::string(cols::kCategory1), ColumnType::kUInt32);
  cat1.PushU32(1);
  cat1.PushU32(0);
  cat1.PushU32(2);
  auto& bid = it.Add(std::string(cols::kBid), ColumnType::kFloat32);
  bid.PushFloat(1.25f);
  bid.PushFloat(-0.f);
  bid.PushFloat(3e9f);
  auto& tags = it.Add(std::string(cols::kTags), ColumnType::kCategoricalList);
  std::vector<std::string_view> t0 = {"moba", "游戏"}, t1 = {}, t2 = {"food"};
  tags.PushCategoricalList(t0);
  tags.PushCategoricalList(t1);
  tags.PushCategoricalList(t2);
  auto& feats = it.Add("features", ColumnType::kSparseVector);
  std::vector<uint32_t> fi = {3, 7};
  std::vector<float> fv = {0.5f, -2.f};
  feats.PushSparse(fi, fv);
  // Item 1 and 2 get default (empty) rows: padding at Finish().
  auto& age = b.user_table().Add(std::string(cols::kAge), ColumnType::kCategorical);
  age.PushCategorical("25-34");
  auto& region = b.user_table().Add(std::string(cols::kRegion), ColumnType::kString);
  region.PushString("北京");
  region.PushString("");
  region.PushString("");
  if (shape.taxonomy) {
    uint32_t g = b.taxonomy().Add(0, "games", "游戏");
    uint32_t m = b.taxonomy().Add(g, "MOBA", "");
    b.taxonomy().Add(m, "5v5 arena", "5v5");
    b.taxonomy().Add(0, "lifestyle", "生活");
  }
  b.info().created_utc = "2025-01-02T03:04:05Z";
  b.info().malformed_rows = 3;
  b.info().truncated = 1;
  auto ds = std::move(b).Finish();
  EXPECT_TRUE(ds.ok()) << ds.status().ToString();
  return std::move(ds).value();
}

void ExpectSameColumn(const Column& a, const Column& b) {
  SCOPED_TRACE("column " + a.name);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.u32, b.u32);
  EXPECT_EQ(a.str, b.str);
  EXPECT_EQ(a.offsets, b.offsets);
  ASSERT_EQ(a.f32.size(), b.f32.size());
  // Bitwise: -0.f survives. (memcmp of empty vectors' null data is undefined, so only when non-empty.)
  if (!a.f32.empty()) {
    EXPECT_EQ(0, std::memcmp(a.f32.data(), b.f32.data(), a.f32.size() * 4));
  }
  ASSERT_EQ(static_cast<bool>(a.vocab), static_cast<bool>(b.vocab));
  if (a.vocab) {
    EXPECT_EQ(a.vocab->names(), b.vocab->names());
    for (uint32_t k = 0; k < b.vocab->size(); ++k) EXPECT_EQ(b.vocab->Find(b.vocab->Name(k)), k);
  }
}

void ExpectSameTable(const Table& a, const Table& b) {
  ASSERT_EQ(a.columns.size(), b.columns.size());
  for (size_t i = 0; i < a.columns.size(); ++i) ExpectSameColumn(a.columns[i], b.columns[i]);
}

void ExpectSameDataset(const Dataset& a, const Dataset& b) {
  EXPECT_EQ(a.info.name, b.info.name);
  EXPECT_EQ(a.info.source_format, b.info.source_format);
  EXPECT_EQ(a.info.provenance, b.info.provenance);
  EXPECT_EQ(a.info.created_utc, b.info.created_utc);
  EXPECT_EQ(a.info.malformed_rows, b.info.malformed_rows);
  EXPECT_EQ(a.info.truncated, b.info.truncated);
  EXPECT_EQ(a.users.names(), b.users.names());
  EXPECT_EQ(a.items.names(), b.items.names());
  for (uint32_t u = 0; u < b.num_users(); ++u) EXPECT_EQ(b.users.Find(b.users.Name(u)), u);
  EXPECT_EQ(a.scenes, b.scenes);
  EXPECT_EQ(a.events.user, b.events.user);
  EXPECT_EQ(a.events.item, b.events.item);
  EXPECT_EQ(a.events.time, b.events.time);
  EXPECT_EQ(a.events.scene, b.events.scene);
  EXPECT_EQ(a.events.position, b.events.position);
  EXPECT_EQ(a.events.action, b.events.action);
  EXPECT_EQ(a.events.value, b.events.value);
  EXPECT_EQ(a.events.truth, b.events.truth);
  EXPECT_EQ(a.user_offsets, b.user_offsets);
  ExpectSameTable(a.user_table, b.user_table);
  ExpectSameTable(a.item_table, b.item_table);
  ExpectSameTable(a.event_table, b.event_table);
  ASSERT_EQ(a.taxonomy.nodes.size(), b.taxonomy.nodes.size());
  for (size_t i = 0; i < a.taxonomy.nodes.size(); ++i) {
    EXPECT_EQ(a.taxonomy.nodes[i].parent, b.taxonomy.nodes[i].parent);
    EXPECT_EQ(a.taxonomy.nodes[i].level, b.taxonomy.nodes[i].level);
    EXPECT_EQ(a.taxonomy.nodes[i].name_en, b.taxonomy.nodes[i].name_en);
    EXPECT_EQ(a.taxonomy.nodes[i].name_zh, b.taxonomy.nodes[i].name_zh);
  }
}

std::string Slurp(const fs::path& p) {
  auto s = ReadFile(p);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? *s : "";
}

// Plain write, no fsync: these tests rewrite files thousands of times.
void Spit(const fs::path& p, std::string_view data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  ASSERT_TRUE(out.good()) << p;
}

using Files = std::map<std::string, std::string, std::less<>>;

Files LoadDir(const fs::path& dir) {
  Files f;
  for (const auto& e : fs::directory_iterator(dir)) f[e.path().filename().string()] = Slurp(e.path());
  return f;
}

class DatasetIoTest : public ::testing::Test {
 protected:
  ScopedTempDir tmp_{"adrec-dataset-io"};
  fs::path Dir(std::string_view name = "ds") const { return tmp_.path() / name; }
};

TEST_F(DatasetIoTest, RoundTripEveryColumnType) {
  Dataset ds = FullDataset();
  ASSERT_TRUE(ds.has_truth());
  ASSERT_EQ(ds.event_table.columns.size(), 3u);
  ASSERT_TRUE(WriteDataset(ds, Dir()).ok());
  for (int threads : {1, 4, 0}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    auto back = ReadDataset(Dir(), {.threads = threads});
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    ExpectSameDataset(ds, *back);
  }
  for (auto f : {"dataset.toml", "events.bin", "users.bin", "items.bin", "event_features.bin", "taxonomy.bin"}) {
    EXPECT_TRUE(fs::exists(Dir() / f)) << f;
  }
  // No staging directory is left beside the output.
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(tmp_.path())) ++entries;
  EXPECT_EQ(entries, 1u);
}

TEST_F(DatasetIoTest, RoundTripWithoutTruthEventTableOrTaxonomy) {
  Dataset ds = FullDataset({.truth = false, .event_table = false, .taxonomy = false});
  ASSERT_FALSE(ds.has_truth());
  ASSERT_TRUE(WriteDataset(ds, Dir()).ok());
  EXPECT_FALSE(fs::exists(Dir() / "event_features.bin"));
  EXPECT_FALSE(fs::exists(Dir() / "taxonomy.bin"));
  auto back = ReadDataset(Dir());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSameDataset(ds, *back);
  EXPECT_FALSE(back->has_truth());
  EXPECT_TRUE(back->event_table.columns.empty());
}

TEST_F(DatasetIoTest, SummaryReadsOnlyTheManifest) {
  Dataset ds = FullDataset();
  ASSERT_TRUE(WriteDataset(ds, Dir()).ok());
  fs::remove(Dir() / "events.bin");  // the summary must not need it
  auto s = ReadDatasetSummary(Dir());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->format_version, kDatasetFormatVersion);
  EXPECT_EQ(s->users, 3u);
  EXPECT_EQ(s->items, 3u);
  EXPECT_EQ(s->events, 6u);
  EXPECT_EQ(s->scenes, (std::vector<std::string>{"feed", "搜索"}));
  EXPECT_TRUE(s->has_truth);
  EXPECT_EQ(s->taxonomy_nodes, 5u);
  EXPECT_EQ(s->item_columns.size(), 6u);
  EXPECT_EQ(s->event_columns, (std::vector<std::string>{"f_cat", "f_sparse", "f_u32"}));
  EXPECT_EQ(s->files.size(), 5u);
  auto info = ReadDatasetInfo(Dir());
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->name, "full");
  EXPECT_EQ(info->provenance, ds.info.provenance);
  EXPECT_EQ(info->malformed_rows, 3u);
  EXPECT_EQ(info->truncated, 1u);
  auto full = ReadDataset(Dir());
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.status().code(), StatusCode::kNotFound);
  EXPECT_NE(full.status().message().find("events.bin"), std::string::npos) << full.status().message();
}

TEST_F(DatasetIoTest, FillsCreatedTimeWhenEmpty) {
  Dataset ds = FullDataset();
  ds.info.created_utc.clear();
  ASSERT_TRUE(WriteDataset(ds, Dir()).ok());
  auto info = ReadDatasetInfo(Dir());
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->created_utc.size(), 20u) << info->created_utc;  // 2025-01-02T03:04:05Z
  EXPECT_EQ(info->created_utc.back(), 'Z');
}

TEST_F(DatasetIoTest, SecondWriteWithoutOverwriteFailsAndKeepsTheFirst) {
  Dataset first = FullDataset();
  ASSERT_TRUE(WriteDataset(first, Dir()).ok());
  Dataset second = FullDataset({.truth = false, .event_table = false, .taxonomy = false});
  second.info.name = "second";
  Status s = WriteDataset(second, Dir());
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists) << s.ToString();
  auto back = ReadDataset(Dir());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSameDataset(first, *back);
  ASSERT_TRUE(WriteDataset(second, Dir(), {.overwrite = true}).ok());
  back = ReadDataset(Dir());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSameDataset(second, *back);
  EXPECT_FALSE(fs::exists(Dir() / "taxonomy.bin"));  // the old directory's files are gone
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(tmp_.path())) ++entries;
  EXPECT_EQ(entries, 1u);
}

TEST_F(DatasetIoTest, FailedWriteLeavesNothingBehind) {
  Dataset ds = FullDataset();
  // The target is a regular file: the commit fails after every column file was written.
  ASSERT_TRUE(AtomicWriteFile(Dir("taken"), "not a directory").ok());
  Status s = WriteDataset(ds, Dir("taken"), {.overwrite = true});
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(Slurp(Dir("taken")), "not a directory");
  // An invalid dataset is refused before anything is created.
  Dataset bad = FullDataset();
  bad.events.item[0] = 99;
  s = WriteDataset(bad, Dir("bad"));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_FALSE(fs::exists(Dir("bad")));
  EXPECT_EQ(WriteDataset(ds, Dir("lvl"), {.zstd_level = 99}).code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(Dir("lvl")));
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(tmp_.path())) left.push_back(e.path().filename().string());
  EXPECT_EQ(left, std::vector<std::string>{"taken"});
}

TEST_F(DatasetIoTest, RefusesNamesTheManifestCannotHold) {
  Dataset ds = FullDataset();
  ds.scenes[0] = "bad\xff";
  EXPECT_EQ(WriteDataset(ds, Dir()).code(), StatusCode::kInvalidArgument);
  ds = FullDataset();
  ds.item_table.columns[1].name = ds.item_table.columns[0].name;
  EXPECT_EQ(WriteDataset(ds, Dir()).code(), StatusCode::kInvalidArgument);
  ds = FullDataset();
  ds.info.provenance = "path/\xff\xfe/x";  // descriptive text is kept readable instead
  ASSERT_TRUE(WriteDataset(ds, Dir()).ok());
  auto info = ReadDatasetInfo(Dir());
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->provenance, "path/\xEF\xBF\xBD\xEF\xBF\xBD/x");
}

TEST_F(DatasetIoTest, MissingDirectoryAndFilesAreNotFound) {
  auto r = ReadDataset(Dir("nowhere"));
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(WriteDataset(FullDataset(), Dir()).ok());
  for (auto f : {"dataset.toml", "events.bin", "users.bin", "items.bin", "event_features.bin", "taxonomy.bin"}) {
    SCOPED_TRACE(f);
    std::string keep = Slurp(Dir() / f);
    fs::remove(Dir() / f);
    auto back = ReadDataset(Dir());
    ASSERT_FALSE(back.ok());
    EXPECT_EQ(back.status().code(), StatusCode::kNotFound);
    EXPECT_NE(back.status().message().find(f), std::string::npos) << back.status().message();
    Spit(Dir() / f, keep);
  }
  EXPECT_TRUE(ReadDataset(Dir()).ok());
}

constexpr const char* kBinaryFiles[] = {"events.bin", "users.bin", "items.bin", "event_features.bin", "taxonomy.bin"};

TEST_F(DatasetIoTest, TruncatedFilesAreDataLossNamingTheFile) {
  ASSERT_TRUE(WriteDataset(FullDataset(), Dir()).ok());
  for (auto f : kBinaryFiles) {
    std::string keep = Slurp(Dir() / f);
    const size_t n = keep.size();
    for (size_t len : {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{31}, size_t{32}, size_t{33}, size_t{100},
                       n / 2, n - 33, n - 32, n - 9, n - 1}) {
      SCOPED_TRACE(std::string(f) + " truncated to " + std::to_string(len));
      Spit(Dir() / f, keep.substr(0, len));
      auto back = ReadDataset(Dir());
      ASSERT_FALSE(back.ok());
      EXPECT_EQ(back.status().code(), StatusCode::kDataLoss) << back.status().ToString();
      EXPECT_NE(back.status().message().find(f), std::string::npos) << back.status().message();
    }
    // Bytes appended after the trailer are caught too.
    Spit(Dir() / f, keep + "x");
    EXPECT_EQ(ReadDataset(Dir()).status().code(), StatusCode::kDataLoss);
    Spit(Dir() / f, keep);
  }
  EXPECT_TRUE(ReadDataset(Dir()).ok());
}

TEST_F(DatasetIoTest, FlippedBytesOnDiskAreDataLossNamingTheFile) {
  ASSERT_TRUE(WriteDataset(FullDataset(), Dir()).ok());
  for (auto f : kBinaryFiles) {
    std::string keep = Slurp(Dir() / f);
    const size_t n = keep.size();
    for (size_t off : {size_t{0}, size_t{9}, size_t{13}, size_t{17}, size_t{20}, size_t{25}, size_t{32}, size_t{40},
                       size_t{60}, size_t{90}, size_t{120}, n / 3, n / 2, n - 40, n - 30, n - 20, n - 12, n - 1}) {
      SCOPED_TRACE(std::string(f) + " byte " + std::to_string(off));
      std::string bad = keep;
      bad[off] ^= 0x20;
      Spit(Dir() / f, bad);
      auto back = ReadDataset(Dir());
      ASSERT_FALSE(back.ok());
      EXPECT_EQ(back.status().code(), StatusCode::kDataLoss) << back.status().ToString();
      EXPECT_NE(back.status().message().find(f), std::string::npos) << back.status().message();
    }
    Spit(Dir() / f, keep);
  }
}

// Every single byte of every binary file, through the in-memory reader (fast, no disk).
TEST_F(DatasetIoTest, EveryFlippedByteIsDetected) {
  ASSERT_TRUE(WriteDataset(FullDataset(), Dir()).ok());
  const Files files = LoadDir(Dir());
  ASSERT_TRUE(internal::DecodeDatasetFiles(files, "d", {.threads = 1}).ok());
  size_t checked = 0;
  for (auto f : kBinaryFiles) {
    const std::string& orig = files.at(f);
    for (size_t off = 0; off < orig.size(); ++off) {
      for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}}) {
        Files bad = files;
        bad[f][off] = static_cast<char>(bad[f][off] ^ mask);
        auto r = internal::DecodeDatasetFiles(bad, "d", {.threads = 1});
        ASSERT_FALSE(r.ok()) << f << " byte " << off;
        ASSERT_NE(r.status().message().find(f), std::string::npos) << r.status().message();
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 2000u);
}

// With checksums off the structural checks and Validate() still stop every flip from crashing;
// most are still caught.
TEST_F(DatasetIoTest, FlippedBytesWithoutChecksumsNeverCrash) {
  ASSERT_TRUE(WriteDataset(FullDataset(), Dir()).ok());
  const Files files = LoadDir(Dir());
  for (auto f : kBinaryFiles) {
    const std::string& orig = files.at(f);
    for (size_t off = 0; off < orig.size(); ++off) {
      Files bad = files;
      bad[f][off] = static_cast<char>(bad[f][off] ^ 0xFF);
      auto r = internal::DecodeDatasetFiles(bad, "d", {.threads = 1}, /*verify_checksums=*/false);
      if (!r.ok()) {
        EXPECT_FALSE(r.status().message().empty());
      }
    }
  }
}

void RewriteHeaderHash(std::string& bytes) {
  uint64_t h = Hash64(bytes.data(), 24);
  std::memcpy(bytes.data() + 24, &h, 8);
}

TEST_F(DatasetIoTest, WrongMagicAndFutureVersion) {
  ASSERT_TRUE(WriteDataset(FullDataset(), Dir()).ok());
  for (auto f : kBinaryFiles) {
    SCOPED_TRACE(f);
    std::string keep = Slurp(Dir() / f);
    std::string bad = keep;
    std::memcpy(bad.data(), "PARQUET1", 8);
    Spit(Dir() / f, bad);
    auto r = ReadDataset(Dir());
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(r.status().message().find(f), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("magic"), std::string::npos) << r.status().message();

    bad = keep;
    uint32_t v = kColumnFileVersion + 1;
    std::memcpy(bad.data() + 8, &v, 4);
    RewriteHeaderHash(bad);
    Spit(Dir() / f, bad);
    r = ReadDataset(Dir());
    EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << r.status().ToString();
    EXPECT_NE(r.status().message().find(f), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("version 2"), std::string::npos) << r.status().message();
    Spit(Dir() / f, keep);
  }
  // One file renamed over another is caught by the file kind in the header.
  std::string keep = Slurp(Dir() / "items.bin");
  Spit(Dir() / "items.bin", Slurp(Dir() / "users.bin"));
  auto r = ReadDataset(Dir());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("items.bin"), std::string::npos) << r.status().message();
  Spit(Dir() / "items.bin", keep);
  EXPECT_TRUE(ReadDataset(Dir()).ok());
}

TEST_F(DatasetIoTest, ManifestErrorsNameTheFile) {
  ASSERT_TRUE(WriteDataset(FullDataset(), Dir()).ok());
  const fs::path toml = Dir() / "dataset.toml";
  const std::string keep = Slurp(toml);
  auto expect_error = [&](std::string text, StatusCode code, std::string_view needle, bool manifest_only = true) {
    SCOPED_TRACE(std::string(needle));
    Spit(toml, text);
    auto r = ReadDataset(Dir());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), code) << r.status().ToString();
    EXPECT_NE(r.status().message().find("dataset.toml"), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
    if (manifest_only) {
      EXPECT_FALSE(ReadDatasetInfo(Dir()).ok());
    }
  };
  auto replace = [&](std::string_view from, std::string_view to) {
    std::string t = keep;
    size_t p = t.find(from);
    EXPECT_NE(p, std::string::npos) << from;
    return t.replace(p, from.size(), to);
  };
  expect_error(keep + "surprise = 1\n", StatusCode::kDataLoss, "surprise");
  expect_error(replace("truncated = 1\n", ""), StatusCode::kDataLoss, "truncated");
  expect_error(replace("format_version = 1", "format_version = 2"), StatusCode::kFailedPrecondition, "version 2");
  expect_error(replace("events = 6", "events = 7"), StatusCode::kDataLoss, "events.bin", false);
  expect_error(replace("users = 3", "users = 2"), StatusCode::kDataLoss, "rows", false);
  expect_error(replace("name = \"events.bin\"", "name = \"../events.bin\""), StatusCode::kDataLoss, "events.bin");
  expect_error(replace("\"f_cat\"", "\"f_dog\""), StatusCode::kDataLoss, "event_features.bin");
  expect_error(keep.substr(0, keep.size() / 2), StatusCode::kDataLoss, "dataset.toml");
  expect_error("", StatusCode::kDataLoss, "format_version");
  Spit(toml, keep);
  EXPECT_TRUE(ReadDataset(Dir()).ok());
}

// Checksum-valid files whose contents break the dataset's invariants are still refused.
TEST_F(DatasetIoTest, ValidateRunsAfterDecoding) {
  Dataset ds = FullDataset({.truth = false, .event_table = false, .taxonomy = false});
  ASSERT_TRUE(WriteDataset(ds, Dir()).ok());
  const std::string keep = Slurp(Dir() / "events.bin");
  auto rewrite_events = [&](const EventColumns& ev, const std::vector<uint64_t>& offsets) {
    ColumnFileWriter w(FileKind::kEvents, 1);
    w.AddU64("user_offsets", offsets);
    w.AddU32("item", ev.item);
    w.AddU32("time", ev.time);
    w.AddU8("scene", ev.scene);
    w.AddU8("position", ev.position);
    w.AddU8("action", ev.action);
    w.AddF32("value", ev.value);
    auto bytes = std::move(w).Finish(nullptr);
    ASSERT_TRUE(bytes.ok());
    Spit(Dir() / "events.bin", *bytes);
  };
  EventColumns ev = ds.events;
  ev.item[2] = 3;  // one past the last item
  rewrite_events(ev, ds.user_offsets);
  auto r = ReadDataset(Dir());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("item ID out of range"), std::string::npos) << r.status().message();
  EXPECT_TRUE(ReadDataset(Dir(), {.validate = false}).ok());  // decoding itself was fine

  ev = ds.events;
  std::swap(ev.time[0], ev.time[1]);  // alice's events out of time order
  ASSERT_LT(ev.time[1], ev.time[0]);
  rewrite_events(ev, ds.user_offsets);
  r = ReadDataset(Dir());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("not sorted by time"), std::string::npos) << r.status().message();

  std::vector<uint64_t> offsets = ds.user_offsets;
  offsets[1] = 100;  // runs past the events
  rewrite_events(ds.events, offsets);
  r = ReadDataset(Dir());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);

  ev = ds.events;
  ev.scene[0] = 9;
  rewrite_events(ev, ds.user_offsets);
  EXPECT_EQ(ReadDataset(Dir()).status().code(), StatusCode::kDataLoss);
  Spit(Dir() / "events.bin", keep);
  EXPECT_TRUE(ReadDataset(Dir()).ok());
}

// ------------------------------------------------------------------------------- column file

TEST(ColumnFileTest, RoundTripEveryBlockType) {
  std::vector<uint8_t> u8 = {1, 2, 255};
  std::vector<uint32_t> u32 = {0, 7, UINT32_MAX};
  std::vector<uint64_t> u64 = {0, uint64_t{1} << 40};
  std::vector<float> f32 = {1.5f, -0.f};
  std::vector<std::string> strs = {"", "中文", std::string("a\0b", 3)};
  Column cat = MakeColumn("cat", ColumnType::kCategorical);
  cat.PushCategorical("x");
  cat.PushCategorical("");
  Column empty_list = MakeColumn("list", ColumnType::kCategoricalList);
  ColumnFileWriter w(FileKind::kTaxonomy, 3);
  w.AddU8("a", u8);
  w.AddU32("b", u32);
  w.AddU64("c", u64);
  w.AddF32("d", f32);
  w.AddStrings("e", strs);
  w.AddColumn(cat);
  w.AddColumn(empty_list);
  ASSERT_EQ(w.Blocks().size(), 7u);
  EXPECT_EQ(w.Blocks()[5].type, BlockType::kCategorical);
  auto bytes = std::move(w).Finish(nullptr);
  ASSERT_TRUE(bytes.ok());
  auto index = ParseColumnFile(*bytes, FileKind::kTaxonomy, "t.bin");
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  ASSERT_EQ(index->blocks.size(), 7u);
  std::vector<uint8_t> a;
  std::vector<uint32_t> b;
  std::vector<uint64_t> c;
  std::vector<float> d;
  std::vector<std::string> e;
  Column f, g;
  ASSERT_TRUE(DecodeU8(index->blocks[0], "t.bin", &a).ok());
  ASSERT_TRUE(DecodeU32(index->blocks[1], "t.bin", &b).ok());
  ASSERT_TRUE(DecodeU64(index->blocks[2], "t.bin", &c).ok());
  ASSERT_TRUE(DecodeF32(index->blocks[3], "t.bin", &d).ok());
  ASSERT_TRUE(DecodeStrings(index->blocks[4], "t.bin", &e).ok());
  ASSERT_TRUE(DecodeColumn(index->blocks[5], "t.bin", &f).ok());
  ASSERT_TRUE(DecodeColumn(index->blocks[6], "t.bin", &g).ok());
  EXPECT_EQ(a, u8);
  EXPECT_EQ(b, u32);
  EXPECT_EQ(c, u64);
  EXPECT_EQ(d, f32);
  EXPECT_EQ(e, strs);
  ExpectSameColumn(f, cat);
  ExpectSameColumn(g, empty_list);
  EXPECT_EQ(g.rows(), 0u);
  // A block read as the wrong type is an error naming it, not a reinterpretation.
  Status s = DecodeU32(index->blocks[0], "t.bin", &b);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("t.bin: column 'a'"), std::string::npos) << s.message();
  // Another kind than expected.
  EXPECT_EQ(ParseColumnFile(*bytes, FileKind::kEvents, "t.bin").status().code(), StatusCode::kDataLoss);
}

TEST(ColumnFileTest, InconsistentColumnsAreRejectedBehindValidChecksums) {
  Column list = MakeColumn("tags", ColumnType::kCategoricalList);
  std::vector<std::string_view> v = {"a", "b"};
  list.PushCategoricalList(v);
  list.PushCategoricalList(v);
  Column bad_offsets = list;
  bad_offsets.offsets[1] = 5;  // past the codes
  Column bad_codes = list;
  bad_codes.u32[0] = 77;  // outside the vocabulary
  Column bad_start = list;
  bad_start.offsets[0] = 1;
  for (const Column* c : {&bad_offsets, &bad_codes, &bad_start}) {
    ColumnFileWriter w(FileKind::kItems, 1);
    w.AddColumn(*c);
    auto bytes = std::move(w).Finish(nullptr);
    ASSERT_TRUE(bytes.ok());
    auto index = ParseColumnFile(*bytes, FileKind::kItems, "items.bin");
    ASSERT_TRUE(index.ok()) << index.status().ToString();
    Column out;
    Status s = DecodeColumn(index->blocks[0], "items.bin", &out);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss);
    EXPECT_NE(s.message().find("items.bin: column 'tags'"), std::string::npos) << s.message();
  }
  // Duplicate vocabulary entries, forged through the strings writer.
  std::vector<std::string> names = {"", "x", "x"};
  ColumnFileWriter w(FileKind::kUsers, 1);
  w.AddStrings("ids", names);
  auto bytes = std::move(w).Finish(nullptr);
  ASSERT_TRUE(bytes.ok());
  auto index = ParseColumnFile(*bytes, FileKind::kUsers, "users.bin");
  ASSERT_TRUE(index.ok());
  std::vector<std::string> got;
  ASSERT_TRUE(DecodeStrings(index->blocks[0], "users.bin", &got).ok());
  EXPECT_FALSE(Vocabulary::FromNames(got).ok());
}

// A forged length field (with a matching header checksum) cannot make the reader allocate.
TEST(ColumnFileTest, ForgedLengthsAreRejectedBeforeAllocating) {
  std::vector<uint32_t> v(1000, 7);
  ColumnFileWriter w(FileKind::kEvents, 3);
  w.AddU32("item", v);
  auto good = std::move(w).Finish(nullptr);
  ASSERT_TRUE(good.ok());
  constexpr size_t kBlock = kColumnFileHeaderBytes;
  for (uint64_t rows : {uint64_t{1} << 38, uint64_t{1} << 61, uint64_t{100000}}) {
    SCOPED_TRACE(rows);
    std::string bad = *good;
    uint64_t bytes = rows * 4;
    std::memcpy(bad.data() + kBlock + 16, &rows, 8);
    std::memcpy(bad.data() + kBlock + 24, &bytes, 8);
    std::string name = "item";
    uint64_t hh = Hash64(bad.data() + kBlock, 72, Hash64(name));
    std::memcpy(bad.data() + kBlock + 72, &hh, 8);
    for (bool verify : {true, false}) {
      auto index = ParseColumnFile(bad, FileKind::kEvents, "events.bin", {.verify_checksums = verify});
      if (index.ok()) {
        std::vector<uint32_t> out;
        Status s = DecodeU32(index->blocks[0], "events.bin", &out, {.verify_checksums = verify});
        EXPECT_EQ(s.code(), StatusCode::kDataLoss);
        EXPECT_LT(out.capacity(), 1u << 20);
      } else {
        EXPECT_EQ(index.status().code(), StatusCode::kDataLoss);
        EXPECT_NE(index.status().message().find("events.bin"), std::string::npos);
      }
    }
  }
}

// Columns over 4 MiB are cut into several zstd frames that decode independently (in parallel).
TEST(ColumnFileTest, LargeColumnsSpanSeveralFrames) {
  std::vector<uint32_t> v(3'000'000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint32_t>(i * 2654435761u);
  ThreadPool pool(3);
  ColumnFileWriter w(FileKind::kEvents, 1);
  w.AddU32("item", v);
  auto bytes = std::move(w).Finish(&pool);
  ASSERT_TRUE(bytes.ok());
  auto index = ParseColumnFile(*bytes, FileKind::kEvents, "events.bin");
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  auto frames = VerifyBlockPayload(index->blocks[0], "events.bin");
  ASSERT_TRUE(frames.ok());
  ASSERT_EQ(frames->size(), 3u);  // 12 MB in frames of 4 MiB
  EXPECT_EQ(frames->back().dst_offset + frames->back().dst_bytes, v.size() * 4);
  std::vector<uint32_t> out;
  ASSERT_TRUE(DecodeU32(index->blocks[0], "events.bin", &out).ok());
  EXPECT_EQ(out, v);
  // Frames decode in any order.
  std::vector<uint32_t> by_frame(v.size());
  std::span<std::byte> dst(reinterpret_cast<std::byte*>(by_frame.data()), by_frame.size() * 4);
  for (size_t k = frames->size(); k-- > 0;) {
    const FrameRef& f = (*frames)[k];
    ASSERT_TRUE(DecompressFrame(index->blocks[0], f, dst.subspan(f.dst_offset, f.dst_bytes), "events.bin").ok());
  }
  EXPECT_EQ(by_frame, v);
  // A corrupt byte in the last frame is caught (checksum), and without checksums by zstd or sizes.
  std::string bad = *bytes;
  bad[bad.size() - kColumnFileTrailerBytes - 100] ^= 0x10;
  for (bool verify : {true, false}) {
    auto bad_index = ParseColumnFile(bad, FileKind::kEvents, "events.bin", {.verify_checksums = verify});
    Status st = bad_index.ok() ? DecodeU32(bad_index->blocks[0], "events.bin", &out, {.verify_checksums = verify})
                               : bad_index.status();
    if (verify) {
      EXPECT_EQ(st.code(), StatusCode::kDataLoss);
    }
    // Without checksums a flipped literal byte may decode "fine"; it must never crash.
  }
}

TEST_F(DatasetIoTest, RoundTripOfAMillionEventsOnSeveralThreads) {
  DatasetBuilder b({.name = "big", .source_format = "test", .provenance = "", .with_truth = true});
  for (int u = 0; u < 1000; ++u) b.UserId("u" + std::to_string(u));
  for (int i = 0; i < 500; ++i) b.ItemId("i" + std::to_string(i));
  b.dataset().events.Reserve(1'200'000, true);
  for (uint32_t k = 0; k < 1'200'000; ++k) {
    ASSERT_TRUE(b.AddEvent({.user = k / 1200, .item = (k * 7919) % 500, .timestamp = 1000 + k % 1200,
                            .position = uint8_t(k % 7), .value = float(k % 5), .truth = float(k % 11) / 11.f})
                    .ok());
  }
  auto ds = std::move(b).Finish();
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  ds->info.created_utc = "2025-01-01T00:00:00Z";
  ASSERT_TRUE(WriteDataset(*ds, Dir(), {.threads = 4}).ok());
  for (int threads : {1, 4}) {
    auto back = ReadDataset(Dir(), {.threads = threads});
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    ExpectSameDataset(*ds, *back);
  }
}

TEST(ColumnFileTest, GarbageIsDataLoss) {
  for (std::string_view junk : {std::string_view(""), std::string_view("ADREC"), std::string_view("hello world"),
                                std::string_view("ADRECCOL\x01\x00\x00\x00", 12)}) {
    auto r = ParseColumnFile(junk, FileKind::kEvents, "x.bin");
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(r.status().message().find("x.bin"), std::string::npos);
  }
  EXPECT_FALSE(DecodeColumnFileForTest("", "x.bin").ok());
}

}  // namespace
}  // namespace adrec::data

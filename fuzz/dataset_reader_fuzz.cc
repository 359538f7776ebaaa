// Fuzzes the dataset directory reader: the input replaces one file of a small valid dataset
// (every column type, truth, event table, taxonomy) and the reader must return a Status, never
// crash, read out of bounds or allocate from a corrupt length.
//
// First input byte: low 3 bits pick the file (dataset.toml, events.bin, users.bin, items.bin,
// event_features.bin, taxonomy.bin); bit 0x40 turns checksums off so mutations reach the
// decoders behind them; bit 0x80 goes through the real directory and ReadDataset. The rest of
// the input is the file's content.
//
// ADREC_FUZZ_DUMP_SEEDS=<dir> writes seed inputs (the valid files with their selector byte) and
// exits: regenerate fuzz/corpus/dataset_reader/ with it after a format change.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "adrec/core/file.h"
#include "adrec/data/dataset.h"
#include "adrec/data/dataset_io.h"

namespace {
namespace fs = std::filesystem;
using namespace adrec::data;

constexpr const char* kFiles[] = {"dataset.toml",       "events.bin",  "users.bin", "items.bin",
                                  "event_features.bin", "taxonomy.bin"};
constexpr size_t kNumFiles = sizeof(kFiles) / sizeof(kFiles[0]);

Dataset TinyDataset() {
  DatasetBuilder b({.name = "fuzz", .source_format = "test", .provenance = "dataset_reader_fuzz", .with_truth = true});
  uint8_t feed = b.SceneId("feed"), search = b.SceneId("搜索");
  uint32_t u[3] = {b.UserId("alice"), b.UserId("用户"), b.UserId("")};
  uint32_t it[3] = {b.ItemId("ad0"), b.ItemId("广告"), b.ItemId("ad2")};
  b.event_table().Add("f_cat", ColumnType::kCategorical);
  b.event_table().Add("f_sparse", ColumnType::kSparseVector);
  for (uint32_t k = 0; k < 6; ++k) {
    (void)b.AddEvent({.user = u[(k * 7) % 3], .item = it[k % 3], .timestamp = 100 - k, .scene = k % 2 ? feed : search,
                      .position = uint8_t(k), .action = static_cast<Action>(k % 4), .value = 0.5f * k, .truth = 0.1f});
    b.event_table().columns[0].PushCategorical(k % 2 ? "a" : "乙");
    std::vector<uint32_t> idx(k % 3, k);
    std::vector<float> val(k % 3, 1.f);
    b.event_table().columns[1].PushSparse(idx, val);
  }
  auto& title = b.item_table().Add("title", ColumnType::kString);
  title.PushString("王者荣耀");
  title.PushString("");
  b.item_table().Add("advertiser", ColumnType::kCategorical).PushCategorical("腾讯");
  b.item_table().Add("cat1", ColumnType::kUInt32).PushU32(1);
  b.item_table().Add("bid", ColumnType::kFloat32).PushFloat(1.5f);
  std::vector<std::string_view> tags = {"moba", "游戏"};
  b.item_table().Add("tags", ColumnType::kCategoricalList).PushCategoricalList(tags);
  b.user_table().Add("age", ColumnType::kCategorical).PushCategorical("25-34");
  uint32_t g = b.taxonomy().Add(0, "games", "游戏");
  b.taxonomy().Add(g, "MOBA");
  b.info().created_utc = "2025-01-01T00:00:00Z";
  auto ds = std::move(b).Finish();
  if (!ds.ok()) {
    std::fprintf(stderr, "fuzz setup: %s\n", ds.status().ToString().c_str());
    std::abort();
  }
  return std::move(ds).value();
}

struct State {
  adrec::ScopedTempDir tmp{"adrec-fuzz-dataset"};
  fs::path dir;
  std::map<std::string, std::string, std::less<>> files;
};

std::string Slurp(const fs::path& p) {
  auto s = adrec::ReadFile(p);
  if (!s.ok()) std::abort();
  return *s;
}

void Spit(const fs::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

State& Setup() {
  static State* state = [] {
    auto* s = new State;
    s->dir = s->tmp.path() / "ds";
    adrec::Status st = WriteDataset(TinyDataset(), s->dir, {.threads = 1});
    if (!st.ok()) {
      std::fprintf(stderr, "fuzz setup: %s\n", st.ToString().c_str());
      std::abort();
    }
    for (const char* f : kFiles) s->files[f] = Slurp(s->dir / f);
    return s;
  }();
  return *state;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  State& s = Setup();
  if (const char* out = std::getenv("ADREC_FUZZ_DUMP_SEEDS")) {
    fs::create_directories(out);
    for (size_t i = 0; i < kNumFiles; ++i) {
      std::string seed(1, static_cast<char>(i));
      seed += s.files[kFiles[i]];
      Spit(fs::path(out) / (std::string("valid_") + kFiles[i]), seed);
    }
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  State& s = Setup();
  const size_t which = (data[0] & 7) % kNumFiles;
  const bool verify = (data[0] & 0x40) == 0;
  const bool disk = (data[0] & 0x80) != 0;
  std::string content(reinterpret_cast<const char*>(data + 1), size - 1);
  const char* name = kFiles[which];
  if (disk) {
    Spit(s.dir / name, content);
    auto r = ReadDataset(s.dir, {.threads = 1});
    (void)r;
    Spit(s.dir / name, s.files[name]);
    return 0;
  }
  auto files = s.files;
  files[name] = std::move(content);
  auto r = internal::DecodeDatasetFiles(files, "fuzz", {.threads = 1}, verify);
  // A dataset that decoded must satisfy every invariant: a reader downstream relies on them.
  if (r.ok() && !r->Validate().ok()) std::abort();
  return 0;
}

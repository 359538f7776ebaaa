#include "adrec/data/dataset_io.h"


#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <set>

#include "adrec/core/text.h"
#include "adrec/core/config.h"
#include "adrec/core/file.h"
#include "adrec/core/thread_pool.h"
#include "adrec/data/column_file.h"

namespace adrec::data {
namespace fs = std::filesystem;

namespace {

// The fixed block layouts of the non-table files.
constexpr std::string_view kEventsFile = "events.bin";
constexpr std::string_view kUsersFile = "users.bin";
constexpr std::string_view kItemsFile = "items.bin";
constexpr std::string_view kEventFeaturesFile = "event_features.bin";
constexpr std::string_view kTaxonomyFile = "taxonomy.bin";
constexpr std::string_view kIdsBlock = "ids";

std::vector<BlockEntry> EventBlocks(bool truth) {
  // No "user" column: it is implied by user_offsets and rebuilt on load (4 bytes/event less).
  std::vector<BlockEntry> b = {{"user_offsets", BlockType::kU64}, {"item", BlockType::kU32},
                               {"time", BlockType::kU32},         {"scene", BlockType::kU8},  {"position", BlockType::kU8},
                               {"action", BlockType::kU8},        {"value", BlockType::kF32}};
  if (truth) b.push_back({"truth", BlockType::kF32});
  return b;
}

std::vector<BlockEntry> TaxonomyBlocks() {
  return {{"parent", BlockType::kU32}, {"level", BlockType::kU8}, {"name_en", BlockType::kStrings},
          {"name_zh", BlockType::kStrings}};
}

// ------------------------------------------------------------------------------------ TOML text

std::string TomlString(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7F) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04X", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

std::string TomlStringArray(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + TomlString(v[i]);
  return out + "]";
}


struct TableSchema {
  std::vector<std::string> columns;
  std::vector<ColumnType> types;
};

struct FileSchema {
  std::string name;
  FileKind kind = FileKind::kEvents;
  std::vector<BlockEntry> blocks;
};

struct Manifest {
  DatasetSummary summary;
  TableSchema user, item, event;
  std::vector<FileSchema> files;
};

TableSchema SchemaOf(const Table& t) {
  TableSchema s;
  for (const auto& c : t.columns) {
    s.columns.push_back(c.name);
    s.types.push_back(c.type);
  }
  return s;
}

std::vector<BlockEntry> TableBlocks(const TableSchema& t, bool with_ids) {
  std::vector<BlockEntry> b;
  if (with_ids) b.push_back({std::string(kIdsBlock), BlockType::kStrings});
  for (size_t i = 0; i < t.columns.size(); ++i) b.push_back({t.columns[i], BlockTypeOfColumn(t.types[i])});
  return b;
}

// The files a dataset with this schema has, with the blocks each must hold, in write order.
std::vector<FileSchema> ExpectedFiles(const Manifest& m) {
  std::vector<FileSchema> f;
  f.push_back({std::string(kEventsFile), FileKind::kEvents, EventBlocks(m.summary.has_truth)});
  f.push_back({std::string(kUsersFile), FileKind::kUsers, TableBlocks(m.user, true)});
  f.push_back({std::string(kItemsFile), FileKind::kItems, TableBlocks(m.item, true)});
  if (!m.event.columns.empty()) {
    f.push_back({std::string(kEventFeaturesFile), FileKind::kEventFeatures, TableBlocks(m.event, false)});
  }
  if (m.summary.taxonomy_nodes > 0) f.push_back({std::string(kTaxonomyFile), FileKind::kTaxonomy, TaxonomyBlocks()});
  return f;
}

std::string ManifestText(const Manifest& m) {
  const auto& s = m.summary;
  std::string t;
  t += "# adrec dataset directory: this file describes the *.bin column files beside it.\n";
  t += "format_version = " + std::to_string(kDatasetFormatVersion) + "\n";
  t += "name = " + TomlString(SanitizeUtf8(s.info.name)) + "\n";
  t += "source_format = " + TomlString(SanitizeUtf8(s.info.source_format)) + "\n";
  t += "provenance = " + TomlString(SanitizeUtf8(s.info.provenance)) + "\n";
  t += "created_utc = " + TomlString(SanitizeUtf8(s.info.created_utc)) + "\n";
  auto clamp = [](uint64_t v) { return std::to_string(std::min<uint64_t>(v, std::numeric_limits<int64_t>::max())); };
  t += "malformed_rows = " + clamp(s.info.malformed_rows) + "\n";
  t += "truncated = " + clamp(s.info.truncated) + "\n";
  t += "has_truth = " + std::string(s.has_truth ? "true" : "false") + "\n";
  t += "scenes = " + TomlStringArray(s.scenes) + "\n";
  t += "\n[counts]\n";
  t += "users = " + std::to_string(s.users) + "\n";
  t += "items = " + std::to_string(s.items) + "\n";
  t += "events = " + std::to_string(s.events) + "\n";
  t += "scenes = " + std::to_string(s.scenes.size()) + "\n";
  t += "taxonomy_nodes = " + std::to_string(s.taxonomy_nodes) + "\n";
  auto table = [&](std::string_view name, const TableSchema& ts) {
    std::vector<std::string> types;
    for (auto ty : ts.types) types.emplace_back(ColumnTypeName(ty));
    t += "\n[tables." + std::string(name) + "]\n";
    t += "columns = " + TomlStringArray(ts.columns) + "\n";
    t += "types = " + TomlStringArray(types) + "\n";
  };
  table("user", m.user);
  table("item", m.item);
  table("event", m.event);
  for (const auto& f : m.files) {
    std::vector<std::string> names, types;
    for (const auto& b : f.blocks) {
      names.push_back(b.name);
      types.emplace_back(BlockTypeName(b.type));
    }
    t += "\n[[files]]\n";
    t += "name = " + TomlString(f.name) + "\n";
    t += "kind = " + TomlString(FileKindName(f.kind)) + "\n";
    t += "columns = " + TomlStringArray(names) + "\n";
    t += "types = " + TomlStringArray(types) + "\n";
  }
  return t;
}

// Errors in a stored dataset.toml are DataLoss (the directory is damaged), messages kept.
Status AsDataLoss(const Status& s) { return s.ok() ? s : DataLossError(s.message()); }

StatusOr<Manifest> ParseManifest(std::string_view text, const std::string& source) {
  auto parsed = Config::Parse(text, source);
  if (!parsed.ok()) return AsDataLoss(parsed.status());
  Config cfg = std::move(parsed).value();
  auto bad = [&](const std::string& m) { return DataLossError(source + ": " + m); };
  Manifest m;
  DatasetSummary& s = m.summary;
  int64_t version = 0;
  ADREC_RETURN_IF_ERROR(AsDataLoss(cfg.Require("format_version", &version)));
  if (version != kDatasetFormatVersion) {
    return FailedPreconditionError(source + ": dataset format version " + std::to_string(version) +
                                   (version > kDatasetFormatVersion ? " is newer than" : " is not") +
                                   " the version this build reads (" + std::to_string(kDatasetFormatVersion) +
                                   "); upgrade adrec or re-import the data");
  }
  s.format_version = static_cast<uint32_t>(version);
  auto req = [&](std::string_view key, auto* out) { return AsDataLoss(cfg.Require(key, out)); };
  ADREC_RETURN_IF_ERROR(req("name", &s.info.name));
  ADREC_RETURN_IF_ERROR(req("source_format", &s.info.source_format));
  ADREC_RETURN_IF_ERROR(req("provenance", &s.info.provenance));
  ADREC_RETURN_IF_ERROR(req("created_utc", &s.info.created_utc));
  ADREC_RETURN_IF_ERROR(req("malformed_rows", &s.info.malformed_rows));
  ADREC_RETURN_IF_ERROR(req("truncated", &s.info.truncated));
  ADREC_RETURN_IF_ERROR(req("has_truth", &s.has_truth));
  ADREC_RETURN_IF_ERROR(req("scenes", &s.scenes));
  uint64_t num_scenes = 0;
  ADREC_RETURN_IF_ERROR(req("counts.users", &s.users));
  ADREC_RETURN_IF_ERROR(req("counts.items", &s.items));
  ADREC_RETURN_IF_ERROR(req("counts.events", &s.events));
  ADREC_RETURN_IF_ERROR(req("counts.scenes", &num_scenes));
  ADREC_RETURN_IF_ERROR(req("counts.taxonomy_nodes", &s.taxonomy_nodes));
  // Dense IDs are u32 and the builder caps events at 2^32.
  if (s.users > UINT32_MAX || s.items > UINT32_MAX || s.events > UINT32_MAX || s.taxonomy_nodes > UINT32_MAX) {
    return bad("counts exceed the 32-bit ID space (corrupt)");
  }
  if (num_scenes != s.scenes.size() || s.scenes.empty() || s.scenes.size() > 256) {
    return bad("counts.scenes = " + std::to_string(num_scenes) + " but " + std::to_string(s.scenes.size()) +
               " scene names are listed (1..256 expected)");
  }
  auto table = [&](std::string_view name, TableSchema* ts) -> Status {
    std::string prefix = "tables." + std::string(name);
    std::vector<std::string> types;
    ADREC_RETURN_IF_ERROR(req(prefix + ".columns", &ts->columns));
    ADREC_RETURN_IF_ERROR(req(prefix + ".types", &types));
    if (types.size() != ts->columns.size()) return bad(prefix + ": columns and types differ in length");
    std::set<std::string, std::less<>> seen;
    for (size_t i = 0; i < types.size(); ++i) {
      std::optional<ColumnType> t;
      for (int k = 0; k <= static_cast<int>(ColumnType::kSparseVector); ++k) {
        if (ColumnTypeName(static_cast<ColumnType>(k)) == types[i]) t = static_cast<ColumnType>(k);
      }
      if (!t) return bad(prefix + ": unknown column type '" + types[i] + "'");
      if (!seen.insert(ts->columns[i]).second) return bad(prefix + ": duplicate column '" + ts->columns[i] + "'");
      ts->types.push_back(*t);
    }
    return Status::Ok();
  };
  ADREC_RETURN_IF_ERROR(table("user", &m.user));
  ADREC_RETURN_IF_ERROR(table("item", &m.item));
  ADREC_RETURN_IF_ERROR(table("event", &m.event));
  const size_t nfiles = cfg.ArraySize("files");
  if (nfiles > 16) return bad("too many [[files]] entries");
  for (size_t i = 0; i < nfiles; ++i) {
    std::string prefix = "files[" + std::to_string(i) + "]";
    FileSchema f;
    std::string kind;
    std::vector<std::string> names, types;
    ADREC_RETURN_IF_ERROR(req(prefix + ".name", &f.name));
    ADREC_RETURN_IF_ERROR(req(prefix + ".kind", &kind));
    ADREC_RETURN_IF_ERROR(req(prefix + ".columns", &names));
    ADREC_RETURN_IF_ERROR(req(prefix + ".types", &types));
    auto k = ParseFileKind(kind);
    if (!k.ok()) return bad(prefix + ": " + k.status().message());
    f.kind = *k;
    if (names.size() != types.size()) return bad(prefix + ": columns and types differ in length");
    for (size_t j = 0; j < names.size(); ++j) {
      auto t = ParseBlockType(types[j]);
      if (!t.ok()) return bad(prefix + ": " + t.status().message());
      f.blocks.push_back({names[j], *t});
    }
    m.files.push_back(std::move(f));
  }
  ADREC_RETURN_IF_ERROR(AsDataLoss(cfg.CheckNoUnknownKeys()));
  // The file list must be exactly what the schema implies: no stray paths, nothing missing.
  std::vector<FileSchema> want = ExpectedFiles(m);
  if (want.size() != m.files.size()) {
    return bad("lists " + std::to_string(m.files.size()) + " files, the schema implies " + std::to_string(want.size()));
  }
  for (size_t i = 0; i < want.size(); ++i) {
    const FileSchema& f = m.files[i];
    if (f.name != want[i].name || f.kind != want[i].kind) {
      return bad("files[" + std::to_string(i) + "] is '" + f.name + "' (" + std::string(FileKindName(f.kind)) +
                 "), expected '" + want[i].name + "'");
    }
    bool same = f.blocks.size() == want[i].blocks.size();
    for (size_t j = 0; same && j < f.blocks.size(); ++j) {
      same = f.blocks[j].name == want[i].blocks[j].name && f.blocks[j].type == want[i].blocks[j].type;
    }
    if (!same) return bad("the columns listed for " + f.name + " do not match the table schema");
    s.files.push_back(f.name);
  }
  s.user_columns = m.user.columns;
  s.item_columns = m.item.columns;
  s.event_columns = m.event.columns;
  return m;
}

// ------------------------------------------------------------------------------------ helpers

// A missing file inside a dataset directory means the directory is incomplete.
Status MissingDatasetFile(const fs::path& path) {
  return NotFoundError(path.string() + ": no such file (the dataset directory is incomplete)");
}

StatusOr<std::string> ReadWholeFile(const fs::path& path) {
  auto r = ReadFile(path);
  if (!r.ok() && r.status().code() == StatusCode::kNotFound) return MissingDatasetFile(path);
  return r;
}

std::unique_ptr<ThreadPool> MakePool(int threads, size_t tasks, uint64_t bytes) {
  if (threads == 1 || tasks <= 1) return nullptr;
  // With the default thread count small datasets skip the pool: starting threads costs more.
  if (threads <= 0 && bytes < (uint64_t{4} << 20)) return nullptr;
  size_t n = threads > 0 ? static_cast<size_t>(threads) : std::max(1u, std::thread::hardware_concurrency());
  n = std::min(n, tasks);
  if (n <= 1) return nullptr;
  return std::make_unique<ThreadPool>(n - 1);  // the calling thread works too
}

// Runs every task (largest first, on the pool when there is one); returns the first error in
// task order so the message does not depend on scheduling.
Status RunAll(ThreadPool* pool, std::vector<std::pair<uint64_t, std::function<Status()>>>& tasks) {
  std::vector<size_t> order(tasks.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return tasks[a].first > tasks[b].first; });
  std::vector<Status> results(tasks.size());
  if (pool == nullptr) {
    for (size_t i : order) {
      results[i] = tasks[i].second();
      if (!results[i].ok()) return results[i];
    }
    return Status::Ok();
  }
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  pool->ParallelFor(pool->size() + 1, [&](size_t b, size_t e) {
    for (size_t slot = b; slot < e; ++slot) {
      for (size_t t; (t = next.fetch_add(1)) < order.size();) {
        if (failed.load(std::memory_order_relaxed)) continue;  // stop early, the result is an error anyway
        results[order[t]] = tasks[order[t]].second();
        if (!results[order[t]].ok()) failed = true;
      }
    }
  });
  for (auto& s : results) if (!s.ok()) return s;
  return Status::Ok();
}

// A plain array column decoded frame by frame straight into its destination vector.
struct ArrayJob {
  const BlockInfo* b = nullptr;
  const std::string* label = nullptr;
  std::function<std::span<std::byte>(uint64_t)> size_to;  // resizes the destination to n bytes
  std::vector<FrameRef> frames;
  std::span<std::byte> dst;
};

template <typename T>
std::function<std::span<std::byte>(uint64_t)> Sizer(std::vector<T>* v) {
  return [v](uint64_t bytes) {
    v->resize(bytes / sizeof(T));
    return std::span<std::byte>(reinterpret_cast<std::byte*>(v->data()), v->size() * sizeof(T));
  };
}

std::string Label(const std::string& dir_name, std::string_view file) {
  return dir_name.empty() ? std::string(file) : (fs::path(dir_name) / file).string();
}

}  // namespace

// ------------------------------------------------------------------------------------ write

Status WriteDataset(const Dataset& ds, const fs::path& dir, const WriteOptions& options) {
  if (options.zstd_level < ZSTD_minCLevel() || options.zstd_level > ZSTD_maxCLevel() || options.zstd_level == 0) {
    return InvalidArgumentError("zstd level " + std::to_string(options.zstd_level) + " outside [1, " +
                                std::to_string(ZSTD_maxCLevel()) + "]");
  }
  if (Status v = ds.Validate(); !v.ok()) {
    return InvalidArgumentError("refusing to write an invalid dataset to " + dir.string() + ": " + v.message());
  }
  if (ds.scenes.size() > 256) return InvalidArgumentError("more than 256 scenes");
  for (const auto& sc : ds.scenes) {
    if (!IsValidUtf8(sc)) return InvalidArgumentError("scene name '" + SanitizeUtf8(sc) + "' is not valid UTF-8");
  }
  for (const Table* t : {&ds.user_table, &ds.item_table, &ds.event_table}) {
    std::set<std::string_view> seen;
    for (const auto& c : t->columns) {
      if (!IsValidUtf8(c.name) || c.name.size() > kMaxBlockNameBytes) {
        return InvalidArgumentError("column name '" + SanitizeUtf8(c.name) + "' is not valid UTF-8 or too long");
      }
      if (!seen.insert(c.name).second) return InvalidArgumentError("duplicate column '" + c.name + "' in a table");
      if (t != &ds.event_table && c.name == kIdsBlock) {
        return InvalidArgumentError("column name 'ids' is reserved for the vocabulary of a table");
      }
    }
  }
  std::error_code ec;
  if (!options.overwrite && fs::is_directory(dir, ec) && !fs::is_empty(dir, ec)) {
    return AlreadyExistsError(dir.string() + " exists and is not empty (use --force to replace it)");
  }

  Manifest m;
  DatasetSummary& s = m.summary;
  s.info = ds.info;
  if (s.info.created_utc.empty()) s.info.created_utc = NowUtc();
  s.users = ds.num_users();
  s.items = ds.num_items();
  s.events = ds.num_events();
  s.scenes = ds.scenes;
  s.has_truth = ds.has_truth();
  s.taxonomy_nodes = ds.taxonomy.nodes.size();
  m.user = SchemaOf(ds.user_table);
  m.item = SchemaOf(ds.item_table);
  m.event = SchemaOf(ds.event_table);

  // Taxonomy columns are gathered into arrays first; the writer keeps pointers to them.
  std::vector<uint32_t> tax_parent;
  std::vector<uint8_t> tax_level;
  std::vector<std::string> tax_en, tax_zh;
  for (const auto& n : ds.taxonomy.nodes) {
    tax_parent.push_back(n.parent);
    tax_level.push_back(n.level);
    tax_en.push_back(n.name_en);
    tax_zh.push_back(n.name_zh);
  }
  const auto& ev = ds.events;
  std::vector<std::pair<FileSchema, ColumnFileWriter>> writers;
  {
    ColumnFileWriter w(FileKind::kEvents, options.zstd_level);
    w.AddU64("user_offsets", ds.user_offsets);
    w.AddU32("item", ev.item);
    w.AddU32("time", ev.time);
    w.AddU8("scene", ev.scene);
    w.AddU8("position", ev.position);
    w.AddU8("action", ev.action);
    w.AddF32("value", ev.value);
    if (ds.has_truth()) w.AddF32("truth", ev.truth);
    writers.emplace_back(FileSchema{std::string(kEventsFile), FileKind::kEvents, w.Blocks()}, std::move(w));
  }
  auto table_writer = [&](FileKind kind, std::string_view name, const Table& t, const Vocabulary* ids) {
    ColumnFileWriter w(kind, options.zstd_level);
    if (ids) w.AddStrings(std::string(kIdsBlock), ids->names());
    for (const auto& c : t.columns) w.AddColumn(c);
    writers.emplace_back(FileSchema{std::string(name), kind, w.Blocks()}, std::move(w));
  };
  table_writer(FileKind::kUsers, kUsersFile, ds.user_table, &ds.users);
  table_writer(FileKind::kItems, kItemsFile, ds.item_table, &ds.items);
  if (!ds.event_table.columns.empty()) table_writer(FileKind::kEventFeatures, kEventFeaturesFile, ds.event_table, nullptr);
  if (!ds.taxonomy.nodes.empty()) {
    ColumnFileWriter w(FileKind::kTaxonomy, options.zstd_level);
    w.AddU32("parent", tax_parent);
    w.AddU8("level", tax_level);
    w.AddStrings("name_en", tax_en);
    w.AddStrings("name_zh", tax_zh);
    writers.emplace_back(FileSchema{std::string(kTaxonomyFile), FileKind::kTaxonomy, w.Blocks()}, std::move(w));
  }
  for (const auto& [f, w] : writers) m.files.push_back(f);

  ADREC_ASSIGN_OR_RETURN(StagingDir staging, StagingDir::Create(dir));
  const uint64_t bytes = ds.events.MemoryBytes();
  std::unique_ptr<ThreadPool> pool = MakePool(options.threads, 16, bytes);
  for (auto& [f, w] : writers) {
    auto data = std::move(w).Finish(pool.get());
    if (!data.ok()) return data.status().WithContext("writing " + (dir / f.name).string());
    ADREC_RETURN_IF_ERROR(AtomicWriteFile(staging.path() / f.name, *data));
  }
  // The manifest goes last: a directory with a dataset.toml has all its files.
  ADREC_RETURN_IF_ERROR(AtomicWriteFile(staging.path() / kDatasetManifestName, ManifestText(m)));
  return staging.Commit(options.overwrite);
}

// ------------------------------------------------------------------------------------ read

namespace internal {

StatusOr<Dataset> DecodeDatasetFiles(const std::map<std::string, std::string, std::less<>>& files,
                                     const std::string& dir_name, const ReadOptions& options, bool verify_checksums) {
  std::map<std::string, std::string_view, std::less<>> views;
  for (const auto& [name, bytes] : files) views.emplace(name, bytes);
  return DecodeDatasetFiles(views, dir_name, options, verify_checksums);
}

StatusOr<Dataset> DecodeDatasetFiles(const std::map<std::string, std::string_view, std::less<>>& files,
                                     const std::string& dir_name, const ReadOptions& options, bool verify_checksums) {
  const std::string manifest_label = Label(dir_name, kDatasetManifestName);
  auto mit = files.find(kDatasetManifestName);
  if (mit == files.end()) return NotFoundError(manifest_label + ": no such file (not a dataset directory)");
  ADREC_ASSIGN_OR_RETURN(Manifest m, ParseManifest(mit->second, manifest_label));
  const DatasetSummary& s = m.summary;
  const ColumnFileReadOptions ro{verify_checksums};

  Dataset ds;
  ds.info = s.info;
  ds.scenes = s.scenes;
  ds.user_table.columns.resize(m.user.columns.size());
  ds.item_table.columns.resize(m.item.columns.size());
  ds.event_table.columns.resize(m.event.columns.size());
  std::vector<uint32_t> tax_parent;
  std::vector<uint8_t> tax_level;
  std::vector<std::string> tax_en, tax_zh;

  // Index every file (cheap, sequential), then decode all blocks of all files as one task list.
  std::vector<std::pair<uint64_t, std::function<Status()>>> tasks;
  std::vector<ArrayJob> arrays;
  arrays.reserve(16);  // jobs are referenced by the tasks below: no reallocation
  std::vector<ColumnFileIndex> indexes;
  std::vector<std::string> labels;
  indexes.reserve(m.files.size());
  labels.reserve(m.files.size());
  for (const FileSchema& f : m.files) {
    labels.push_back(Label(dir_name, f.name));
    const std::string& label = labels.back();
    auto it = files.find(f.name);
    if (it == files.end()) return NotFoundError(label + ": no such file (listed in dataset.toml)");
    ADREC_ASSIGN_OR_RETURN(ColumnFileIndex index, ParseColumnFile(it->second, f.kind, label, ro));
    if (index.blocks.size() != f.blocks.size()) {
      return DataLossError(label + ": has " + std::to_string(index.blocks.size()) + " columns, dataset.toml lists " +
                           std::to_string(f.blocks.size()));
    }
    for (size_t j = 0; j < f.blocks.size(); ++j) {
      const BlockInfo& b = index.blocks[j];
      if (b.name != f.blocks[j].name || b.type != f.blocks[j].type) {
        return DataLossError(label + ": column " + std::to_string(j) + " is '" + b.name + "' (" +
                             std::string(BlockTypeName(b.type)) + "), dataset.toml says '" + f.blocks[j].name + "' (" +
                             std::string(BlockTypeName(f.blocks[j].type)) + ")");
      }
      uint64_t want_rows = 0;
      switch (f.kind) {
        case FileKind::kEvents: want_rows = b.name == "user_offsets" ? s.users + 1 : s.events; break;
        case FileKind::kUsers: want_rows = s.users; break;
        case FileKind::kItems: want_rows = s.items; break;
        case FileKind::kEventFeatures: want_rows = s.events; break;
        case FileKind::kTaxonomy: want_rows = s.taxonomy_nodes; break;
      }
      if (b.rows != want_rows) {
        return DataLossError(label + ": column '" + b.name + "' has " + std::to_string(b.rows) +
                             " rows, dataset.toml says " + std::to_string(want_rows));
      }
    }
    indexes.push_back(std::move(index));
  }
  for (size_t fi = 0; fi < m.files.size(); ++fi) {
    const FileSchema& f = m.files[fi];
    const std::string* label = &labels[fi];
    for (size_t j = 0; j < indexes[fi].blocks.size(); ++j) {
      const BlockInfo* b = &indexes[fi].blocks[j];
      std::function<Status()> fn;
      switch (f.kind) {
        case FileKind::kEvents: {
          auto& ev = ds.events;
          const std::string& n = b->name;
          ArrayJob job{b, label, {}, {}, {}};
          if (n == "user_offsets") job.size_to = Sizer(&ds.user_offsets);
          else if (n == "item") job.size_to = Sizer(&ev.item);
          else if (n == "time") job.size_to = Sizer(&ev.time);
          else if (n == "scene") job.size_to = Sizer(&ev.scene);
          else if (n == "position") job.size_to = Sizer(&ev.position);
          else if (n == "action") job.size_to = Sizer(&ev.action);
          else if (n == "value") job.size_to = Sizer(&ev.value);
          else if (n == "truth") job.size_to = Sizer(&ev.truth);
          else return InternalError(*label + ": no decoder for column '" + n + "'");
          arrays.push_back(std::move(job));
          continue;  // decoded frame by frame below
        }
        case FileKind::kUsers:
        case FileKind::kItems: {
          Vocabulary* vocab = f.kind == FileKind::kUsers ? &ds.users : &ds.items;
          Table* table = f.kind == FileKind::kUsers ? &ds.user_table : &ds.item_table;
          if (j == 0) {
            fn = [=]() -> Status {
              std::vector<std::string> names;
              ADREC_RETURN_IF_ERROR(DecodeStrings(*b, *label, &names, ro));
              auto v = Vocabulary::FromNames(std::move(names));
              if (!v.ok()) return v.status().WithContext(*label + ": column 'ids'");
              *vocab = std::move(v).value();
              return Status::Ok();
            };
          } else {
            Column* col = &table->columns[j - 1];
            fn = [=] { return DecodeColumn(*b, *label, col, ro); };
          }
          break;
        }
        case FileKind::kEventFeatures: {
          Column* col = &ds.event_table.columns[j];
          fn = [=] { return DecodeColumn(*b, *label, col, ro); };
          break;
        }
        case FileKind::kTaxonomy: {
          if (j == 0) fn = [=, &tax_parent] { return DecodeU32(*b, *label, &tax_parent, ro); };
          if (j == 1) fn = [=, &tax_level] { return DecodeU8(*b, *label, &tax_level, ro); };
          if (j == 2) fn = [=, &tax_en] { return DecodeStrings(*b, *label, &tax_en, ro); };
          if (j == 3) fn = [=, &tax_zh] { return DecodeStrings(*b, *label, &tax_zh, ro); };
          break;
        }
      }
      if (!fn) return InternalError(*label + ": no decoder for column '" + b->name + "'");
      tasks.emplace_back(b->raw_bytes(), std::move(fn));
    }
  }
  uint64_t total = 0;
  for (const auto& t : tasks) total += t.first;
  for (const auto& a : arrays) total += a.b->raw_bytes();
  std::unique_ptr<ThreadPool> pool = MakePool(options.threads, tasks.size() + 4 * arrays.size(), total);
  // Event columns in two steps: verify and size every column, then decode all their frames
  // together with the other blocks, so a 40 MB column is spread over every core.
  std::vector<std::pair<uint64_t, std::function<Status()>>> sizing;
  for (ArrayJob& a : arrays) {
    sizing.emplace_back(a.b->raw_bytes(), [&a, ro]() -> Status {
      ADREC_ASSIGN_OR_RETURN(a.frames, VerifyBlockPayload(*a.b, *a.label, ro));
      a.dst = a.size_to(a.b->raw_bytes());
      return Status::Ok();
    });
  }
  ADREC_RETURN_IF_ERROR(RunAll(pool.get(), sizing));
  for (ArrayJob& a : arrays) {
    for (const FrameRef& f : a.frames) {
      tasks.emplace_back(f.dst_bytes, [&a, f] { return DecompressFrame(*a.b, f, a.dst.subspan(f.dst_offset, f.dst_bytes), *a.label); });
    }
  }
  ADREC_RETURN_IF_ERROR(RunAll(pool.get(), tasks));

  ds.taxonomy.nodes.resize(tax_parent.size());
  for (size_t i = 0; i < tax_parent.size(); ++i) {
    TaxonomyNode& n = ds.taxonomy.nodes[i];
    n.parent = tax_parent[i];
    n.level = tax_level[i];
    n.name_en = std::move(tax_en[i]);
    n.name_zh = std::move(tax_zh[i]);
  }
  if (ds.users.size() != s.users || ds.items.size() != s.items) {
    return DataLossError((dir_name.empty() ? std::string("dataset") : dir_name) +
                         ": vocabulary sizes differ from dataset.toml (corrupt)");
  }
  {
    // The user column is the offset index expanded; the index is checked before it is trusted.
    const auto& off = ds.user_offsets;
    const size_t n = ds.events.item.size();
    if (off.size() != static_cast<size_t>(ds.users.size()) + 1 || off.front() != 0 || off.back() != n) {
      return DataLossError(Label(dir_name, kEventsFile) + ": user_offsets do not span the events (corrupt)");
    }
    for (uint32_t u = 0; u < ds.users.size(); ++u) {
      if (off[u] > off[u + 1] || off[u + 1] > n) {
        return DataLossError(Label(dir_name, kEventsFile) + ": user_offsets out of order at user " + std::to_string(u));
      }
    }
    ds.events.user.resize(n);
    uint32_t* user = ds.events.user.data();
    auto expand = [&](size_t b, size_t e) {
      for (size_t u = b; u < e; ++u) std::fill(user + off[u], user + off[u + 1], static_cast<uint32_t>(u));
    };
    if (pool) pool->ParallelFor(ds.users.size(), expand, 1024);
    else expand(0, ds.users.size());
  }
  if (options.validate) {
    Status v = ds.Validate(pool.get());
    if (!v.ok()) return DataLossError((dir_name.empty() ? std::string("dataset") : dir_name) + ": " + v.message());
  }
  return ds;
}

}  // namespace internal

StatusOr<Dataset> ReadDataset(const fs::path& dir, const ReadOptions& options) {
  const std::string dir_name = dir.string();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return NotFoundError(dir_name + ": no such dataset directory");
  // The manifest is read; the column files are mapped (no copy through anonymous memory).
  ADREC_ASSIGN_OR_RETURN(std::string manifest, ReadWholeFile(dir / kDatasetManifestName));
  ADREC_ASSIGN_OR_RETURN(Manifest m, ParseManifest(manifest, (dir / kDatasetManifestName).string()));
  std::map<std::string, std::string_view, std::less<>> files;
  files[std::string(kDatasetManifestName)] = manifest;
  std::vector<MappedFile> mapped;
  mapped.reserve(m.files.size());
  for (const auto& f : m.files) {
    auto mf = MappedFile::Open(dir / f.name);
    if (!mf.ok()) {
      if (mf.status().code() == StatusCode::kNotFound) return MissingDatasetFile(dir / f.name);
      return mf.status();
    }
    mapped.push_back(std::move(mf).value());
    files[f.name] = mapped.back().data();
  }
  return internal::DecodeDatasetFiles(files, dir_name, options, /*verify_checksums=*/true);
}

StatusOr<DatasetSummary> ReadDatasetSummary(const fs::path& dir) {
  const fs::path path = dir / kDatasetManifestName;
  ADREC_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  ADREC_ASSIGN_OR_RETURN(Manifest m, ParseManifest(text, path.string()));
  return m.summary;
}

StatusOr<DatasetInfo> ReadDatasetInfo(const fs::path& dir) {
  ADREC_ASSIGN_OR_RETURN(DatasetSummary s, ReadDatasetSummary(dir));
  return s.info;
}

std::span<const std::string_view> DatasetFileNames() {
  static constexpr std::string_view kNames[] = {kDatasetManifestName, kEventsFile,   kUsersFile,     kItemsFile,
                                                kEventFeaturesFile,   kTaxonomyFile, kDatasetTextDir};
  return kNames;
}

Status CheckDatasetRewritable(const std::filesystem::path& dir) {
  const auto names = DatasetFileNames();
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      return FailedPreconditionError(dir.string() + " holds " + name +
                                     ", which rewriting the dataset in place would drop; write to another directory with --out");
    }
  }
  return Status::Ok();
}

}  // namespace adrec::data

// The dataset directory of DESIGN.md on disk: dataset.toml (format version, provenance, counts,
// scene names, table schemas, the file list) and binary column files (column_file.h):
//   events.bin          user_offsets, user, item, time, scene, position, action, value[, truth]
//   users.bin           ids (original user IDs), then the user table's columns
//   items.bin           ids (original item IDs), then the item table's columns
//   event_features.bin  the event table's columns (only when it has any)
//   taxonomy.bin        parent, level, name_en, name_zh (only when there is a taxonomy)
// Written through a StagingDir, so a half-written directory never appears under its name; read
// with one read per file and columns decompressed in parallel, then validated.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "adrec/core/status.h"
#include "adrec/data/dataset.h"

namespace adrec::data {

// Version of dataset.toml and of the layout of the directory; column files carry their own.
inline constexpr uint32_t kDatasetFormatVersion = 1;
inline constexpr std::string_view kDatasetManifestName = "dataset.toml";
// Where derived side files live (text/: the PCA of each text-embedding column,
// text/text_features.h names them); rewrites carry the folder along.
inline constexpr std::string_view kDatasetTextDir = "text";

// Every name a dataset directory may hold: the manifest, the column files and the side folder.
std::span<const std::string_view> DatasetFileNames();
// OK when `dir` holds only what WriteDataset would write again (so rewriting it in place loses
// nothing); FailedPrecondition naming the first other entry.
Status CheckDatasetRewritable(const std::filesystem::path& dir);

struct WriteOptions {
  bool overwrite = false;  // replace an existing non-empty directory
  int zstd_level = 3;      // 1 (fast) .. 19 (small); 3 compresses at ~300 MB/s per thread
  int threads = 0;         // 0 = all cores; 1 = no pool
};

struct ReadOptions {
  int threads = 0;       // 0 = all cores; 1 = no pool
  bool validate = true;  // run Dataset::Validate() after decoding
};

// What dataset.toml says, without reading the column files.
struct DatasetSummary {
  uint32_t format_version = 0;
  DatasetInfo info;
  uint64_t users = 0;
  uint64_t items = 0;
  uint64_t events = 0;
  std::vector<std::string> scenes;
  bool has_truth = false;
  uint64_t taxonomy_nodes = 0;
  std::vector<std::string> user_columns;
  std::vector<std::string> item_columns;
  std::vector<std::string> event_columns;  // event_table columns; empty when it has none
  std::vector<std::string> files;          // the binary files, in write order
};

// Writes `ds` (which must pass Validate) into `dir`. An existing non-empty `dir` is
// AlreadyExists unless options.overwrite; on any failure nothing is left behind.
Status WriteDataset(const Dataset& ds, const std::filesystem::path& dir, const WriteOptions& options = {});

// Reads a dataset directory. A missing file is NotFound, a file of another format version
// FailedPrecondition, a truncated or corrupt one DataLoss; messages name the file and column.
StatusOr<Dataset> ReadDataset(const std::filesystem::path& dir, const ReadOptions& options = {});

// Reads dataset.toml only (cheap: no column is decoded).
StatusOr<DatasetInfo> ReadDatasetInfo(const std::filesystem::path& dir);
StatusOr<DatasetSummary> ReadDatasetSummary(const std::filesystem::path& dir);

namespace internal {
// The reader over files already in memory (file name -> bytes); `dir_name` prefixes file names
// in errors. ReadDataset reads the files and calls this; the fuzzer calls it directly, with
// checksums off to reach the decoders behind them.
StatusOr<Dataset> DecodeDatasetFiles(const std::map<std::string, std::string_view, std::less<>>& files,
                                     const std::string& dir_name, const ReadOptions& options,
                                     bool verify_checksums = true);
StatusOr<Dataset> DecodeDatasetFiles(const std::map<std::string, std::string, std::less<>>& files,
                                     const std::string& dir_name, const ReadOptions& options,
                                     bool verify_checksums = true);
}  // namespace internal

}  // namespace adrec::data

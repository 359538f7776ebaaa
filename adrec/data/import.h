// Importers: real logs → the in-memory Dataset (dataset.h), streamed through LineReader so memory
// grows with the vocabularies and event columns, never with the input text. Writing the dataset
// directory is dataset_io.h's job.
//
// Mappings (what each source becomes; docs/ARCHITECTURE.md repeats them):
// - MovieLens (100k, 1M, 10M, 20M/25M/latest, detected from the files in `input`): action
//   rating, value = rating, scene "default", time = unix seconds. Items: title (string), tags
//   (genre list), cat1 (1-level genre taxonomy node of the first genre), lang "en". Users (100k,
//   1M): age, gender, occupation, region (first 3 chars of the zip code). Latin-1 text becomes UTF-8.
// - S3-Rec text (`user item item ...`, Amazon/Yelp/LastFM): one kClick per item, value 1,
//   time = 1-based position in the user's sequence (the files hold order, not times). A user on
//   two lines is a malformed row.
// - libFM (`label idx:val ...`, Frappe): one event per line; label > 0 → kClick, else
//   kImpression; value = label; time = line number. User = index of feature #user_feature (0),
//   item = index of feature #item_feature (1) — Frappe's layout; every feature (user and item
//   included) is kept in event column "features" (kSparseVector).
// - Criteo TSV (label, I1..I13, C1..C26): Criteo has no users or items, so every event belongs to
//   the one user "all", item = the C<criteo.item_column> value (C1 by default, "" when missing),
//   time = line number, label 1 → kClick, 0 → kImpression, value = label. Event columns I1..I13
//   (f32, missing = 0), I_missing (u32 bit k-1 set when Ik was empty, so 0 and missing stay
//   apart), C1..C26 (u32 = the 32-bit hex value, missing = 0).
// - CSV / JSONL: described by a schema TOML (configs/schemas/README.md).
//
// Malformed rows are counted; the first `max_report` are logged with file and line; more than
// `max_errors` fail the import with InvalidArgument naming the file, line and fault. An input
// with no valid row is an error.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "adrec/core/progress.h"
#include "adrec/core/status.h"
#include "adrec/data/dataset.h"

namespace adrec::data {

enum class ImportFormat { kMovieLens, kS3Rec, kLibFm, kCriteo, kCsv, kJsonl };
// "movielens", "s3rec", "libfm", "criteo", "csv", "jsonl".
StatusOr<ImportFormat> ParseImportFormat(std::string_view name);
std::string_view ImportFormatName(ImportFormat f);

// One field of a libFM file: the global feature indices [first, last] that belong to it.
struct LibFmField {
  std::string name;
  uint32_t first = 0, last = 0;
};

struct LibFmOptions {
  uint32_t user_feature = 0;  // position (0-based, among the features of a line) of the user
  uint32_t item_feature = 1;  // and of the item
  // Empty: every feature of a line goes into one sparse event column "features". Otherwise each
  // field becomes a categorical event column of its own name whose value is the line's feature
  // index in the field's range (so a feature spec reads it as `event.<name>`); a line with an
  // index in no field, or two in one field, is a malformed row naming it.
  std::vector<LibFmField> fields;
};

// A field map file: one field per line, `name first last` (inclusive global feature indices),
// '#' comments. InvalidArgument naming the line for bad numbers, first > last, a repeated name,
// a name that is not [A-Za-z0-9_]+, or ranges that overlap (naming both fields).
StatusOr<std::vector<LibFmField>> ParseLibFmFieldMap(std::string_view text, const std::string& source);

struct CriteoOptions {
  uint32_t item_column = 1;  // C<k> whose value names the item (1..26)
};

struct ImportOptions {
  std::filesystem::path input;   // MovieLens: the unpacked directory; others: the file
  std::filesystem::path schema;  // CSV/JSONL only
  uint64_t max_errors = 0;       // 0 = the first malformed row fails the import
  bool show_progress = true;
  uint32_t max_report = 5;       // malformed rows echoed to the log
  LibFmOptions libfm;
  CriteoOptions criteo;
};

StatusOr<Dataset> Import(ImportFormat format, const ImportOptions& options);
StatusOr<Dataset> ImportMovieLens(const ImportOptions& options);
StatusOr<Dataset> ImportS3Rec(const ImportOptions& options);
StatusOr<Dataset> ImportLibFm(const ImportOptions& options);
StatusOr<Dataset> ImportCriteo(const ImportOptions& options);
StatusOr<Dataset> ImportCsv(const ImportOptions& options);    // needs options.schema
StatusOr<Dataset> ImportJsonl(const ImportOptions& options);  // needs options.schema

// In-memory entries (fuzzing, tests): the same parsers over strings; `options.input` only names
// the source in messages and provenance.
enum class MovieLensLayout {
  k100k,  // u.data (tab), u.item, u.user, u.genre (pipe)
  k1m,    // ratings.dat, movies.dat, users.dat ("::")
  k10m,   // ratings.dat, movies.dat ("::"), no users
  kCsv,   // ratings.csv, movies.csv (20M, 25M, latest)
};
struct MovieLensBuffers {
  MovieLensLayout layout = MovieLensLayout::kCsv;
  std::string_view ratings;
  std::string_view items;   // empty = absent
  std::string_view users;   // empty = absent
  std::string_view genres;  // 100k u.genre; empty = the standard 19 names
};
StatusOr<Dataset> ImportMovieLensFromBuffers(const MovieLensBuffers& buffers, const ImportOptions& options);
StatusOr<Dataset> ImportS3RecFromBuffer(std::string_view text, const ImportOptions& options);
StatusOr<Dataset> ImportLibFmFromBuffer(std::string_view text, const ImportOptions& options);
StatusOr<Dataset> ImportCriteoFromBuffer(std::string_view text, const ImportOptions& options);
StatusOr<Dataset> ImportCsvFromBuffer(std::string_view text, std::string_view schema_toml, const ImportOptions& options);
StatusOr<Dataset> ImportJsonlFromBuffer(std::string_view text, std::string_view schema_toml,
                                        const ImportOptions& options);

// ---- shared by the importer implementations (import_*.cc) ----
namespace import_internal {

// Counts malformed rows, logs the first few, and turns "too many" into the import's error.
class RowErrors {
 public:
  explicit RowErrors(const ImportOptions& options) : max_errors_(options.max_errors), max_report_(options.max_report) {}
  // OK while the count stays within max_errors; else InvalidArgument "file:line: what (...)".
  Status Add(std::string_view file, uint64_t line, std::string_view what);
  uint64_t count() const { return count_; }

 private:
  uint64_t max_errors_;
  uint32_t max_report_;
  uint64_t count_ = 0;
};

// A value quoted for a message, clipped so a huge or binary field cannot flood the log.
std::string Quote(std::string_view s);

ProgressOptions ImportProgressOptions(const ImportOptions& options);

// Adds events to the builder, sorting each run of consecutive events of one user by time first:
// logs grouped by user (MovieLens) then arrive sorted and Finish() skips its global sort.
// Only for datasets without event-table columns (their rows would need the same permutation).
class UserRunSorter {
 public:
  explicit UserRunSorter(DatasetBuilder* builder) : builder_(builder) {}
  Status Add(const Event& e);  // e.timestamp must already be in range
  Status Flush();

 private:
  DatasetBuilder* builder_;
  std::vector<Event> run_;
  bool run_sorted_ = true;
};

// Finish() with the failure naming the input; records malformed rows and creation time.
StatusOr<Dataset> FinishImport(DatasetBuilder&& builder, const RowErrors& errors, std::string_view input_name);

// Reserves event columns for about file_bytes / (bytes per line of the first block) events, so
// the columns grow once instead of doubling (peak memory, copies).
void ReserveEventsForInput(DatasetBuilder& builder, uint64_t file_bytes, double bytes_per_line);

}  // namespace import_internal

}  // namespace adrec::data

// The in-memory dataset: events (columnar, sorted by user then time, with a per-user offset
// index), user and item tables with texts and attributes, vocabularies mapping original IDs to
// dense IDs and back, and the taxonomy. Every importer and the synthetic world produce one
// through DatasetBuilder; dataset_io.h stores it as the dataset directory of DESIGN.md.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "adrec/core/status.h"

namespace adrec {
class ThreadPool;
}

namespace adrec::data {

// What a user did with an item. Funnel order for ads: impression → click → download → install
// → conversion. Stored as one byte.
enum class Action : uint8_t {
  kImpression = 0,
  kClick = 1,
  kDownload = 2,
  kInstall = 3,
  kConversion = 4,
  kRating = 5,
  kPurchase = 6,
  kView = 7,
  kLike = 8,
  kAddToCart = 9,
  kShare = 10,
};
inline constexpr int kNumActions = 11;
std::string_view ActionName(Action a);
// Accepts the names of ActionName ("click", "download", ...) and their numbers.
StatusOr<Action> ParseAction(std::string_view name);

// Original ID (string) <-> dense ID (0..size-1), in order of first appearance.
class Vocabulary {
 public:
  uint32_t GetOrAdd(std::string_view key);
  std::optional<uint32_t> Find(std::string_view key) const;
  const std::string& Name(uint32_t id) const { return names_[id]; }
  uint32_t size() const { return static_cast<uint32_t>(names_.size()); }
  const std::vector<std::string>& names() const { return names_; }
  void Reserve(size_t n);
  // Rebuilds from stored names (reader); duplicate names are DataLoss.
  static StatusOr<Vocabulary> FromNames(std::vector<std::string> names);
  size_t MemoryBytes() const;

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const;
  };
  std::vector<std::string> names_;
  std::unordered_map<std::string, uint32_t, Hash, std::equal_to<>> index_;
};

// A typed column of a table. Categorical columns hold codes into their vocabulary, where code 0
// is reserved for "missing" (name ""). List columns are CSR: row r spans
// [offsets[r], offsets[r+1]) of u32 (codes) or f32 (values).
enum class ColumnType : uint8_t {
  kCategorical = 0,  // u32 + vocab
  kUInt32 = 1,       // raw u32 (hashed IDs, counts)
  kFloat32 = 2,      // f32
  kString = 3,       // str
  kCategoricalList = 4,  // offsets + u32 + vocab (multi-hot: genres, tags)
  kSparseVector = 5,     // offsets + u32 indices + f32 values (libFM rows)
};
std::string_view ColumnTypeName(ColumnType t);

struct Column {
  std::string name;
  ColumnType type = ColumnType::kCategorical;
  std::vector<uint32_t> u32;
  std::vector<float> f32;
  std::vector<std::string> str;
  std::vector<uint64_t> offsets;  // list types only; offsets.size() == rows + 1
  std::shared_ptr<Vocabulary> vocab;  // categorical types only

  size_t rows() const;
  // Appends a row; the setters check the column's type (programming errors abort in debug).
  void PushCategorical(std::string_view value);  // "" = missing = code 0
  void PushU32(uint32_t v);
  void PushFloat(float v);
  void PushString(std::string v);
  void PushCategoricalList(std::span<const std::string_view> values);
  void PushSparse(std::span<const uint32_t> idx, std::span<const float> val);
  // Appends a missing/zero/empty row of this column's type.
  void PushDefault();
  std::span<const uint32_t> ListAt(size_t row) const {
    return {u32.data() + offsets[row], u32.data() + offsets[row + 1]};
  }
};

Column MakeColumn(std::string name, ColumnType type);

// Rows addressed by dense ID (user table: user ID; item table: item ID).
struct Table {
  std::vector<Column> columns;
  Column* Find(std::string_view name);
  const Column* Find(std::string_view name) const;
  // Adds a column, padded with default rows up to `rows`.
  Column& Add(std::string name, ColumnType type, size_t rows = 0);
  size_t rows() const { return columns.empty() ? 0 : columns.front().rows(); }
};

// Names of well-known item columns (ad catalog) and user columns; importers and the generator
// use these so every model finds them.
namespace cols {
inline constexpr std::string_view kTitle = "title";
inline constexpr std::string_view kDescription = "description";
inline constexpr std::string_view kLanguage = "lang";            // categorical: en, zh, ...
inline constexpr std::string_view kAdvertiser = "advertiser";    // categorical
inline constexpr std::string_view kCampaign = "campaign";        // categorical
inline constexpr std::string_view kCategory1 = "cat1";           // u32: taxonomy node ID, 0 = none
inline constexpr std::string_view kCategory2 = "cat2";
inline constexpr std::string_view kCategory3 = "cat3";
inline constexpr std::string_view kTags = "tags";                // categorical list (genres)
inline constexpr std::string_view kBid = "bid";                  // f32, currency units per 1000 impressions
inline constexpr std::string_view kFormat = "format";            // creative attributes: categorical
inline constexpr std::string_view kOrientation = "orientation";
inline constexpr std::string_view kDuration = "duration";        // f32 seconds (video), 0 otherwise
inline constexpr std::string_view kColour = "colour";
inline constexpr std::string_view kTextType = "text_type";
inline constexpr std::string_view kColdStart = "cold_start";     // u32 0/1 (generator: ad launched late)
inline constexpr std::string_view kAge = "age";                  // user columns: categorical
inline constexpr std::string_view kGender = "gender";
inline constexpr std::string_view kOccupation = "occupation";
inline constexpr std::string_view kRegion = "region";            // zip prefix, city, province
inline constexpr std::string_view kDevice = "device";
}  // namespace cols

// A 3-level taxonomy (e.g. games › MOBA › 5v5 arena). Node 0 is the root.
struct TaxonomyNode {
  uint32_t parent = 0;
  uint8_t level = 0;  // 0 root, 1..3
  std::string name_en;
  std::string name_zh;
};
struct Taxonomy {
  std::vector<TaxonomyNode> nodes;  // empty when the dataset has none
  uint32_t Add(uint32_t parent, std::string name_en, std::string name_zh = "");
  // "games › MOBA › 5v5 arena"
  std::string Path(uint32_t node) const;
  std::vector<uint32_t> Children(uint32_t node) const;
};

// Events, columnar; the n-th event is (user[n], item[n], ...). Sorted by user, then time, then
// arrival order. 19 bytes per event, 23 with ground truth.
struct EventColumns {
  std::vector<uint32_t> user;
  std::vector<uint32_t> item;
  std::vector<uint32_t> time;  // unix seconds (or sequence index when the source has no times)
  std::vector<uint8_t> scene;
  std::vector<uint8_t> position;  // slot in the feed/list, 0 = unknown/top
  std::vector<uint8_t> action;    // Action
  std::vector<float> value;       // rating, price, label value; 0 when absent
  // Generator ground truth: true P(the next funnel stage follows | this event), e.g. the true
  // CTR on an impression, the true download rate on a click. Empty for real data.
  std::vector<float> truth;
  size_t size() const { return user.size(); }
  void Reserve(size_t n, bool with_truth);
  size_t MemoryBytes() const;
};

struct DatasetInfo {
  std::string name;           // "synthetic", "movielens-100k", ...
  std::string source_format;  // gen, movielens, s3rec, libfm, criteo, csv, jsonl
  std::string provenance;     // what it was made from: command line, input paths, seed
  std::string created_utc;    // ISO 8601
  uint64_t malformed_rows = 0;  // skipped under --max-errors
  uint64_t truncated = 0;
};

struct Dataset {
  DatasetInfo info;
  Vocabulary users;  // original user ID <-> dense ID
  Vocabulary items;
  std::vector<std::string> scenes;  // scene ID -> name; at least one ("default")
  EventColumns events;
  std::vector<uint64_t> user_offsets;  // size users+1: user u's events are [off[u], off[u+1])
  Table user_table;   // rows == users.size()
  Table item_table;   // rows == items.size()
  Table event_table;  // per-event extra columns (Criteo/libFM features); rows == events or 0
  Taxonomy taxonomy;

  uint32_t num_users() const { return users.size(); }
  uint32_t num_items() const { return items.size(); }
  size_t num_events() const { return events.size(); }
  // [begin, end) event indices of user u.
  std::pair<uint64_t, uint64_t> UserRange(uint32_t u) const { return {user_offsets[u], user_offsets[u + 1]}; }
  bool has_truth() const { return !events.truth.empty(); }
  // Checks every invariant above (sizes, sort order, ID ranges); readers call it after loading.
  // With a pool the per-event checks run on it; the error reported is the same either way.
  Status Validate(ThreadPool* pool = nullptr) const;
};

// One event as importers and the generator produce it, before sorting.
struct Event {
  uint32_t user = 0;
  uint32_t item = 0;
  int64_t timestamp = 0;  // unix seconds; must fit in [0, 2^32)
  uint8_t scene = 0;
  uint8_t position = 0;
  Action action = Action::kImpression;
  float value = 0.f;
  float truth = 0.f;
};

struct DatasetBuilderOptions {
  std::string name;
  std::string source_format;
  std::string provenance;
  bool with_truth = false;
};

// Collects events in any order, then sorts them (user, time, arrival) and builds the offset
// index. Memory: the event columns (≤ 24 bytes per event) plus vocabularies; the input text is
// never held.
class DatasetBuilder {
 public:
  explicit DatasetBuilder(DatasetBuilderOptions options);

  uint32_t UserId(std::string_view original) { return ds_.users.GetOrAdd(original); }
  uint32_t ItemId(std::string_view original) { return ds_.items.GetOrAdd(original); }
  uint8_t SceneId(std::string_view name);  // get-or-add; at most 256 scenes
  // OutOfRange when the timestamp does not fit the u32 time column.
  Status AddEvent(const Event& e);
  // Per-event extra columns: declare before the first AddEvent, push one row per event.
  Table& event_table() { return ds_.event_table; }
  // User/item attributes: tables are padded to the vocabulary sizes at Finish().
  Table& user_table() { return ds_.user_table; }
  Table& item_table() { return ds_.item_table; }
  Taxonomy& taxonomy() { return ds_.taxonomy; }
  DatasetInfo& info() { return ds_.info; }
  Dataset& dataset() { return ds_; }  // direct access for generators that build in order
  size_t num_events() const { return ds_.events.size(); }

  // Fails when there are no events. Sorts (stable, skipped when already in order), pads
  // tables, validates.
  StatusOr<Dataset> Finish() &&;

 private:
  Dataset ds_;
  bool with_truth_;
};

// Pads a table's columns with default rows up to `rows` (attributes of IDs never described).
void PadTable(Table& t, size_t rows);

}  // namespace adrec::data

#include "adrec/data/features.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <set>

#include "adrec/core/config.h"
#include "adrec/core/log.h"
#include "adrec/core/thread_pool.h"

namespace adrec::data {

// Sources, dense readers and history masks: shared by Bind, FitNormalization and BuildBatch.
namespace features_internal {
namespace {

enum class SourceKind : uint8_t {
  kUser, kItem, kScene, kPosition, kHour, kWeekday,
  kUserColumn, kItemColumn, kEventColumn, kHistoryItem, kHistoryColumn,
  kRecent,  // "recent.<action>": a real-time counter; `column` holds the action name
};

struct ParsedSource {
  SourceKind kind;
  std::string_view column;  // the column of the *Column kinds
};

std::optional<ParsedSource> ParseSource(std::string_view s) {
  static constexpr std::pair<std::string_view, SourceKind> kPlain[] = {
      {"user", SourceKind::kUser},         {"item", SourceKind::kItem}, {"scene", SourceKind::kScene},
      {"position", SourceKind::kPosition}, {"hour", SourceKind::kHour}, {"weekday", SourceKind::kWeekday}};
  for (const auto& [name, kind] : kPlain) {
    if (s == name) return ParsedSource{kind, {}};
  }
  const size_t dot = s.find('.');
  if (dot == std::string_view::npos || dot + 1 == s.size()) return std::nullopt;
  const std::string_view table = s.substr(0, dot), column = s.substr(dot + 1);
  if (table == "user") return ParsedSource{SourceKind::kUserColumn, column};
  if (table == "item") return ParsedSource{SourceKind::kItemColumn, column};
  if (table == "event") return ParsedSource{SourceKind::kEventColumn, column};
  if (table == "history") {
    return column == "item" ? ParsedSource{SourceKind::kHistoryItem, {}} : ParsedSource{SourceKind::kHistoryColumn, column};
  }
  if (table == "recent") return ParsedSource{SourceKind::kRecent, column};
  return std::nullopt;
}

bool SourceFitsKind(SourceKind s, FieldKind k) {
  const bool history = s == SourceKind::kHistoryItem || s == SourceKind::kHistoryColumn;
  const bool column = s == SourceKind::kUserColumn || s == SourceKind::kItemColumn || s == SourceKind::kEventColumn;
  switch (k) {
    case FieldKind::kCategorical: return !history && s != SourceKind::kRecent;
    case FieldKind::kMultiHot: return column;
    case FieldKind::kDense: return column || s == SourceKind::kRecent;
    case FieldKind::kSequence: return history;
    case FieldKind::kText: return s == SourceKind::kUserColumn || s == SourceKind::kItemColumn;
  }
  return false;
}

// Every non-impression action: the history of a hand-made SampleSet that names none.
constexpr ActionMask kNonImpressionActions = ((ActionMask{1} << kNumActions) - 1) & ~ActionBit(Action::kImpression);

ActionMask HistoryMask(const FieldSpec& f, ActionMask fallback) {
  if (f.history_actions.empty()) return fallback ? fallback : kNonImpressionActions;
  ActionMask m = 0;
  for (Action a : f.history_actions) m |= ActionBit(a);
  return m;
}

// Where a user/item/event column's row comes from: the sample event's user, its item, or the
// event itself (row_of == nullptr).
const uint32_t* RowOf(const Dataset& ds, SourceKind k) {
  if (k == SourceKind::kUserColumn) return ds.events.user.data();
  if (k == SourceKind::kItemColumn) return ds.events.item.data();
  return nullptr;
}

// Criteo keeps a missing I<k> as 0 in its column and sets bit k-1 of the u32 column I_missing
// (import_criteo.cc); a dense field on such a column reads 0 after normalisation there.
constexpr std::string_view kMissingMaskColumn = "I_missing";

// Seconds from an earlier event to a later one of the same user (the slice is time-sorted, so
// never negative there; clamped in case a log is not).
inline uint32_t AgeOf(uint32_t sample_time, uint32_t event_time) {
  return sample_time > event_time ? sample_time - event_time : 0u;
}

// A "recent.<action>" counter resolved to the event columns: the (decay-weighted) number of the
// user's `action` events strictly before the sample within window_s, optionally only those
// matching the sample's item or its value in an item column.
struct RecentCounter {
  // Log events a counter walks back before it turns to its action's index (two cache lines of
  // times): the index saves work only for windows that hold many events of other actions.
  static constexpr uint32_t kWalkBeforeIndex = 32;
  const uint32_t* user = nullptr;
  const uint32_t* item = nullptr;
  const uint32_t* time = nullptr;
  const uint8_t* action = nullptr;
  const uint64_t* user_offsets = nullptr;
  uint8_t act = 0;
  uint32_t window_s = 0;
  bool match_item = false;
  const uint32_t* match_values = nullptr;  // the match column, by item
  bool zero_matches_nothing = false;       // categorical match column: code 0 is missing
  double inv_decay = 0;                    // 1 / decay_s; 0 = every event weighs 1
  const HistoryIndex* index = nullptr;     // the user's `act` events; nullptr = walk the log

  float Count(uint64_t e) const {
    const uint32_t t = time[e];
    const bool match = match_item || match_values != nullptr;
    const uint32_t want = match_values ? match_values[item[e]] : item[e];
    if (match_values && zero_matches_nothing && want == 0) return 0.f;
    double sum = 0;
    // Weighs event j of the action; false once j is past the window (older events are too).
    auto take = [&](uint64_t j) {
      const uint32_t age = AgeOf(t, time[j]);
      if (age > window_s) return false;
      if (!match || (match_values ? match_values[item[j]] : item[j]) == want) {
        sum += inv_decay > 0 ? std::exp(-static_cast<double>(age) * inv_decay) : 1.0;
      }
      return true;
    };
    // Walk the log back first: its columns around e are in cache, and a short window ends within
    // a few events. A window holding more events than that continues in the index, if any.
    const uint32_t u = user[e];
    const uint64_t first = user_offsets[u];
    uint64_t j = e;
    for (uint32_t steps = 0; j > first && (!index || steps < kWalkBeforeIndex); ++steps) {
      --j;
      if (action[j] != act) {
        if (AgeOf(t, time[j]) > window_s) return static_cast<float>(sum);
        continue;
      }
      if (!take(j)) return static_cast<float>(sum);
    }
    if (j > first && index) {  // events before j remain: the action's ones from the index
      const uint64_t* hb = index->events.data() + index->user_offsets[u];
      const uint64_t* p = std::lower_bound(hb, index->events.data() + index->user_offsets[u + 1], j);
      while (p > hb && take(*--p)) {
      }
    }
    return static_cast<float>(sum);
  }
};

// Reads one scalar dense value for a sample event: a column, or a counter.
struct DenseReader {
  const uint32_t* row_of = nullptr;
  const float* f32 = nullptr;
  const uint32_t* u32 = nullptr;
  const uint32_t* missing = nullptr;
  uint32_t missing_bit = 0;
  bool is_counter = false;
  RecentCounter counter;

  float Raw(uint64_t e) const {
    if (is_counter) return counter.Count(e);
    const uint64_t row = row_of ? row_of[e] : e;
    return f32 ? f32[row] : static_cast<float>(u32[row]);
  }
  bool IsMissing(uint64_t e) const { return missing && ((missing[e] >> missing_bit) & 1u); }
};

// The item column a counter matches on, checked (Bind reports the same problems with context).
StatusOr<const Column*> MatchColumn(const Dataset& ds, std::string_view match) {
  const Column* col = ds.item_table.Find(match);
  if (!col) return InvalidArgumentError("the item table has no column '" + std::string(match) + "'");
  if ((col->type != ColumnType::kCategorical && col->type != ColumnType::kUInt32) || col->u32.size() < ds.num_items()) {
    return InvalidArgumentError("match column '" + std::string(match) + "' is not a categorical or u32 column of " +
                                std::to_string(ds.num_items()) + " rows");
  }
  return col;
}

// A counter reads its action's per-user index when the sample set has one (a one-action mask).
StatusOr<DenseReader> ResolveCounter(const Dataset& ds, const FieldSpec& f, std::string_view action_name,
                                     const SampleSet* samples) {
  auto action = ParseAction(action_name);
  if (!action.ok()) return action.status();
  if (f.window_s == 0) return InvalidArgumentError("window_s is 0");
  DenseReader r;
  r.is_counter = true;
  RecentCounter& c = r.counter;
  const EventColumns& ev = ds.events;
  c.user = ev.user.data();
  c.item = ev.item.data();
  c.time = ev.time.data();
  c.action = ev.action.data();
  c.user_offsets = ds.user_offsets.data();
  c.act = static_cast<uint8_t>(*action);
  c.window_s = f.window_s;
  c.inv_decay = f.decay_s > 0.f ? 1.0 / static_cast<double>(f.decay_s) : 0.0;
  if (f.match == "item") {
    c.match_item = true;
  } else if (!f.match.empty()) {
    auto col = MatchColumn(ds, f.match);
    if (!col.ok()) return col.status();
    c.match_values = (*col)->u32.data();
    c.zero_matches_nothing = (*col)->type == ColumnType::kCategorical;
  }
  if (samples) {
    for (const HistoryIndex& h : samples->history) {
      if (h.actions == ActionBit(*action) && h.user_offsets.size() == uint64_t{ds.num_users()} + 1) c.index = &h;
    }
  }
  return r;
}

StatusOr<DenseReader> ResolveDense(const Dataset& ds, const FieldSpec& f, const SampleSet* samples) {
  auto src = ParseSource(f.source);
  if (!src || !SourceFitsKind(src->kind, FieldKind::kDense)) return InvalidArgumentError("bad source " + f.source);
  if (src->kind == SourceKind::kRecent) return ResolveCounter(ds, f, src->column, samples);
  const Table& table = src->kind == SourceKind::kUserColumn   ? ds.user_table
                       : src->kind == SourceKind::kItemColumn ? ds.item_table
                                                              : ds.event_table;
  const size_t need = src->kind == SourceKind::kUserColumn   ? ds.num_users()
                      : src->kind == SourceKind::kItemColumn ? ds.num_items()
                                                             : ds.num_events();
  const Column* col = table.Find(src->column);
  if (!col) return InvalidArgumentError("no column " + std::string(src->column));
  DenseReader r;
  r.row_of = RowOf(ds, src->kind);
  if (col->type == ColumnType::kFloat32 && col->f32.size() >= need) {
    r.f32 = col->f32.data();
  } else if (col->type == ColumnType::kUInt32 && col->u32.size() >= need) {
    r.u32 = col->u32.data();
  } else {
    return InvalidArgumentError("column " + col->name + " is not a scalar f32/u32 column of " + std::to_string(need) + " rows");
  }
  if (src->kind == SourceKind::kEventColumn && src->column.size() >= 2 && src->column[0] == 'I') {
    uint32_t k = 0;
    bool digits = true;
    for (char c : src->column.substr(1)) {
      digits = digits && c >= '0' && c <= '9';
      if (digits) k = k * 10 + static_cast<uint32_t>(c - '0');
      if (k > 32) digits = false;
    }
    const Column* mask = ds.event_table.Find(kMissingMaskColumn);
    if (digits && k >= 1 && k <= 32 && mask && mask->type == ColumnType::kUInt32 && mask->u32.size() >= need) {
      r.missing = mask->u32.data();
      r.missing_bit = k - 1;
    }
  }
  return r;
}

}  // namespace
}  // namespace features_internal

namespace {

constexpr std::string_view kFieldKindNames[] = {"categorical", "multi_hot", "dense", "sequence", "text"};
constexpr std::string_view kTableKindNames[] = {"fixed", "hashed", "dynamic"};
constexpr std::string_view kPoolingNames[] = {"sum", "mean"};
constexpr std::string_view kTargetRuleNames[] = {"follows", "value_ge", "action"};
constexpr std::string_view kNormalizeNames[] = {"none", "log1p", "standard"};
constexpr std::string_view kEvictionNames[] = {"lfu", "lru"};
constexpr std::string_view kOptimizerNames[] = {"", "adagrad", "adam", "sgd", "ftrl"};

// A text field is a dense embedding: wider than this is a sparse feature column read by mistake
// (libFM's indices), whose dense batch would not fit in memory.
constexpr uint64_t kMaxTextWidth = uint64_t{1} << 16;
// An implicit table on a u32 column given no rows (buckets) is fixed, one row per value, up to
// this many rows (taxonomy node IDs, small codes); wider ranges (hashed IDs) must give rows.
constexpr uint64_t kMaxImplicitFixedRows = uint64_t{1} << 20;
// Standardisation never divides by less (a constant column stays finite).
constexpr float kMinStddev = 1e-6f;
// MakeSamples labels users on a pool from this many events on; below it a pool costs more.
constexpr size_t kParallelMinEvents = size_t{1} << 20;
// A counter's action gets a per-user index (8 bytes per event of it) when it is at most
// 1/kCounterIndexMaxShare of the log; denser actions (impressions) are walked in the log itself.
constexpr uint64_t kCounterIndexMaxShare = 4;

template <size_t N>
std::string JoinNames(const std::string_view (&names)[N]) {
  std::string out;
  for (size_t i = 0; i < N; ++i) {
    if (names[i].empty()) continue;
    if (!out.empty()) out += ", ";
    out += names[i];
  }
  return out;
}

template <typename E, size_t N>
std::optional<E> ParseName(std::string_view s, const std::string_view (&names)[N]) {
  for (size_t i = 0; i < N; ++i) {
    if (names[i] == s) return static_cast<E>(i);
  }
  return std::nullopt;
}

template <size_t N>
bool OneOf(std::string_view s, const std::string_view (&names)[N]) {
  return std::find(std::begin(names), std::end(names), s) != std::end(names);
}

std::string Quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

std::string FieldLabel(std::string_view prefix, size_t i, std::string_view name) {
  return std::string(prefix) + "fields[" + std::to_string(i) + "] " + Quoted(name);
}
std::string TableLabel(std::string_view prefix, size_t i, std::string_view name) {
  return std::string(prefix) + "tables[" + std::to_string(i) + "] " + Quoted(name);
}
std::string TargetLabel(std::string_view prefix, size_t i, std::string_view name) {
  return std::string(prefix) + "targets[" + std::to_string(i) + "] " + Quoted(name);
}

Status Invalid(const std::string& label, std::string_view message) {
  return InvalidArgumentError(label + ": " + std::string(message));
}

std::string SourceShapes(FieldKind k) {
  switch (k) {
    case FieldKind::kCategorical:
      return "user, item, scene, position, hour, weekday, user.<col>, item.<col> or event.<col>";
    case FieldKind::kMultiHot:
      return "user.<col>, item.<col> or event.<col>";
    case FieldKind::kDense:
      return "user.<col>, item.<col>, event.<col> or recent.<action>";
    case FieldKind::kSequence:
      return "history.item or history.<item col>";
    case FieldKind::kText:
      return "user.<col> or item.<col>";
  }
  return "";
}

// Shape checks shared by every reader of a spec (config, JSON, code): names, kinds, sources,
// declared and used tables, target references.
Status ValidateSpec(const FeatureSpec& spec, std::string_view prefix) {
  if (spec.sample_actions == 0) return InvalidArgumentError(std::string(prefix) + "samples: no sample actions");
  if (spec.fields.empty()) return InvalidArgumentError(std::string(prefix) + "fields: the spec has no fields");
  std::set<std::string, std::less<>> names;
  for (size_t i = 0; i < spec.tables.size(); ++i) {
    const TableSpec& t = spec.tables[i];
    const std::string label = TableLabel(prefix, i, t.name);
    if (t.name.empty()) return Invalid(label, "missing name");
    if (!names.insert(t.name).second) return Invalid(label, "duplicate table name");
    if (static_cast<size_t>(t.kind) >= std::size(kTableKindNames)) return Invalid(label, "unknown kind");
    if (t.dim <= 0) return Invalid(label, "dim must be positive, got " + std::to_string(t.dim));
    if (!(t.init_std >= 0.f) || !std::isfinite(t.init_std)) return Invalid(label, "init_std must be >= 0");
    if (t.kind == TableKind::kHashed && t.rows == 0 && !t.kind_from_source) {
      return Invalid(label, "a hashed table needs rows (its number of buckets)");
    }
    if (!OneOf(t.eviction, kEvictionNames)) {
      return Invalid(label, "unknown eviction " + Quoted(t.eviction) + " (" + JoinNames(kEvictionNames) + ")");
    }
    if (!OneOf(t.optimizer, kOptimizerNames)) {
      return Invalid(label, "unknown optimizer " + Quoted(t.optimizer) + " (" + JoinNames(kOptimizerNames) + ")");
    }
    if (t.admit_after == 0) return Invalid(label, "admit_after must be >= 1");
  }
  std::vector<bool> table_used(spec.tables.size(), false);
  names.clear();
  for (size_t i = 0; i < spec.fields.size(); ++i) {
    const FieldSpec& f = spec.fields[i];
    const std::string label = FieldLabel(prefix, i, f.name);
    if (f.name.empty()) return Invalid(label, "missing name");
    if (!names.insert(f.name).second) return Invalid(label, "duplicate field name");
    if (static_cast<size_t>(f.kind) >= std::size(kFieldKindNames)) return Invalid(label, "unknown kind");
    auto src = features_internal::ParseSource(f.source);
    if (!src) {
      return Invalid(label, "unknown source " + Quoted(f.source) + " (a " + std::string(FieldKindName(f.kind)) +
                                " field reads " + SourceShapes(f.kind) + ")");
    }
    if (!features_internal::SourceFitsKind(src->kind, f.kind)) {
      return Invalid(label, "source " + Quoted(f.source) + " does not fit kind " + std::string(FieldKindName(f.kind)) +
                                " (it reads " + SourceShapes(f.kind) + ")");
    }
    if (f.is_sparse()) {
      if (f.table.empty()) return Invalid(label, "a sparse field needs a table");
      const TableSpec* t = spec.FindTable(f.table);
      if (!t) return Invalid(label, "table " + Quoted(f.table) + " is not declared");
      table_used[static_cast<size_t>(t - spec.tables.data())] = true;
    } else if (!f.table.empty()) {
      return Invalid(label, "a " + std::string(FieldKindName(f.kind)) + " field has no embedding table");
    }
    if (!OneOf(f.normalize, kNormalizeNames)) {
      return Invalid(label, "unknown normalize " + Quoted(f.normalize) + " (" + JoinNames(kNormalizeNames) + ")");
    }
    if (f.kind != FieldKind::kDense && f.normalize != "none") return Invalid(label, "only dense fields are normalised");
    if (f.kind != FieldKind::kSequence && !f.history_actions.empty()) {
      return Invalid(label, "history_actions belongs to sequence fields");
    }
    if (f.kind != FieldKind::kSequence && f.max_age_s != 0) return Invalid(label, "max_age_s belongs to sequence fields");
    if (src->kind == features_internal::SourceKind::kRecent) {
      auto action = ParseAction(src->column);
      if (!action.ok()) return Invalid(label, "source " + Quoted(f.source) + ": " + action.status().message());
      if (f.window_s == 0) return Invalid(label, "a recent.<action> counter needs window_s > 0 (seconds)");
      if (!(f.decay_s >= 0.f) || !std::isfinite(f.decay_s)) {
        return Invalid(label, "decay_s must be > 0 (seconds), got " + std::to_string(f.decay_s));
      }
    } else if (f.window_s != 0 || !f.match.empty() || f.decay_s != 0.f) {
      return Invalid(label, "window_s, match and decay_s belong to recent.<action> fields");
    }
    if (f.width < 0 || (f.kind != FieldKind::kText && f.width != 1)) {
      return Invalid(label, "width " + std::to_string(f.width) + " is wrong for a " +
                                std::string(FieldKindName(f.kind)) + " field");
    }
    if (f.mean.size() != f.stddev.size() || (!f.mean.empty() && f.mean.size() != static_cast<size_t>(f.width))) {
      return Invalid(label, "mean and stddev must both have width entries");
    }
  }
  for (size_t i = 0; i < spec.tables.size(); ++i) {
    if (!table_used[i]) return Invalid(TableLabel(prefix, i, spec.tables[i].name), "no field uses this table");
  }
  names.clear();
  for (size_t i = 0; i < spec.targets.size(); ++i) {
    const TargetSpec& t = spec.targets[i];
    const std::string label = TargetLabel(prefix, i, t.name);
    if (t.name.empty()) return Invalid(label, "missing name");
    if (!names.insert(t.name).second) return Invalid(label, "duplicate target name");
    if (static_cast<size_t>(t.rule) >= std::size(kTargetRuleNames)) return Invalid(label, "unknown rule");
    if (static_cast<int>(t.action) >= kNumActions) return Invalid(label, "unknown action");
    if (!std::isfinite(t.threshold)) return Invalid(label, "threshold must be finite");
    if (!(t.weight >= 0.f) || !std::isfinite(t.weight)) return Invalid(label, "weight must be >= 0");
    if (!t.given.empty()) {
      int g = spec.TargetIndex(t.given);
      if (g < 0 || static_cast<size_t>(g) >= i) {
        return Invalid(label, "given " + Quoted(t.given) + " must name an earlier target");
      }
    }
  }
  return Status::Ok();
}

std::vector<std::string> ActionNames(ActionMask mask) {
  std::vector<std::string> out;
  for (int a = 0; a < kNumActions; ++a) {
    if ((mask >> a) & 1u) out.emplace_back(ActionName(static_cast<Action>(a)));
  }
  return out;
}

// ---- FromConfig ----------------------------------------------------------------------------

Status CheckKeys(Config& cfg, const std::string& path, std::initializer_list<std::string_view> known,
                 const std::string& label) {
  for (const std::string& k : cfg.KeysOf(path)) {
    if (std::find(known.begin(), known.end(), k) == known.end()) {
      std::string list;
      for (std::string_view n : known) list += (list.empty() ? "" : ", ") + std::string(n);
      return Invalid(label, "unknown key " + Quoted(k) + " (known: " + list + ")");
    }
  }
  return Status::Ok();
}

Status ReadActions(Config& cfg, const std::string& key, const std::string& label, std::vector<Action>* out) {
  std::vector<std::string> names;
  ADREC_RETURN_IF_ERROR(cfg.Get(key, &names));
  out->clear();
  for (const std::string& n : names) {
    auto a = ParseAction(n);
    if (!a.ok()) return Invalid(label, a.status().message());
    out->push_back(*a);
  }
  return Status::Ok();
}

Status ReadTable(Config& cfg, const std::string& base, const std::string& label, TableSpec* t) {
  ADREC_RETURN_IF_ERROR(CheckKeys(cfg, base,
                                  {"name", "kind", "rows", "dim", "init_std", "admit_after", "max_rows", "eviction",
                                   "ttl_steps", "optimizer"},
                                  label));
  std::string kind = std::string(TableKindName(t->kind));
  ADREC_RETURN_IF_ERROR(cfg.Get(base + ".kind", &kind));
  auto k = ParseName<TableKind>(kind, kTableKindNames);
  if (!k) return Invalid(label, "unknown kind " + Quoted(kind) + " (" + JoinNames(kTableKindNames) + ")");
  t->kind = *k;
  ADREC_RETURN_IF_ERROR(cfg.Get(base + ".rows", &t->rows));
  ADREC_RETURN_IF_ERROR(cfg.Get(base + ".dim", &t->dim));
  ADREC_RETURN_IF_ERROR(cfg.Get(base + ".init_std", &t->init_std));
  ADREC_RETURN_IF_ERROR(cfg.Get(base + ".optimizer", &t->optimizer));
  // Admission, capacity, eviction and expiry are what a dynamic table adds; elsewhere a typo.
  for (std::string_view key : {"admit_after", "max_rows", "eviction", "ttl_steps"}) {
    if (cfg.Has(base + "." + std::string(key)) && t->kind != TableKind::kDynamic) {
      return Invalid(label, Quoted(key) + " applies to dynamic tables only");
    }
  }
  ADREC_RETURN_IF_ERROR(cfg.Get(base + ".admit_after", &t->admit_after));
  ADREC_RETURN_IF_ERROR(cfg.Get(base + ".max_rows", &t->max_rows));
  ADREC_RETURN_IF_ERROR(cfg.Get(base + ".eviction", &t->eviction));
  ADREC_RETURN_IF_ERROR(cfg.Get(base + ".ttl_steps", &t->ttl_steps));
  return Status::Ok();
}

// What a field's own keys say about its table (the shorthand of fields without `table`).
struct FieldTableKeys {
  std::optional<int> dim;
  std::optional<std::string> table_kind;
  std::optional<uint64_t> rows;
};

Status ReadField(Config& cfg, const std::string& base, const std::string& label, FieldSpec* f,
                 FieldTableKeys* table_keys) {
  ADREC_RETURN_IF_ERROR(CheckKeys(cfg, base,
                                  {"name", "kind", "source", "table", "pooling", "max_len", "history_actions",
                                   "max_age_s", "normalize", "window_s", "match", "decay_s", "dim", "table_kind",
                                   "rows", "buckets"},
                                  label));
  std::string kind = "categorical";  // the common case needs no kind
  ADREC_RETURN_IF_ERROR(cfg.Get(base + ".kind", &kind));
  auto k = ParseName<FieldKind>(kind, kFieldKindNames);
  if (!k) return Invalid(label, "unknown kind " + Quoted(kind) + " (" + JoinNames(kFieldKindNames) + ")");
  f->kind = *k;
  ADREC_RETURN_IF_ERROR(cfg.Require(base + ".source", &f->source));
  auto has = [&](std::string_view key) { return cfg.Has(base + "." + std::string(key)); };
  const bool list = f->kind == FieldKind::kMultiHot || f->kind == FieldKind::kSequence;
  for (std::string_view key : {"table", "dim", "table_kind", "rows", "buckets"}) {
    if (has(key) && !f->is_sparse()) return Invalid(label, Quoted(key) + " applies to sparse fields only");
  }
  for (std::string_view key : {"pooling", "max_len"}) {
    if (has(key) && !list) return Invalid(label, Quoted(key) + " applies to multi_hot and sequence fields only");
  }
  if (has("history_actions") && f->kind != FieldKind::kSequence) {
    return Invalid(label, "'history_actions' applies to sequence fields only");
  }
  if (has("normalize") && f->kind != FieldKind::kDense) return Invalid(label, "'normalize' applies to dense fields only");
  if (has("max_age_s") && f->kind != FieldKind::kSequence) {
    return Invalid(label, "'max_age_s' applies to sequence fields only");
  }
  // Real-time counters: the window is what a counter is, so it has no default.
  const bool counter = f->source.starts_with("recent.");
  for (std::string_view key : {"window_s", "match", "decay_s"}) {
    if (has(key) && !counter) return Invalid(label, Quoted(key) + " applies to recent.<action> fields only");
  }
  if (counter && !has("window_s")) return Invalid(label, "a recent.<action> counter needs 'window_s' (seconds, > 0)");
  ADREC_RETURN_IF_ERROR(cfg.Get(base + ".max_age_s", &f->max_age_s));
  ADREC_RETURN_IF_ERROR(cfg.Get(base + ".window_s", &f->window_s));
  if (has("window_s") && f->window_s == 0) return Invalid(label, "'window_s' must be > 0 (seconds)");
  ADREC_RETURN_IF_ERROR(cfg.Get(base + ".match", &f->match));
  if (has("match") && f->match.empty()) {
    return Invalid(label, "'match' is empty (\"item\" or an item column, e.g. \"cat3\")");
  }
  if (has("decay_s")) {
    ADREC_RETURN_IF_ERROR(cfg.Get(base + ".decay_s", &f->decay_s));
    if (!(f->decay_s > 0.f) || !std::isfinite(f->decay_s)) {
      return Invalid(label, "'decay_s' must be > 0 (seconds), got " + std::to_string(f->decay_s));
    }
  }
  if (has("rows") && has("buckets")) return Invalid(label, "give 'rows' or 'buckets', not both");

  ADREC_RETURN_IF_ERROR(cfg.Get(base + ".table", &f->table));
  std::string pooling = "mean";
  ADREC_RETURN_IF_ERROR(cfg.Get(base + ".pooling", &pooling));
  auto p = ParseName<Pooling>(pooling, kPoolingNames);
  if (!p) return Invalid(label, "unknown pooling " + Quoted(pooling) + " (" + JoinNames(kPoolingNames) + ")");
  f->pooling = *p;
  ADREC_RETURN_IF_ERROR(cfg.Get(base + ".max_len", &f->max_len));
  ADREC_RETURN_IF_ERROR(ReadActions(cfg, base + ".history_actions", label, &f->history_actions));
  if (has("history_actions") && f->history_actions.empty()) return Invalid(label, "history_actions is empty");
  ADREC_RETURN_IF_ERROR(cfg.Get(base + ".normalize", &f->normalize));
  if (has("dim")) {
    int dim = 0;
    ADREC_RETURN_IF_ERROR(cfg.Get(base + ".dim", &dim));
    table_keys->dim = dim;
  }
  if (has("table_kind")) {
    std::string tk;
    ADREC_RETURN_IF_ERROR(cfg.Get(base + ".table_kind", &tk));
    table_keys->table_kind = tk;
  }
  for (std::string_view key : {"rows", "buckets"}) {
    if (!has(key)) continue;
    uint64_t rows = 0;
    ADREC_RETURN_IF_ERROR(cfg.Get(base + "." + std::string(key), &rows));
    table_keys->rows = rows;
  }
  return Status::Ok();
}

Status ReadTarget(Config& cfg, const std::string& base, const std::string& label, TargetSpec* t) {
  ADREC_RETURN_IF_ERROR(CheckKeys(cfg, base, {"name", "rule", "action", "threshold", "given", "weight"}, label));
  std::string rule = "follows";
  ADREC_RETURN_IF_ERROR(cfg.Get(base + ".rule", &rule));
  auto r = ParseName<TargetRule>(rule, kTargetRuleNames);
  if (!r) return Invalid(label, "unknown rule " + Quoted(rule) + " (" + JoinNames(kTargetRuleNames) + ")");
  t->rule = *r;
  const bool has_action = cfg.Has(base + ".action"), has_threshold = cfg.Has(base + ".threshold");
  if (t->rule == TargetRule::kValueAtLeast) {
    if (has_action) return Invalid(label, "rule value_ge reads the event's value, not an action");
    if (!has_threshold) return Invalid(label, "rule value_ge needs a threshold");
  } else {
    if (!has_action) return Invalid(label, "rule " + rule + " needs an action");
    if (has_threshold) return Invalid(label, "threshold applies to rule value_ge only");
  }
  if (has_action) {
    std::string action;
    ADREC_RETURN_IF_ERROR(cfg.Get(base + ".action", &action));
    auto a = ParseAction(action);
    if (!a.ok()) return Invalid(label, a.status().message());
    t->action = *a;
  }
  ADREC_RETURN_IF_ERROR(cfg.Get(base + ".threshold", &t->threshold));
  ADREC_RETURN_IF_ERROR(cfg.Get(base + ".given", &t->given));
  ADREC_RETURN_IF_ERROR(cfg.Get(base + ".weight", &t->weight));
  return Status::Ok();
}

// Fixed for sources whose values are a known small range (IDs, scene, time parts); a column's
// kind is decided by Bind (fixed when it has a vocabulary).
bool SourceHasFixedRange(features_internal::SourceKind k) {
  using features_internal::SourceKind;
  return k == SourceKind::kUser || k == SourceKind::kItem || k == SourceKind::kScene ||
         k == SourceKind::kPosition || k == SourceKind::kHour || k == SourceKind::kWeekday ||
         k == SourceKind::kHistoryItem;
}

}  // namespace

std::string_view FieldKindName(FieldKind k) {
  const auto i = static_cast<size_t>(k);
  return i < std::size(kFieldKindNames) ? kFieldKindNames[i] : "unknown";
}

std::string_view TableKindName(TableKind k) {
  const auto i = static_cast<size_t>(k);
  return i < std::size(kTableKindNames) ? kTableKindNames[i] : "unknown";
}

StatusOr<FeatureSpec> FeatureSpec::FromConfig(Config& cfg, std::string_view section) {
  const std::string sec(section);
  const std::string prefix = cfg.source() + ": " + sec + ".";
  if (!cfg.Has(sec)) return InvalidArgumentError(cfg.source() + ": missing section [" + sec + "]");
  ADREC_RETURN_IF_ERROR(CheckKeys(cfg, sec, {"samples", "tables", "fields", "targets"}, cfg.source() + ": [" + sec + "]"));
  FeatureSpec spec;
  if (cfg.Has(sec + ".samples")) {
    std::vector<Action> samples;
    ADREC_RETURN_IF_ERROR(ReadActions(cfg, sec + ".samples", prefix + "samples", &samples));
    if (samples.empty()) return InvalidArgumentError(prefix + "samples: the list is empty");
    spec.sample_actions = 0;
    for (Action a : samples) spec.sample_actions |= ActionBit(a);
  }

  const size_t num_tables = cfg.ArraySize(sec + ".tables");
  for (size_t i = 0; i < num_tables; ++i) {
    const std::string base = sec + ".tables[" + std::to_string(i) + "]";
    TableSpec t;
    ADREC_RETURN_IF_ERROR(cfg.Require(base + ".name", &t.name));
    ADREC_RETURN_IF_ERROR(ReadTable(cfg, base, TableLabel(prefix, i, t.name), &t));
    if (spec.FindTable(t.name)) return Invalid(TableLabel(prefix, i, t.name), "duplicate table name");
    spec.tables.push_back(std::move(t));
  }

  const size_t num_fields = cfg.ArraySize(sec + ".fields");
  std::vector<FieldTableKeys> table_keys(num_fields);
  std::vector<bool> implicit_table(num_fields, false);  // the field declared (or took) its own table
  std::set<std::string, std::less<>> field_names;
  for (size_t i = 0; i < num_fields; ++i) {
    const std::string base = sec + ".fields[" + std::to_string(i) + "]";
    FieldSpec f;
    ADREC_RETURN_IF_ERROR(cfg.Require(base + ".name", &f.name));
    const std::string label = FieldLabel(prefix, i, f.name);
    if (!field_names.insert(f.name).second) return Invalid(label, "duplicate field name");
    ADREC_RETURN_IF_ERROR(ReadField(cfg, base, label, &f, &table_keys[i]));
    auto src = features_internal::ParseSource(f.source);
    if (!src) {
      return Invalid(label, "unknown source " + Quoted(f.source) + " (a " + std::string(FieldKindName(f.kind)) +
                                " field reads " + SourceShapes(f.kind) + ")");
    }
    spec.fields.push_back(std::move(f));
  }

  // Pass 1: fields without `table` declare one named after themselves (unless declared
  // explicitly), so pass 2 can resolve references to them in any order.
  for (size_t i = 0; i < spec.fields.size(); ++i) {
    FieldSpec& f = spec.fields[i];
    if (!f.is_sparse() || !f.table.empty()) continue;
    const FieldTableKeys& keys = table_keys[i];
    const std::string label = FieldLabel(prefix, i, f.name);
    f.table = f.name;
    implicit_table[i] = true;
    if (const TableSpec* existing = spec.FindTable(f.name)) {
      if (keys.table_kind || keys.rows) {
        return Invalid(label, "table " + Quoted(f.name) + " is declared in [[" + sec +
                                  ".tables]]; set its kind and rows there");
      }
      if (keys.dim && *keys.dim != existing->dim) {
        return Invalid(label, "dim " + std::to_string(*keys.dim) + " differs from table " + Quoted(f.name) +
                                  "'s dim " + std::to_string(existing->dim));
      }
      continue;
    }
    TableSpec t;
    t.name = f.name;
    if (keys.dim) t.dim = *keys.dim;
    if (keys.rows) t.rows = *keys.rows;
    if (keys.table_kind) {
      auto k = ParseName<TableKind>(*keys.table_kind, kTableKindNames);
      if (!k) {
        return Invalid(label, "unknown table_kind " + Quoted(*keys.table_kind) + " (" + JoinNames(kTableKindNames) + ")");
      }
      t.kind = *k;
      if (t.kind == TableKind::kHashed && t.rows == 0) return Invalid(label, "a hashed table needs rows (its number of buckets)");
    } else if (SourceHasFixedRange(features_internal::ParseSource(f.source)->kind)) {
      t.kind = TableKind::kFixed;
    } else {
      t.kind = TableKind::kHashed;
      t.kind_from_source = true;
    }
    spec.tables.push_back(std::move(t));
  }
  // Pass 2: fields naming a table share it, so their dims must agree with it.
  for (size_t i = 0; i < spec.fields.size(); ++i) {
    FieldSpec& f = spec.fields[i];
    const FieldTableKeys& keys = table_keys[i];
    if (!f.is_sparse() || implicit_table[i]) continue;
    const std::string label = FieldLabel(prefix, i, f.name);
    const TableSpec* t = spec.FindTable(f.table);
    if (!t) {
      return Invalid(label, "table " + Quoted(f.table) + " is not declared (declare it in [[" + sec +
                                ".tables]] or as a field without 'table')");
    }
    if (keys.table_kind || keys.rows) {
      return Invalid(label, "'table_kind' and 'rows' declare a field's own table; table " + Quoted(f.table) +
                                " is declared elsewhere");
    }
    if (keys.dim && *keys.dim != t->dim) {
      return Invalid(label, "dim " + std::to_string(*keys.dim) + " differs from table " + Quoted(f.table) +
                                "'s dim " + std::to_string(t->dim) + " (fields sharing a table share its dim)");
    }
  }

  const size_t num_targets = cfg.ArraySize(sec + ".targets");
  for (size_t i = 0; i < num_targets; ++i) {
    const std::string base = sec + ".targets[" + std::to_string(i) + "]";
    TargetSpec t;
    ADREC_RETURN_IF_ERROR(cfg.Require(base + ".name", &t.name));
    ADREC_RETURN_IF_ERROR(ReadTarget(cfg, base, TargetLabel(prefix, i, t.name), &t));
    spec.targets.push_back(std::move(t));
  }
  ADREC_RETURN_IF_ERROR(ValidateSpec(spec, prefix));
  return spec;
}

// ---- JSON ----------------------------------------------------------------------------------

nlohmann::json FeatureSpec::ToJson() const {
  nlohmann::json j;
  j["samples"] = ActionNames(sample_actions);
  j["tables"] = nlohmann::json::array();
  for (const TableSpec& t : tables) {
    j["tables"].push_back({{"name", t.name},
                           {"kind", TableKindName(t.kind)},
                           {"rows", t.rows},
                           {"dim", t.dim},
                           {"init_std", t.init_std},
                           {"admit_after", t.admit_after},
                           {"max_rows", t.max_rows},
                           {"eviction", t.eviction},
                           {"ttl_steps", t.ttl_steps},
                           {"optimizer", t.optimizer},
                           {"kind_from_source", t.kind_from_source}});
  }
  j["fields"] = nlohmann::json::array();
  for (const FieldSpec& f : fields) {
    nlohmann::json h = nlohmann::json::array();
    for (Action a : f.history_actions) h.push_back(ActionName(a));
    nlohmann::json field = {{"name", f.name},
                            {"kind", FieldKindName(f.kind)},
                            {"source", f.source},
                            {"table", f.table},
                            {"pooling", kPoolingNames[static_cast<size_t>(f.pooling)]},
                            {"max_len", f.max_len},
                            {"history_actions", h},
                            {"normalize", f.normalize},
                            {"width", f.width},
                            {"mean", f.mean},
                            {"stddev", f.stddev}};
    // Time-aware keys only when set: a spec without them reads as before in older readers.
    if (f.max_age_s) field["max_age_s"] = f.max_age_s;
    if (f.window_s) field["window_s"] = f.window_s;
    if (!f.match.empty()) field["match"] = f.match;
    if (f.decay_s != 0.f) field["decay_s"] = f.decay_s;
    j["fields"].push_back(std::move(field));
  }
  j["targets"] = nlohmann::json::array();
  for (const TargetSpec& t : targets) {
    j["targets"].push_back({{"name", t.name},
                            {"rule", kTargetRuleNames[static_cast<size_t>(t.rule)]},
                            {"action", ActionName(t.action)},
                            {"threshold", t.threshold},
                            {"given", t.given},
                            {"weight", t.weight}});
  }
  return j;
}

StatusOr<FeatureSpec> FeatureSpec::FromJson(const nlohmann::json& j) {
  const std::string prefix = "feature spec json: ";
  FeatureSpec spec;
  std::string where = "samples";
  auto enum_of = [&](auto parsed, const std::string& name, std::string_view what) -> Status {
    if (!parsed) return InvalidArgumentError(prefix + where + ": unknown " + std::string(what) + " " + Quoted(name));
    return Status::Ok();
  };
  try {
    spec.sample_actions = 0;
    for (const auto& a : j.at("samples")) {
      auto action = ParseAction(a.get<std::string>());
      if (!action.ok()) return InvalidArgumentError(prefix + where + ": " + action.status().message());
      spec.sample_actions |= ActionBit(*action);
    }
    for (size_t i = 0; i < j.at("tables").size(); ++i) {
      const auto& e = j.at("tables")[i];
      where = "tables[" + std::to_string(i) + "]";
      TableSpec t;
      t.name = e.at("name").get<std::string>();
      const std::string kind = e.at("kind").get<std::string>();
      auto k = ParseName<TableKind>(kind, kTableKindNames);
      ADREC_RETURN_IF_ERROR(enum_of(k, kind, "kind"));
      t.kind = *k;
      t.rows = e.at("rows").get<uint64_t>();
      t.dim = e.at("dim").get<int>();
      t.init_std = e.at("init_std").get<float>();
      t.admit_after = e.at("admit_after").get<uint32_t>();
      t.max_rows = e.at("max_rows").get<uint64_t>();
      t.eviction = e.at("eviction").get<std::string>();
      t.ttl_steps = e.at("ttl_steps").get<uint64_t>();
      t.optimizer = e.at("optimizer").get<std::string>();
      t.kind_from_source = e.value("kind_from_source", false);
      spec.tables.push_back(std::move(t));
    }
    for (size_t i = 0; i < j.at("fields").size(); ++i) {
      const auto& e = j.at("fields")[i];
      where = "fields[" + std::to_string(i) + "]";
      FieldSpec f;
      f.name = e.at("name").get<std::string>();
      const std::string kind = e.at("kind").get<std::string>();
      auto k = ParseName<FieldKind>(kind, kFieldKindNames);
      ADREC_RETURN_IF_ERROR(enum_of(k, kind, "kind"));
      f.kind = *k;
      f.source = e.at("source").get<std::string>();
      f.table = e.at("table").get<std::string>();
      const std::string pooling = e.at("pooling").get<std::string>();
      auto p = ParseName<Pooling>(pooling, kPoolingNames);
      ADREC_RETURN_IF_ERROR(enum_of(p, pooling, "pooling"));
      f.pooling = *p;
      f.max_len = e.at("max_len").get<uint32_t>();
      for (const auto& a : e.at("history_actions")) {
        auto action = ParseAction(a.get<std::string>());
        if (!action.ok()) return InvalidArgumentError(prefix + where + ": " + action.status().message());
        f.history_actions.push_back(*action);
      }
      f.normalize = e.at("normalize").get<std::string>();
      f.max_age_s = e.value("max_age_s", uint32_t{0});  // absent in specs written before them
      f.window_s = e.value("window_s", uint32_t{0});
      f.match = e.value("match", std::string());
      f.decay_s = e.value("decay_s", 0.f);
      f.width = e.at("width").get<int>();
      f.mean = e.at("mean").get<std::vector<float>>();
      f.stddev = e.at("stddev").get<std::vector<float>>();
      spec.fields.push_back(std::move(f));
    }
    for (size_t i = 0; i < j.at("targets").size(); ++i) {
      const auto& e = j.at("targets")[i];
      where = "targets[" + std::to_string(i) + "]";
      TargetSpec t;
      t.name = e.at("name").get<std::string>();
      const std::string rule = e.at("rule").get<std::string>();
      auto r = ParseName<TargetRule>(rule, kTargetRuleNames);
      ADREC_RETURN_IF_ERROR(enum_of(r, rule, "rule"));
      t.rule = *r;
      auto action = ParseAction(e.at("action").get<std::string>());
      if (!action.ok()) return InvalidArgumentError(prefix + where + ": " + action.status().message());
      t.action = *action;
      t.threshold = e.at("threshold").get<float>();
      t.given = e.at("given").get<std::string>();
      t.weight = e.at("weight").get<float>();
      spec.targets.push_back(std::move(t));
    }
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgumentError(prefix + where + ": " + e.what());
  }
  ADREC_RETURN_IF_ERROR(ValidateSpec(spec, prefix));
  return spec;
}

// ---- Bind ----------------------------------------------------------------------------------

namespace {

std::string ColumnList(const Table& t) {
  std::string out;
  for (const Column& c : t.columns) {
    if (!out.empty()) out += ", ";
    out += c.name + " (" + std::string(ColumnTypeName(c.type)) + ")";
  }
  return out.empty() ? "none" : out;
}

const Table* SourceTable(const Dataset& ds, features_internal::SourceKind k, std::string* table_name) {
  using features_internal::SourceKind;
  switch (k) {
    case SourceKind::kUserColumn:
      *table_name = "user";
      return &ds.user_table;
    case SourceKind::kItemColumn:
    case SourceKind::kHistoryColumn:
      *table_name = "item";
      return &ds.item_table;
    case SourceKind::kEventColumn:
      *table_name = "event";
      return &ds.event_table;
    default:
      return nullptr;
  }
}

// What one field's source needs of a fixed table: rows, and whether the values come from a
// vocabulary (what makes an implicit column table fixed rather than hashed).
struct SourceRange {
  uint64_t rows = 0;
  bool has_vocabulary = true;
};

}  // namespace

Status FeatureSpec::Bind(const Dataset& ds) {
  using features_internal::SourceKind;
  const std::string prefix = "feature spec on dataset " + Quoted(ds.info.name) + ": ";
  ADREC_RETURN_IF_ERROR(ValidateSpec(*this, prefix));
  FeatureSpec bound = *this;  // nothing changes unless every field binds
  std::vector<SourceRange> table_range(bound.tables.size(), SourceRange{0, true});
  std::vector<std::string> table_first_field(bound.tables.size());
  for (size_t i = 0; i < bound.fields.size(); ++i) {
    FieldSpec& f = bound.fields[i];
    const std::string label = FieldLabel(prefix, i, f.name);
    const auto src = *features_internal::ParseSource(f.source);
    SourceRange range;
    switch (src.kind) {
      case SourceKind::kUser: range.rows = uint64_t{ds.num_users()} + 1; break;
      case SourceKind::kItem:
      case SourceKind::kHistoryItem: range.rows = uint64_t{ds.num_items()} + 1; break;
      case SourceKind::kScene: range.rows = ds.scenes.size() + 1; break;
      case SourceKind::kPosition: range.rows = 257; break;  // u8 positions 0..255
      case SourceKind::kHour: range.rows = 25; break;
      case SourceKind::kWeekday: range.rows = 8; break;
      case SourceKind::kRecent: {
        f.width = 1;
        if (f.match.empty() || f.match == "item") break;
        const Column* col = ds.item_table.Find(f.match);
        if (!col) {
          return Invalid(label, "match " + Quoted(f.match) + ": the item table has no column " + Quoted(f.match) +
                                    " (columns: " + ColumnList(ds.item_table) + ")");
        }
        if (col->type != ColumnType::kCategorical && col->type != ColumnType::kUInt32) {
          return Invalid(label, "match " + Quoted(f.match) + " is a " + std::string(ColumnTypeName(col->type)) +
                                    " column; a counter matches on a categorical or u32 item column (columns: " +
                                    ColumnList(ds.item_table) + ")");
        }
        break;
      }
      case SourceKind::kUserColumn:
      case SourceKind::kItemColumn:
      case SourceKind::kEventColumn:
      case SourceKind::kHistoryColumn: {
        std::string table_name;
        const Table* table = SourceTable(ds, src.kind, &table_name);
        const Column* col = table->Find(src.column);
        if (!col) {
          return Invalid(label, "unknown source " + Quoted(f.source) + ": the " + table_name + " table has no column " +
                                    Quoted(src.column) + " (columns: " + ColumnList(*table) + ")");
        }
        if (src.kind == SourceKind::kEventColumn && table->rows() != ds.num_events()) {
          return Invalid(label, "source " + Quoted(f.source) + ": the event table has " + std::to_string(table->rows()) +
                                    " rows for " + std::to_string(ds.num_events()) + " events");
        }
        auto wrong_type = [&](std::string_view want) {
          return Invalid(label, "source " + Quoted(f.source) + " is a " + std::string(ColumnTypeName(col->type)) +
                                    " column; a " + std::string(FieldKindName(f.kind)) + " field reads " +
                                    std::string(want) + " (columns: " + ColumnList(*table) + ")");
        };
        switch (f.kind) {
          case FieldKind::kCategorical:
          case FieldKind::kSequence:
            if (col->type == ColumnType::kCategorical) {
              range.rows = uint64_t{col->vocab->size()} + 1;
            } else if (col->type == ColumnType::kUInt32) {
              const uint32_t max = col->u32.empty() ? 0 : *std::max_element(col->u32.begin(), col->u32.end());
              range.rows = uint64_t{max} + 2;
              range.has_vocabulary = false;
            } else {
              return wrong_type("a categorical or u32 column");
            }
            break;
          case FieldKind::kMultiHot:
            if (col->type != ColumnType::kCategoricalList) return wrong_type("a categorical_list column");
            range.rows = uint64_t{col->vocab->size()} + 1;
            break;
          case FieldKind::kDense:
            if (col->type != ColumnType::kFloat32 && col->type != ColumnType::kUInt32) {
              return wrong_type("a f32 or u32 column");
            }
            f.width = 1;
            break;
          case FieldKind::kText: {
            if (col->type != ColumnType::kSparseVector) return wrong_type("a sparse_vector column");
            if (col->u32.empty()) return Invalid(label, "source " + Quoted(f.source) + " has no values");
            const uint64_t width = uint64_t{*std::max_element(col->u32.begin(), col->u32.end())} + 1;
            if (width > kMaxTextWidth) {
              return Invalid(label, "source " + Quoted(f.source) + " has indices up to " + std::to_string(width - 1) +
                                        "; a text field reads a dense embedding of at most " +
                                        std::to_string(kMaxTextWidth) + " values");
            }
            f.width = static_cast<int>(width);
            break;
          }
        }
        break;
      }
    }
    if (!f.mean.empty() && f.mean.size() != static_cast<size_t>(f.width)) {  // fitted on another width
      f.mean.clear();
      f.stddev.clear();
    }
    if (!f.is_sparse()) continue;
    const size_t t = static_cast<size_t>(bound.FindTable(f.table) - bound.tables.data());
    table_range[t].rows = std::max(table_range[t].rows, range.rows);
    table_range[t].has_vocabulary = table_range[t].has_vocabulary && range.has_vocabulary;
    if (table_first_field[t].empty()) table_first_field[t] = FieldLabel("", i, f.name);
  }
  for (size_t t = 0; t < bound.tables.size(); ++t) {
    TableSpec& table = bound.tables[t];
    const std::string label = TableLabel(prefix, t, table.name) + " (of " + table_first_field[t] + ")";
    if (table.kind_from_source) {
      // Vocabulary columns get one row per code; other columns are hashed into the rows given,
      // or, given none, fixed when their value range is small.
      if (table_range[t].has_vocabulary) {
        table.kind = TableKind::kFixed;
      } else if (table.rows > 0) {
        table.kind = TableKind::kHashed;
      } else if (table_range[t].rows <= kMaxImplicitFixedRows) {
        table.kind = TableKind::kFixed;
      } else {
        return Invalid(label, "the source has no vocabulary and values up to " + std::to_string(table_range[t].rows - 2) +
                                  ": give the table rows (hash buckets), or table_kind = \"fixed\" for one row per value");
      }
      table.kind_from_source = false;
    }
    if (table.kind != TableKind::kFixed) continue;
    if (table.rows == 0) {
      table.rows = table_range[t].rows;
    } else if (table.rows < table_range[t].rows) {
      return Invalid(label, "a fixed table of " + std::to_string(table.rows) + " rows; the source needs " +
                                std::to_string(table_range[t].rows));
    }
  }
  *this = std::move(bound);
  return Status::Ok();
}

// ---- Lookups -------------------------------------------------------------------------------

const TableSpec* FeatureSpec::FindTable(std::string_view name) const {
  for (const TableSpec& t : tables) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

std::vector<const FieldSpec*> FeatureSpec::SparseFields() const {
  std::vector<const FieldSpec*> out;
  for (const FieldSpec& f : fields) {
    if (f.is_sparse()) out.push_back(&f);
  }
  return out;
}

std::vector<const FieldSpec*> FeatureSpec::DenseFields() const {
  std::vector<const FieldSpec*> out;
  for (const FieldSpec& f : fields) {
    if (f.kind == FieldKind::kDense) out.push_back(&f);
  }
  return out;
}

std::vector<const FieldSpec*> FeatureSpec::TextFields() const {
  std::vector<const FieldSpec*> out;
  for (const FieldSpec& f : fields) {
    if (f.kind == FieldKind::kText) out.push_back(&f);
  }
  return out;
}

int FeatureSpec::DenseWidth() const {
  int w = 0;
  for (const FieldSpec& f : fields) {
    if (f.kind == FieldKind::kDense) w += f.width;
  }
  return w;
}

int FeatureSpec::TargetIndex(std::string_view name) const {
  for (size_t i = 0; i < targets.size(); ++i) {
    if (targets[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

// ---- Normalisation -------------------------------------------------------------------------

void FeatureSpec::FitNormalization(const Dataset& ds, std::span<const uint64_t> sample_events) {
  for (FieldSpec& f : fields) {
    if (f.kind != FieldKind::kDense || f.normalize != "standard") continue;
    auto dense = features_internal::ResolveDense(ds, f, nullptr);
    if (!dense.ok()) {
      WarnOnce("fit-normalization:" + f.name, "FitNormalization: field '" + f.name + "' is not bound (" +
                                                  dense.status().message() + "); it stays unstandardised");
      continue;
    }
    // Two passes in double: exact enough for millions of samples, no catastrophic cancellation.
    double sum = 0;
    uint64_t n = 0;
    for (uint64_t e : sample_events) {
      if (dense->IsMissing(e)) continue;
      sum += dense->Raw(e);
      ++n;
    }
    const double mean = n ? sum / static_cast<double>(n) : 0.0;
    double sq = 0;
    for (uint64_t e : sample_events) {
      if (dense->IsMissing(e)) continue;
      const double d = dense->Raw(e) - mean;
      sq += d * d;
    }
    const double var = n ? sq / static_cast<double>(n) : 1.0;
    f.mean.assign(1, static_cast<float>(mean));
    f.stddev.assign(1, std::max(kMinStddev, static_cast<float>(std::sqrt(var))));
  }
}

// ---- Samples and labels --------------------------------------------------------------------

namespace {

struct TargetPlan {
  TargetRule rule;
  uint8_t action;
  float threshold;
  int given;  // -1 = always defined
};

// Per-worker scratch of the "follows" rule, O(user's slice) whatever the catalog size: the
// slice's positions grouped by item (in log order within an item), and each position's sample
// slot (kNoSample for events that are not samples of this part).
struct FollowsScratch {
  static constexpr uint64_t kNoSample = ~uint64_t{0};
  std::vector<uint32_t> by_item;
  std::vector<uint64_t> slot;
};

}  // namespace

StatusOr<SampleSet> MakeSamples(const Dataset& ds, const FeatureSpec& spec, const Split* split, SplitPart part) {
  if (split) ADREC_RETURN_IF_ERROR(CheckSplitMatches(*split, ds));
  if (spec.sample_actions == 0) return InvalidArgumentError("MakeSamples: the feature spec has no sample actions");
  const size_t num_targets = spec.targets.size();
  std::vector<TargetPlan> plan;
  for (size_t t = 0; t < num_targets; ++t) {
    const TargetSpec& ts = spec.targets[t];
    int given = -1;
    if (!ts.given.empty()) {
      given = spec.TargetIndex(ts.given);
      if (given < 0 || static_cast<size_t>(given) >= t) {
        return InvalidArgumentError("MakeSamples: target '" + ts.name + "' is given '" + ts.given +
                                    "', which is not an earlier target");
      }
    }
    plan.push_back({ts.rule, static_cast<uint8_t>(ts.action), ts.threshold, given});
  }
  const EventColumns& ev = ds.events;
  const ActionMask sample_mask = spec.sample_actions;
  const auto sample_part = static_cast<uint8_t>(part);
  auto is_sample_action = [&](uint64_t i) { return (sample_mask >> ev.action[i]) & 1u; };
  auto is_sample = [&](uint64_t i) { return is_sample_action(i) && (!split || split->part[i] == sample_part); };

  const uint32_t users = ds.num_users();
  std::unique_ptr<ThreadPool> pool;
  if (ds.num_events() >= kParallelMinEvents) pool = std::make_unique<ThreadPool>(0);
  auto for_users = [&](const std::function<void(size_t, size_t)>& fn) {
    if (pool) pool->ParallelFor(users, fn, 256);
    else fn(0, users);
  };

  // Pass 1 counts each user's samples, so pass 2 writes every user's in place: the output is
  // in dataset order whatever the thread count.
  std::vector<uint64_t> first(uint64_t{users} + 1, 0);
  for_users([&](size_t ub, size_t ue) {
    for (size_t u = ub; u < ue; ++u) {
      auto [b, e] = ds.UserRange(static_cast<uint32_t>(u));
      uint64_t n = 0;
      for (uint64_t i = b; i < e; ++i) n += is_sample(i);
      first[u + 1] = n;
    }
  });
  for (uint32_t u = 0; u < users; ++u) first[u + 1] += first[u];
  SampleSet out;
  const uint64_t total = first[users];
  out.events.resize(total);
  out.labels.assign(total * num_targets, 0.f);
  out.mask.assign(total * num_targets, 1.f);

  const bool any_follows = std::any_of(plan.begin(), plan.end(), [](const TargetPlan& p) { return p.rule == TargetRule::kFollows; });
  for_users([&](size_t ub, size_t ue) {
    FollowsScratch scratch;
    for (size_t u = ub; u < ue; ++u) {
      // Plain variables, not a structured binding: clang < 16 cannot capture bindings in lambdas.
      const auto range = ds.UserRange(static_cast<uint32_t>(u));
      const uint64_t b = range.first, e = range.second;
      const uint64_t s0 = first[u], s1 = first[u + 1];
      if (s0 == s1) continue;
      uint64_t k = s0;
      if (any_follows) scratch.slot.assign(e - b, FollowsScratch::kNoSample);
      for (uint64_t i = b; i < e; ++i) {
        if (!is_sample(i)) continue;
        if (any_follows) scratch.slot[i - b] = k;
        out.events[k++] = i;
      }
      if (any_follows) {
        scratch.by_item.resize(e - b);
        std::iota(scratch.by_item.begin(), scratch.by_item.end(), 0u);
        std::sort(scratch.by_item.begin(), scratch.by_item.end(), [&](uint32_t x, uint32_t y) {
          return ev.item[b + x] != ev.item[b + y] ? ev.item[b + x] < ev.item[b + y] : x < y;
        });
      }
      for (size_t t = 0; t < num_targets; ++t) {
        const TargetPlan& p = plan[t];
        float* label = out.labels.data() + t;
        switch (p.rule) {
          case TargetRule::kValueAtLeast:
            for (uint64_t s = s0; s < s1; ++s) label[s * num_targets] = ev.value[out.events[s]] >= p.threshold;
            break;
          case TargetRule::kAction:
            for (uint64_t s = s0; s < s1; ++s) label[s * num_targets] = ev.action[out.events[s]] == p.action;
            break;
          case TargetRule::kFollows: {
            // Backward over each item's events: a sample's label is whether the target action on
            // its item was seen after it, up to and including the item's next sample event (of
            // any part); `pending` carries that from later events to earlier ones.
            const std::vector<uint32_t>& g = scratch.by_item;
            for (size_t end = g.size(); end > 0;) {
              const uint32_t item = ev.item[b + g[end - 1]];
              bool pending = false;
              for (; end > 0 && ev.item[b + g[end - 1]] == item; --end) {
                const uint64_t i = b + g[end - 1];
                const bool target = ev.action[i] == p.action;
                if (is_sample_action(i)) {
                  const uint64_t slot = scratch.slot[i - b];
                  if (slot != FollowsScratch::kNoSample) label[slot * num_targets] = pending;
                  pending = target;
                } else if (target) {
                  pending = true;
                }
              }
            }
            break;
          }
        }
        if (p.given >= 0) {
          const auto g = static_cast<size_t>(p.given);
          for (uint64_t s = s0; s < s1; ++s) {
            const size_t row = s * num_targets;
            out.mask[row + t] = (out.labels[row + g] == 1.f && out.mask[row + g] == 1.f) ? 1.f : 0.f;
          }
        }
      }
    }
  });

  out.history_actions = split && split->positive_mask ? split->positive_mask : DefaultPositiveMask(ds);
  // Index masks: each sequence field's, and each counter's action when it is sparse enough that
  // walking the log back would mostly skip other events (clicks among impressions).
  std::vector<ActionMask> index_masks;
  std::vector<uint64_t> action_count;
  for (const FieldSpec& f : spec.fields) {
    if (f.kind == FieldKind::kSequence) {
      index_masks.push_back(features_internal::HistoryMask(f, out.history_actions));
      continue;
    }
    auto src = features_internal::ParseSource(f.source);
    if (f.kind != FieldKind::kDense || !src || src->kind != features_internal::SourceKind::kRecent) continue;
    auto action = ParseAction(src->column);
    if (!action.ok()) continue;
    if (action_count.empty()) {
      action_count.assign(kNumActions, 0);
      for (uint8_t a : ev.action) ++action_count[a < kNumActions ? a : 0];
    }
    if (action_count[static_cast<size_t>(*action)] <= ds.num_events() / kCounterIndexMaxShare) {
      index_masks.push_back(ActionBit(*action));
    }
  }
  for (const ActionMask mask : index_masks) {
    if (std::any_of(out.history.begin(), out.history.end(), [&](const HistoryIndex& h) { return h.actions == mask; })) {
      continue;
    }
    HistoryIndex h;
    h.actions = mask;
    h.user_offsets.resize(uint64_t{users} + 1);
    for (uint32_t u = 0; u < users; ++u) {
      h.user_offsets[u] = h.events.size();
      auto [b, e] = ds.UserRange(u);
      for (uint64_t i = b; i < e; ++i) {
        if ((mask >> ev.action[i]) & 1u) h.events.push_back(i);
      }
    }
    h.user_offsets[users] = h.events.size();
    h.events.shrink_to_fit();
    out.history.push_back(std::move(h));
  }
  return out;
}

// ---- Batches -------------------------------------------------------------------------------

void Batch::Clear() {
  size = 0;
  for (SparseFieldBatch& f : sparse) {
    f.ids.clear();
    f.offsets.clear();
  }
  dense.clear();
  for (auto& t : text) t.clear();
  labels.clear();
  mask.clear();
  event.clear();
  user.clear();
  scene.clear();
  truth.clear();
}

namespace {

using features_internal::DenseReader;
using features_internal::SourceKind;

enum class Normalize : uint8_t { kNone, kLog1p, kStandard };

// A field's source resolved to column pointers once per batch, so the per-sample loops only
// index arrays. `ok` false (an unbound spec) makes the field read empty/zero values.
struct ResolvedSparse {
  bool ok = false;
  FieldKind kind = FieldKind::kCategorical;
  SourceKind source = SourceKind::kUser;
  const uint32_t* row_of = nullptr;   // column row of a sample event (nullptr = the event)
  const uint32_t* values = nullptr;   // column codes / list values / history item column
  const uint64_t* offsets = nullptr;  // list columns
  const HistoryIndex* history = nullptr;  // nullptr = walk the user's log back
  ActionMask history_mask = 0;
  uint32_t max_len = 0;
  uint32_t max_age_s = 0;  // sequence: 0 = no age limit
};

struct ResolvedDense {
  bool ok = false;
  DenseReader reader;
  Normalize normalize = Normalize::kNone;
  float mean = 0.f, inv_std = 1.f;
};

struct ResolvedText {
  bool ok = false;
  const uint32_t* row_of = nullptr;
  const uint64_t* offsets = nullptr;
  const uint32_t* index = nullptr;
  const float* value = nullptr;
  size_t width = 0;
};

struct ResolvedSpec {
  std::vector<ResolvedSparse> sparse;
  std::vector<ResolvedDense> dense;
  std::vector<ResolvedText> text;
  size_t dense_width = 0;
};

const Column* FindColumn(const Dataset& ds, SourceKind k, std::string_view name) {
  switch (k) {
    case SourceKind::kUserColumn: return ds.user_table.Find(name);
    case SourceKind::kItemColumn:
    case SourceKind::kHistoryColumn: return ds.item_table.Find(name);
    case SourceKind::kEventColumn: return ds.event_table.Find(name);
    default: return nullptr;
  }
}

size_t RowsNeeded(const Dataset& ds, SourceKind k) {
  switch (k) {
    case SourceKind::kUserColumn: return ds.num_users();
    case SourceKind::kItemColumn:
    case SourceKind::kHistoryColumn: return ds.num_items();
    default: return ds.num_events();
  }
}

void WarnUnbound(const FieldSpec& f, std::string_view why) {
  WarnOnce("build-batch:" + f.name, "BuildBatch: field '" + f.name + "' (source '" + f.source +
                                        "') does not resolve on this dataset (" + std::string(why) +
                                        "); it reads as empty. Call FeatureSpec::Bind first.");
}

ResolvedSparse ResolveSparse(const Dataset& ds, const FieldSpec& f, const SampleSet& samples) {
  ResolvedSparse r;
  r.kind = f.kind;
  r.max_len = f.max_len;
  r.max_age_s = f.kind == FieldKind::kSequence ? f.max_age_s : 0;
  auto src = features_internal::ParseSource(f.source);
  if (!src || !features_internal::SourceFitsKind(src->kind, f.kind)) {
    WarnUnbound(f, "bad source");
    return r;
  }
  r.source = src->kind;
  if (f.kind == FieldKind::kSequence) {
    r.history_mask = features_internal::HistoryMask(f, samples.history_actions);
    for (const HistoryIndex& h : samples.history) {
      if (h.actions == r.history_mask && h.user_offsets.size() == uint64_t{ds.num_users()} + 1) r.history = &h;
    }
  }
  if (!src->column.empty()) {
    const Column* col = FindColumn(ds, src->kind, src->column);
    const bool list = f.kind == FieldKind::kMultiHot;
    const bool fits = col && (list ? col->type == ColumnType::kCategoricalList
                                   : col->type == ColumnType::kCategorical || col->type == ColumnType::kUInt32);
    if (!fits || (list ? col->offsets.size() < RowsNeeded(ds, src->kind) + 1 : col->u32.size() < RowsNeeded(ds, src->kind))) {
      WarnUnbound(f, col ? "column of the wrong type or size" : "no such column");
      return r;
    }
    r.values = col->u32.data();
    r.offsets = list ? col->offsets.data() : nullptr;
    r.row_of = features_internal::RowOf(ds, src->kind);
  }
  r.ok = true;
  return r;
}

ResolvedText ResolveText(const Dataset& ds, const FieldSpec& f) {
  ResolvedText r;
  r.width = static_cast<size_t>(std::max(0, f.width));
  auto src = features_internal::ParseSource(f.source);
  const Column* col = src && features_internal::SourceFitsKind(src->kind, FieldKind::kText)
                          ? FindColumn(ds, src->kind, src->column)
                          : nullptr;
  if (!col || col->type != ColumnType::kSparseVector || col->offsets.size() < RowsNeeded(ds, src->kind) + 1) {
    WarnUnbound(f, "no sparse_vector column of that name");
    return r;
  }
  r.row_of = features_internal::RowOf(ds, src->kind);
  r.offsets = col->offsets.data();
  r.index = col->u32.data();
  r.value = col->f32.data();
  r.ok = true;
  return r;
}

ResolvedSpec Resolve(const Dataset& ds, const FeatureSpec& spec, const SampleSet& samples) {
  ResolvedSpec r;
  for (const FieldSpec& f : spec.fields) {
    switch (f.kind) {
      case FieldKind::kCategorical:
      case FieldKind::kMultiHot:
      case FieldKind::kSequence:
        r.sparse.push_back(ResolveSparse(ds, f, samples));
        break;
      case FieldKind::kDense: {
        ResolvedDense d;
        auto reader = features_internal::ResolveDense(ds, f, &samples);
        if (reader.ok()) {
          d.ok = true;
          d.reader = *reader;
        } else {
          WarnUnbound(f, reader.status().message());
        }
        if (f.normalize == "log1p") {
          d.normalize = Normalize::kLog1p;
        } else if (f.normalize == "standard") {
          d.normalize = Normalize::kStandard;
          if (f.mean.empty()) {
            WarnOnce("build-batch-unfitted:" + f.name, "BuildBatch: dense field '" + f.name +
                                                           "' is standard-normalised but not fitted "
                                                           "(FeatureSpec::FitNormalization); it reads raw values");
          } else {
            d.mean = f.mean[0];
            d.inv_std = 1.f / std::max(kMinStddev, f.stddev[0]);
          }
        }
        r.dense.push_back(d);
        r.dense_width += static_cast<size_t>(f.width);
        break;
      }
      case FieldKind::kText:
        r.text.push_back(ResolveText(ds, f));
        break;
    }
  }
  return r;
}

// Counters prefetch the columns of the sample this many ahead (random accesses, ~100 ns each).
constexpr size_t kCounterPrefetch = 8;

// 1970-01-01 was a Thursday; weekday 0 is Sunday.
constexpr uint32_t kEpochWeekday = 4;

// One loop per source, so the per-sample body is a load and a store (no switch inside).
void FillCategorical(const Dataset& ds, const ResolvedSparse& r, const SampleSet& samples,
                     std::span<const uint64_t> order, int64_t* ids) {
  const EventColumns& ev = ds.events;
  const uint64_t* events = samples.events.data();
  const size_t n = order.size();
  auto fill = [&](auto value_of) {
    for (size_t b = 0; b < n; ++b) ids[b] = value_of(events[order[b]]);
  };
  switch (r.source) {
    case SourceKind::kUser: fill([&](uint64_t e) -> int64_t { return ev.user[e]; }); break;
    case SourceKind::kItem: fill([&](uint64_t e) -> int64_t { return ev.item[e]; }); break;
    case SourceKind::kScene: fill([&](uint64_t e) -> int64_t { return ev.scene[e]; }); break;
    case SourceKind::kPosition: fill([&](uint64_t e) -> int64_t { return ev.position[e]; }); break;
    case SourceKind::kHour: fill([&](uint64_t e) -> int64_t { return (ev.time[e] / 3600u) % 24u; }); break;
    case SourceKind::kWeekday:
      fill([&](uint64_t e) -> int64_t { return (ev.time[e] / 86400u + kEpochWeekday) % 7u; });
      break;
    default:
      if (r.row_of) fill([&](uint64_t e) -> int64_t { return r.values[r.row_of[e]]; });
      else fill([&](uint64_t e) -> int64_t { return r.values[e]; });
      break;
  }
}

void FillSparse(const Dataset& ds, const ResolvedSparse& r, const SampleSet& samples,
                std::span<const uint64_t> order, SparseFieldBatch* out) {
  const size_t n = order.size();
  out->offsets.resize(n + 1);
  out->ids.clear();
  if (!r.ok) {
    std::fill(out->offsets.begin(), out->offsets.end(), 0);
    if (r.kind == FieldKind::kCategorical) {  // one value per sample: row 0 (unknown)
      out->ids.assign(n, 0);
      for (size_t b = 0; b <= n; ++b) out->offsets[b] = static_cast<int64_t>(b);
    }
    return;
  }
  const EventColumns& ev = ds.events;
  switch (r.kind) {
    case FieldKind::kCategorical:
      out->ids.resize(n);
      FillCategorical(ds, r, samples, order, out->ids.data());
      std::iota(out->offsets.begin(), out->offsets.end(), int64_t{0});
      break;
    case FieldKind::kMultiHot:
      for (size_t b = 0; b < n; ++b) {
        const uint64_t e = samples.events[order[b]];
        const uint64_t row = r.row_of ? r.row_of[e] : e;
        out->offsets[b] = static_cast<int64_t>(out->ids.size());
        uint64_t lb = r.offsets[row], le = r.offsets[row + 1];
        if (r.max_len && le - lb > r.max_len) le = lb + r.max_len;  // lists keep their first values
        out->ids.insert(out->ids.end(), r.values + lb, r.values + le);
      }
      out->offsets[n] = static_cast<int64_t>(out->ids.size());
      break;
    case FieldKind::kSequence: {
      // history.item reads the item ID, history.<col> that column of the item.
      const uint32_t* item_values = r.source == SourceKind::kHistoryColumn ? r.values : nullptr;
      auto value_of = [&](uint64_t j) -> int64_t {
        const uint32_t item = ev.item[j];
        return item_values ? item_values[item] : item;
      };
      if (r.max_len) out->ids.reserve(n * r.max_len);  // the whole batch's histories fit without regrowing
      for (size_t b = 0; b < n; ++b) {
        const uint64_t e = samples.events[order[b]];
        const uint32_t u = ev.user[e];
        out->offsets[b] = static_cast<int64_t>(out->ids.size());
        if (r.history) {
          // Events of the mask strictly before e in u's slice: everything below e's position.
          const uint64_t* hb = r.history->events.data() + r.history->user_offsets[u];
          const uint64_t* he = r.history->events.data() + r.history->user_offsets[u + 1];
          const uint64_t* end = std::lower_bound(hb, he, e);
          const uint64_t* begin = r.max_len && static_cast<uint64_t>(end - hb) > r.max_len ? end - r.max_len : hb;
          if (r.max_age_s) {
            // The slice is time-sorted: the events young enough are a suffix of [begin, end).
            const uint32_t t = ev.time[e];
            begin = std::partition_point(begin, end, [&](uint64_t j) {
              return features_internal::AgeOf(t, ev.time[j]) > r.max_age_s;
            });
          }
          for (const uint64_t* p = begin; p < end; ++p) out->ids.push_back(value_of(*p));
        } else {
          const size_t start = out->ids.size();
          const uint64_t first = ds.user_offsets[u];
          uint32_t kept = 0;
          const uint32_t t = ev.time[e];
          for (uint64_t j = e; j-- > first && (r.max_len == 0 || kept < r.max_len);) {
            if (r.max_age_s && features_internal::AgeOf(t, ev.time[j]) > r.max_age_s) break;
            if ((r.history_mask >> ev.action[j]) & 1u) {
              out->ids.push_back(value_of(j));
              ++kept;
            }
          }
          std::reverse(out->ids.begin() + static_cast<ptrdiff_t>(start), out->ids.end());  // newest last
        }
      }
      out->offsets[n] = static_cast<int64_t>(out->ids.size());
      break;
    }
    default:
      break;
  }
}

}  // namespace

void BuildBatch(const Dataset& ds, const FeatureSpec& spec, const SampleSet& samples,
                std::span<const uint64_t> order, Batch* out) {
  const ResolvedSpec r = Resolve(ds, spec, samples);
  const size_t n = order.size();
  const size_t num_targets = spec.targets.size();
  const EventColumns& ev = ds.events;
  out->size = n;
  out->event.resize(n);
  out->user.resize(n);
  out->scene.resize(n);
  out->truth.resize(ds.has_truth() ? n : 0);
  out->labels.resize(n * num_targets);
  out->mask.resize(n * num_targets);
  const bool labelled = samples.labels.size() == samples.size() * num_targets &&
                        samples.mask.size() == samples.labels.size();
  if (!labelled) {
    WarnOnce("build-batch-labels", "BuildBatch: the sample set's labels do not match the spec's targets "
                                   "(made with another spec?); labels and masks read 0");
  }
  for (size_t b = 0; b < n; ++b) {
    const uint64_t s = order[b];
    const uint64_t e = samples.events[s];
    out->event[b] = e;
    out->user[b] = ev.user[e];
    out->scene[b] = ev.scene[e];
    if (!out->truth.empty()) out->truth[b] = ev.truth[e];
    if (labelled) {
      std::copy_n(samples.labels.data() + s * num_targets, num_targets, out->labels.data() + b * num_targets);
      std::copy_n(samples.mask.data() + s * num_targets, num_targets, out->mask.data() + b * num_targets);
    }
  }
  if (!labelled) {
    std::fill(out->labels.begin(), out->labels.end(), 0.f);
    std::fill(out->mask.begin(), out->mask.end(), 0.f);
  }

  out->sparse.resize(r.sparse.size());
  for (size_t k = 0; k < r.sparse.size(); ++k) FillSparse(ds, r.sparse[k], samples, order, &out->sparse[k]);

  const size_t width = r.dense_width;
  out->dense.resize(n * width);
  auto normalized = [](const ResolvedDense& d, float x) {
    if (d.normalize == Normalize::kLog1p) return std::copysign(std::log1p(std::fabs(x)), x);
    if (d.normalize == Normalize::kStandard) return (x - d.mean) * d.inv_std;
    return x;
  };
  std::vector<size_t> counters;  // dense fields k that are counters: filled sample by sample below
  for (size_t k = 0; k < r.dense.size(); ++k) {
    const ResolvedDense& d = r.dense[k];
    float* col = out->dense.data() + k;  // dense fields are scalar: field k is column k
    if (d.ok && d.reader.is_counter) {
      counters.push_back(k);
      continue;
    }
    for (size_t b = 0; b < n; ++b) {
      const uint64_t e = samples.events[order[b]];
      col[b * width] = d.ok && !d.reader.IsMissing(e) ? normalized(d, d.reader.Raw(e)) : 0.f;
    }
  }
  // Counters walk the sample user's recent events: all of a sample's counters in a row find
  // that slice (and its index entries) in cache after the first.
  for (size_t b = 0; b < n && !counters.empty(); ++b) {
    if (b + kCounterPrefetch < n) {  // samples are in random order: start the loads a few early
      const uint64_t ahead = samples.events[order[b + kCounterPrefetch]];
      __builtin_prefetch(ev.time.data() + ahead);
      __builtin_prefetch(ev.action.data() + ahead);
      __builtin_prefetch(ev.item.data() + ahead);
      __builtin_prefetch(ev.user.data() + ahead);
    }
    const uint64_t e = samples.events[order[b]];
    float* row = out->dense.data() + b * width;
    for (size_t k : counters) row[k] = normalized(r.dense[k], r.dense[k].reader.counter.Count(e));
  }

  out->text.resize(r.text.size());
  for (size_t k = 0; k < r.text.size(); ++k) {
    const ResolvedText& t = r.text[k];
    std::vector<float>& dst = out->text[k];
    dst.assign(n * t.width, 0.f);
    if (!t.ok) continue;
    for (size_t b = 0; b < n; ++b) {
      const uint64_t e = samples.events[order[b]];
      const uint64_t row = t.row_of ? t.row_of[e] : e;
      float* line = dst.data() + b * t.width;
      for (uint64_t p = t.offsets[row]; p < t.offsets[row + 1]; ++p) {
        if (t.index[p] < t.width) line[t.index[p]] = t.value[p];  // past the bound width: unseen at Bind
      }
    }
  }
}

}  // namespace adrec::data

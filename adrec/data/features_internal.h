// Internal to the feature pipeline (feature_spec.cc, feature_bind.cc, samples.cc, batch.cc):
// how a field's source string is parsed and read, the dense readers and real-time counters
// BuildBatch and the normalisation share, and the names and labels of spec errors.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>

#include "adrec/core/status.h"
#include "adrec/data/dataset.h"
#include "adrec/data/feature_spec.h"
#include "adrec/data/samples.h"

namespace adrec::data::features_internal {

enum class SourceKind : uint8_t {
  kUser, kItem, kScene, kPosition, kHour, kWeekday,
  kUserColumn, kItemColumn, kEventColumn, kHistoryItem, kHistoryColumn,
  kRecent,  // "recent.<action>": a real-time counter; `column` holds the action name
};

struct ParsedSource {
  SourceKind kind;
  std::string_view column;  // the column of the *Column kinds
};

std::optional<ParsedSource> ParseSource(std::string_view s);
bool SourceFitsKind(SourceKind s, FieldKind k);

// Every non-impression action: the history of a hand-made SampleSet that names none.
inline constexpr ActionMask kNonImpressionActions = ((ActionMask{1} << kNumActions) - 1) & ~ActionBit(Action::kImpression);

ActionMask HistoryMask(const FieldSpec& f, ActionMask fallback);

// Where a user/item/event column's row comes from: the sample event's user, its item, or the
// event itself (row_of == nullptr).
const uint32_t* RowOf(const Dataset& ds, SourceKind k);

// Criteo keeps a missing I<k> as 0 in its column and sets bit k-1 of the u32 column I_missing
// (import_criteo.cc); a dense field on such a column reads 0 after normalisation there.
inline constexpr std::string_view kMissingMaskColumn = "I_missing";

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
StatusOr<const Column*> MatchColumn(const Dataset& ds, std::string_view match);

// A dense field's reader: its column (with Criteo's missing mask), or its counter, which reads
// the action's per-user index of `samples` where there is one.
StatusOr<DenseReader> ResolveDense(const Dataset& ds, const FieldSpec& f, const SampleSet* samples);

// ---- names and labels of spec errors ----


inline constexpr std::string_view kFieldKindNames[] = {"categorical", "multi_hot", "dense", "sequence", "text"};
inline constexpr std::string_view kTableKindNames[] = {"fixed", "hashed", "dynamic"};
inline constexpr std::string_view kPoolingNames[] = {"sum", "mean"};
inline constexpr std::string_view kTargetRuleNames[] = {"follows", "value_ge", "action"};
inline constexpr std::string_view kNormalizeNames[] = {"none", "log1p", "standard"};
inline constexpr std::string_view kEvictionNames[] = {"lfu", "lru"};
inline constexpr std::string_view kOptimizerNames[] = {"", "adagrad", "adam", "sgd", "ftrl"};

// A text field is a dense embedding: wider than this is a sparse feature column read by mistake
// (libFM's indices), whose dense batch would not fit in memory.
inline constexpr uint64_t kMaxTextWidth = uint64_t{1} << 16;
// An implicit table on a u32 column given no rows (buckets) is fixed, one row per value, up to
// this many rows (taxonomy node IDs, small codes); wider ranges (hashed IDs) must give rows.
inline constexpr uint64_t kMaxImplicitFixedRows = uint64_t{1} << 20;
// Standardisation never divides by less (a constant column stays finite).
inline constexpr float kMinStddev = 1e-6f;
// MakeSamples labels users on a pool from this many events on; below it a pool costs more.
inline constexpr size_t kParallelMinEvents = size_t{1} << 20;
// A counter's action gets a per-user index (8 bytes per event of it) when it is at most
// 1/kCounterIndexMaxShare of the log; denser actions (impressions) are walked in the log itself.
inline constexpr uint64_t kCounterIndexMaxShare = 4;

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

inline std::string Quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

inline std::string FieldLabel(std::string_view prefix, size_t i, std::string_view name) {
  return std::string(prefix) + "fields[" + std::to_string(i) + "] " + Quoted(name);
}
inline std::string TableLabel(std::string_view prefix, size_t i, std::string_view name) {
  return std::string(prefix) + "tables[" + std::to_string(i) + "] " + Quoted(name);
}
inline std::string TargetLabel(std::string_view prefix, size_t i, std::string_view name) {
  return std::string(prefix) + "targets[" + std::to_string(i) + "] " + Quoted(name);
}

inline Status Invalid(const std::string& label, std::string_view message) {
  return InvalidArgumentError(label + ": " + std::string(message));
}

// Shape checks shared by every reader of a spec (config, JSON, code): names, kinds, sources,
// declared and used tables, target references; errors start with `prefix`.
Status ValidateSpec(const FeatureSpec& spec, std::string_view prefix);

// The sources a field kind reads, for error messages.
std::string SourceShapes(FieldKind k);

// Fixed for sources whose values are a known small range (IDs, scene, time parts); a column's
// kind is decided by Bind (fixed when it has a vocabulary).
bool SourceHasFixedRange(SourceKind k);

}  // namespace adrec::data::features_internal

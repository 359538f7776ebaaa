// The feature spec (DESIGN.md "Feature spec"): which fields a ranking model reads, where each
// comes from in a dataset, which embedding table holds it, and which targets (labels) a sample
// carries. The same spec builds training batches and serving inputs, so training and serving
// cannot skew. Parsed and validated from a config or a bundle's JSON (feature_spec.cc), bound to
// a dataset and normalised on its train part (feature_bind.cc).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "adrec/core/status.h"
#include "adrec/data/dataset.h"
#include "adrec/data/split.h"  // ActionMask

namespace adrec {
class Config;
}  // namespace adrec

namespace adrec::data {

// categorical: one value per sample (user, item, scene, a user/item/event categorical column).
// multi_hot: a list per sample (item tags), pooled. dense: floats (bid, Criteo I1..I13, or a
// real-time counter of the user's recent events, "recent.<action>").
// sequence: the user's earlier positive events before the sample (item IDs or an item column of
// them), newest last, pooled. text: a fixed-width float vector column (text embeddings).
enum class FieldKind : uint8_t { kCategorical, kMultiHot, kDense, kSequence, kText };
std::string_view FieldKindName(FieldKind k);

// fixed: one row per vocabulary code (+ row 0 for unknown/missing). hashed: XXH3(table name,
// value) mod buckets. dynamic: collision-free ID → row map that grows as IDs arrive, with
// frequency admission and eviction (Monolith, TorchRec managed collision).
enum class TableKind : uint8_t { kFixed, kHashed, kDynamic };
std::string_view TableKindName(TableKind k);

enum class Pooling : uint8_t { kSum, kMean };

struct TableSpec {
  std::string name;
  TableKind kind = TableKind::kHashed;
  // fixed: 0 = the bound source's vocabulary size + 1 (filled by Bind); hashed: buckets;
  // dynamic: initial capacity. A fixed table's row is raw value + 1 (row 0: values past the
  // vocabulary, e.g. IDs unseen at serving), which is why Bind sizes it vocabulary + 1.
  uint64_t rows = 0;
  int dim = 16;
  float init_std = 0.01f;  // N(0, init_std²) initial rows
  // dynamic only. An ID gets its own row after it was seen this many times; until then it reads
  // the shared row 0 (Monolith's frequency filter keeps one-off IDs out of the table).
  uint32_t admit_after = 1;
  uint64_t max_rows = 0;          // 0 = unbounded; when full, rows are evicted by `eviction`
  std::string eviction = "lfu";   // lfu | lru
  uint64_t ttl_steps = 0;         // rows not touched for this many steps expire; 0 = never
  std::string optimizer;          // "" = the trainer's embedding optimiser; adagrad|adam|sgd|ftrl
  // Declared implicitly by a field on a dataset column without `table_kind`: Bind makes it fixed
  // when the column has a vocabulary (categorical, categorical list), hashed otherwise, and
  // clears this flag.
  bool kind_from_source = false;
  // 32: float rows. 8 or 4: rows stored quantised, each with its own fp16 scale and minimum
  // (`adrec compress` writes such bundles; they serve and do not train). Fixed and hashed only.
  int storage_bits = 32;
};

struct FieldSpec {
  std::string name;
  FieldKind kind = FieldKind::kCategorical;
  // "user", "item", "scene", "position", "hour" (UTC hour of the event), "weekday",
  // "user.<col>", "item.<col>", "event.<col>" (event_table), for sequences
  // "history.item" or "history.<item col>" (a categorical or u32 item column), and for dense
  // real-time counters "recent.<action>" (see window_s).
  std::string source;
  std::string table;   // sparse kinds: embedding table ("" = a table named after the field)
  Pooling pooling = Pooling::kMean;
  uint32_t max_len = 0;  // multi_hot / sequence: keep at most this many values (the newest); 0 = all
  // sequence: which of the user's earlier events count ("" = the split's positive actions).
  std::vector<Action> history_actions;
  // sequence: only events at most this many seconds before the sample count; 0 = no limit.
  uint32_t max_age_s = 0;
  // dense "recent.<action>" (a real-time counter): the user's events of that action strictly
  // before the sample in the user's slice and at most window_s seconds older than it (> 0,
  // inclusive). match: "" = all of them, "item" = those on the sample's item, "<item col>" =
  // those whose item has the sample item's value in that column (a missing categorical code
  // matches nothing). decay_s > 0 weighs each event exp(-age / decay_s) instead of 1.
  uint32_t window_s = 0;
  std::string match;
  float decay_s = 0.f;
  // dense: none | log1p (sign(x)·log1p(|x|)) | standard ((x - mean) / std on the train part).
  std::string normalize = "none";
  // Filled by Bind / FitNormalization: dense width (1 for scalar columns), text width,
  // standardisation statistics per value.
  int width = 1;
  std::vector<float> mean, stddev;

  bool is_sparse() const { return kind == FieldKind::kCategorical || kind == FieldKind::kMultiHot || kind == FieldKind::kSequence; }
};

// follows: 1 when an event with `action` on the sample's item follows the sample in the user's
// log before the user's next sample of that item (impression → click → download → conversion).
// value_ge: 1 when the sample event's value ≥ threshold (MovieLens rating ≥ 4).
// action: 1 when the sample event's own action is `action`.
enum class TargetRule : uint8_t { kFollows, kValueAtLeast, kAction };

struct TargetSpec {
  std::string name;  // "click", "download", "conversion", "like"
  TargetRule rule = TargetRule::kFollows;
  Action action = Action::kClick;
  float threshold = 0.f;
  // Name of an earlier target: this one is defined (mask 1) only where that one is 1 — the
  // conversion of an ad is only defined after its click (ESMM's sample-space problem).
  std::string given;
  float weight = 1.f;  // weight of this target's BCE in the summed loss
};

struct FeatureSpec {
  std::vector<TableSpec> tables;
  std::vector<FieldSpec> fields;
  std::vector<TargetSpec> targets;
  // Events that are samples ("impression" for ad logs, "rating" for MovieLens-as-CTR).
  ActionMask sample_actions = ActionBit(Action::kImpression);

  // Reads the [features] section of a config (see configs/*.toml and docs/ARCHITECTURE.md):
  // features.samples = ["impression"], [[features.tables]], [[features.fields]],
  // [[features.targets]]. Unknown kinds, sources of the wrong shape, a field naming an
  // undeclared table (tables are declared implicitly only for fields without `table`),
  // duplicate names and tables of one name with two dims are InvalidArgument naming the field.
  static StatusOr<FeatureSpec> FromConfig(Config& cfg, std::string_view section = "features");
  nlohmann::json ToJson() const;
  static StatusOr<FeatureSpec> FromJson(const nlohmann::json& j);

  // Checks every source against the dataset (column exists, has a usable type) and fills what
  // depends on it: fixed-table rows, dense/text widths. InvalidArgument naming the field.
  Status Bind(const Dataset& ds);
  // standard-normalised dense fields: mean/std over the given samples (the train part).
  void FitNormalization(const Dataset& ds, std::span<const uint64_t> sample_events);

  const TableSpec* FindTable(std::string_view name) const;
  // Sparse fields in spec order (the order of Batch::sparse), and the dense/text ones.
  std::vector<const FieldSpec*> SparseFields() const;
  std::vector<const FieldSpec*> DenseFields() const;
  std::vector<const FieldSpec*> TextFields() const;
  int DenseWidth() const;  // sum of dense field widths
  int TargetIndex(std::string_view name) const;  // -1 when absent
};

}  // namespace adrec::data

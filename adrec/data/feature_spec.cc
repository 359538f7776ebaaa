// The feature spec read from a config or a bundle's JSON, validated, written back as JSON.
#include "adrec/data/feature_spec.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <set>
#include <stdexcept>
#include <type_traits>

#include "adrec/core/config.h"
#include "adrec/data/features_internal.h"

namespace adrec::data {

using namespace features_internal;  // the sources, readers and error labels of the pipeline

namespace {

// A number of a spec's JSON read as T: an integer in T's range (or a finite float in range for
// float T), else BadNumber naming the key. nlohmann's get<T>() casts with undefined behaviour
// past T's range (7.8e62 as rows; found by feature_spec_fuzz).
struct BadNumber : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename T>
T Number(const nlohmann::json& v, const char* key) {
  if constexpr (std::is_floating_point_v<T>) {
    if (v.is_number()) {
      const double x = v.get<double>();
      if (std::isfinite(x) && std::abs(x) <= static_cast<double>(std::numeric_limits<T>::max())) return static_cast<T>(x);
    }
  } else if (v.is_number_unsigned()) {
    const uint64_t x = v.get<uint64_t>();
    if (x <= static_cast<uint64_t>(std::numeric_limits<T>::max())) return static_cast<T>(x);
  } else if (v.is_number_integer()) {
    const int64_t x = v.get<int64_t>();
    if (x >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
        (x < 0 || static_cast<uint64_t>(x) <= static_cast<uint64_t>(std::numeric_limits<T>::max()))) {
      return static_cast<T>(x);
    }
  }
  throw BadNumber(std::string("'") + key + "' must be " + (std::is_floating_point_v<T> ? "a finite number" : "an integer") +
                  " in range, not " + v.dump());
}
template <typename T>
T Number(const nlohmann::json& e, const char* key, T fallback) {
  return e.contains(key) ? Number<T>(e.at(key), key) : fallback;
}

std::vector<std::string> ActionNames(ActionMask mask) {
  std::vector<std::string> out;
  for (int a = 0; a < kNumActions; ++a) {
    if ((mask >> a) & 1u) out.emplace_back(ActionName(static_cast<Action>(a)));
  }
  return out;
}


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

}  // namespace

namespace features_internal {

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
    if (t.storage_bits != 32 && t.storage_bits != 8 && t.storage_bits != 4) {
      return Invalid(label, "storage_bits must be 32, 8 or 4, got " + std::to_string(t.storage_bits));
    }
    if (t.storage_bits != 32 && t.kind == TableKind::kDynamic) {
      return Invalid(label, "a dynamic table is stored as floats (its rows move)");
    }
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

}  // namespace features_internal

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
                           {"kind_from_source", t.kind_from_source},
                           {"storage_bits", t.storage_bits}});
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
      t.rows = Number<uint64_t>(e.at("rows"), "rows");
      t.dim = Number<int>(e.at("dim"), "dim");
      t.init_std = Number<float>(e.at("init_std"), "init_std");
      t.admit_after = Number<uint32_t>(e.at("admit_after"), "admit_after");
      t.max_rows = Number<uint64_t>(e.at("max_rows"), "max_rows");
      t.eviction = e.at("eviction").get<std::string>();
      t.ttl_steps = Number<uint64_t>(e.at("ttl_steps"), "ttl_steps");
      t.optimizer = e.at("optimizer").get<std::string>();
      t.kind_from_source = e.value("kind_from_source", false);
      t.storage_bits = e.contains("storage_bits") ? Number<int>(e.at("storage_bits"), "storage_bits") : 32;
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
      f.max_len = Number<uint32_t>(e.at("max_len"), "max_len");
      for (const auto& a : e.at("history_actions")) {
        auto action = ParseAction(a.get<std::string>());
        if (!action.ok()) return InvalidArgumentError(prefix + where + ": " + action.status().message());
        f.history_actions.push_back(*action);
      }
      f.normalize = e.at("normalize").get<std::string>();
      f.max_age_s = Number(e, "max_age_s", uint32_t{0});  // absent in specs written before them
      f.window_s = Number(e, "window_s", uint32_t{0});
      f.match = e.value("match", std::string());
      f.decay_s = Number(e, "decay_s", 0.f);
      f.width = Number<int>(e.at("width"), "width");
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
      t.threshold = Number<float>(e.at("threshold"), "threshold");
      t.given = e.at("given").get<std::string>();
      t.weight = Number<float>(e.at("weight"), "weight");
      spec.targets.push_back(std::move(t));
    }
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgumentError(prefix + where + ": " + e.what());
  } catch (const BadNumber& e) {
    return InvalidArgumentError(prefix + where + ": " + e.what());
  }
  ADREC_RETURN_IF_ERROR(ValidateSpec(spec, prefix));
  return spec;
}

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

}  // namespace adrec::data

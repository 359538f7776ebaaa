// A feature spec bound to a dataset (tables sized, sources checked against its columns) and
// its dense fields' normalisation fitted on the train samples.
#include "adrec/data/feature_spec.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <set>

#include "adrec/core/log.h"
#include "adrec/data/features_internal.h"

namespace adrec::data {

using namespace features_internal;  // the sources, readers and error labels of the pipeline


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

}  // namespace adrec::data

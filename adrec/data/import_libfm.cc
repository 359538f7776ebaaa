// libFM text (`label idx:val idx:val ...`, e.g. Frappe) → Dataset: one event per line, user and
// item from the features at LibFmOptions' positions; the features kept as one sparse event column,
// or, with a field map, as one categorical event column per field (mapping in import.h).
#include <algorithm>
#include <cctype>

#include "adrec/data/import.h"
#include "adrec/data/line_reader.h"

namespace adrec::data {

namespace {
using import_internal::Quote;

bool IsFieldName(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  }
  return true;
}

// The field of each global index: sorted ranges, looked up by binary search.
class FieldLookup {
 public:
  explicit FieldLookup(const std::vector<LibFmField>& fields) : fields_(fields) {
    for (size_t f = 0; f < fields.size(); ++f) order_.push_back(f);
    std::sort(order_.begin(), order_.end(), [&](size_t a, size_t b) { return fields[a].first < fields[b].first; });
  }
  // The field index holding `index`, or -1.
  int Find(uint32_t index) const {
    auto it = std::upper_bound(order_.begin(), order_.end(), index,
                               [&](uint32_t i, size_t f) { return i < fields_[f].first; });
    if (it == order_.begin()) return -1;
    const size_t f = *(it - 1);
    return index <= fields_[f].last ? static_cast<int>(f) : -1;
  }

 private:
  const std::vector<LibFmField>& fields_;
  std::vector<size_t> order_;
};

StatusOr<Dataset> RunLibFm(LineReader& r, const ImportOptions& options, std::string provenance) {
  const LibFmOptions& lo = options.libfm;
  if (lo.user_feature == lo.item_feature) {
    return InvalidArgumentError("libFM: user_feature and item_feature are both position " +
                                std::to_string(lo.user_feature));
  }
  const size_t need = std::max(lo.user_feature, lo.item_feature) + size_t{1};
  DatasetBuilder b({.name = "libfm-" + std::filesystem::path(r.name()).stem().string(),
                    .source_format = "libfm",
                    .provenance = std::move(provenance)});
  import_internal::RowErrors errors(options);
  Progress progress("import libfm", r.size_bytes(), import_internal::ImportProgressOptions(options));
  r.set_progress(&progress);
  const uint8_t scene = b.SceneId("default");
  const bool by_field = !lo.fields.empty();
  b.event_table().columns.reserve(lo.fields.size() + 1);  // the pointers below stay valid
  Column* features = by_field ? nullptr : &b.event_table().Add("features", ColumnType::kSparseVector);
  std::vector<Column*> field_columns;
  for (const LibFmField& f : lo.fields) field_columns.push_back(&b.event_table().Add(f.name, ColumnType::kCategorical));
  const FieldLookup lookup(lo.fields);
  std::vector<std::string_view> field_value(lo.fields.size());
  std::vector<std::string_view> fields;
  std::vector<uint32_t> idx;
  std::vector<float> val;
  std::string_view line;
  while (r.Next(&line)) {
    if (SplitWhitespace(line, &fields) == 0) continue;
    auto bad = [&](std::string what) { return errors.Add(r.name(), r.line_number(), what); };
    float label;
    if (!ParseFloat(fields[0], &label)) {
      ADREC_RETURN_IF_ERROR(bad("label " + Quote(fields[0]) + " is not a number"));
      continue;
    }
    if (fields.size() - 1 < need) {
      ADREC_RETURN_IF_ERROR(bad("expected at least " + std::to_string(need) + " features (user at position " +
                                std::to_string(lo.user_feature) + ", item at " + std::to_string(lo.item_feature) +
                                "), got " + std::to_string(fields.size() - 1)));
      continue;
    }
    if (r.line_number() > UINT32_MAX) {
      ADREC_RETURN_IF_ERROR(bad("line number past 2^32 does not fit the time column"));
      continue;
    }
    idx.clear();
    val.clear();
    std::string_view fault;
    size_t fault_at = 0;
    for (size_t k = 1; k < fields.size(); ++k) {
      std::string_view f = fields[k];
      size_t colon = f.find(':');
      uint32_t i;
      float v;
      if (colon == std::string_view::npos || !ParseU32(f.substr(0, colon), &i) || !ParseFloat(f.substr(colon + 1), &v)) {
        fault = f;
        fault_at = k - 1;
        break;
      }
      idx.push_back(i);
      val.push_back(v);
    }
    if (!fault.empty()) {
      ADREC_RETURN_IF_ERROR(bad("feature " + std::to_string(fault_at) + " " + Quote(fault) + " is not 'index:value'"));
      continue;
    }
    if (by_field) {
      std::fill(field_value.begin(), field_value.end(), std::string_view());
      std::string field_fault;
      for (size_t k = 0; k < idx.size() && field_fault.empty(); ++k) {
        const int f = lookup.Find(idx[k]);
        const std::string_view text = fields[1 + k].substr(0, fields[1 + k].find(':'));
        if (f < 0) {
          field_fault = "feature index " + std::to_string(idx[k]) + " is in no field of the field map";
        } else if (!field_value[f].empty()) {
          field_fault = "two features of field '" + lo.fields[f].name + "' (" + std::string(field_value[f]) + " and " +
                        std::string(text) + ")";
        } else {
          field_value[f] = text;
        }
      }
      if (!field_fault.empty()) {
        ADREC_RETURN_IF_ERROR(bad(field_fault));
        continue;
      }
    }
    auto index_text = [&](uint32_t pos) {
      std::string_view f = fields[1 + pos];
      return f.substr(0, f.find(':'));
    };
    Event e;
    e.user = b.UserId(index_text(lo.user_feature));
    e.item = b.ItemId(index_text(lo.item_feature));
    e.timestamp = static_cast<int64_t>(r.line_number());
    e.scene = scene;
    e.action = label > 0 ? Action::kClick : Action::kImpression;
    e.value = label;
    ADREC_RETURN_IF_ERROR(b.AddEvent(e));
    if (by_field) {
      for (size_t f = 0; f < field_columns.size(); ++f) field_columns[f]->PushCategorical(field_value[f]);
    } else {
      features->PushSparse(idx, val);
    }
  }
  ADREC_RETURN_IF_ERROR(r.status());
  progress.Finish();
  return import_internal::FinishImport(std::move(b), errors, r.name());
}
}  // namespace

StatusOr<std::vector<LibFmField>> ParseLibFmFieldMap(std::string_view text, const std::string& source) {
  std::vector<LibFmField> fields;
  std::vector<size_t> lines;
  size_t line_no = 0;
  std::vector<std::string_view> parts;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (const size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    if (SplitWhitespace(line, &parts) == 0) continue;
    const std::string at = source + ":" + std::to_string(line_no) + ": ";
    LibFmField f;
    if (parts.size() != 3 || !ParseU32(parts[1], &f.first) || !ParseU32(parts[2], &f.last)) {
      return InvalidArgumentError(at + "expected 'name first last' (a field and its inclusive global feature indices)");
    }
    f.name = std::string(parts[0]);
    if (!IsFieldName(f.name)) return InvalidArgumentError(at + "field name " + Quote(f.name) + " is not [A-Za-z0-9_]+");
    if (f.first > f.last) return InvalidArgumentError(at + "field '" + f.name + "': first index above last");
    for (size_t g = 0; g < fields.size(); ++g) {
      if (fields[g].name == f.name) return InvalidArgumentError(at + "field '" + f.name + "' is declared twice");
      if (f.first <= fields[g].last && fields[g].first <= f.last) {
        return InvalidArgumentError(at + "field '" + f.name + "' overlaps field '" + fields[g].name + "' (line " +
                                    std::to_string(lines[g]) + ")");
      }
    }
    fields.push_back(std::move(f));
    lines.push_back(line_no);
  }
  if (fields.empty()) return InvalidArgumentError(source + ": the field map declares no field");
  return fields;
}

StatusOr<Dataset> ImportLibFm(const ImportOptions& options) {
  ADREC_ASSIGN_OR_RETURN(auto r, LineReader::Open(options.input));
  return RunLibFm(*r, options, "libfm: " + options.input.filename().string());
}

StatusOr<Dataset> ImportLibFmFromBuffer(std::string_view text, const ImportOptions& options) {
  std::string name = options.input.empty() ? "<memory>" : options.input.filename().string();
  auto r = LineReader::FromBuffer(text, name);
  return RunLibFm(*r, options, "libfm: " + name);
}

}  // namespace adrec::data

// libFM text (`label idx:val idx:val ...`, e.g. Frappe) → Dataset: one event per line, user and
// item from the features at LibFmOptions' positions, every feature kept as a sparse event column
// (mapping in import.h).
#include <algorithm>

#include "adrec/data/import.h"
#include "adrec/data/line_reader.h"

namespace adrec::data {

namespace {
using import_internal::Quote;

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
  Column& features = b.event_table().Add("features", ColumnType::kSparseVector);
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
    features.PushSparse(idx, val);
  }
  ADREC_RETURN_IF_ERROR(r.status());
  progress.Finish();
  return import_internal::FinishImport(std::move(b), errors, r.name());
}
}  // namespace

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

// Criteo display-ads TSV (label, I1..I13 integers, C1..C26 32-bit hex hashes; empty = missing)
// → Dataset. Criteo has neither users nor items: one user "all", item = the value of
// C<item_column>, time = line number (mapping in import.h).
#include <array>

#include "adrec/data/import.h"
#include "adrec/data/line_reader.h"

namespace adrec::data {

namespace {
using import_internal::Quote;

constexpr size_t kNumDense = 13;
constexpr size_t kNumCat = 26;
constexpr size_t kNumFields = 1 + kNumDense + kNumCat;

StatusOr<Dataset> RunCriteo(LineReader& r, const ImportOptions& options, std::string provenance) {
  const uint32_t item_col = options.criteo.item_column;
  if (item_col < 1 || item_col > kNumCat) {
    return InvalidArgumentError("criteo: item_column must be in 1..26, got " + std::to_string(item_col));
  }
  DatasetBuilder b({.name = "criteo-" + std::filesystem::path(r.name()).stem().string(),
                    .source_format = "criteo",
                    .provenance = std::move(provenance)});
  import_internal::RowErrors errors(options);
  Progress progress("import criteo", r.size_bytes(), import_internal::ImportProgressOptions(options));
  r.set_progress(&progress);
  const uint8_t scene = b.SceneId("default");
  const uint32_t user = b.UserId("all");
  Table& et = b.event_table();
  et.columns.reserve(kNumDense + 1 + kNumCat);  // the pointers below must stay valid
  std::array<Column*, kNumDense> dense{};
  std::array<Column*, kNumCat> cat{};
  for (size_t k = 0; k < kNumDense; ++k) dense[k] = &et.Add("I" + std::to_string(k + 1), ColumnType::kFloat32);
  Column* missing = &et.Add("I_missing", ColumnType::kUInt32);
  for (size_t k = 0; k < kNumCat; ++k) cat[k] = &et.Add("C" + std::to_string(k + 1), ColumnType::kUInt32);

  std::vector<std::string_view> fields;
  std::array<float, kNumDense> dv{};
  std::array<uint32_t, kNumCat> cv{};
  std::string_view line;
  while (r.Next(&line)) {
    if (line.empty()) continue;
    auto bad = [&](std::string what) { return errors.Add(r.name(), r.line_number(), what); };
    if (SplitFields(line, '\t', &fields) != kNumFields) {
      ADREC_RETURN_IF_ERROR(bad("expected " + std::to_string(kNumFields) + " tab-separated fields (label, I1..I13, "
                                "C1..C26), got " + std::to_string(fields.size())));
      continue;
    }
    Action action;
    if (fields[0] == "1") action = Action::kClick;
    else if (fields[0] == "0") action = Action::kImpression;
    else {
      ADREC_RETURN_IF_ERROR(bad("label " + Quote(fields[0]) + " is not 0 or 1"));
      continue;
    }
    if (r.line_number() > UINT32_MAX) {
      ADREC_RETURN_IF_ERROR(bad("line number past 2^32 does not fit the time column"));
      continue;
    }
    uint32_t mask = 0;
    std::string fault;
    for (size_t k = 0; k < kNumDense && fault.empty(); ++k) {
      std::string_view f = fields[1 + k];
      dv[k] = 0.f;
      if (f.empty()) mask |= 1u << k;
      else if (!ParseFloat(f, &dv[k])) fault = "I" + std::to_string(k + 1) + " " + Quote(f) + " is not a number";
    }
    for (size_t k = 0; k < kNumCat && fault.empty(); ++k) {
      std::string_view f = fields[1 + kNumDense + k];
      cv[k] = 0;
      if (!f.empty() && !ParseHexU32(f, &cv[k])) {
        fault = "C" + std::to_string(k + 1) + " " + Quote(f) + " is not a hex value of up to 8 digits";
      }
    }
    if (!fault.empty()) {
      ADREC_RETURN_IF_ERROR(bad(fault));
      continue;
    }
    Event e;
    e.user = user;
    e.item = b.ItemId(fields[1 + kNumDense + item_col - 1]);
    e.timestamp = static_cast<int64_t>(r.line_number());
    e.scene = scene;
    e.action = action;
    e.value = action == Action::kClick ? 1.f : 0.f;
    ADREC_RETURN_IF_ERROR(b.AddEvent(e));
    for (size_t k = 0; k < kNumDense; ++k) dense[k]->PushFloat(dv[k]);
    missing->PushU32(mask);
    for (size_t k = 0; k < kNumCat; ++k) cat[k]->PushU32(cv[k]);
  }
  ADREC_RETURN_IF_ERROR(r.status());
  progress.Finish();
  return import_internal::FinishImport(std::move(b), errors, r.name());
}
}  // namespace

StatusOr<Dataset> ImportCriteo(const ImportOptions& options) {
  ADREC_ASSIGN_OR_RETURN(auto r, LineReader::Open(options.input));
  return RunCriteo(*r, options, "criteo: " + options.input.filename().string());
}

StatusOr<Dataset> ImportCriteoFromBuffer(std::string_view text, const ImportOptions& options) {
  std::string name = options.input.empty() ? "<memory>" : options.input.filename().string();
  auto r = LineReader::FromBuffer(text, name);
  return RunCriteo(*r, options, "criteo: " + name);
}

}  // namespace adrec::data

// S3-Rec sequence text (`user item item ...`, one line per user, in time order) → Dataset. The
// files carry order but no times, so time = 1-based position; every interaction is a kClick
// with value 1 (import.h).
#include "adrec/data/import.h"
#include "adrec/data/line_reader.h"

namespace adrec::data {

namespace {
using import_internal::Quote;

StatusOr<Dataset> RunS3Rec(LineReader& r, const ImportOptions& options, std::string provenance) {
  DatasetBuilder b({.name = "s3rec-" + std::filesystem::path(r.name()).stem().string(),
                    .source_format = "s3rec",
                    .provenance = std::move(provenance)});
  import_internal::RowErrors errors(options);
  Progress progress("import s3rec", r.size_bytes(), import_internal::ImportProgressOptions(options));
  r.set_progress(&progress);
  const uint8_t scene = b.SceneId("default");
  std::vector<std::string_view> fields;
  std::string_view line;
  uint64_t lines = 0;
  while (r.Next(&line)) {
    if (++lines == 256) {
      // Bytes per event so far, since events per line vary.
      double per_event = static_cast<double>(r.bytes_consumed()) / (static_cast<double>(b.num_events()) + 1);
      import_internal::ReserveEventsForInput(b, r.size_bytes(), per_event);
    }
    if (SplitWhitespace(line, &fields) == 0) continue;  // blank line
    auto bad = [&](std::string what) { return errors.Add(r.name(), r.line_number(), what); };
    if (fields.size() < 2) {
      ADREC_RETURN_IF_ERROR(bad("user " + Quote(fields[0]) + " has no items"));
      continue;
    }
    bool utf8 = true;
    for (auto f : fields) utf8 = utf8 && IsValidUtf8(f);
    if (!utf8) {
      ADREC_RETURN_IF_ERROR(bad("ID is not valid UTF-8"));
      continue;
    }
    if (b.dataset().users.Find(fields[0])) {
      ADREC_RETURN_IF_ERROR(bad("user " + Quote(fields[0]) + " already had a line; one sequence per user"));
      continue;
    }
    if (fields.size() - 1 > UINT32_MAX) {
      ADREC_RETURN_IF_ERROR(bad("sequence too long"));
      continue;
    }
    Event e;
    e.user = b.UserId(fields[0]);
    e.scene = scene;
    e.action = Action::kClick;
    e.value = 1.f;
    for (size_t k = 1; k < fields.size(); ++k) {
      e.item = b.ItemId(fields[k]);
      e.timestamp = static_cast<int64_t>(k);
      ADREC_RETURN_IF_ERROR(b.AddEvent(e));
    }
  }
  ADREC_RETURN_IF_ERROR(r.status());
  progress.Finish();
  return import_internal::FinishImport(std::move(b), errors, r.name());
}
}  // namespace

StatusOr<Dataset> ImportS3Rec(const ImportOptions& options) {
  ADREC_ASSIGN_OR_RETURN(auto r, LineReader::Open(options.input));
  return RunS3Rec(*r, options, "s3rec: " + options.input.filename().string());
}

StatusOr<Dataset> ImportS3RecFromBuffer(std::string_view text, const ImportOptions& options) {
  std::string name = options.input.empty() ? "<memory>" : options.input.filename().string();
  auto r = LineReader::FromBuffer(text, name);
  return RunS3Rec(*r, options, "s3rec: " + name);
}

}  // namespace adrec::data

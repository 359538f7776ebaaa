#include "adrec/data/import.h"

#include "adrec/core/text.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <ctime>

namespace adrec::data {

namespace {
constexpr std::pair<std::string_view, ImportFormat> kFormats[] = {
    {"movielens", ImportFormat::kMovieLens}, {"s3rec", ImportFormat::kS3Rec}, {"libfm", ImportFormat::kLibFm},
    {"criteo", ImportFormat::kCriteo},       {"csv", ImportFormat::kCsv},     {"jsonl", ImportFormat::kJsonl},
};

}  // namespace

StatusOr<ImportFormat> ParseImportFormat(std::string_view name) {
  for (auto [n, f] : kFormats) {
    if (n == name) return f;
  }
  return InvalidArgumentError("unknown import format '" + std::string(name) +
                              "' (known: movielens s3rec libfm criteo csv jsonl)");
}

std::string_view ImportFormatName(ImportFormat f) {
  for (auto [n, g] : kFormats) {
    if (g == f) return n;
  }
  return "unknown";
}

StatusOr<Dataset> Import(ImportFormat format, const ImportOptions& options) {
  switch (format) {
    case ImportFormat::kMovieLens: return ImportMovieLens(options);
    case ImportFormat::kS3Rec: return ImportS3Rec(options);
    case ImportFormat::kLibFm: return ImportLibFm(options);
    case ImportFormat::kCriteo: return ImportCriteo(options);
    case ImportFormat::kCsv: return ImportCsv(options);
    case ImportFormat::kJsonl: return ImportJsonl(options);
  }
  return InvalidArgumentError("unknown import format");
}

namespace import_internal {

std::string Quote(std::string_view s) {
  constexpr size_t kMax = 48;
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    char c = s[i];
    out += (static_cast<unsigned char>(c) < 0x20) ? '?' : c;
  }
  if (s.size() > kMax) out += "...";
  return out + "'";
}

Status RowErrors::Add(std::string_view file, uint64_t line, std::string_view what) {
  ++count_;
  std::string where = std::string(file) + ":" + std::to_string(line) + ": " + std::string(what);
  if (count_ > max_errors_) {
    return InvalidArgumentError(where + " (" + std::to_string(count_) + " malformed row" + (count_ == 1 ? "" : "s") +
                                ", more than --max-errors " + std::to_string(max_errors_) + ")");
  }
  if (count_ <= max_report_) {
    spdlog::warn("skipping malformed row {}{}", where, count_ == max_report_ ? " (further ones not shown)" : "");
  }
  return Status::Ok();
}

ProgressOptions ImportProgressOptions(const ImportOptions& options) {
  ProgressOptions p;
  p.unit = "B";
  p.enabled = options.show_progress;
  return p;
}

Status UserRunSorter::Add(const Event& e) {
  if (!run_.empty() && run_.back().user != e.user) ADREC_RETURN_IF_ERROR(Flush());
  if (!run_.empty() && e.timestamp < run_.back().timestamp) run_sorted_ = false;
  run_.push_back(e);
  return Status::Ok();
}

Status UserRunSorter::Flush() {
  if (!run_sorted_) {
    std::stable_sort(run_.begin(), run_.end(), [](const Event& a, const Event& b) { return a.timestamp < b.timestamp; });
  }
  for (const Event& e : run_) ADREC_RETURN_IF_ERROR(builder_->AddEvent(e));
  run_.clear();
  run_sorted_ = true;
  return Status::Ok();
}

StatusOr<Dataset> FinishImport(DatasetBuilder&& builder, const RowErrors& errors, std::string_view input_name) {
  builder.info().malformed_rows = errors.count();
  builder.info().created_utc = NowUtc();
  if (builder.num_events() == 0) {
    return InvalidArgumentError(std::string(input_name) + ": no events: the input is empty" +
                                (errors.count() ? " or every row was invalid (" + std::to_string(errors.count()) +
                                                      " malformed)"
                                                : std::string()));
  }
  auto ds = std::move(builder).Finish();
  if (!ds.ok()) return ds.status().WithContext(input_name);
  if (errors.count() > 0) {
    spdlog::warn("{}: skipped {} malformed row{}", input_name, errors.count(), errors.count() == 1 ? "" : "s");
  }
  return ds;
}

void ReserveEventsForInput(DatasetBuilder& builder, uint64_t file_bytes, double bytes_per_line) {
  if (file_bytes == 0 || bytes_per_line <= 0) return;
  // 3% slack for lines shorter than the sample; a miss only costs one regrowth.
  auto n = static_cast<size_t>(static_cast<double>(file_bytes) / bytes_per_line * 1.03) + 16;
  n = std::min<size_t>(n, size_t{1} << 32);
  builder.dataset().events.Reserve(n, false);
}

}  // namespace import_internal

}  // namespace adrec::data

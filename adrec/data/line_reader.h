// Streaming line reading and the small parsing helpers every importer shares: a LineReader over
// read(2) with one large reusable buffer (no std::getline, no per-line allocation), field
// splitting into string_views, std::from_chars number parsing, UTF-8 checks and latin-1
// repair, and an RFC-4180 CSV record splitter.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "adrec/core/text.h"
#include "adrec/core/progress.h"
#include "adrec/core/status.h"

namespace adrec::data {

struct LineReaderOptions {
  size_t buffer_bytes = size_t{4} << 20;    // one read(2) fills up to this much
  size_t max_line_bytes = size_t{64} << 20;  // a longer line is an error, not unbounded memory
};

// Yields the lines of a file (or of an in-memory buffer) as string_views valid until the next
// call. Strips "\n" and "\r\n"; a last line without a newline is still a line; a UTF-8 BOM at
// the start is skipped.
class LineReader {
 public:
  static StatusOr<std::unique_ptr<LineReader>> Open(const std::filesystem::path& path,
                                                    LineReaderOptions options = {});
  // Reads from `data`, which must outlive the reader (fuzzing, tests). `name` is used in errors.
  static std::unique_ptr<LineReader> FromBuffer(std::string_view data, std::string name,
                                                LineReaderOptions options = {});
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // False at end of input or on error (then status() says which).
  bool Next(std::string_view* line);
  const Status& status() const { return status_; }
  // 1-based number of the line last returned by Next().
  uint64_t line_number() const { return line_number_; }
  // File name (no directories) or the buffer's name, for messages.
  const std::string& name() const { return name_; }
  // Size of the input in bytes when known (0 for pipes).
  uint64_t size_bytes() const { return size_bytes_; }
  uint64_t bytes_consumed() const { return consumed_; }
  // Every block read is reported here (bytes), for a progress bar over the file size.
  void set_progress(Progress* p) { progress_ = p; }

 private:
  LineReader(int fd, std::string name, LineReaderOptions options);
  bool Refill();

  int fd_ = -1;
  std::string name_;
  LineReaderOptions options_;
  std::unique_ptr<char[]> owned_;
  size_t capacity_ = 0;
  const char* buf_ = nullptr;  // owned_.get() for files, the caller's data for buffers
  size_t begin_ = 0, end_ = 0;  // unread bytes are buf_[begin_, end_)
  bool eof_ = false;
  bool first_block_ = true;
  uint64_t line_number_ = 0;
  uint64_t size_bytes_ = 0;
  uint64_t consumed_ = 0;
  Progress* progress_ = nullptr;
  Status status_;
};

// Splits `line` at every `delim` into `out` (cleared first, capacity reused). Returns the field
// count.
size_t SplitFields(std::string_view line, char delim, std::vector<std::string_view>* out);
// Same for a multi-character delimiter ("::" of MovieLens 1M/10M).
size_t SplitFields(std::string_view line, std::string_view delim, std::vector<std::string_view>* out);
// Splits at runs of spaces and tabs, dropping empty fields (S3-Rec, libFM).
size_t SplitWhitespace(std::string_view line, std::vector<std::string_view>* out);

// Whole-field number parsing with std::from_chars: no locale, no allocation, no trailing junk,
// no leading '+' or spaces.
bool ParseU32(std::string_view s, uint32_t* out);
bool ParseI64(std::string_view s, int64_t* out);
bool ParseFloat(std::string_view s, float* out);  // finite values only
bool ParseHexU32(std::string_view s, uint32_t* out);  // up to 8 hex digits, no "0x"

// Trims ASCII spaces and tabs at both ends.
std::string_view TrimSpaces(std::string_view s);

// RFC-4180 records: fields separated by `delim`, optionally enclosed in `quote`, where a doubled
// quote inside stands for one quote and a quoted field may hold delimiters and newlines.
// Splitting needs the whole record, so Next() joins physical lines while a quote is open.
class CsvRecordReader {
 public:
  CsvRecordReader(LineReader* lines, char delim = ',', char quote = '"') : lines_(lines), delim_(delim), quote_(quote) {}
  // True for each record; false at end of input or on a read error (lines->status()). A
  // malformed record (unterminated quote, text after a closing quote) comes back as true with
  // has_error() set and no fields, so the caller can count it and go on.
  bool Next(std::vector<std::string_view>* fields);
  // Why the last Next() rejected a record ("" when it did not).
  const std::string& error() const { return error_; }
  bool has_error() const { return !error_.empty(); }
  // First physical line of the record last returned.
  uint64_t line_number() const { return record_line_; }

 private:
  bool Split(std::string_view record, std::vector<std::string_view>* fields);
  LineReader* lines_;
  char delim_, quote_;
  std::string joined_;    // a record spanning lines (rare), reused
  std::string unquoted_;  // fields with doubled quotes, reused
  std::string error_;
  uint64_t record_line_ = 0;
};

}  // namespace adrec::data

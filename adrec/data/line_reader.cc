#include "adrec/data/line_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>

namespace adrec::data {

StatusOr<std::unique_ptr<LineReader>> LineReader::Open(const std::filesystem::path& path, LineReaderOptions options) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open " + path.string());
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    return InvalidArgumentError(path.string() + " is a directory, expected a file");
  }
#ifdef POSIX_FADV_SEQUENTIAL
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);  // bigger kernel read-ahead
#endif
  std::unique_ptr<LineReader> r(new LineReader(fd, path.filename().string(), options));
  if (S_ISREG(st.st_mode)) r->size_bytes_ = static_cast<uint64_t>(st.st_size);
  r->capacity_ = std::max<size_t>(options.buffer_bytes, 64);
  r->owned_.reset(new char[r->capacity_]);
  r->buf_ = r->owned_.get();
  return r;
}

std::unique_ptr<LineReader> LineReader::FromBuffer(std::string_view data, std::string name, LineReaderOptions options) {
  std::unique_ptr<LineReader> r(new LineReader(-1, std::move(name), options));
  r->buf_ = data.data();
  r->end_ = data.size();
  r->size_bytes_ = data.size();
  r->eof_ = true;
  return r;
}

LineReader::LineReader(int fd, std::string name, LineReaderOptions options)
    : fd_(fd), name_(std::move(name)), options_(options) {}

LineReader::~LineReader() {
  if (fd_ >= 0) ::close(fd_);
}

bool LineReader::Refill() {
  size_t rest = end_ - begin_;
  if (rest > options_.max_line_bytes) {
    status_ = ResourceExhaustedError(name_ + ":" + std::to_string(line_number_ + 1) + ": line longer than " +
                                     std::to_string(options_.max_line_bytes) + " bytes");
    return false;
  }
  char* buf = owned_.get();
  if (begin_ > 0) {
    std::memmove(buf, buf + begin_, rest);
    begin_ = 0;
    end_ = rest;
  }
  if (end_ == capacity_) {  // one line fills the whole buffer: grow it
    size_t cap = capacity_ * 2;
    std::unique_ptr<char[]> bigger(new char[cap]);
    std::memcpy(bigger.get(), buf, end_);
    owned_ = std::move(bigger);
    buf = owned_.get();
    buf_ = buf;
    capacity_ = cap;
  }
  ssize_t n;
  do {
    n = ::read(fd_, buf + end_, capacity_ - end_);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    status_ = ErrnoError("read " + name_);
    return false;
  }
  if (n == 0) {
    eof_ = true;
  } else {
    end_ += static_cast<size_t>(n);
    if (progress_) progress_->Add(static_cast<uint64_t>(n));
  }
  return true;
}

bool LineReader::Next(std::string_view* line) {
  for (;;) {
    const char* start = buf_ + begin_;
    size_t avail = end_ - begin_;
    const void* nl = avail ? std::memchr(start, '\n', avail) : nullptr;
    size_t len;
    if (nl != nullptr) {
      len = static_cast<size_t>(static_cast<const char*>(nl) - start);
      begin_ += len + 1;
      consumed_ += len + 1;
    } else if (eof_) {
      if (avail == 0) return false;
      len = avail;
      begin_ = end_;
      consumed_ += len;
    } else {
      if (!Refill()) return false;
      continue;
    }
    if (len > 0 && start[len - 1] == '\r') --len;
    std::string_view l(start, len);
    if (first_block_) {
      first_block_ = false;
      if (l.starts_with("\xEF\xBB\xBF")) l.remove_prefix(3);
    }
    ++line_number_;
    *line = l;
    return true;
  }
}

size_t SplitFields(std::string_view line, char delim, std::vector<std::string_view>* out) {
  out->clear();
  const char* p = line.data();
  const char* end = p + line.size();
  for (;;) {
    const void* d = std::memchr(p, delim, static_cast<size_t>(end - p));
    if (d == nullptr) {
      out->emplace_back(p, static_cast<size_t>(end - p));
      return out->size();
    }
    const char* q = static_cast<const char*>(d);
    out->emplace_back(p, static_cast<size_t>(q - p));
    p = q + 1;
  }
}

size_t SplitFields(std::string_view line, std::string_view delim, std::vector<std::string_view>* out) {
  if (delim.size() == 1) return SplitFields(line, delim[0], out);
  out->clear();
  size_t pos = 0;
  for (;;) {
    size_t d = line.find(delim, pos);
    if (d == std::string_view::npos) {
      out->push_back(line.substr(pos));
      return out->size();
    }
    out->push_back(line.substr(pos, d - pos));
    pos = d + delim.size();
  }
}

size_t SplitWhitespace(std::string_view line, std::vector<std::string_view>* out) {
  out->clear();
  size_t i = 0, n = line.size();
  while (i < n) {
    while (i < n && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t b = i;
    while (i < n && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > b) out->push_back(line.substr(b, i - b));
  }
  return out->size();
}

bool ParseU32(std::string_view s, uint32_t* out) {
  if (s.empty()) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool ParseI64(std::string_view s, int64_t* out) {
  if (s.empty()) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool ParseFloat(std::string_view s, float* out) {
  if (s.empty()) return false;
  float v;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size() || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

bool ParseHexU32(std::string_view s, uint32_t* out) {
  if (s.empty() || s.size() > 8) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out, 16);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

namespace {
// A quoted field may span lines; beyond this a missing closing quote is assumed rather than
// swallowing the rest of the file into one record.
constexpr size_t kMaxJoinedRecordBytes = size_t{1} << 20;

// True when `s` ends inside a quoted field: a quote opens a field only at its start, and inside
// one a doubled quote is a literal quote (RFC 4180).
bool QuoteOpen(std::string_view s, char delim, char quote) {
  enum { kStart, kUnquoted, kQuoted, kQuoteInQuoted } st = kStart;
  for (char c : s) {
    switch (st) {
      case kStart: st = c == quote ? kQuoted : c == delim ? kStart : kUnquoted; break;
      case kUnquoted: if (c == delim) st = kStart; break;
      case kQuoted: if (c == quote) st = kQuoteInQuoted; break;
      case kQuoteInQuoted: st = c == quote ? kQuoted : c == delim ? kStart : kUnquoted; break;
    }
  }
  return st == kQuoted;
}
}  // namespace

bool CsvRecordReader::Next(std::vector<std::string_view>* fields) {
  error_.clear();
  fields->clear();
  std::string_view line;
  if (!lines_->Next(&line)) return false;
  record_line_ = lines_->line_number();
  if (line.find(quote_) == std::string_view::npos) {  // the common case: no quotes at all
    SplitFields(line, delim_, fields);
    return true;
  }
  if (!QuoteOpen(line, delim_, quote_)) {
    if (!Split(line, fields)) fields->clear();
    return true;
  }
  joined_.assign(line);
  for (;;) {
    if (joined_.size() > kMaxJoinedRecordBytes) {
      error_ = "unterminated quoted field (record longer than " + std::to_string(kMaxJoinedRecordBytes) + " bytes)";
      return true;
    }
    if (!lines_->Next(&line)) {
      if (!lines_->status().ok()) return false;
      error_ = "unterminated quoted field at end of input";
      return true;
    }
    joined_.push_back('\n');
    joined_.append(line);
    if (!QuoteOpen(joined_, delim_, quote_)) break;
  }
  if (!Split(joined_, fields)) fields->clear();
  return true;
}

bool CsvRecordReader::Split(std::string_view rec, std::vector<std::string_view>* fields) {
  unquoted_.clear();
  unquoted_.reserve(rec.size());  // views point into it: it must never reallocate below
  size_t i = 0, n = rec.size();
  for (;;) {
    if (i < n && rec[i] == quote_) {
      size_t start = unquoted_.size();
      ++i;
      for (;;) {
        if (i >= n) {
          error_ = "unterminated quoted field";
          return false;
        }
        char c = rec[i++];
        if (c == quote_) {
          if (i < n && rec[i] == quote_) {
            unquoted_.push_back(quote_);
            ++i;
          } else {
            break;
          }
        } else {
          unquoted_.push_back(c);
        }
      }
      fields->emplace_back(unquoted_.data() + start, unquoted_.size() - start);
      if (i == n) return true;
      if (rec[i] != delim_) {
        error_ = "text after a closing quote in field " + std::to_string(fields->size());
        return false;
      }
      ++i;
      if (i == n) {
        fields->emplace_back();
        return true;
      }
    } else {
      size_t d = rec.find(delim_, i);
      if (d == std::string_view::npos) {
        fields->push_back(rec.substr(i));
        return true;
      }
      fields->push_back(rec.substr(i, d - i));
      i = d + 1;
      if (i == n) {
        fields->emplace_back();
        return true;
      }
    }
  }
}

}  // namespace adrec::data

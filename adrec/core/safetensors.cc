#include "adrec/core/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>

#include "adrec/core/crypto.h"
#include "adrec/core/text.h"

namespace adrec {
namespace fs = std::filesystem;

// The format is little-endian and views hand out raw bytes.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace {

struct DtypeInfo {
  Dtype dtype;
  std::string_view name;
  size_t size;
  int rank;  // Python safetensors' enum order: its writer sorts by it (descending), then by name
};

constexpr DtypeInfo kDtypes[] = {
    {Dtype::kF64, "F64", 8, 8}, {Dtype::kF32, "F32", 4, 7}, {Dtype::kF16, "F16", 2, 4},
    {Dtype::kBF16, "BF16", 2, 5}, {Dtype::kI64, "I64", 8, 9}, {Dtype::kI32, "I32", 4, 6},
    {Dtype::kI16, "I16", 2, 3}, {Dtype::kI8, "I8", 1, 2}, {Dtype::kU8, "U8", 1, 1},
    {Dtype::kBool, "BOOL", 1, 0},
};

const DtypeInfo& Info(Dtype dtype) { return kDtypes[static_cast<size_t>(dtype)]; }

// ---- JSON: only what a safetensors header needs, strict (RFC 8259), bounded depth. ----

struct Json {
  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = kNull;
  bool boolean = false;
  std::string text;                // kString: decoded; kNumber: the literal
  std::vector<Json> items;         // kArray; kObject: values
  std::vector<std::string> keys;   // kObject
};

std::string_view KindName(Json::Kind kind) {
  switch (kind) {
    case Json::kNull: return "null";
    case Json::kBool: return "a boolean";
    case Json::kNumber: return "a number";
    case Json::kString: return "a string";
    case Json::kArray: return "an array";
    case Json::kObject: return "an object";
  }
  return "?";
}

bool ValidUtf8(std::string_view s, size_t* bad_at) {
  *bad_at = FindInvalidUtf8(s);
  return *bad_at == std::string_view::npos;
}

class JsonParser {
 public:
  explicit JsonParser(std::string_view s) : s_(s) {}

  // One value, then only whitespace (the header's space padding).
  Status ParseDocument(Json* out) {
    SkipSpace();
    ADREC_RETURN_IF_ERROR(ParseValue(out, 0));
    SkipSpace();
    if (pos_ != s_.size()) return Error("unexpected text after the header object");
    return Status::Ok();
  }

 private:
  static constexpr int kMaxDepth = 64;  // the header is two levels deep; more is hostile input

  Status Error(std::string_view what) const {
    return DataLossError("header JSON: " + std::string(what) + " at byte " + std::to_string(pos_));
  }
  void SkipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool Consume(std::string_view lit) {
    if (s_.substr(pos_, lit.size()) != lit) return false;
    pos_ += lit.size();
    return true;
  }

  Status ParseValue(Json* out, int depth) {
    if (depth > kMaxDepth) return Error("nesting deeper than " + std::to_string(kMaxDepth));
    if (pos_ >= s_.size()) return Error("unexpected end of header");
    char c = s_[pos_];
    if (c == '{') return ParseObject(out, depth);
    if (c == '[') return ParseArray(out, depth);
    if (c == '"') { out->kind = Json::kString; return ParseString(&out->text); }
    if (c == '-' || (c >= '0' && c <= '9')) return ParseNumber(out);
    if (Consume("true")) { out->kind = Json::kBool; out->boolean = true; return Status::Ok(); }
    if (Consume("false")) { out->kind = Json::kBool; return Status::Ok(); }
    if (Consume("null")) { out->kind = Json::kNull; return Status::Ok(); }
    return Error("unexpected character");
  }

  Status ParseObject(Json* out, int depth) {
    out->kind = Json::kObject;
    ++pos_;
    SkipSpace();
    if (pos_ < s_.size() && s_[pos_] == '}') { ++pos_; return Status::Ok(); }
    while (true) {
      SkipSpace();
      if (pos_ >= s_.size() || s_[pos_] != '"') return Error("expected a string key");
      std::string key;
      ADREC_RETURN_IF_ERROR(ParseString(&key));
      SkipSpace();
      if (pos_ >= s_.size() || s_[pos_] != ':') return Error("expected ':'");
      ++pos_;
      SkipSpace();
      out->keys.push_back(std::move(key));
      out->items.emplace_back();
      ADREC_RETURN_IF_ERROR(ParseValue(&out->items.back(), depth + 1));
      SkipSpace();
      if (pos_ < s_.size() && s_[pos_] == ',') { ++pos_; continue; }
      if (pos_ < s_.size() && s_[pos_] == '}') { ++pos_; return Status::Ok(); }
      return Error("expected ',' or '}'");
    }
  }

  Status ParseArray(Json* out, int depth) {
    out->kind = Json::kArray;
    ++pos_;
    SkipSpace();
    if (pos_ < s_.size() && s_[pos_] == ']') { ++pos_; return Status::Ok(); }
    while (true) {
      SkipSpace();
      out->items.emplace_back();
      ADREC_RETURN_IF_ERROR(ParseValue(&out->items.back(), depth + 1));
      SkipSpace();
      if (pos_ < s_.size() && s_[pos_] == ',') { ++pos_; continue; }
      if (pos_ < s_.size() && s_[pos_] == ']') { ++pos_; return Status::Ok(); }
      return Error("expected ',' or ']'");
    }
  }

  Status ParseHex4(uint32_t* out) {
    if (s_.size() - pos_ < 4) return Error("truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<uint32_t>(c - 'A' + 10);
      else return Error("bad hex digit in \\u escape");
    }
    *out = v;
    return Status::Ok();
  }


  // The input was checked to be UTF-8 already; this decodes escapes and rejects raw controls.
  Status ParseString(std::string* out) {
    ++pos_;  // the opening quote
    while (true) {
      if (pos_ >= s_.size()) return Error("unterminated string");
      char c = s_[pos_++];
      if (c == '"') return Status::Ok();
      if (static_cast<unsigned char>(c) < 0x20) return Error("control character in string");
      if (c != '\\') { out->push_back(c); continue; }
      if (pos_ >= s_.size()) return Error("unterminated escape");
      char e = s_[pos_++];
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          uint32_t cp = 0;
          ADREC_RETURN_IF_ERROR(ParseHex4(&cp));
          if (cp >= 0xDC00 && cp <= 0xDFFF) return Error("lone low surrogate in \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo = 0;
            if (!Consume("\\u")) return Error("high surrogate without a low one");
            ADREC_RETURN_IF_ERROR(ParseHex4(&lo));
            if (lo < 0xDC00 || lo > 0xDFFF) return Error("high surrogate without a low one");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          AppendUtf8(static_cast<char32_t>(cp), out);
          break;
        }
        default: return Error("bad escape");
      }
    }
  }

  Status ParseNumber(Json* out) {
    size_t start = pos_;
    auto digits = [&] {
      size_t d = pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      return pos_ - d;
    };
    if (s_[pos_] == '-') ++pos_;
    if (pos_ < s_.size() && s_[pos_] == '0') {
      ++pos_;
    } else if (digits() == 0) {
      return Error("bad number");
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (digits() == 0) return Error("bad number");
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (digits() == 0) return Error("bad number");
    }
    out->kind = Json::kNumber;
    out->text = std::string(s_.substr(start, pos_ - start));
    return Status::Ok();
  }

  std::string_view s_;
  size_t pos_ = 0;
};

// A JSON number that is a non-negative integer (what the reference reads as usize).
bool ToUint64(const Json& v, uint64_t* out) {
  if (v.kind != Json::kNumber || v.text.empty()) return false;
  uint64_t x = 0;
  for (char c : v.text) {
    if (c < '0' || c > '9') return false;  // sign, fraction or exponent
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (x > (std::numeric_limits<uint64_t>::max() - d) / 10) return false;
    x = x * 10 + d;
  }
  *out = x;
  return true;
}

// numel × element size, or nullopt if it overflows (a hostile shape).
std::optional<uint64_t> ByteSize(const std::vector<int64_t>& shape, size_t elem) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return std::nullopt;
    auto u = static_cast<uint64_t>(d);
    if (u != 0 && n > std::numeric_limits<uint64_t>::max() / u) return std::nullopt;
    n *= u;
  }
  if (n > std::numeric_limits<uint64_t>::max() / elem) return std::nullopt;
  return n * elem;
}

// Escapes like serde_json (Python safetensors' writer), so our headers match its bytes.
void AppendJsonString(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      case '\b': *out += "\\b"; break;
      case '\f': *out += "\\f"; break;
      default:
        if (u < 0x20) {
          *out += "\\u00";
          out->push_back(kHex[u >> 4]);
          out->push_back(kHex[u & 0xF]);
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

struct Entry {
  TensorView view;
  uint64_t begin = 0, end = 0;
};

Status ParseTensorInfo(const std::string& name, const Json& v, uint64_t buffer_size, Entry* out) {
  auto bad = [&](std::string what) { return DataLossError("tensor '" + name + "': " + what); };
  if (v.kind != Json::kObject) return bad("entry is " + std::string(KindName(v.kind)) + ", not an object");
  const Json* dtype = nullptr;
  const Json* shape = nullptr;
  const Json* offsets = nullptr;
  for (size_t i = 0; i < v.keys.size(); ++i) {
    const Json** slot = v.keys[i] == "dtype" ? &dtype
                        : v.keys[i] == "shape" ? &shape
                        : v.keys[i] == "data_offsets" ? &offsets
                        : nullptr;
    if (slot == nullptr) continue;  // unknown fields are ignored, as the reference does
    if (*slot != nullptr) return bad("duplicate field '" + v.keys[i] + "'");
    *slot = &v.items[i];
  }
  if (!dtype) return bad("missing 'dtype'");
  if (!shape) return bad("missing 'shape'");
  if (!offsets) return bad("missing 'data_offsets'");
  if (dtype->kind != Json::kString) return bad("'dtype' is not a string");
  std::optional<Dtype> dt = ParseDtype(dtype->text);
  if (!dt) return bad("unknown dtype '" + dtype->text + "' (known: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)");
  if (shape->kind != Json::kArray) return bad("'shape' is not an array");
  if (shape->items.size() > kMaxSafetensorsRank) {
    return bad("rank " + std::to_string(shape->items.size()) + " exceeds " + std::to_string(kMaxSafetensorsRank));
  }
  out->view.name = name;
  out->view.dtype = *dt;
  for (const Json& d : shape->items) {
    uint64_t x;
    if (!ToUint64(d, &x) || x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return bad("shape entry '" + (d.kind == Json::kNumber ? d.text : std::string(KindName(d.kind))) +
                 "' is not a non-negative integer");
    }
    out->view.shape.push_back(static_cast<int64_t>(x));
  }
  if (offsets->kind != Json::kArray || offsets->items.size() != 2 ||
      !ToUint64(offsets->items[0], &out->begin) || !ToUint64(offsets->items[1], &out->end)) {
    return bad("'data_offsets' is not [begin, end] of non-negative integers");
  }
  const std::string span = "data_offsets [" + std::to_string(out->begin) + ", " + std::to_string(out->end) + "]";
  if (out->begin > out->end) return bad(span + " end before begin");
  if (out->end > buffer_size) {
    return bad(span + " out of range: the data buffer is " + std::to_string(buffer_size) + " bytes");
  }
  std::optional<uint64_t> want = ByteSize(out->view.shape, Info(*dt).size);
  if (!want) return bad("shape " + ShapeString(out->view.shape) + " overflows");
  if (*want != out->end - out->begin) {
    return bad("shape " + ShapeString(out->view.shape) + " of " + std::string(Info(*dt).name) + " needs " +
               std::to_string(*want) + " bytes but " + span + " hold " + std::to_string(out->end - out->begin));
  }
  return Status::Ok();
}

std::string RandomSuffix() {
  static thread_local std::mt19937_64 rng(std::random_device{}() ^ static_cast<uint64_t>(::getpid()));
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

Status WriteAll(int fd, const void* data, size_t size, const fs::path& path) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write " + path.string());
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

// Validates the tensors and builds length prefix + padded header; `order` is the data order.
StatusOr<std::string> BuildHeader(std::span<const TensorView> tensors,
                                  const std::map<std::string, std::string>& metadata,
                                  std::vector<size_t>* order) {
  std::map<std::string_view, size_t> seen;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorView& t = tensors[i];
    size_t bad_at = 0;
    if (t.name.empty()) return InvalidArgumentError("tensor #" + std::to_string(i) + " has an empty name");
    if (t.name == "__metadata__") return InvalidArgumentError("tensor name '__metadata__' is reserved");
    if (!ValidUtf8(t.name, &bad_at)) return InvalidArgumentError("tensor name '" + t.name + "' is not UTF-8");
    if (!seen.emplace(t.name, i).second) return InvalidArgumentError("duplicate tensor name '" + t.name + "'");
    std::optional<uint64_t> want = ByteSize(t.shape, DtypeSize(t.dtype));
    if (!want) return InvalidArgumentError("tensor '" + t.name + "': bad shape " + ShapeString(t.shape));
    if (*want != t.data.size()) {
      return InvalidArgumentError("tensor '" + t.name + "': shape " + ShapeString(t.shape) + " of " +
                                  std::string(DtypeName(t.dtype)) + " needs " + std::to_string(*want) +
                                  " bytes, data has " + std::to_string(t.data.size()));
    }
  }
  for (const auto& [k, v] : metadata) {
    size_t bad_at = 0;
    if (!ValidUtf8(k, &bad_at) || !ValidUtf8(v, &bad_at)) {
      return InvalidArgumentError("metadata entry '" + k + "' is not UTF-8");
    }
  }
  order->resize(tensors.size());
  std::iota(order->begin(), order->end(), size_t{0});
  std::sort(order->begin(), order->end(), [&](size_t a, size_t b) {
    int ra = Info(tensors[a].dtype).rank, rb = Info(tensors[b].dtype).rank;
    if (ra != rb) return ra > rb;
    return tensors[a].name < tensors[b].name;
  });

  std::string json = "{";
  if (!metadata.empty()) {
    json += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      if (!first) json += ',';
      first = false;
      AppendJsonString(k, &json);
      json += ':';
      AppendJsonString(v, &json);
    }
    json += '}';
  }
  uint64_t offset = 0;
  for (size_t i : *order) {
    const TensorView& t = tensors[i];
    if (json.size() > 1) json += ',';
    AppendJsonString(t.name, &json);
    json += ":{\"dtype\":\"";
    json += DtypeName(t.dtype);
    json += "\",\"shape\":[";
    for (size_t d = 0; d < t.shape.size(); ++d) json += (d ? "," : "") + std::to_string(t.shape[d]);
    json += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + t.data.size()) + "]}";
    offset += t.data.size();
  }
  json += '}';
  // Spaces up to a multiple of 8, as the reference pads, so the buffer starts 8-byte aligned.
  json.append((8 - json.size() % 8) % 8, ' ');
  if (json.size() > kMaxSafetensorsHeaderBytes) {
    return InvalidArgumentError("header of " + std::to_string(json.size()) + " bytes exceeds the " +
                                std::to_string(kMaxSafetensorsHeaderBytes) + "-byte cap readers accept");
  }
  std::string out(8, '\0');
  uint64_t n = json.size();
  std::memcpy(out.data(), &n, 8);
  out += json;
  return out;
}

}  // namespace

std::string ShapeString(std::span<const int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string_view DtypeName(Dtype dtype) { return Info(dtype).name; }
size_t DtypeSize(Dtype dtype) { return Info(dtype).size; }

std::optional<Dtype> ParseDtype(std::string_view name) {
  for (const DtypeInfo& d : kDtypes) {
    if (d.name == name) return d.dtype;
  }
  return std::nullopt;
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

StatusOr<SafetensorsFile> SafetensorsFile::Open(const fs::path& path) {
  SafetensorsFile file;
  file.source_ = path.string();
  ADREC_ASSIGN_OR_RETURN(MappedFile mapped, MappedFile::Open(path));
  file.mapping_.emplace(std::move(mapped));
  std::string_view bytes = file.mapping_->data();
  return Parse(std::move(file), bytes);
}

StatusOr<SafetensorsFile> SafetensorsFile::FromBytes(std::string_view bytes, std::string source) {
  SafetensorsFile file;
  file.source_ = std::move(source);
  file.owned_ = std::make_unique<std::string>(bytes);
  std::string_view owned = *file.owned_;
  return Parse(std::move(file), owned);
}

StatusOr<SafetensorsFile> SafetensorsFile::Parse(SafetensorsFile file, std::string_view bytes) {
  auto fail = [&](const Status& s) { return Status(s.code(), file.source_ + ": " + s.message()); };
  if (bytes.size() < 8) {
    return fail(DataLossError("file is " + std::to_string(bytes.size()) +
                              " bytes, too short for the 8-byte header length (truncated?)"));
  }
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  if (n > kMaxSafetensorsHeaderBytes) {
    return fail(DataLossError("header length " + std::to_string(n) + " exceeds the " +
                              std::to_string(kMaxSafetensorsHeaderBytes) + "-byte cap (not a safetensors file?)"));
  }
  if (n > bytes.size() - 8) {
    return fail(DataLossError("header length " + std::to_string(n) + " runs past the end of the file (" +
                              std::to_string(bytes.size()) + " bytes; truncated?)"));
  }
  std::string_view header = bytes.substr(8, n);
  std::string_view buffer = bytes.substr(8 + n);
  if (header.empty() || header[0] != '{') return fail(DataLossError("header does not start with '{'"));
  size_t bad_at = 0;
  if (!ValidUtf8(header, &bad_at)) {
    return fail(DataLossError("header is not UTF-8 (byte " + std::to_string(bad_at) + ")"));
  }
  Json root;
  if (Status s = JsonParser(header).ParseDocument(&root); !s.ok()) return fail(s);
  if (root.kind != Json::kObject) return fail(DataLossError("header is not a JSON object"));

  std::vector<Entry> entries;
  entries.reserve(root.keys.size());
  bool have_metadata = false;
  for (size_t i = 0; i < root.keys.size(); ++i) {
    const std::string& key = root.keys[i];
    const Json& v = root.items[i];
    if (key == "__metadata__") {
      if (have_metadata) return fail(DataLossError("duplicate '__metadata__'"));
      have_metadata = true;
      if (v.kind == Json::kNull) continue;
      if (v.kind != Json::kObject) return fail(DataLossError("'__metadata__' is not an object"));
      for (size_t k = 0; k < v.keys.size(); ++k) {
        if (v.items[k].kind != Json::kString) {
          return fail(DataLossError("metadata '" + v.keys[k] + "' is " + std::string(KindName(v.items[k].kind)) +
                                    ", not a string"));
        }
        if (!file.metadata_.emplace(v.keys[k], v.items[k].text).second) {
          return fail(DataLossError("duplicate metadata key '" + v.keys[k] + "'"));
        }
      }
      continue;
    }
    Entry e;
    if (Status s = ParseTensorInfo(key, v, buffer.size(), &e); !s.ok()) return fail(s);
    if (!file.index_.emplace(key, entries.size()).second) {
      return fail(DataLossError("duplicate tensor name '" + key + "'"));
    }
    entries.push_back(std::move(e));
  }

  // The spec demands the tensors tile the buffer: no gaps, no overlaps, nothing left over.
  std::vector<size_t> order(entries.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::pair(entries[a].begin, entries[a].end) < std::pair(entries[b].begin, entries[b].end);
  });
  uint64_t expected = 0;
  const std::string* prev = nullptr;
  for (size_t i : order) {
    const Entry& e = entries[i];
    if (e.begin < expected) {
      return fail(DataLossError("tensor '" + e.view.name + "': data_offsets [" + std::to_string(e.begin) + ", " +
                                std::to_string(e.end) + "] overlap tensor '" + *prev + "'"));
    }
    if (e.begin > expected) {
      return fail(DataLossError("tensor '" + e.view.name + "': data_offsets [" + std::to_string(e.begin) + ", " +
                                std::to_string(e.end) + "] leave a gap of " + std::to_string(e.begin - expected) +
                                " bytes before it"));
    }
    expected = e.end;
    if (e.end > e.begin) prev = &e.view.name;
  }
  if (expected != buffer.size()) {
    return fail(DataLossError(std::to_string(buffer.size() - expected) +
                              " bytes after the last tensor belong to no tensor (buffer is " +
                              std::to_string(buffer.size()) + " bytes)"));
  }

  file.tensors_.reserve(entries.size());
  file.index_.clear();
  for (size_t i : order) {
    Entry& e = entries[i];
    e.view.data = std::as_bytes(std::span(buffer.data() + e.begin, e.end - e.begin));
    file.index_.emplace(e.view.name, file.tensors_.size());
    file.tensors_.push_back(std::move(e.view));
  }
  return file;
}

const TensorView* SafetensorsFile::Find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

StatusOr<std::string> SerializeSafetensors(std::span<const TensorView> tensors,
                                           const std::map<std::string, std::string>& metadata) {
  std::vector<size_t> order;
  ADREC_ASSIGN_OR_RETURN(std::string out, BuildHeader(tensors, metadata, &order));
  for (size_t i : order) out.append(reinterpret_cast<const char*>(tensors[i].data.data()), tensors[i].data.size());
  return out;
}

Status WriteSafetensors(const fs::path& path, std::span<const TensorView> tensors,
                        const std::map<std::string, std::string>& metadata) {
  std::vector<size_t> order;
  StatusOr<std::string> header = BuildHeader(tensors, metadata, &order);
  if (!header.ok()) return header.status().WithContext("writing " + path.string());
  if (AtRestKey() != nullptr) {  // encrypted at rest: the whole file is sealed at once
    ADREC_ASSIGN_OR_RETURN(std::string bytes, SerializeSafetensors(tensors, metadata));
    return AtomicWriteFile(path, bytes);
  }
  fs::path tmp = path;
  tmp += ".tmp-" + RandomSuffix();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("create " + tmp.string());
  Status s = WriteAll(fd, header->data(), header->size(), tmp);
  for (size_t i : order) {
    if (!s.ok()) break;
    s = WriteAll(fd, tensors[i].data.data(), tensors[i].data.size(), tmp);
  }
  if (s.ok() && ::fsync(fd) != 0) s = ErrnoError("fsync " + tmp.string());
  if (::close(fd) != 0 && s.ok()) s = ErrnoError("close " + tmp.string());
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    s = ErrnoError("rename " + tmp.string() + " -> " + path.string());
  }
  if (!s.ok()) {
    ::unlink(tmp.c_str());  // never leave a half-written temp behind
    return s;
  }
  return SyncPath(path.parent_path().empty() ? fs::path(".") : path.parent_path());
}

// ---- 16-bit floats ----

float HalfToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise into a float exponent
      uint32_t e = 113;
      while (!(mant & 0x400)) {
        mant <<= 1;
        --e;
      }
      bits = sign | (e << 23) | ((mant & 0x3FF) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7F800000 | (mant << 13);  // inf, or NaN with its payload
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

uint16_t FloatToHalf(float value) {
  uint32_t f = std::bit_cast<uint32_t>(value);
  auto sign = static_cast<uint16_t>((f >> 16) & 0x8000);
  uint32_t abs = f & 0x7FFFFFFF;
  if (abs >= 0x7F800000) {  // inf, or NaN kept quiet with the top payload bits
    if (abs == 0x7F800000) return sign | 0x7C00;
    return static_cast<uint16_t>(sign | 0x7E00 | ((abs >> 13) & 0x3FF));
  }
  if (abs >= 0x477FF000) return sign | 0x7C00;  // >= 65520 rounds (ties to even) to infinity
  if (abs < 0x38800000) {                       // below 2^-14: a half subnormal or zero
    if (abs <= 0x33000000) return sign;         // <= 2^-25: half of the least subnormal ties to 0
    uint32_t e = abs >> 23;
    uint32_t m = (abs & 0x7FFFFF) | 0x800000;
    uint32_t shift = 126 - e;  // 14..24
    uint32_t q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) ++q;
    return static_cast<uint16_t>(sign | q);
  }
  uint32_t h = (abs - 0x38000000) >> 13;  // rebias the exponent from 127 to 15
  uint32_t rem = abs & 0x1FFF;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;  // a carry into the exponent is correct
  return static_cast<uint16_t>(sign | h);
}

float BFloat16ToFloat(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }

uint16_t FloatToBFloat16(float value) {
  uint32_t f = std::bit_cast<uint32_t>(value);
  if ((f & 0x7FFFFFFF) > 0x7F800000) return static_cast<uint16_t>((f >> 16) | 0x40);  // quiet NaN
  f += 0x7FFF + ((f >> 16) & 1);  // round to nearest, ties to even; overflow becomes infinity
  return static_cast<uint16_t>(f >> 16);
}

}  // namespace adrec

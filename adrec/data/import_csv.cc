// Generic CSV and JSONL logs → Dataset, described by a schema TOML (configs/schemas/README.md):
// which column or key holds the user, item, time, action, value, scene and position, how source
// action values map to actions, and which extra columns to keep as typed event features.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <unordered_map>

#include "adrec/core/config.h"
#include "adrec/data/import.h"
#include "adrec/data/line_reader.h"

namespace adrec::data {

namespace {
using import_internal::Quote;

enum class TimeFormat { kUnix, kUnixMs, kIso8601 };
enum class FeatureType { kCategorical, kFloat, kInt };

// Fixed slots of a row, then one per feature.
enum Slot : int { kUser = 0, kItem, kTime, kAction, kValue, kScene, kPosition, kNumFixedSlots };
constexpr std::string_view kSlotKeys[kNumFixedSlots] = {"user", "item", "time", "action", "value", "scene", "position"};

struct FeatureSpec {
  std::string column;  // source column / key
  std::string name;    // event-table column name
  FeatureType type = FeatureType::kCategorical;
};

struct Schema {
  std::string source;  // schema file name, for messages
  std::string name;
  // CSV
  char delimiter = ',';
  bool header = true;
  char quote = '"';
  bool quoting = true;
  std::vector<std::string> columns;  // names of a header-less file's columns
  // Both: source column of each slot ("" = not present), then features.
  std::string slot_column[kNumFixedSlots];
  TimeFormat time_format = TimeFormat::kUnix;
  Action default_action = Action::kClick;
  std::unordered_map<std::string, Action> action_map;  // empty = values are action names
  std::vector<FeatureSpec> features;
  size_t num_slots() const { return kNumFixedSlots + features.size(); }
  const std::string& column_of(size_t slot) const {
    return slot < kNumFixedSlots ? slot_column[slot] : features[slot - kNumFixedSlots].column;
  }
};

Status SchemaError(const Schema& s, std::string what) { return InvalidArgumentError(s.source + ": " + what); }

StatusOr<char> OneChar(const Schema& s, std::string_view key, const std::string& v, bool allow_empty) {
  if (v.size() == 1) return v[0];
  if (allow_empty && v.empty()) return '\0';
  return SchemaError(s, "'" + std::string(key) + "' must be one character, got '" + v + "'");
}

StatusOr<Schema> ParseSchema(Config& c, bool csv) {
  Schema s;
  s.source = std::filesystem::path(c.source()).filename().string();
  std::string format = csv ? "csv" : "jsonl";
  ADREC_RETURN_IF_ERROR(c.Get("format", &format));
  if (format != (csv ? "csv" : "jsonl")) {
    return SchemaError(s, "schema is for format '" + format + "', but the import format is " + (csv ? "csv" : "jsonl"));
  }
  ADREC_RETURN_IF_ERROR(c.Get("name", &s.name));
  if (csv) {
    std::string delim = ",", quote = "\"";
    ADREC_RETURN_IF_ERROR(c.Get("csv.delimiter", &delim));
    ADREC_RETURN_IF_ERROR(c.Get("csv.quote", &quote));
    ADREC_RETURN_IF_ERROR(c.Get("csv.header", &s.header));
    ADREC_RETURN_IF_ERROR(c.Get("csv.columns", &s.columns));
    ADREC_ASSIGN_OR_RETURN(s.delimiter, OneChar(s, "csv.delimiter", delim, false));
    ADREC_ASSIGN_OR_RETURN(s.quote, OneChar(s, "csv.quote", quote, true));
    s.quoting = !quote.empty();
    if (s.quoting && s.quote == s.delimiter) return SchemaError(s, "csv.quote and csv.delimiter are the same character");
    if (!s.header && s.columns.empty()) {
      return SchemaError(s, "csv.header = false needs csv.columns, the names of the file's columns in order");
    }
  }
  for (int k = 0; k < kNumFixedSlots; ++k) {
    ADREC_RETURN_IF_ERROR(c.Get("fields." + std::string(kSlotKeys[k]), &s.slot_column[k]));
  }
  if (s.slot_column[kUser].empty() || s.slot_column[kItem].empty()) {
    return SchemaError(s, "fields.user and fields.item are required");
  }
  std::string tf = "unix";
  ADREC_RETURN_IF_ERROR(c.Get("fields.time_format", &tf));
  if (tf == "unix") s.time_format = TimeFormat::kUnix;
  else if (tf == "unix_ms") s.time_format = TimeFormat::kUnixMs;
  else if (tf == "iso8601") s.time_format = TimeFormat::kIso8601;
  else return SchemaError(s, "fields.time_format must be unix, unix_ms or iso8601, got '" + tf + "'");
  std::string da = "click";
  ADREC_RETURN_IF_ERROR(c.Get("fields.default_action", &da));
  auto a = ParseAction(da);
  if (!a.ok()) return SchemaError(s, "fields.default_action: " + a.status().message());
  s.default_action = *a;
  for (const std::string& key : c.KeysOf("actions")) {
    std::string name;
    ADREC_RETURN_IF_ERROR(c.Get("actions." + key, &name));
    auto act = ParseAction(name);
    if (!act.ok()) return SchemaError(s, "actions." + key + ": " + act.status().message());
    s.action_map.emplace(key, *act);
  }
  if (!s.action_map.empty() && s.slot_column[kAction].empty()) {
    return SchemaError(s, "[actions] maps values of an action column, but fields.action is not set");
  }
  for (size_t i = 0; i < c.ArraySize("features"); ++i) {
    FeatureSpec f;
    std::string p = "features[" + std::to_string(i) + "].", type = "categorical";
    ADREC_RETURN_IF_ERROR(c.Require(p + "column", &f.column));
    f.name = f.column;
    ADREC_RETURN_IF_ERROR(c.Get(p + "name", &f.name));
    ADREC_RETURN_IF_ERROR(c.Get(p + "type", &type));
    if (type == "categorical") f.type = FeatureType::kCategorical;
    else if (type == "float") f.type = FeatureType::kFloat;
    else if (type == "int") f.type = FeatureType::kInt;
    else return SchemaError(s, p + "type must be categorical, float or int, got '" + type + "'");
    if (f.column.empty() || f.name.empty()) return SchemaError(s, p + "column must not be empty");
    for (const auto& g : s.features) {
      if (g.name == f.name) return SchemaError(s, "two features named '" + f.name + "'");
    }
    s.features.push_back(std::move(f));
  }
  ADREC_RETURN_IF_ERROR(c.CheckNoUnknownKeys());
  return s;
}

StatusOr<Schema> LoadSchema(const std::filesystem::path& path, bool csv) {
  if (path.empty()) return InvalidArgumentError(std::string(csv ? "csv" : "jsonl") + " import needs a schema TOML");
  ADREC_ASSIGN_OR_RETURN(Config c, Config::LoadFile(path));
  return ParseSchema(c, csv);
}

bool ParseDouble(std::string_view s, double* out) {
  if (s.empty()) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && std::isfinite(*out);
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool Digits(std::string_view s, size_t pos, size_t n, unsigned* out) {
  if (pos + n > s.size()) return false;
  unsigned v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + static_cast<unsigned>(s[i] - '0');
  }
  *out = v;
  return true;
}

// ISO-8601 date or date-time: "2024-05-01", "2024-05-01T12:30", "2024-05-01 12:30:45.123Z",
// "2024-05-01T12:30:45+08:00". Without an offset the time is taken as UTC.
bool ParseIso8601(std::string_view s, int64_t* out) {
  unsigned y, mo, d, h = 0, mi = 0, se = 0;
  if (!Digits(s, 0, 4, &y) || s.size() < 10 || s[4] != '-' || !Digits(s, 5, 2, &mo) || s[7] != '-' ||
      !Digits(s, 8, 2, &d)) {
    return false;
  }
  static constexpr unsigned kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (mo < 1 || mo > 12 || d < 1 || d > kDays[mo - 1]) return false;
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (mo == 2 && d == 29 && !leap) return false;
  size_t p = 10;
  int64_t offset = 0;
  if (p < s.size()) {
    if (s[p] != 'T' && s[p] != ' ') return false;
    if (!Digits(s, p + 1, 2, &h) || p + 3 >= s.size() || s[p + 3] != ':' || !Digits(s, p + 4, 2, &mi)) return false;
    p += 6;
    if (p < s.size() && s[p] == ':') {
      if (!Digits(s, p + 1, 2, &se)) return false;
      p += 3;
      if (p < s.size() && (s[p] == '.' || s[p] == ',')) {  // fractional seconds: dropped
        ++p;
        size_t b = p;
        while (p < s.size() && s[p] >= '0' && s[p] <= '9') ++p;
        if (p == b) return false;
      }
    }
    if (h > 23 || mi > 59 || se > 60) return false;
    if (p < s.size()) {
      if (s[p] == 'Z' && p + 1 == s.size()) {
        p = s.size();
      } else if (s[p] == '+' || s[p] == '-') {
        unsigned oh, om;
        int sign = s[p] == '+' ? 1 : -1;
        if (!Digits(s, p + 1, 2, &oh)) return false;
        size_t q = p + 3;
        if (q < s.size() && s[q] == ':') ++q;
        if (!Digits(s, q, 2, &om) || q + 2 != s.size() || oh > 23 || om > 59) return false;
        offset = sign * (static_cast<int64_t>(oh) * 3600 + om * 60);
        p = s.size();
      } else {
        return false;
      }
    }
  }
  *out = DaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset;
  return true;
}

// Turns one row's slot values into an event plus feature rows, or says what is wrong with it.
class RowSink {
 public:
  RowSink(const Schema& schema, DatasetBuilder* b) : s_(schema), b_(b) {
    Table& et = b->event_table();
    et.columns.reserve(schema.features.size());
    for (const auto& f : schema.features) {
      ColumnType t = f.type == FeatureType::kCategorical ? ColumnType::kCategorical
                     : f.type == FeatureType::kFloat     ? ColumnType::kFloat32
                                                         : ColumnType::kUInt32;
      et.Add(f.name, t);
    }
    fvals_.resize(schema.features.size());
    default_scene_ = b->SceneId("default");
  }

  // values[slot] with present[slot]; "" counts as missing. Returns "" or the fault.
  std::string Add(const std::vector<std::string_view>& values, const std::vector<uint8_t>& present, uint64_t line) {
    auto get = [&](int slot) -> std::string_view { return present[slot] ? values[slot] : std::string_view(); };
    std::string_view user = get(kUser), item = get(kItem);
    if (user.empty()) return "missing user (" + s_.slot_column[kUser] + ")";
    if (item.empty()) return "missing item (" + s_.slot_column[kItem] + ")";
    if (!IsValidUtf8(user) || !IsValidUtf8(item)) return "user or item ID is not valid UTF-8";
    Event e;
    if (!s_.slot_column[kTime].empty()) {
      std::string_view t = TrimSpaces(get(kTime));
      if (t.empty()) return "missing time (" + s_.slot_column[kTime] + ")";
      int64_t ts = 0;
      double d;
      bool ok = false;
      switch (s_.time_format) {
        case TimeFormat::kUnix:
          ok = ParseI64(t, &ts);
          if (!ok && ParseDouble(t, &d)) {  // fractional seconds
            ok = true;
            ts = d < 0 ? -1 : d > 1e12 ? int64_t{1} << 40 : static_cast<int64_t>(d);
          }
          break;
        case TimeFormat::kUnixMs:
          ok = ParseI64(t, &ts);
          ts = ts >= 0 ? ts / 1000 : -1;
          break;
        case TimeFormat::kIso8601: ok = ParseIso8601(t, &ts); break;
      }
      if (!ok) return "time " + Quote(t) + " is not a valid " + TimeFormatName();
      if (ts < 0 || ts > static_cast<int64_t>(UINT32_MAX)) return "time " + Quote(t) + " outside 1970..2106";
      e.timestamp = ts;
    } else {
      if (line > UINT32_MAX) return "line number past 2^32 does not fit the time column";
      e.timestamp = static_cast<int64_t>(line);  // no time column: file order
    }
    e.action = s_.default_action;
    if (!s_.slot_column[kAction].empty()) {
      std::string_view a = get(kAction);
      if (!s_.action_map.empty()) {
        auto it = s_.action_map.find(std::string(a));
        if (it == s_.action_map.end()) return "action " + Quote(a) + " is not in the schema's [actions]";
        e.action = it->second;
      } else {
        auto act = ParseAction(a);
        if (!act.ok()) return "action " + Quote(a) + " is not an action name";
        e.action = *act;
      }
    }
    if (std::string_view v = TrimSpaces(get(kValue)); !v.empty()) {
      if (!ParseFloat(v, &e.value)) return "value " + Quote(v) + " is not a number";
    }
    e.scene = default_scene_;
    if (std::string_view sc = get(kScene); !sc.empty()) {
      if (!IsValidUtf8(sc)) return "scene is not valid UTF-8";
      const auto& scenes = b_->dataset().scenes;
      bool known = std::find(scenes.begin(), scenes.end(), sc) != scenes.end();
      if (!known && scenes.size() >= 256) return "more than 256 distinct scenes";
      scene_pending_ = sc;
    } else {
      scene_pending_ = {};
    }
    if (std::string_view p = TrimSpaces(get(kPosition)); !p.empty()) {
      uint32_t pos;
      if (!ParseU32(p, &pos) || pos > 255) return "position " + Quote(p) + " is not an integer in 0..255";
      e.position = static_cast<uint8_t>(pos);
    }
    for (size_t k = 0; k < s_.features.size(); ++k) {
      int slot = kNumFixedSlots + static_cast<int>(k);
      std::string_view v = get(slot);
      Fv& fv = fvals_[k];
      fv.missing = v.empty();
      if (fv.missing) continue;
      switch (s_.features[k].type) {
        case FeatureType::kCategorical:
          if (!IsValidUtf8(v)) return "feature " + s_.features[k].name + " is not valid UTF-8";
          fv.text = v;
          break;
        case FeatureType::kFloat:
          if (!ParseFloat(TrimSpaces(v), &fv.f)) return "feature " + s_.features[k].name + " " + Quote(v) + " is not a number";
          break;
        case FeatureType::kInt:
          if (!ParseU32(TrimSpaces(v), &fv.u)) {
            return "feature " + s_.features[k].name + " " + Quote(v) + " is not an integer in 0..2^32-1";
          }
          break;
      }
    }
    // Valid: only now touch vocabularies and columns, so a bad row leaves nothing behind.
    if (!scene_pending_.empty()) e.scene = b_->SceneId(scene_pending_);
    e.user = b_->UserId(user);
    e.item = b_->ItemId(item);
    Status st = b_->AddEvent(e);
    if (!st.ok()) return st.message();
    Table& et = b_->event_table();
    for (size_t k = 0; k < s_.features.size(); ++k) {
      Column& c = et.columns[k];
      const Fv& fv = fvals_[k];
      if (fv.missing) {
        c.PushDefault();
        continue;
      }
      switch (s_.features[k].type) {
        case FeatureType::kCategorical: c.PushCategorical(fv.text); break;
        case FeatureType::kFloat: c.PushFloat(fv.f); break;
        case FeatureType::kInt: c.PushU32(fv.u); break;
      }
    }
    return {};
  }

 private:
  std::string TimeFormatName() const {
    switch (s_.time_format) {
      case TimeFormat::kUnix: return "unix time";
      case TimeFormat::kUnixMs: return "unix time in ms";
      case TimeFormat::kIso8601: return "ISO-8601 date-time";
    }
    return "time";
  }
  struct Fv {
    bool missing = true;
    std::string_view text;
    float f = 0;
    uint32_t u = 0;
  };
  const Schema& s_;
  DatasetBuilder* b_;
  std::vector<Fv> fvals_;
  std::string_view scene_pending_;
  uint8_t default_scene_ = 0;
};

std::string DatasetName(const Schema& s, const std::string& input_name, std::string_view fmt) {
  if (!s.name.empty()) return s.name;
  return std::string(fmt) + "-" + std::filesystem::path(input_name).stem().string();
}

StatusOr<Dataset> RunCsv(LineReader& r, const Schema& s, const ImportOptions& options, std::string provenance) {
  DatasetBuilder b({.name = DatasetName(s, r.name(), "csv"), .source_format = "csv", .provenance = std::move(provenance)});
  import_internal::RowErrors errors(options);
  Progress progress("import csv", r.size_bytes(), import_internal::ImportProgressOptions(options));
  r.set_progress(&progress);
  RowSink sink(s, &b);
  CsvRecordReader csv(&r, s.delimiter, s.quoting ? s.quote : '\0');
  std::vector<std::string_view> fields;
  std::string_view line;
  // Reads one record: quoted or plain split.
  auto next = [&](uint64_t* rec_line, std::string* fault) -> bool {
    fault->clear();
    if (s.quoting) {
      if (!csv.Next(&fields)) return false;
      *rec_line = csv.line_number();
      if (csv.has_error()) *fault = csv.error();
      return true;
    }
    if (!r.Next(&line)) return false;
    *rec_line = r.line_number();
    SplitFields(line, s.delimiter, &fields);
    return true;
  };
  std::vector<std::string> names = s.columns;
  uint64_t rec_line = 0;
  std::string fault;
  if (s.header) {
    bool got = false;
    while (next(&rec_line, &fault)) {
      if (!fault.empty()) return InvalidArgumentError(r.name() + ":" + std::to_string(rec_line) + ": header: " + fault);
      if (fields.size() == 1 && fields[0].empty()) continue;
      got = true;
      break;
    }
    ADREC_RETURN_IF_ERROR(r.status());
    if (!got) return InvalidArgumentError(r.name() + ": empty file (no header)");
    if (s.columns.empty()) {
      names.clear();
      for (auto f : fields) names.emplace_back(TrimSpaces(f));
    }
  }
  std::vector<int> index(s.num_slots(), -1);  // slot → field index
  for (size_t slot = 0; slot < s.num_slots(); ++slot) {
    const std::string& col = s.column_of(slot);
    if (col.empty()) continue;
    auto it = std::find(names.begin(), names.end(), col);
    if (it == names.end()) {
      return InvalidArgumentError(s.source + ": column '" + col + "' is not among the columns of " + r.name() +
                                  (s.header && s.columns.empty() ? " (its header)" : " (csv.columns)"));
    }
    index[slot] = static_cast<int>(it - names.begin());
  }
  std::vector<std::string_view> values(s.num_slots());
  std::vector<uint8_t> present(s.num_slots(), 0);
  while (next(&rec_line, &fault)) {
    if (fault.empty() && fields.size() == 1 && fields[0].empty()) continue;  // blank line
    if (fault.empty() && fields.size() != names.size()) {
      fault = "expected " + std::to_string(names.size()) + " fields, got " + std::to_string(fields.size());
    }
    if (fault.empty()) {
      for (size_t slot = 0; slot < s.num_slots(); ++slot) {
        present[slot] = index[slot] >= 0;
        values[slot] = index[slot] >= 0 ? fields[static_cast<size_t>(index[slot])] : std::string_view();
      }
      fault = sink.Add(values, present, rec_line);
    }
    if (!fault.empty()) ADREC_RETURN_IF_ERROR(errors.Add(r.name(), rec_line, fault));
  }
  ADREC_RETURN_IF_ERROR(r.status());
  progress.Finish();
  return import_internal::FinishImport(std::move(b), errors, r.name());
}

// SAX handler that keeps only the top-level keys the schema names, as text in reusable slots.
class JsonRowHandler : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit JsonRowHandler(const Schema& s) {
    for (size_t slot = 0; slot < s.num_slots(); ++slot) {
      const std::string& col = s.column_of(slot);
      if (!col.empty()) slot_of_.emplace(col, static_cast<int>(slot));
    }
    text_.resize(s.num_slots());
    present_.resize(s.num_slots());
  }
  void Reset() {
    std::fill(present_.begin(), present_.end(), 0);
    depth_ = 0;
    slot_ = -1;
    error_.clear();
  }
  const std::string& error() const { return error_; }
  const std::vector<std::string>& text() const { return text_; }
  const std::vector<uint8_t>& present() const { return present_; }

  bool null() override { return Scalar(nullptr); }
  bool boolean(bool v) override { return Scalar(v ? "true" : "false"); }
  bool number_integer(number_integer_t v) override { return Number(v); }
  bool number_unsigned(number_unsigned_t v) override { return Number(v); }
  bool number_float(number_float_t, const string_t& raw) override { return Scalar(raw.c_str(), raw.size()); }
  bool string(string_t& v) override { return Scalar(v.c_str(), v.size()); }
  bool binary(binary_t&) override { return Scalar(""); }
  bool start_object(std::size_t) override { return Open(false); }
  bool end_object() override { --depth_; return true; }
  bool start_array(std::size_t) override { return Open(true); }
  bool end_array() override { --depth_; return true; }
  bool key(string_t& k) override {
    if (depth_ == 1) {
      auto it = slot_of_.find(k);
      slot_ = it == slot_of_.end() ? -1 : it->second;
    }
    return true;
  }
  bool parse_error(std::size_t pos, const std::string&, const nlohmann::detail::exception& ex) override {
    std::string m = ex.what();
    // nlohmann's messages start with "[json.exception.parse_error.101] parse error at line 1, column 5: ".
    if (auto c = m.find(": "); c != std::string::npos && m.starts_with("[json.exception")) m = m.substr(c + 2);
    error_ = "invalid JSON at byte " + std::to_string(pos) + ": " + m;
    return false;
  }

 private:
  bool Open(bool array) {
    if (depth_ == 0 && array) return TopScalar();
    if (depth_ == 1 && slot_ >= 0) {
      error_ = "key '" + Key(slot_) + "' holds " + (array ? "an array" : "an object") +
               ", expected a string, number or null";
      return false;
    }
    slot_ = -1;
    ++depth_;
    return true;
  }
  template <typename T>
  bool Number(T v) {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof(buf), v);
    return Scalar(buf, static_cast<size_t>(r.ptr - buf));
  }
  bool Scalar(std::nullptr_t) {
    if (depth_ == 0) return TopScalar();
    if (depth_ == 1 && slot_ >= 0) present_[slot_] = 0;
    slot_ = -1;
    return true;
  }
  bool Scalar(const char* s) { return Scalar(s, std::char_traits<char>::length(s)); }
  bool Scalar(const char* s, size_t n) {
    if (depth_ == 0) return TopScalar();
    if (depth_ == 1 && slot_ >= 0) {
      text_[slot_].assign(s, n);
      present_[slot_] = 1;
    }
    slot_ = -1;
    return true;
  }
  bool TopScalar() {
    error_ = "line is not a JSON object";
    return false;
  }
  std::string Key(int slot) const {
    for (const auto& [k, v] : slot_of_) {
      if (v == slot) return k;
    }
    return "?";
  }

  std::unordered_map<std::string, int> slot_of_;
  std::vector<std::string> text_;
  std::vector<uint8_t> present_;
  int depth_ = 0;
  int slot_ = -1;
  std::string error_;
};

StatusOr<Dataset> RunJsonl(LineReader& r, const Schema& s, const ImportOptions& options, std::string provenance) {
  DatasetBuilder b({.name = DatasetName(s, r.name(), "jsonl"), .source_format = "jsonl", .provenance = std::move(provenance)});
  import_internal::RowErrors errors(options);
  Progress progress("import jsonl", r.size_bytes(), import_internal::ImportProgressOptions(options));
  r.set_progress(&progress);
  RowSink sink(s, &b);
  JsonRowHandler h(s);
  std::vector<std::string_view> values(s.num_slots());
  std::string_view line;
  while (r.Next(&line)) {
    if (TrimSpaces(line).empty()) continue;
    h.Reset();
    bool ok;
    std::string fault;
    try {
      ok = nlohmann::json::sax_parse(line.begin(), line.end(), &h);
    } catch (const std::exception& ex) {  // sax_parse reports through parse_error; belt and braces
      ok = false;
      fault = std::string("invalid JSON: ") + ex.what();
    }
    if (!ok) {
      if (fault.empty()) fault = h.error().empty() ? "invalid JSON" : h.error();
    } else {
      for (size_t slot = 0; slot < s.num_slots(); ++slot) values[slot] = h.text()[slot];
      fault = sink.Add(values, h.present(), r.line_number());
    }
    if (!fault.empty()) ADREC_RETURN_IF_ERROR(errors.Add(r.name(), r.line_number(), fault));
  }
  ADREC_RETURN_IF_ERROR(r.status());
  progress.Finish();
  return import_internal::FinishImport(std::move(b), errors, r.name());
}

std::string ProvenanceOf(std::string_view fmt, const std::string& input, const std::string& schema) {
  return std::string(fmt) + ": " + input + " (schema " + schema + ")";
}
}  // namespace

StatusOr<Dataset> ImportCsv(const ImportOptions& options) {
  ADREC_ASSIGN_OR_RETURN(Schema s, LoadSchema(options.schema, true));
  ADREC_ASSIGN_OR_RETURN(auto r, LineReader::Open(options.input));
  return RunCsv(*r, s, options, ProvenanceOf("csv", r->name(), s.source));
}

StatusOr<Dataset> ImportJsonl(const ImportOptions& options) {
  ADREC_ASSIGN_OR_RETURN(Schema s, LoadSchema(options.schema, false));
  ADREC_ASSIGN_OR_RETURN(auto r, LineReader::Open(options.input));
  return RunJsonl(*r, s, options, ProvenanceOf("jsonl", r->name(), s.source));
}

StatusOr<Dataset> ImportCsvFromBuffer(std::string_view text, std::string_view schema_toml, const ImportOptions& options) {
  ADREC_ASSIGN_OR_RETURN(Config c, Config::Parse(schema_toml, "schema.toml"));
  ADREC_ASSIGN_OR_RETURN(Schema s, ParseSchema(c, true));
  auto r = LineReader::FromBuffer(text, options.input.empty() ? "<memory>" : options.input.filename().string());
  return RunCsv(*r, s, options, ProvenanceOf("csv", r->name(), s.source));
}

StatusOr<Dataset> ImportJsonlFromBuffer(std::string_view text, std::string_view schema_toml,
                                        const ImportOptions& options) {
  ADREC_ASSIGN_OR_RETURN(Config c, Config::Parse(schema_toml, "schema.toml"));
  ADREC_ASSIGN_OR_RETURN(Schema s, ParseSchema(c, false));
  auto r = LineReader::FromBuffer(text, options.input.empty() ? "<memory>" : options.input.filename().string());
  return RunJsonl(*r, s, options, ProvenanceOf("jsonl", r->name(), s.source));
}

}  // namespace adrec::data

// MovieLens 100k / 1M / 10M / 20M-25M-latest → Dataset (mapping in import.h).
#include <spdlog/spdlog.h>

#include <array>
#include <memory>
#include <unordered_map>

#include "adrec/core/log.h"
#include "adrec/data/import.h"
#include "adrec/data/line_reader.h"

namespace adrec::data {

namespace {
using import_internal::Quote;
using import_internal::RowErrors;

// The 19 genres of ml-100k's u.genre, in flag order, used when u.genre is absent.
constexpr std::array<std::string_view, 19> kGenres100k = {
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"};

// ml-1m README: occupation codes 0..20 and age-group codes.
constexpr std::array<std::string_view, 21> kOccupations1m = {
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student", "customer service",
    "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student", "lawyer", "programmer",
    "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer", "tradesman/craftsman",
    "unemployed", "writer"};
std::string_view AgeGroup1m(std::string_view code) {
  if (code == "1") return "under 18";
  if (code == "18") return "18-24";
  if (code == "25") return "25-34";
  if (code == "35") return "35-44";
  if (code == "45") return "45-49";
  if (code == "50") return "50-55";
  if (code == "56") return "56+";
  return code;
}

// Numeric original IDs below this get a direct-indexed cache in front of the vocabulary hash map.
constexpr uint32_t kIdCacheLimit = 1u << 22;
// Lines read before the event columns are reserved from the observed bytes per line.
constexpr uint64_t kSampleLines = 4096;

// Original-ID → dense-ID with a flat array for canonical decimal IDs (no leading zeros), which
// is every MovieLens ID: the hash lookup per field was the importer's hottest path.
class IdCache {
 public:
  template <typename AddFn>
  uint32_t Get(std::string_view key, AddFn&& add) {
    uint32_t num;
    if (!ParseU32(key, &num)) return add(key);
    return Get(key, num, add);
  }
  // `num` is key's value, already parsed by the caller.
  template <typename AddFn>
  uint32_t Get(std::string_view key, uint32_t num, AddFn&& add) {
    bool canonical = (key[0] != '0' || key.size() == 1) && num < kIdCacheLimit;  // "007" keeps its own name
    if (!canonical) return add(key);
    if (num >= slots_.size()) slots_.resize(std::max<size_t>(num + 1, slots_.size() * 2), 0);
    uint32_t& s = slots_[num];
    if (s == 0) s = add(key) + 1;
    return s - 1;
  }

 private:
  std::vector<uint32_t> slots_;  // dense ID + 1; 0 = not seen
};

// MovieLens ratings are "4", "3.5" or "4.0": decoded directly, anything else by from_chars.
bool ParseRating(std::string_view s, float* out) {
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (s.size() == 1 && digit(s[0])) {
    *out = static_cast<float>(s[0] - '0');
    return true;
  }
  if (s.size() == 3 && digit(s[0]) && s[1] == '.' && digit(s[2])) {
    *out = static_cast<float>((s[0] - '0') * 10 + (s[2] - '0')) / 10.f;
    return true;
  }
  return ParseFloat(s, out);
}

class MovieLensImporter {
 public:
  MovieLensImporter(const ImportOptions& options, MovieLensLayout layout, std::string name, std::string provenance)
      : layout_(layout),
        builder_({.name = std::move(name), .source_format = "movielens", .provenance = std::move(provenance)}),
        errors_(options) {
    scene_ = builder_.SceneId("default");
    Table& it = builder_.item_table();
    it.Add(std::string(cols::kTitle), ColumnType::kString);
    it.Add(std::string(cols::kTags), ColumnType::kCategoricalList);
    it.Add(std::string(cols::kCategory1), ColumnType::kUInt32);
    it.Add(std::string(cols::kLanguage), ColumnType::kCategorical);
    if (layout == MovieLensLayout::k100k) {
      for (auto g : kGenres100k) genres100k_.emplace_back(g);
    }
  }

  Status ReadGenres(LineReader& r);
  Status ReadItems(LineReader& r);
  Status ReadUsers(LineReader& r);
  Status ReadRatings(LineReader& r);
  StatusOr<Dataset> Finish(std::string_view input_name) &&;

 private:
  uint32_t GenreNode(std::string_view genre);
  Status Bad(const LineReader& r, std::string_view what) { return errors_.Add(r.name(), r.line_number(), what); }
  Status BadAt(const std::string& file, uint64_t line, std::string_view what) { return errors_.Add(file, line, what); }
  Status AddItem(const std::string& file, uint64_t line, std::string_view id, std::string_view title,
                 std::span<const std::string_view> genres);
  void EnsureUserColumns();

  MovieLensLayout layout_;
  DatasetBuilder builder_;
  RowErrors errors_;
  uint8_t scene_ = 0;
  std::vector<std::string> genres100k_;
  std::unordered_map<std::string, uint32_t> genre_node_;
  std::vector<std::string_view> fields_, genre_list_;
  IdCache user_cache_, item_cache_;
};

uint32_t MovieLensImporter::GenreNode(std::string_view genre) {
  auto it = genre_node_.find(std::string(genre));
  if (it != genre_node_.end()) return it->second;
  uint32_t node = builder_.taxonomy().Add(0, std::string(genre));
  genre_node_.emplace(std::string(genre), node);
  return node;
}

Status MovieLensImporter::ReadGenres(LineReader& r) {
  // u.genre: "name|index" per line, indices 0..18 in flag order.
  std::vector<std::string> names;
  std::string_view line;
  while (r.Next(&line)) {
    if (TrimSpaces(line).empty()) continue;
    SplitFields(line, '|', &fields_);
    uint32_t idx;
    if (fields_.size() != 2 || !ParseU32(fields_[1], &idx) || idx != names.size() || fields_[0].empty()) {
      return InvalidArgumentError(r.name() + ":" + std::to_string(r.line_number()) +
                                  ": expected 'genre|index' with indices counting from 0, got " + Quote(line));
    }
    names.push_back(ToUtf8FromUtf8OrLatin1(fields_[0]));
  }
  ADREC_RETURN_IF_ERROR(r.status());
  if (names.empty()) return InvalidArgumentError(r.name() + ": no genres");
  genres100k_ = std::move(names);
  return Status::Ok();
}

Status MovieLensImporter::AddItem(const std::string& file, uint64_t line, std::string_view id, std::string_view title,
                                  std::span<const std::string_view> genres) {
  uint32_t num;
  if (!ParseU32(id, &num)) return BadAt(file, line, "movie ID " + Quote(id) + " is not a number");
  if (builder_.dataset().items.Find(id)) return BadAt(file, line, "movie " + Quote(id) + " listed twice");
  for (auto g : genres) {
    if (!IsValidUtf8(g)) return BadAt(file, line, "genre " + Quote(g) + " is not UTF-8");
  }
  uint32_t item = item_cache_.Get(id, [&](std::string_view k) { return builder_.ItemId(k); });
  Table& t = builder_.item_table();
  // Items are read before ratings, so a new item's row is the next row.
  PadTable(t, item);
  t.columns[0].PushString(ToUtf8FromUtf8OrLatin1(TrimSpaces(title)));
  t.columns[1].PushCategoricalList(genres);
  uint32_t first_node = 0;
  for (size_t g = 0; g < genres.size(); ++g) {  // every genre becomes a node, the first one is cat1
    uint32_t node = GenreNode(genres[g]);
    if (g == 0) first_node = node;
  }
  t.columns[2].PushU32(first_node);
  t.columns[3].PushCategorical("en");
  return Status::Ok();
}

Status MovieLensImporter::ReadItems(LineReader& r) {
  std::string_view line;
  switch (layout_) {
    case MovieLensLayout::k100k: {
      // u.item: id|title|release date|video release date|IMDb URL|<one 0/1 flag per genre>
      const size_t want = 5 + genres100k_.size();
      for (const auto& g : genres100k_) GenreNode(g);  // taxonomy in u.genre order
      while (r.Next(&line)) {
        if (line.empty()) continue;
        SplitFields(line, '|', &fields_);
        if (fields_.size() != want) {
          ADREC_RETURN_IF_ERROR(Bad(r, "expected " + std::to_string(want) + " '|'-separated fields, got " +
                                           std::to_string(fields_.size())));
          continue;
        }
        genre_list_.clear();
        bool ok = true;
        for (size_t g = 0; g < genres100k_.size(); ++g) {
          std::string_view f = fields_[5 + g];
          if (f == "1") genre_list_.push_back(genres100k_[g]);
          else if (f != "0") ok = false;
        }
        if (!ok) {
          ADREC_RETURN_IF_ERROR(Bad(r, "genre flags must be 0 or 1"));
          continue;
        }
        ADREC_RETURN_IF_ERROR(AddItem(r.name(), r.line_number(), fields_[0], fields_[1], genre_list_));
      }
      break;
    }
    case MovieLensLayout::k1m:
    case MovieLensLayout::k10m: {
      // movies.dat: id::title::Genre|Genre
      while (r.Next(&line)) {
        if (line.empty()) continue;
        SplitFields(line, "::", &fields_);
        if (fields_.size() != 3) {
          ADREC_RETURN_IF_ERROR(Bad(r, "expected 3 '::'-separated fields, got " + std::to_string(fields_.size())));
          continue;
        }
        std::string_view id = fields_[0], title = fields_[1], genres = fields_[2];
        std::vector<std::string_view> gl;
        if (!genres.empty() && genres != "(no genres listed)") SplitFields(genres, '|', &gl);
        ADREC_RETURN_IF_ERROR(AddItem(r.name(), r.line_number(), id, title, gl));
      }
      break;
    }
    case MovieLensLayout::kCsv: {
      // movies.csv: movieId,title,genres with RFC-4180 quoting (titles hold commas and quotes).
      CsvRecordReader csv(&r);
      bool header = true;
      while (csv.Next(&fields_)) {
        if (csv.has_error()) {
          ADREC_RETURN_IF_ERROR(BadAt(r.name(), csv.line_number(), csv.error()));
          continue;
        }
        if (header) {
          header = false;
          if (!fields_.empty() && fields_[0] == "movieId") continue;
        }
        if (fields_.size() == 1 && fields_[0].empty()) continue;
        if (fields_.size() != 3) {
          ADREC_RETURN_IF_ERROR(
              BadAt(r.name(), csv.line_number(), "expected 3 fields (movieId,title,genres), got " +
                                                     std::to_string(fields_.size())));
          continue;
        }
        std::string_view genres = fields_[2];
        std::vector<std::string_view> gl;
        if (!genres.empty() && genres != "(no genres listed)") SplitFields(genres, '|', &gl);
        ADREC_RETURN_IF_ERROR(AddItem(r.name(), csv.line_number(), fields_[0], fields_[1], gl));
      }
      break;
    }
  }
  return r.status();
}

void MovieLensImporter::EnsureUserColumns() {
  Table& t = builder_.user_table();
  if (!t.columns.empty()) return;
  t.Add(std::string(cols::kAge), ColumnType::kCategorical);
  t.Add(std::string(cols::kGender), ColumnType::kCategorical);
  t.Add(std::string(cols::kOccupation), ColumnType::kCategorical);
  t.Add(std::string(cols::kRegion), ColumnType::kCategorical);
}

Status MovieLensImporter::ReadUsers(LineReader& r) {
  EnsureUserColumns();
  std::string_view line;
  const bool is100k = layout_ == MovieLensLayout::k100k;
  while (r.Next(&line)) {
    if (line.empty()) continue;
    // 100k u.user: id|age|gender|occupation|zip; 1M users.dat: id::gender::age::occupation::zip
    if (is100k) SplitFields(line, '|', &fields_);
    else SplitFields(line, "::", &fields_);
    if (fields_.size() != 5) {
      ADREC_RETURN_IF_ERROR(Bad(r, "expected 5 fields (id, age, gender, occupation, zip), got " +
                                       std::to_string(fields_.size())));
      continue;
    }
    std::string_view id = fields_[0];
    std::string_view age = is100k ? fields_[1] : AgeGroup1m(fields_[2]);
    std::string_view gender = is100k ? fields_[2] : fields_[1];
    std::string_view occupation = fields_[3];
    uint32_t num;
    if (!ParseU32(id, &num)) {
      ADREC_RETURN_IF_ERROR(Bad(r, "user ID " + Quote(id) + " is not a number"));
      continue;
    }
    if (builder_.dataset().users.Find(id)) {
      ADREC_RETURN_IF_ERROR(Bad(r, "user " + Quote(id) + " listed twice"));
      continue;
    }
    if (!is100k) {
      uint32_t code;
      if (ParseU32(occupation, &code) && code < kOccupations1m.size()) occupation = kOccupations1m[code];
    }
    std::string zip = ToUtf8FromUtf8OrLatin1(TrimSpaces(fields_[4]));
    // Region = zip prefix (3 digits ≈ a US sectional centre); cut on a character boundary.
    size_t cut = std::min<size_t>(3, zip.size());
    while (cut < zip.size() && (static_cast<unsigned char>(zip[cut]) & 0xC0) == 0x80) ++cut;
    uint32_t user = user_cache_.Get(id, [&](std::string_view k) { return builder_.UserId(k); });
    Table& t = builder_.user_table();
    PadTable(t, user);
    t.columns[0].PushCategorical(ToUtf8FromUtf8OrLatin1(TrimSpaces(age)));
    t.columns[1].PushCategorical(ToUtf8FromUtf8OrLatin1(TrimSpaces(gender)));
    t.columns[2].PushCategorical(ToUtf8FromUtf8OrLatin1(TrimSpaces(occupation)));
    t.columns[3].PushCategorical(std::string_view(zip).substr(0, cut));
  }
  return r.status();
}

Status MovieLensImporter::ReadRatings(LineReader& r) {
  import_internal::UserRunSorter sink(&builder_);
  std::string_view line;
  std::string_view delim = layout_ == MovieLensLayout::k100k ? "\t" : layout_ == MovieLensLayout::kCsv ? "," : "::";
  bool first = true;
  uint64_t lines = 0;
  Event e;
  e.scene = scene_;
  e.action = Action::kRating;
  while (r.Next(&line)) {
    if (++lines == kSampleLines) {
      import_internal::ReserveEventsForInput(builder_, r.size_bytes(),
                                             static_cast<double>(r.bytes_consumed()) / static_cast<double>(lines));
    }
    if (first) {
      first = false;
      if (layout_ == MovieLensLayout::kCsv && line.starts_with("userId")) continue;  // the header
    }
    if (line.empty()) continue;
    if (SplitFields(line, delim, &fields_) != 4) {
      ADREC_RETURN_IF_ERROR(Bad(r, "expected 4 fields (user, movie, rating, timestamp), got " +
                                       std::to_string(fields_.size())));
      continue;
    }
    std::string_view user = fields_[0], item = fields_[1];
    uint32_t unum, inum;
    if (!ParseU32(user, &unum)) {
      ADREC_RETURN_IF_ERROR(Bad(r, "user ID " + Quote(user) + " is not a number"));
      continue;
    }
    if (!ParseU32(item, &inum)) {
      ADREC_RETURN_IF_ERROR(Bad(r, "movie ID " + Quote(item) + " is not a number"));
      continue;
    }
    float rating;
    if (!ParseRating(fields_[2], &rating)) {
      ADREC_RETURN_IF_ERROR(Bad(r, "rating " + Quote(fields_[2]) + " is not a number"));
      continue;
    }
    if (!(rating >= 0.5f && rating <= 5.f)) {
      ADREC_RETURN_IF_ERROR(Bad(r, "rating " + Quote(fields_[2]) + " outside [0.5, 5]"));
      continue;
    }
    int64_t ts;
    if (!ParseI64(fields_[3], &ts)) {
      ADREC_RETURN_IF_ERROR(Bad(r, "timestamp " + Quote(fields_[3]) + " is not an integer"));
      continue;
    }
    if (ts < 0 || ts > static_cast<int64_t>(UINT32_MAX)) {
      ADREC_RETURN_IF_ERROR(Bad(r, "timestamp " + Quote(fields_[3]) + " outside [0, 2^32) unix seconds"));
      continue;
    }
    e.user = user_cache_.Get(user, unum, [&](std::string_view k) { return builder_.UserId(k); });
    e.item = item_cache_.Get(item, inum, [&](std::string_view k) { return builder_.ItemId(k); });
    e.timestamp = ts;
    e.value = rating;
    ADREC_RETURN_IF_ERROR(sink.Add(e));
  }
  ADREC_RETURN_IF_ERROR(r.status());
  return sink.Flush();
}

StatusOr<Dataset> MovieLensImporter::Finish(std::string_view input_name) && {
  return import_internal::FinishImport(std::move(builder_), errors_, input_name);
}

struct LayoutFiles {
  MovieLensLayout layout;
  std::string_view ratings, items, users, genres;  // "" = the layout has none
};
constexpr LayoutFiles kLayouts[] = {
    {MovieLensLayout::k100k, "u.data", "u.item", "u.user", "u.genre"},
    {MovieLensLayout::k1m, "ratings.dat", "movies.dat", "users.dat", ""},
    {MovieLensLayout::k10m, "ratings.dat", "movies.dat", "", ""},
    {MovieLensLayout::kCsv, "ratings.csv", "movies.csv", "", ""},
};

std::string LayoutName(MovieLensLayout l, std::string_view dir_name) {
  switch (l) {
    case MovieLensLayout::k100k: return "movielens-100k";
    case MovieLensLayout::k1m: return "movielens-1m";
    case MovieLensLayout::k10m: return "movielens-10m";
    case MovieLensLayout::kCsv:
      // 20M, 25M and latest share one layout; the unpacked folder ("ml-25m") says which.
      if (dir_name.starts_with("ml-") && dir_name.size() > 3) return "movielens-" + std::string(dir_name.substr(3));
      return "movielens";
  }
  return "movielens";
}

// Runs the importer over opened readers (files or buffers) in dependency order.
StatusOr<Dataset> Run(const ImportOptions& options, MovieLensLayout layout, std::string name, std::string provenance,
                      LineReader& ratings, LineReader* items, LineReader* users, LineReader* genres,
                      std::string_view input_name) {
  MovieLensImporter imp(options, layout, std::move(name), std::move(provenance));
  uint64_t total = ratings.size_bytes() + (items ? items->size_bytes() : 0) + (users ? users->size_bytes() : 0);
  Progress progress("import movielens", total, import_internal::ImportProgressOptions(options));
  for (LineReader* r : {&ratings, items, users}) {
    if (r) r->set_progress(&progress);
  }
  if (genres) ADREC_RETURN_IF_ERROR(imp.ReadGenres(*genres));
  if (items) ADREC_RETURN_IF_ERROR(imp.ReadItems(*items));
  if (users) ADREC_RETURN_IF_ERROR(imp.ReadUsers(*users));
  ADREC_RETURN_IF_ERROR(imp.ReadRatings(ratings));
  progress.Finish();
  return std::move(imp).Finish(input_name);
}
}  // namespace

StatusOr<Dataset> ImportMovieLens(const ImportOptions& options) {
  namespace fs = std::filesystem;
  fs::path dir = options.input;
  std::error_code ec;
  if (fs::is_regular_file(dir, ec)) dir = dir.parent_path();  // accept a path to one of the files
  if (!fs::is_directory(dir, ec)) {
    return NotFoundError("MovieLens input " + options.input.string() + " is not a directory");
  }
  const LayoutFiles* lf = nullptr;
  for (const auto& l : kLayouts) {
    if (!fs::exists(dir / l.ratings, ec)) continue;
    if (l.layout == MovieLensLayout::k1m && !fs::exists(dir / l.users, ec)) continue;  // 10M has no users.dat
    lf = &l;
    break;
  }
  if (lf == nullptr) {
    return NotFoundError("no MovieLens ratings file (u.data, ratings.dat or ratings.csv) in " + dir.string());
  }
  std::string dir_name = (dir / "").parent_path().filename().string();
  std::string provenance = "movielens: " + dir_name + "/" + std::string(lf->ratings);
  auto open_optional = [&](std::string_view file) -> StatusOr<std::unique_ptr<LineReader>> {
    if (file.empty()) return std::unique_ptr<LineReader>();
    if (!fs::exists(dir / file, ec)) {
      WarnOnce("movielens-missing-" + std::string(file),
               "MovieLens: no " + std::string(file) + " in " + dir.string() + "; its attributes stay empty");
      return std::unique_ptr<LineReader>();
    }
    provenance += ", " + std::string(file);
    return LineReader::Open(dir / file);
  };
  ADREC_ASSIGN_OR_RETURN(auto ratings, LineReader::Open(dir / lf->ratings));
  ADREC_ASSIGN_OR_RETURN(auto items, open_optional(lf->items));
  ADREC_ASSIGN_OR_RETURN(auto users, open_optional(lf->users));
  std::unique_ptr<LineReader> genres;
  if (!lf->genres.empty() && fs::exists(dir / lf->genres, ec)) {  // optional: the standard names otherwise
    ADREC_ASSIGN_OR_RETURN(genres, LineReader::Open(dir / lf->genres));
    provenance += ", " + std::string(lf->genres);
  }
  return Run(options, lf->layout, LayoutName(lf->layout, dir_name), provenance, *ratings, items.get(), users.get(),
             genres.get(), (fs::path(dir_name) / lf->ratings).string());
}

StatusOr<Dataset> ImportMovieLensFromBuffers(const MovieLensBuffers& b, const ImportOptions& options) {
  const LayoutFiles* lf = nullptr;
  for (const auto& l : kLayouts) {
    if (l.layout == b.layout) lf = &l;
  }
  auto ratings = LineReader::FromBuffer(b.ratings, std::string(lf->ratings));
  std::unique_ptr<LineReader> items, users, genres;
  if (!b.items.empty()) items = LineReader::FromBuffer(b.items, std::string(lf->items));
  if (!b.users.empty() && !lf->users.empty()) users = LineReader::FromBuffer(b.users, std::string(lf->users));
  if (!b.genres.empty() && !lf->genres.empty()) genres = LineReader::FromBuffer(b.genres, std::string(lf->genres));
  return Run(options, b.layout, LayoutName(b.layout, ""), "movielens: <memory>", *ratings, items.get(), users.get(),
             genres.get(), lf->ratings);
}

}  // namespace adrec::data

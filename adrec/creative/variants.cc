#include "adrec/creative/variants.h"

#include <algorithm>
#include <random>
#include <set>
#include <sstream>
#include <string_view>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "adrec/core/file.h"
#include "adrec/core/hash.h"
#include "adrec/data/synthetic.h"

namespace adrec::creative {
namespace {

using json = nlohmann::json;

size_t CodePoints(std::string_view s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<uint8_t>(c) & 0xC0) != 0x80; }));
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool IsWordByte(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '\''; }

// `word` in `lower_text`: as a whole word when it is ASCII, as a substring otherwise.
bool Contains(std::string_view lower_text, std::string_view word) {
  const bool ascii = std::all_of(word.begin(), word.end(), [](char c) { return static_cast<uint8_t>(c) < 0x80; });
  for (size_t at = lower_text.find(word); at != std::string_view::npos; at = lower_text.find(word, at + 1)) {
    if (!ascii) return true;
    const bool left = at == 0 || !IsWordByte(lower_text[at - 1]) || !IsWordByte(word.front());
    const size_t end = at + word.size();
    const bool right = end >= lower_text.size() || !IsWordByte(lower_text[end]) || !IsWordByte(word.back());
    if (left && right) return true;
  }
  return false;
}

// Words that make a phrase a claim an advertiser must back: figures, ratings, endorsements,
// prices and offers, superlatives.
constexpr std::string_view kClaimMarkers[] = {
    "free", "stars", "star", "million", "best", "#1", "number one", "top", "most", "choice", "as seen", "award",
    "gift", "coupon", "coupons", "off", "save", "since", "rated", "loved by",
    "最", "第一", "万", "星", "分", "推荐", "同款", "免费", "折", "礼", "券", "首选", "省", "始于"};

bool IsClaim(std::string_view lower_fragment) {
  if (std::any_of(lower_fragment.begin(), lower_fragment.end(), [](char c) { return c >= '0' && c <= '9'; })) return true;
  return std::any_of(std::begin(kClaimMarkers), std::end(kClaimMarkers),
                     [&](std::string_view m) { return Contains(lower_fragment, m); });
}

// The text cut at punctuation, each piece trimmed and lower-cased.
std::vector<std::string> Fragments(std::string_view text) {
  static constexpr std::string_view kCuts[] = {",", ".", ":", ";", "!", "?", "|", " — ", " - ", "，", "。", "：", "；", "！",
                                               "？", "｜", "——", "【", "】", "、"};
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&] {
    size_t b = cur.find_first_not_of(' '), e = cur.find_last_not_of(' ');
    if (b != std::string::npos) out.push_back(Lower(std::string_view(cur).substr(b, e - b + 1)));
    cur.clear();
  };
  for (size_t i = 0; i < text.size();) {
    size_t cut = 0;
    for (std::string_view c : kCuts) {
      if (text.substr(i, c.size()) == c) {
        cut = c.size();
        break;
      }
    }
    if (cut) {
      flush();
      i += cut;
    } else {
      cur.push_back(text[i++]);
    }
  }
  flush();
  return out;
}

struct Template {
  std::string_view name, en, zh;  // {P} phrase (capitalised first in en), {p} phrase, {product}, {cat}, {cta}
  bool needs_category;
};
constexpr Template kTemplates[] = {
    {"hook-first", "{P} — {product}, {cta}", "{p}｜{product}，{cta}", false},
    {"product-first", "{product}: {p}. {cta}", "{product}：{p}，{cta}", false},
    {"category", "{product} | {cat} — {p}", "【{cat}】{product}——{p}", true},
};

std::string Render(std::string_view pattern, const std::vector<std::pair<std::string_view, std::string>>& fields) {
  std::string out;
  for (size_t i = 0; i < pattern.size();) {
    bool done = false;
    for (const auto& [key, value] : fields) {
      if (pattern.substr(i, key.size()) == key) {
        out += value;
        i += key.size();
        done = true;
        break;
      }
    }
    if (!done) out.push_back(pattern[i++]);
  }
  return out;
}

std::string TitlePrefix(std::string_view title) {
  size_t end = title.size();
  for (std::string_view cut : {":", "：", "|", "｜", " — ", "，"}) end = std::min(end, title.find(cut));
  std::string_view p = title.substr(0, end);
  while (!p.empty() && p.back() == ' ') p.remove_suffix(1);
  return std::string(p);
}

// The non-missing values of a categorical item column (the colours a variant may take).
std::vector<std::string> Values(const data::Table& t, std::string_view col) {
  std::vector<std::string> out;
  const data::Column* c = t.Find(col);
  if (!c || c->type != data::ColumnType::kCategorical || !c->vocab) return out;
  for (const std::string& n : c->vocab->names()) {
    if (!n.empty()) out.push_back(n);
  }
  return out;
}

}  // namespace

std::string CellText(const data::Table& t, std::string_view col, size_t row) {
  const data::Column* c = t.Find(col);
  if (!c) return "";
  if (c->type == data::ColumnType::kString) return c->str[row];
  if (c->type == data::ColumnType::kCategorical && c->vocab) return c->vocab->Name(c->u32[row]);
  return "";
}

std::string AdProduct(const data::Dataset& catalogue, uint32_t ad) {
  std::string product = CellText(catalogue.item_table, "product", ad);
  return product.empty() ? TitlePrefix(CellText(catalogue.item_table, data::cols::kTitle, ad)) : product;
}

uint32_t AdNode(const data::Dataset& catalogue, uint32_t ad, std::string_view column) {
  const data::Column* c = catalogue.item_table.Find(column);
  if (!c || c->type != data::ColumnType::kUInt32 || c->u32[ad] >= catalogue.taxonomy.nodes.size()) return 0;
  return c->u32[ad];
}

std::string NodeName(const data::Dataset& catalogue, uint32_t node, const std::string& lang) {
  if (node == 0 || node >= catalogue.taxonomy.nodes.size()) return "";
  const data::TaxonomyNode& n = catalogue.taxonomy.nodes[node];
  return lang == "zh" && !n.name_zh.empty() ? n.name_zh : n.name_en;
}

std::vector<std::string> DefaultBannedWords() {
  return {"guaranteed", "guarantee", "risk-free", "no risk", "miracle", "cure", "cures", "get rich", "100%", "act now or",
          "保证", "稳赚", "无风险", "根治", "神奇", "包赚", "百分百"};
}

std::optional<std::string> RejectCreative(const std::string& text, const std::vector<std::string>& supported,
                                          const FilterOptions& options) {
  const size_t n = CodePoints(text);
  if (n < options.min_chars || n > options.max_chars) {
    return "length " + std::to_string(n) + " characters, outside [" + std::to_string(options.min_chars) + ", " +
           std::to_string(options.max_chars) + "]";
  }
  const std::string lower = Lower(text);
  const std::vector<std::string> banned = options.banned_words.empty() ? DefaultBannedWords() : options.banned_words;
  for (const std::string& w : banned) {
    if (Contains(lower, Lower(w))) return "banned word '" + w + "'";
  }
  std::vector<std::string> backed;
  for (const std::string& s : supported) backed.push_back(Lower(s));
  for (const std::string& f : Fragments(text)) {
    if (!IsClaim(f)) continue;
    const bool ok = std::any_of(backed.begin(), backed.end(), [&](const std::string& s) { return s.find(f) != std::string::npos; });
    if (!ok) return "unsupported claim '" + f + "': the ad's catalogue texts do not make it";
  }
  return std::nullopt;
}

StatusOr<std::vector<Phrase>> ReadPhraseBook(const std::filesystem::path& path) {
  ADREC_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::vector<Phrase> out;
  std::istringstream in(text);
  std::string line;
  for (size_t no = 1; std::getline(in, line); ++no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    const size_t tab = line.find('\t');
    if (tab == std::string::npos || tab == 0 || tab + 1 == line.size()) {
      return InvalidArgumentError(path.string() + ":" + std::to_string(no) + ": expected '<lang>\\t<phrase>'");
    }
    out.push_back({line.substr(0, tab), line.substr(tab + 1)});
  }
  if (out.empty()) return InvalidArgumentError(path.string() + ": no phrase in it");
  return out;
}

std::vector<Phrase> SyntheticPhraseBook() {
  std::vector<Phrase> out;
  for (const data::SyntheticHook& h : data::SyntheticHooks()) {
    out.push_back({"en", std::string(h.en)});
    out.push_back({"zh", std::string(h.zh)});
  }
  return out;
}

StatusOr<std::vector<CreativeVariant>> GenerateTemplateVariants(const data::Dataset& catalogue,
                                                                const std::vector<Phrase>& phrases,
                                                                const TemplateOptions& options, GenerateReport* report) {
  if (options.per_ad == 0) return InvalidArgumentError("per_ad must be at least 1 (the catalogue's own creative)");
  const data::Table& items = catalogue.item_table;
  const data::Column* title = items.Find(data::cols::kTitle);
  if (!title || title->type != data::ColumnType::kString) {
    return InvalidArgumentError("the catalogue has no string '" + std::string(data::cols::kTitle) +
                                "' item column: templates fill in the ad's product from it");
  }
  const std::vector<std::string> colours = Values(items, data::cols::kColour),
                                 orientations = Values(items, data::cols::kOrientation);
  GenerateReport local;
  GenerateReport& rep = report ? *report : local;
  rep = {};
  std::vector<CreativeVariant> out;
  for (uint32_t ad = 0; ad < catalogue.items.size(); ++ad) {
    const std::string ad_id = catalogue.items.Name(ad), lang = CellText(items, data::cols::kLanguage, ad);
    const std::string own = title->str[ad], colour = CellText(items, data::cols::kColour, ad),
                      orientation = CellText(items, data::cols::kOrientation, ad);
    out.push_back({ad_id + "~0", ad_id, lang, own, colour, orientation, "catalogue", ""});
    ++rep.ads;
    ++rep.variants;
    const std::vector<std::string> supported = {own, CellText(items, data::cols::kDescription, ad)};
    const std::string product = AdProduct(catalogue, ad);
    const std::string category = NodeName(catalogue, AdNode(catalogue, ad, data::cols::kCategory3), lang);
    const bool app = CellText(items, "objective", ad) == "app";
    const std::string cta = lang == "zh" ? (app ? "立即下载" : "了解更多") : (app ? "Install now" : "Learn more");
    std::vector<const Phrase*> pool;
    for (const Phrase& p : phrases) {
      if (p.lang == lang || lang.empty()) pool.push_back(&p);
    }
    std::mt19937_64 rng(HashId(ad, options.seed));
    std::shuffle(pool.begin(), pool.end(), rng);
    std::uniform_real_distribution<double> u(0, 1);
    uint32_t made = 1;
    std::set<std::string> texts = {own};
    for (const Phrase* p : pool) {
      if (made >= options.per_ad) break;
      std::vector<const Template*> usable;
      for (const Template& t : kTemplates) {
        if (!t.needs_category || !category.empty()) usable.push_back(&t);
      }
      const Template& t = *usable[rng() % usable.size()];
      std::string cap = p->text;
      if (!cap.empty() && cap[0] >= 'a' && cap[0] <= 'z') cap[0] = static_cast<char>(cap[0] - 'a' + 'A');
      const std::string text = Render(lang == "zh" ? t.zh : t.en,
                                      {{"{P}", cap}, {"{p}", p->text}, {"{product}", product}, {"{cat}", category}, {"{cta}", cta}});
      if (!texts.insert(text).second) continue;
      if (auto why = RejectCreative(text, supported, options.filter)) {
        ++rep.rejected;
        if (rep.rejections.size() < 20) rep.rejections.push_back(ad_id + ": " + *why + " (" + text + ")");
        continue;
      }
      CreativeVariant v{ad_id + "~t" + std::to_string(made), ad_id, lang, text, colour, orientation,
                        "template:" + std::string(t.name), p->text};
      if (!colours.empty() && u(rng) < options.vary_colour) v.colour = colours[rng() % colours.size()];
      if (!orientations.empty() && u(rng) < options.vary_orientation) v.orientation = orientations[rng() % orientations.size()];
      out.push_back(std::move(v));
      ++made;
      ++rep.variants;
    }
  }
  return out;
}

Status WriteVariants(const std::filesystem::path& path, const std::vector<CreativeVariant>& variants) {
  std::string text;
  for (const CreativeVariant& v : variants) {
    text += json{{"id", v.id},         {"ad_id", v.ad_id},   {"lang", v.lang},     {"title", v.title},
                 {"colour", v.colour}, {"orientation", v.orientation}, {"source", v.source}, {"phrase", v.phrase}}
                .dump() +
            "\n";
  }
  return AtomicWriteFile(path, text);
}

StatusOr<std::vector<CreativeVariant>> ReadVariants(const std::filesystem::path& path) {
  ADREC_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::vector<CreativeVariant> out;
  std::unordered_set<std::string> ids;
  std::istringstream in(text);
  std::string line;
  static const std::set<std::string> kKeys = {"id", "ad_id", "lang", "title", "colour", "orientation", "source", "phrase"};
  for (size_t no = 1; std::getline(in, line); ++no) {
    if (line.empty()) continue;
    const std::string where = path.string() + ":" + std::to_string(no);
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) return InvalidArgumentError(where + ": not a JSON object");
    for (const auto& [k, v] : j.items()) {
      if (!kKeys.count(k)) return InvalidArgumentError(where + ": unknown field '" + k + "'");
      if (!v.is_string()) return InvalidArgumentError(where + ": '" + k + "' must be a string");
    }
    CreativeVariant v;
    auto get = [&](const char* k) { return j.contains(k) ? j[k].get<std::string>() : std::string(); };
    v.id = get("id");
    v.ad_id = get("ad_id");
    v.lang = get("lang");
    v.title = get("title");
    v.colour = get("colour");
    v.orientation = get("orientation");
    v.source = get("source");
    v.phrase = get("phrase");
    if (v.id.empty() || v.ad_id.empty() || v.title.empty()) return InvalidArgumentError(where + ": id, ad_id and title are required");
    if (!ids.insert(v.id).second) return InvalidArgumentError(where + ": duplicate variant id '" + v.id + "'");
    out.push_back(std::move(v));
  }
  if (out.empty()) return InvalidArgumentError(path.string() + ": no variant in it");
  return out;
}

}  // namespace adrec::creative

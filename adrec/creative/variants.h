// Creative variants of the catalogue's ads: templates over catalogue fields (product, category,
// call to action, colour and orientation) filled with selling phrases from a phrase book, every
// text passed through the filters (length, banned words, unsupported claims) before it is kept.
// Variants carry IDs and provenance and are stored as JSON lines (docs/CREATIVES.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adrec/core/status.h"
#include "adrec/data/dataset.h"

namespace adrec::creative {

struct CreativeVariant {
  std::string id;     // "<ad>~0": the catalogue's own creative; "<ad>~t<k>": a template's
  std::string ad_id;  // the catalogue's item ID
  std::string lang;   // the ad's language ("en", "zh", ...)
  std::string title;  // the text shown
  std::string colour, orientation;  // visual attributes, the catalogue's vocabulary
  std::string source;  // "catalogue", "template:<name>" or "decoder:<model>"
  std::string phrase;  // the selling phrase the text carries ("" for the catalogue's own)
};

// A selling phrase and the language it is written in.
struct Phrase {
  std::string lang;
  std::string text;
};
// One phrase a line, "<lang>\t<text>"; '#' starts a comment. InvalidArgument names the line.
StatusOr<std::vector<Phrase>> ReadPhraseBook(const std::filesystem::path& path);
// The synthetic world's hook phrases in both languages (adrec gen's ads carry them).
std::vector<Phrase> SyntheticPhraseBook();

struct FilterOptions {
  size_t min_chars = 8, max_chars = 90;  // Unicode code points
  // Words no creative may carry (case-insensitive; whole words for Latin script, substrings
  // otherwise). Empty: the built-in list (DefaultBannedWords()).
  std::vector<std::string> banned_words;
};
std::vector<std::string> DefaultBannedWords();

// Why a text may not be shown, or nullopt when it may. `supported` are the ad's own catalogue
// texts (title, description): a claim (a phrase with a figure, a rating, a superlative) passes
// only when one of them makes the same claim.
std::optional<std::string> RejectCreative(const std::string& text, const std::vector<std::string>& supported,
                                          const FilterOptions& options);

struct TemplateOptions {
  uint32_t per_ad = 4;  // variants per ad, the catalogue's own included
  uint64_t seed = 1;
  FilterOptions filter;
  // Share of template variants that take another colour / orientation than the catalogue's.
  double vary_colour = 0.5, vary_orientation = 0.5;
};

struct GenerateReport {
  size_t ads = 0, variants = 0, rejected = 0;
  std::vector<std::string> rejections;  // "ad000012: <why> (<text>)", the first 20
};

// Variants of every ad in `catalogue`: its own creative (title, colour, orientation) first, then
// template renders with phrases of its language until `per_ad` pass the filters or the phrases
// run out. The same options give the same variants.
StatusOr<std::vector<CreativeVariant>> GenerateTemplateVariants(const data::Dataset& catalogue,
                                                                const std::vector<Phrase>& phrases,
                                                                const TemplateOptions& options,
                                                                GenerateReport* report = nullptr);

// A catalogue cell as text: a string column's value or a categorical column's name; "" when the
// column is absent or of another type.
std::string CellText(const data::Table& table, std::string_view column, size_t row);
// The ad's product name: the `product` item column, else its title up to the first ":", "|",
// " — " or "，" (templates and decoder prompts name it; decoder variants must).
std::string AdProduct(const data::Dataset& catalogue, uint32_t ad);
// The taxonomy node an ad's u32 category column (cat1, cat2, cat3) names; 0 when none.
uint32_t AdNode(const data::Dataset& catalogue, uint32_t ad, std::string_view column);
// A taxonomy node's name in `lang` (the Chinese one for "zh" when it has one); "" for node 0.
std::string NodeName(const data::Dataset& catalogue, uint32_t node, const std::string& lang);

Status WriteVariants(const std::filesystem::path& path, const std::vector<CreativeVariant>& variants);
// Checks every line: required fields, no unknown ones, unique IDs. InvalidArgument names the line.
StatusOr<std::vector<CreativeVariant>> ReadVariants(const std::filesystem::path& path);

}  // namespace adrec::creative

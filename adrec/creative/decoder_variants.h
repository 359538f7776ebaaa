// Creative variants written by a decoder (a Llama/Qwen-shaped Hugging Face directory: the one
// `adrec creatives --train-decoder` trains on the catalogue's titles, or one a user brings),
// prompted with the ad (language, category, product) and an interest of its audience, sampled,
// and kept only when they pass the filters (variants.h) and name the ad's product.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "adrec/core/status.h"
#include "adrec/creative/variants.h"
#include "adrec/data/dataset.h"

namespace adrec::creative {

// "<lang> | <category> | <product> | for: <interest>\n": what the decoder continues with a title.
std::string CreativePrompt(const std::string& lang, const std::string& category, const std::string& product,
                           const std::string& interest);
// One training text per ad with a title: its prompt (the interest: the ad's own level-2
// category) and its title.
std::vector<std::string> DecoderCorpus(const data::Dataset& catalogue);

struct DecoderVariantOptions {
  uint32_t per_ad = 2;       // variants kept per ad at most
  uint32_t attempts = 3;     // samples drawn per wanted variant before giving up
  int64_t max_new_tokens = 120;
  double temperature = 0.9, top_p = 0.9;
  uint64_t seed = 1;
  FilterOptions filter;
};

// The interests a variant is written for, per ad: its own level-2 category, then the level-2
// category its clickers click most elsewhere (the audience's interest summary), when another.
// Variants "<ad>~d<k>", source "decoder:<model directory name>", phrase "interest=<name>".
// Rejections (filters, no product name, empty or repeated texts) are counted in `report`.
StatusOr<std::vector<CreativeVariant>> GenerateDecoderVariants(const data::Dataset& catalogue,
                                                               const std::filesystem::path& model_dir,
                                                               const DecoderVariantOptions& options,
                                                               GenerateReport* report = nullptr);

}  // namespace adrec::creative

#include "adrec/creative/decoder_variants.h"

#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include "adrec/core/file.h"
#include "adrec/core/text.h"
#include "adrec/text/llama.h"
#include "adrec/text/tokenizer.h"

namespace adrec::creative {
namespace {

struct AdFields {
  std::string lang, category, product, own_interest;
};

AdFields FieldsOf(const data::Dataset& ds, uint32_t ad) {
  AdFields f;
  f.lang = CellText(ds.item_table, data::cols::kLanguage, ad);
  f.category = NodeName(ds, AdNode(ds, ad, data::cols::kCategory3), f.lang);
  f.product = AdProduct(ds, ad);
  f.own_interest = NodeName(ds, AdNode(ds, ad, data::cols::kCategory2), f.lang);
  return f;
}

// Per ad, the level-2 category its clickers click most among other ads (none: 0).
std::vector<uint32_t> AudienceInterest(const data::Dataset& ds) {
  const uint32_t n_items = ds.items.size();
  std::vector<uint32_t> out(n_items, 0);
  if (ds.user_offsets.empty()) return out;
  std::vector<std::unordered_map<uint32_t, uint32_t>> counts(n_items);
  const auto click = static_cast<uint8_t>(data::Action::kClick);
  for (size_t u = 0; u + 1 < ds.user_offsets.size(); ++u) {
    std::vector<uint32_t> clicked;
    for (uint64_t e = ds.user_offsets[u]; e < ds.user_offsets[u + 1]; ++e) {
      if (ds.events.action[e] == click) clicked.push_back(ds.events.item[e]);
    }
    for (uint32_t a : clicked) {
      for (uint32_t b : clicked) {
        if (a != b) ++counts[a][AdNode(ds, b, data::cols::kCategory2)];
      }
    }
  }
  for (uint32_t a = 0; a < n_items; ++a) {
    uint32_t best = 0, best_n = 0;
    for (const auto& [node, n] : counts[a]) {
      if (node != 0 && (n > best_n || (n == best_n && node < best))) best = node, best_n = n;
    }
    out[a] = best;
  }
  return out;
}

}  // namespace

std::string CreativePrompt(const std::string& lang, const std::string& category, const std::string& product,
                           const std::string& interest) {
  return lang + " | " + category + " | " + product + " | for: " + interest + "\n";
}

std::vector<std::string> DecoderCorpus(const data::Dataset& catalogue) {
  std::vector<std::string> out;
  for (uint32_t ad = 0; ad < catalogue.items.size(); ++ad) {
    const std::string title = CellText(catalogue.item_table, data::cols::kTitle, ad);
    if (title.empty()) continue;
    const AdFields f = FieldsOf(catalogue, ad);
    out.push_back(CreativePrompt(f.lang, f.category, f.product, f.own_interest) + title);
  }
  return out;
}

StatusOr<std::vector<CreativeVariant>> GenerateDecoderVariants(const data::Dataset& catalogue,
                                                               const std::filesystem::path& model_dir,
                                                               const DecoderVariantOptions& o, GenerateReport* report) {
  ADREC_ASSIGN_OR_RETURN(text::LlamaModel model, text::LlamaModel::Load(model_dir));
  ADREC_ASSIGN_OR_RETURN(text::Tokenizer tok, text::Tokenizer::FromFile(model_dir / "tokenizer.json"));
  const std::string source = "decoder:" + model_dir.filename().string();
  const std::vector<uint32_t> audience = AudienceInterest(catalogue);
  GenerateReport local;
  GenerateReport& rep = report ? *report : local;
  std::vector<CreativeVariant> out;
  text::GenerateOptions g;
  g.greedy = false;
  g.temperature = o.temperature;
  g.top_p = o.top_p;
  g.max_new_tokens = o.max_new_tokens;
  uint64_t draw = 0;
  for (uint32_t ad = 0; ad < catalogue.items.size(); ++ad) {
    const std::string ad_id = catalogue.items.Name(ad), own = CellText(catalogue.item_table, data::cols::kTitle, ad);
    if (own.empty()) continue;
    const AdFields f = FieldsOf(catalogue, ad);
    std::vector<std::string> interests = {f.own_interest};
    if (const std::string other = NodeName(catalogue, audience[ad], f.lang); !other.empty() && other != f.own_interest) {
      interests.push_back(other);
    }
    const std::vector<std::string> supported = {own, CellText(catalogue.item_table, data::cols::kDescription, ad)};
    std::set<std::string> seen = {own};
    uint32_t kept = 0;
    for (uint32_t attempt = 0; attempt < o.per_ad * o.attempts && kept < o.per_ad; ++attempt) {
      const std::string& interest = interests[attempt % interests.size()];
      text::EncodeOptions eo;
      eo.add_special_tokens = false;
      ADREC_ASSIGN_OR_RETURN(text::Encoding enc, tok.Encode(CreativePrompt(f.lang, f.category, f.product, interest), eo));
      std::vector<int64_t> prompt;
      if (model.config().bos_token_id) prompt.push_back(*model.config().bos_token_id);
      prompt.insert(prompt.end(), enc.ids.begin(), enc.ids.end());
      g.seed = o.seed * 1000003 + draw++;
      ADREC_ASSIGN_OR_RETURN(std::vector<int64_t> ids, model.Generate(torch::tensor(prompt), g));
      std::vector<int32_t> ids32(ids.begin(), ids.end());
      ADREC_ASSIGN_OR_RETURN(std::string text, tok.Decode(ids32, /*skip_special_tokens=*/true));
      if (const size_t nl = text.find('\n'); nl != std::string::npos) text.resize(nl);
      while (!text.empty() && (text.back() == ' ' || text.back() == '\r')) text.pop_back();
      std::string why;
      if (text.empty()) {
        why = "empty text";
      } else if (!IsValidUtf8(text)) {
        why = "not valid UTF-8";
      } else if (!seen.insert(text).second) {
        why = "repeats a variant";
      } else if (!f.product.empty() && text.find(f.product) == std::string::npos) {
        why = "does not name the product '" + f.product + "'";
      } else if (auto r = RejectCreative(text, supported, o.filter)) {
        why = *r;
      }
      if (!why.empty()) {
        ++rep.rejected;
        if (rep.rejections.size() < 20) rep.rejections.push_back(ad_id + ": " + why + " (" + text + ")");
        continue;
      }
      out.push_back({ad_id + "~d" + std::to_string(++kept), ad_id, f.lang, text, CellText(catalogue.item_table, data::cols::kColour, ad),
                     CellText(catalogue.item_table, data::cols::kOrientation, ad), source, "interest=" + interest});
      ++rep.variants;
    }
  }
  return out;
}

}  // namespace adrec::creative

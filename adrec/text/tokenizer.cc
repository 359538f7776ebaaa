#include "adrec/text/tokenizer.h"

#include <algorithm>
#include <optional>
#include <unordered_map>
#include <utility>
#include <variant>

#include <nlohmann/json.hpp>

#include "adrec/core/file.h"
#include "adrec/text/bpe.h"
#include "adrec/text/pre_tokenizer.h"
#include "adrec/text/unicode.h"
#include "adrec/text/wordpiece.h"

namespace adrec::text {
namespace {

using Json = nlohmann::json;

struct BertNormalize {
  bool clean_text = true, chinese_chars = true, strip_accents = true, lowercase = true;
};
enum class SimpleNormalize { kNfc, kNfd, kLowercase };
using NormalizeStep = std::variant<BertNormalize, SimpleNormalize>;

struct BertSplit {};
struct PatternSplit {
  SplitPattern pattern;
};
struct ByteLevelStep {
  bool add_prefix_space = false, use_regex = true;
};
using PreTokenizeStep = std::variant<BertSplit, PatternSplit, ByteLevelStep>;

struct AddedToken {
  int32_t id = 0;
  std::u32string content;
  bool special = false, lstrip = false, rstrip = false, single_word = false, normalized = false;
};

struct TemplateItem {
  bool sequence = false;       // the text's tokens, else special IDs
  std::vector<int32_t> ids = {};
  int32_t type_id = 0;
};

enum class DecoderKind { kNone, kByteLevel, kWordPiece };

// A text span still to tokenize, or an added token already matched.
struct Segment {
  std::u32string text;
  int32_t added_id = -1;
};

Status Bad(const std::string& source, const std::string& what) {
  return InvalidArgumentError(source + ": " + what);
}
Status Unsupported(const std::string& source, const std::string& what) {
  return UnimplementedError(source + ": " + what);
}

bool GetBool(const Json& j, const char* key, bool fallback) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

bool IsWordChar(char32_t c) { return unicode::IsLetter(c) || unicode::IsNumber(c) || c == '_'; }

}  // namespace

struct Tokenizer::Impl {
  std::string source, model_type, description;
  std::vector<NormalizeStep> normalizers;
  std::vector<PreTokenizeStep> pre_tokenizers;
  std::optional<WordPiece> wordpiece;
  std::optional<Bpe> bpe;
  std::vector<AddedToken> added;  // longest content first
  std::vector<TemplateItem> single_template;
  DecoderKind decoder = DecoderKind::kNone;
  std::string wordpiece_prefix = "##";
  bool wordpiece_cleanup = true;
  std::unordered_map<std::string, int32_t> token_to_id;
  std::vector<std::string> id_to_token;
  std::vector<bool> is_special;

  Status ParseNormalizer(const Json& j);
  Status ParsePreTokenizer(const Json& j);
  Status ParsePostProcessor(const Json& j);
  Status ParseModel(const Json& j);

  std::u32string Normalize(std::u32string text) const;
  void SplitAdded(std::vector<Segment>* segments, bool normalized) const;
  void TokenizeWords(const std::u32string& text, std::vector<int32_t>* ids) const;
};

Status Tokenizer::Impl::ParseNormalizer(const Json& j) {
  if (j.is_null()) return Status::Ok();
  const std::string type = j.value("type", "");
  if (type == "Sequence") {
    for (const Json& n : j.value("normalizers", Json::array())) ADREC_RETURN_IF_ERROR(ParseNormalizer(n));
  } else if (type == "BertNormalizer") {
    BertNormalize b;
    b.clean_text = GetBool(j, "clean_text", true);
    b.chinese_chars = GetBool(j, "handle_chinese_chars", true);
    b.lowercase = GetBool(j, "lowercase", true);
    b.strip_accents = GetBool(j, "strip_accents", b.lowercase);  // null: follow lowercase, as BERT does
    normalizers.push_back(b);
  } else if (type == "NFC") {
    normalizers.push_back(SimpleNormalize::kNfc);
  } else if (type == "NFD") {
    normalizers.push_back(SimpleNormalize::kNfd);
  } else if (type == "Lowercase") {
    normalizers.push_back(SimpleNormalize::kLowercase);
  } else {
    return Unsupported(source, "normalizer \"" + type + "\" is not supported (supported: BertNormalizer, NFC, NFD, "
                                                        "Lowercase, Sequence of these)");
  }
  return Status::Ok();
}

Status Tokenizer::Impl::ParsePreTokenizer(const Json& j) {
  if (j.is_null()) return Status::Ok();
  const std::string type = j.value("type", "");
  if (type == "Sequence") {
    for (const Json& p : j.value("pretokenizers", Json::array())) ADREC_RETURN_IF_ERROR(ParsePreTokenizer(p));
  } else if (type == "BertPreTokenizer") {
    pre_tokenizers.push_back(BertSplit{});
  } else if (type == "ByteLevel") {
    pre_tokenizers.push_back(ByteLevelStep{GetBool(j, "add_prefix_space", true), GetBool(j, "use_regex", true)});
  } else if (type == "Split") {
    const Json pattern = j.value("pattern", Json::object());
    const std::string regex = pattern.value("Regex", "");
    std::optional<SplitPattern> known = FindSplitPattern(regex);
    if (!known) {
      return Unsupported(source, "Split pre-tokenizer pattern " + pattern.dump() +
                                     " is not supported (supported: the GPT-2, Llama-3 and Qwen2 regexes)");
    }
    if (j.value("behavior", "") != "Isolated" || GetBool(j, "invert", false)) {
      return Unsupported(source, "Split pre-tokenizer with behavior " + j.value("behavior", std::string("?")) +
                                     " / invert is not supported (supported: Isolated, invert false)");
    }
    pre_tokenizers.push_back(PatternSplit{*known});
  } else {
    return Unsupported(source, "pre-tokenizer \"" + type + "\" is not supported (supported: BertPreTokenizer, "
                                                            "ByteLevel, Split with a known regex, Sequence of these)");
  }
  return Status::Ok();
}

Status Tokenizer::Impl::ParsePostProcessor(const Json& j) {
  if (j.is_null()) return Status::Ok();
  const std::string type = j.value("type", "");
  auto pair_item = [&](const char* key, TemplateItem* item) -> Status {
    const Json& v = j.at(key);
    if (!v.is_array() || v.size() != 2 || !v[1].is_number_integer()) return Bad(source, std::string("post_processor.") + key + " must be [token, id]");
    item->ids = {v[1].get<int32_t>()};
    return Status::Ok();
  };
  if (type == "Sequence") {
    for (const Json& p : j.value("processors", Json::array())) ADREC_RETURN_IF_ERROR(ParsePostProcessor(p));
  } else if (type == "ByteLevel") {
    // Only offsets change; the IDs do not.
  } else if (type == "BertProcessing" || type == "RobertaProcessing") {
    if (!j.contains("cls") || !j.contains("sep")) return Bad(source, "post_processor needs cls and sep");
    TemplateItem cls, sep;
    ADREC_RETURN_IF_ERROR(pair_item("cls", &cls));
    ADREC_RETURN_IF_ERROR(pair_item("sep", &sep));
    single_template = {cls, TemplateItem{true}, sep};
  } else if (type == "TemplateProcessing") {
    const Json specials = j.value("special_tokens", Json::object());
    single_template.clear();
    for (const Json& item : j.value("single", Json::array())) {
      if (item.contains("Sequence")) {
        single_template.push_back(TemplateItem{true, {}, item["Sequence"].value("type_id", 0)});
      } else if (item.contains("SpecialToken")) {
        const std::string name = item["SpecialToken"].value("id", "");
        auto it = specials.find(name);
        if (it == specials.end() || !it->contains("ids")) {
          return Bad(source, "post_processor template names special token \"" + name + "\" with no ids");
        }
        single_template.push_back(TemplateItem{false, (*it)["ids"].get<std::vector<int32_t>>(),
                                               item["SpecialToken"].value("type_id", 0)});
      } else {
        return Bad(source, "post_processor template item " + item.dump() + " is neither Sequence nor SpecialToken");
      }
    }
  } else {
    return Unsupported(source, "post-processor \"" + type + "\" is not supported (supported: TemplateProcessing, "
                                                             "BertProcessing, RobertaProcessing, ByteLevel, Sequence)");
  }
  return Status::Ok();
}

Status Tokenizer::Impl::ParseModel(const Json& j) {
  const std::string type = j.value("type", "");
  if (!j.contains("vocab") || !j["vocab"].is_object()) return Bad(source, "model.vocab must be an object of token: id");
  std::unordered_map<std::string, int32_t> vocab;
  vocab.reserve(j["vocab"].size());
  for (const auto& [token, id] : j["vocab"].items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
      return Bad(source, "model.vocab[\"" + token + "\"] is not a valid id: " + id.dump());
    }
    vocab.emplace(token, id.get<int32_t>());
  }
  for (const auto& [token, id] : vocab) token_to_id.emplace(token, id);
  model_type = type;
  if (type == "WordPiece") {
    WordPieceOptions o;
    o.unk_token = j.value("unk_token", o.unk_token);
    o.continuing_subword_prefix = j.value("continuing_subword_prefix", o.continuing_subword_prefix);
    o.max_input_chars_per_word = j.value("max_input_chars_per_word", o.max_input_chars_per_word);
    if (!vocab.count(o.unk_token)) return Bad(source, "model.unk_token \"" + o.unk_token + "\" is not in the vocabulary");
    wordpiece.emplace(std::move(vocab), o);
  } else if (type == "BPE") {
    if (GetBool(j, "byte_fallback", false)) return Unsupported(source, "BPE byte_fallback is not supported");
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      if (j.contains(key) && !j[key].is_null() && !j[key].get<std::string>().empty()) {
        return Unsupported(source, std::string("BPE ") + key + " is not supported");
      }
    }
    if (j.contains("dropout") && !j["dropout"].is_null() && j["dropout"].get<double>() > 0) {
      return Unsupported(source, "BPE dropout is not supported at inference");
    }
    std::vector<std::pair<std::string, std::string>> merges;
    for (const Json& m : j.value("merges", Json::array())) {
      if (m.is_string()) {
        const std::string s = m.get<std::string>();
        const size_t space = s.find(' ', 1);
        if (space == std::string::npos) return Bad(source, "model.merges entry \"" + s + "\" is not \"a b\"");
        merges.emplace_back(s.substr(0, space), s.substr(space + 1));
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
      } else {
        return Bad(source, "model.merges entry " + m.dump() + " is neither \"a b\" nor [a, b]");
      }
    }
    BpeOptions o;
    if (j.contains("unk_token") && j["unk_token"].is_string()) o.unk_token = j["unk_token"].get<std::string>();
    o.ignore_merges = GetBool(j, "ignore_merges", false);
    bpe.emplace(std::move(vocab), merges, o);
  } else {
    return Unsupported(source, "model \"" + type + "\" is not supported (supported: WordPiece, BPE)");
  }
  return Status::Ok();
}

std::u32string Tokenizer::Impl::Normalize(std::u32string text) const {
  for (const NormalizeStep& step : normalizers) {
    std::u32string out;
    out.reserve(text.size());
    if (const auto* b = std::get_if<BertNormalize>(&step)) {
      for (char32_t c : text) {
        if (b->clean_text) {
          if (c == 0 || c == 0xFFFD || unicode::IsBertControl(c)) continue;
          if (unicode::IsWhitespace(c)) c = ' ';
        }
        if (b->chinese_chars && unicode::IsCjkIdeograph(c)) {
          out.push_back(' ');
          out.push_back(c);
          out.push_back(' ');
        } else {
          out.push_back(c);
        }
      }
      if (b->strip_accents) {
        std::u32string d = unicode::Nfd(out);
        out.clear();
        for (char32_t c : d) {
          if (!unicode::IsNonspacingMark(c)) out.push_back(c);
        }
      }
      if (b->lowercase) {
        std::u32string lower;
        lower.reserve(out.size());
        for (char32_t c : out) unicode::AppendLowercase(c, &lower);
        out = std::move(lower);
      }
    } else {
      switch (std::get<SimpleNormalize>(step)) {
        case SimpleNormalize::kNfc: out = unicode::Nfc(text); break;
        case SimpleNormalize::kNfd: out = unicode::Nfd(text); break;
        case SimpleNormalize::kLowercase:
          for (char32_t c : text) unicode::AppendLowercase(c, &out);
          break;
      }
    }
    text = std::move(out);
  }
  return text;
}

// Cuts text segments at added tokens (leftmost, then longest), honouring lstrip / rstrip
// (the token absorbs the whitespace beside it) and single_word (only between non-word characters).
void Tokenizer::Impl::SplitAdded(std::vector<Segment>* segments, bool normalized) const {
  std::vector<Segment> out;
  for (Segment& seg : *segments) {
    if (seg.added_id >= 0) {
      out.push_back(std::move(seg));
      continue;
    }
    const std::u32string& t = seg.text;
    size_t start = 0;
    for (size_t i = 0; i < t.size();) {
      const AddedToken* hit = nullptr;
      for (const AddedToken& a : added) {
        if (a.normalized != normalized || a.content.empty() || t.compare(i, a.content.size(), a.content) != 0) continue;
        if (a.single_word && ((i > 0 && IsWordChar(t[i - 1])) ||
                              (i + a.content.size() < t.size() && IsWordChar(t[i + a.content.size()])))) {
          continue;
        }
        hit = &a;
        break;  // `added` is longest first
      }
      if (!hit) {
        ++i;
        continue;
      }
      size_t left = i, right = i + hit->content.size();
      if (hit->lstrip) {
        while (left > start && unicode::IsWhitespace(t[left - 1])) --left;
      }
      if (hit->rstrip) {
        while (right < t.size() && unicode::IsWhitespace(t[right])) ++right;
      }
      if (left > start) out.push_back(Segment{t.substr(start, left - start)});
      out.push_back(Segment{{}, hit->id});
      start = i = right;
    }
    if (start < t.size()) out.push_back(Segment{t.substr(start)});
  }
  *segments = std::move(out);
}

void Tokenizer::Impl::TokenizeWords(const std::u32string& text, std::vector<int32_t>* ids) const {
  std::vector<std::u32string> words{text}, next;
  for (const PreTokenizeStep& step : pre_tokenizers) {
    next.clear();
    for (std::u32string& w : words) {
      if (std::holds_alternative<BertSplit>(step)) {
        BertPreTokenize(w, &next);
      } else if (const auto* p = std::get_if<PatternSplit>(&step)) {
        SplitByPattern(p->pattern, w, &next);
      } else {
        const auto& b = std::get<ByteLevelStep>(step);
        if (b.add_prefix_space && (w.empty() || w[0] != ' ')) w.insert(w.begin(), U' ');
        std::vector<std::u32string> pieces;
        if (b.use_regex) {
          SplitByPattern(SplitPattern::kGpt2, w, &pieces);
        } else {
          pieces.push_back(std::move(w));
        }
        for (const std::u32string& piece : pieces) next.push_back(ByteLevelEncode(EncodeUtf8(piece)));
      }
    }
    std::swap(words, next);
  }
  for (const std::u32string& w : words) {
    if (w.empty()) continue;
    if (wordpiece) {
      wordpiece->Tokenize(w, ids);
    } else {
      bpe->Tokenize(w, ids);
    }
  }
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

StatusOr<Tokenizer> Tokenizer::FromFile(const std::filesystem::path& path) {
  ADREC_ASSIGN_OR_RETURN(std::string json, ReadFile(path));
  return FromJson(json, path.string());
}

StatusOr<Tokenizer> Tokenizer::FromJson(std::string_view json, std::string source) {
  auto impl = std::make_unique<Impl>();
  impl->source = std::move(source);
  Json j = Json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Bad(impl->source, "not a JSON object (a tokenizer.json is expected)");
  if (!j.contains("model") || !j["model"].is_object()) return Bad(impl->source, "no \"model\" object");
  try {
    ADREC_RETURN_IF_ERROR(impl->ParseModel(j["model"]));
    ADREC_RETURN_IF_ERROR(impl->ParseNormalizer(j.value("normalizer", Json())));
    ADREC_RETURN_IF_ERROR(impl->ParsePreTokenizer(j.value("pre_tokenizer", Json())));
    ADREC_RETURN_IF_ERROR(impl->ParsePostProcessor(j.value("post_processor", Json())));
    for (const Json& a : j.value("added_tokens", Json::array())) {
      AddedToken t;
      t.id = a.at("id").get<int32_t>();
      ADREC_ASSIGN_OR_RETURN(t.content, DecodeUtf8(a.at("content").get<std::string>()));
      t.special = a.value("special", false);
      t.lstrip = a.value("lstrip", false);
      t.rstrip = a.value("rstrip", false);
      t.single_word = a.value("single_word", false);
      t.normalized = a.value("normalized", !t.special);
      impl->token_to_id[a.at("content").get<std::string>()] = t.id;
      impl->added.push_back(std::move(t));
    }
    const Json decoder = j.value("decoder", Json());
    const std::string dtype = decoder.is_object() ? decoder.value("type", "") : "";
    if (dtype == "ByteLevel") {
      impl->decoder = DecoderKind::kByteLevel;
    } else if (dtype == "WordPiece") {
      impl->decoder = DecoderKind::kWordPiece;
      impl->wordpiece_prefix = decoder.value("prefix", std::string("##"));
      impl->wordpiece_cleanup = decoder.value("cleanup", true);
    }
  } catch (const Json::exception& e) {
    return Bad(impl->source, std::string("malformed field: ") + e.what());
  }
  if (impl->wordpiece && !impl->pre_tokenizers.empty() &&
      std::any_of(impl->pre_tokenizers.begin(), impl->pre_tokenizers.end(),
                  [](const PreTokenizeStep& s) { return std::holds_alternative<ByteLevelStep>(s); })) {
    return Unsupported(impl->source, "WordPiece with a ByteLevel pre-tokenizer is not supported");
  }
  std::stable_sort(impl->added.begin(), impl->added.end(),
                   [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });
  int32_t max_id = -1;
  for (const auto& [token, id] : impl->token_to_id) {
    if (id < 0) return Bad(impl->source, "token '" + token + "' has the negative id " + std::to_string(id));
    max_id = std::max(max_id, id);
  }
  // Vocabularies number their tokens densely from 0 (added tokens just past the end); a far larger
  // id would size the id -> token table by a corrupt value.
  const size_t dense_limit = 2 * impl->token_to_id.size() + 1024;
  if (static_cast<size_t>(max_id) >= dense_limit) {
    return Bad(impl->source, "token id " + std::to_string(max_id) + " for " + std::to_string(impl->token_to_id.size()) +
                                 " tokens: ids must number the vocabulary densely from 0");
  }
  for (const AddedToken& a : impl->added) {
    if (a.id < 0 || a.id > max_id) return Bad(impl->source, "added token id " + std::to_string(a.id) + " is out of range");
  }
  const auto sequences = std::count_if(impl->single_template.begin(), impl->single_template.end(),
                                       [](const TemplateItem& item) { return item.sequence; });
  if (!impl->single_template.empty() && sequences != 1) {
    // Truncation leaves room for one copy of the text (found by tokenizer_fuzz: two made 15 ids of 9).
    return Bad(impl->source, "post_processor: the single template holds the sequence " + std::to_string(sequences) +
                                 " times; it must hold it once");
  }
  for (const TemplateItem& item : impl->single_template) {
    for (int32_t id : item.ids) {
      if (id < 0 || id > max_id) {
        return Bad(impl->source, "post_processor: special token id " + std::to_string(id) + " is not in the vocabulary");
      }
    }
  }
  impl->id_to_token.assign(static_cast<size_t>(max_id + 1), std::string());
  impl->is_special.assign(static_cast<size_t>(max_id + 1), false);
  for (const auto& [token, id] : impl->token_to_id) impl->id_to_token[id] = token;
  for (const AddedToken& a : impl->added) impl->is_special[a.id] = a.special;
  size_t specials = 0;
  for (const TemplateItem& item : impl->single_template) specials += item.ids.size();
  impl->description = impl->model_type + " tokenizer, " + std::to_string(impl->id_to_token.size()) + " tokens, " +
                      std::to_string(impl->added.size()) + " added, " + std::to_string(specials) +
                      " special token(s) per text";
  return Tokenizer(std::move(impl));
}

StatusOr<Encoding> Tokenizer::Encode(std::string_view text, const EncodeOptions& options) const {
  const Impl& m = *impl_;
  ADREC_ASSIGN_OR_RETURN(std::u32string chars, DecodeUtf8(text));
  std::vector<Segment> segments{Segment{std::move(chars)}};
  m.SplitAdded(&segments, /*normalized=*/false);
  for (Segment& s : segments) {
    if (s.added_id < 0) s.text = m.Normalize(std::move(s.text));
  }
  m.SplitAdded(&segments, /*normalized=*/true);
  std::vector<int32_t> ids;
  for (const Segment& s : segments) {
    if (s.added_id >= 0) {
      ids.push_back(s.added_id);
    } else {
      m.TokenizeWords(s.text, &ids);
    }
  }
  Encoding out;
  size_t specials = 0;
  if (options.add_special_tokens) {
    for (const TemplateItem& item : m.single_template) specials += item.ids.size();
  }
  if (options.max_length > 0 && options.max_length < specials) {
    // The reference refuses this too: no truncation of the text can meet the limit.
    return InvalidArgumentError("max_length " + std::to_string(options.max_length) + " is below the " +
                                std::to_string(specials) + " special tokens the post-processor adds");
  }
  if (options.max_length > 0) {
    const size_t room = options.max_length - specials;
    if (ids.size() > room) {
      out.truncated = ids.size() - room;
      ids.resize(room);
    }
  }
  if (!options.add_special_tokens || m.single_template.empty()) {
    out.type_ids.assign(ids.size(), 0);
    out.ids = std::move(ids);
    return out;
  }
  for (const TemplateItem& item : m.single_template) {
    const std::vector<int32_t>& part = item.sequence ? ids : item.ids;
    out.ids.insert(out.ids.end(), part.begin(), part.end());
    out.type_ids.insert(out.type_ids.end(), part.size(), item.type_id);
  }
  return out;
}

StatusOr<std::string> Tokenizer::Decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  const Impl& m = *impl_;
  std::vector<std::string_view> tokens;
  for (int32_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= m.id_to_token.size() || m.id_to_token[id].empty()) {
      return OutOfRangeError(m.source + ": token id " + std::to_string(id) + " is not in the vocabulary");
    }
    if (skip_special_tokens && m.is_special[id]) continue;
    tokens.push_back(m.id_to_token[id]);
  }
  std::string joined;
  if (m.decoder == DecoderKind::kByteLevel) {
    for (std::string_view t : tokens) joined += t;
    ADREC_ASSIGN_OR_RETURN(std::u32string chars, DecodeUtf8(joined));
    return ByteLevelDecode(chars);
  }
  if (m.decoder == DecoderKind::kWordPiece) {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string_view t = tokens[i];
      if (t.starts_with(m.wordpiece_prefix)) {
        joined += t.substr(m.wordpiece_prefix.size());
      } else {
        if (i > 0) joined += ' ';
        joined += t;
      }
    }
    if (m.wordpiece_cleanup) {
      // The reference's clean_up_tokenization: no space before punctuation and contractions.
      static const std::pair<std::string_view, std::string_view> kCleanup[] = {
          {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
          {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
      for (const auto& [from, to] : kCleanup) {
        for (size_t pos = 0; (pos = joined.find(from, pos)) != std::string::npos;) {
          joined.replace(pos, from.size(), to);
          pos += to.size();
        }
      }
    }
    return joined;
  }
  for (std::string_view t : tokens) joined += t;
  return joined;
}

int32_t Tokenizer::TokenToId(std::string_view token) const {
  auto it = impl_->token_to_id.find(std::string(token));
  return it == impl_->token_to_id.end() ? -1 : it->second;
}

std::string_view Tokenizer::IdToToken(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < impl_->id_to_token.size() ? std::string_view(impl_->id_to_token[id])
                                                                         : std::string_view();
}

size_t Tokenizer::vocab_size() const { return impl_->id_to_token.size(); }
std::string_view Tokenizer::model_type() const { return impl_->model_type; }
const std::string& Tokenizer::description() const { return impl_->description; }
const std::string& Tokenizer::source() const { return impl_->source; }

}  // namespace adrec::text

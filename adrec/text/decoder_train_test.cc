#include "adrec/text/decoder_train.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "adrec/core/build_paths.h"
#include "adrec/core/file.h"
#include "adrec/text/llama.h"
#include "adrec/text/testing.h"
#include "adrec/text/tokenizer.h"

namespace adrec::text {
namespace {

namespace fs = std::filesystem;

DecoderTrainOptions Tiny() {
  DecoderTrainOptions o;
  o.hidden = 32;
  o.heads = 2;
  o.kv_heads = 1;
  o.layers = 1;
  o.intermediate = 64;
  o.max_len = 48;
  o.steps = 250;
  o.batch = 8;
  o.lr = 1e-2;
  o.show_progress = false;
  return o;
}

// Two short texts learnt by heart: the directory LlamaModel loads continues each prompt with the
// rest of its text, so the training forward pass and the inference one are the same function
// and the saved tensors are the trained ones.
TEST(DecoderTrain, LearnsTheCorpusAndSavesWhatTheInferenceDecoderLoads) {
  ScopedTempDir tmp;
  const std::vector<std::string> texts = {"ad: run faster today", "广告：今天更快"};
  auto r = TrainByteDecoder(texts, tmp.path() / "dec", Tiny());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_LT((*r)["last_loss"].get<double>(), 0.25 * (*r)["first_loss"].get<double>()) << r->dump();
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"}) {
    EXPECT_TRUE(fs::exists(tmp.path() / "dec" / f)) << f;
  }
  auto m = LlamaModel::Load(tmp.path() / "dec");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  for (const std::string& t : texts) {
    std::vector<int64_t> prompt = {kByteBos};
    for (int64_t b : ByteTokens(t.substr(0, 6))) prompt.push_back(b);
    GenerateOptions g;
    g.max_new_tokens = 40;
    auto out = m->Generate(torch::tensor(prompt), g);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    ASSERT_FALSE(out->empty());
    EXPECT_EQ(out->back(), kByteEos) << "stops at </s>";
    EXPECT_EQ(ByteText(*out), t.substr(6));
  }
  // The tokenizer.json gives the byte IDs, in adrec's tokenizer as in `tokenizers`.
  auto tok = Tokenizer::FromFile(tmp.path() / "dec" / "tokenizer.json");
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  auto enc = tok->Encode("héllo 广告");
  ASSERT_TRUE(enc.ok());
  std::vector<int64_t> ids(enc->ids.begin(), enc->ids.end());
  EXPECT_EQ(ids, ByteTokens("héllo 广告"));
  auto back = tok->Decode(enc->ids);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, "héllo 广告");
  EXPECT_EQ(tok->TokenToId("</s>"), kByteEos);
}

// transformers loads the directory as a LlamaForCausalLM and, greedy, generates the same tokens.
TEST(DecoderTrain, TransformersGeneratesTheSameTokens) {
  SKIP_WITHOUT_REFERENCE();
  ScopedTempDir tmp;
  DecoderTrainOptions o = Tiny();
  o.steps = 120;  // half-trained: no memorised text to hide a difference behind
  auto r = TrainByteDecoder({"buy the new shoes now", "new shoes for running"}, tmp.path() / "dec", o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const std::string prompt = "new sh";
  std::string out;
  const std::string script = std::string(adrec::build_paths::SourceDir()) + "/bench/reference/decoder_models.py";
  ASSERT_EQ(testing::RunOffline(testing::Quote(adrec::build_paths::Python()) + " " + testing::Quote(script) + " generate " +
                                    testing::Quote((tmp.path() / "dec").string()) + " " + testing::Quote(prompt) +
                                    " --new-tokens 16",
                                &out, /*keep_stderr=*/false),
            0)
      << out;
  const nlohmann::json ref = nlohmann::json::parse(out.substr(out.find('{')));
  std::vector<int64_t> prompt_ids = {kByteBos};
  for (int64_t b : ByteTokens(prompt)) prompt_ids.push_back(b);
  EXPECT_EQ(ref["prompt_ids"].get<std::vector<int64_t>>(), prompt_ids) << "tokenizers reads the tokenizer.json as bytes";
  auto m = LlamaModel::Load(tmp.path() / "dec");
  ASSERT_TRUE(m.ok());
  GenerateOptions g;
  g.max_new_tokens = 16;
  auto mine = m->Generate(torch::tensor(prompt_ids), g);
  ASSERT_TRUE(mine.ok());
  EXPECT_EQ(*mine, ref["generated"].get<std::vector<int64_t>>()) << out;
}

TEST(DecoderTrain, BadSizesAndNoTextAreNamed) {
  ScopedTempDir tmp;
  EXPECT_EQ(TrainByteDecoder({}, tmp.path() / "d", Tiny()).status().code(), StatusCode::kInvalidArgument);
  DecoderTrainOptions o = Tiny();
  o.heads = 3;
  EXPECT_EQ(TrainByteDecoder({"x"}, tmp.path() / "d", o).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(tmp.path() / "d"));
}

}  // namespace
}  // namespace adrec::text

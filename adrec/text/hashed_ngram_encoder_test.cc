#include "adrec/text/hashed_ngram_encoder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace adrec::text {
namespace {

float Cosine(const std::vector<float>& e, int64_t dim, size_t a, size_t b) {
  double dot = 0;
  for (int64_t d = 0; d < dim; ++d) dot += double(e[a * dim + d]) * e[b * dim + d];
  return static_cast<float>(dot);  // rows are unit vectors
}

TEST(HashedNgramEncoder, SharedWordsAndSpellingsAreClose) {
  HashedNgramEncoder enc;
  const std::vector<std::string> texts = {"Download the mobile game now", "download mobile games today",
                                          "fresh food delivery in 30 minutes", "王者荣耀 手游 下载", "王者荣耀 下载", ""};
  auto e = enc.Embed(texts);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  const int64_t dim = enc.dim();
  ASSERT_EQ(e->size(), texts.size() * dim);
  for (size_t i = 0; i + 1 < texts.size(); ++i) EXPECT_NEAR(Cosine(*e, dim, i, i), 1.f, 1e-5) << i;
  EXPECT_GT(Cosine(*e, dim, 0, 1), Cosine(*e, dim, 0, 2) + 0.2f);
  EXPECT_GT(Cosine(*e, dim, 3, 4), Cosine(*e, dim, 3, 2) + 0.2f);
  EXPECT_EQ(Cosine(*e, dim, 5, 5), 0.f);  // the empty text is the zero vector
  // Deterministic: the same texts give the same bytes in another encoder instance.
  EXPECT_EQ(*HashedNgramEncoder().Embed(texts), *e);
  // Case and Unicode composition do not matter ("É" composed or as E + U+0301).
  auto folded = enc.Embed(std::vector<std::string>{"CAFÉ", "cafe\xcc\x81"});
  EXPECT_NEAR(Cosine(*folded, dim, 0, 1), 1.f, 1e-5);
}

TEST(HashedNgramEncoder, InvalidUtf8NamesTheText) {
  auto e = HashedNgramEncoder().Embed(std::vector<std::string>{"ok", "bad \xff"});
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("text 1"), std::string::npos) << e.status().ToString();
}

}  // namespace
}  // namespace adrec::text

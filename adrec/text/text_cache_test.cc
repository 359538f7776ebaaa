// The RocksDB text-embedding cache: hits return what was stored, another model or text misses,
// a second process is refused with a clear error, and entries that do not fit are misses.
#include "adrec/text/text_cache.h"

#include <gtest/gtest.h>

#include "adrec/core/file.h"
#include "adrec/core/testing.h"

namespace adrec::text {
namespace {

TEST(TextCacheTest, CachesByModelAndTextAndEncodesOnlyMisses) {
  if (!TextCacheAvailable()) ADREC_SKIP_WITHOUT_REFERENCE("built without RocksDB");
  ScopedTempDir tmp("adrec-text-cache");
  auto base = OpenTextEncoder(std::string(kHashedNgramModel));
  ASSERT_TRUE(base.ok()) << base.status().ToString();
  const std::vector<std::string> texts = {"free racing game", "外卖满减优惠券", "", "free racing game!"};
  auto direct = (*base)->Embed(texts);
  ASSERT_TRUE(direct.ok());
  {
    auto cache = TextEmbeddingCache::Open(tmp.path() / "cache");
    ASSERT_TRUE(cache.ok()) << cache.status().ToString();
    // One directory, one process: a second opener is told who holds it.
    auto second = TextEmbeddingCache::Open(tmp.path() / "cache");
    ASSERT_FALSE(second.ok());
    EXPECT_NE(second.status().message().find("in use"), std::string::npos) << second.status().ToString();

    CachingTextEncoder enc(std::move(*base), std::move(*cache));
    auto first = enc.Embed(std::span(texts).subspan(0, 2));
    ASSERT_TRUE(first.ok());
    EXPECT_EQ(enc.cache_stats().misses, 2u);
    auto all = enc.Embed(texts);
    ASSERT_TRUE(all.ok());
    EXPECT_EQ(enc.cache_stats().hits, 2u);
    EXPECT_EQ(enc.cache_stats().misses, 4u);
    EXPECT_EQ(*all, *direct);  // bit-identical, hit or miss
  }
  // Reopened (as the next run would): everything is a hit; a different fingerprint is not.
  auto cache = TextEmbeddingCache::Open(tmp.path() / "cache");
  ASSERT_TRUE(cache.ok()) << cache.status().ToString();
  const int64_t dim = (*direct).size() / texts.size();
  std::vector<float> out(direct->size());
  std::vector<uint8_t> found;
  const std::string fp = (*OpenTextEncoder(std::string(kHashedNgramModel)))->fingerprint();
  ASSERT_TRUE((*cache)->Get(fp, texts, dim, out.data(), &found).ok());
  EXPECT_EQ(found, std::vector<uint8_t>(texts.size(), 1));
  EXPECT_EQ(out, *direct);
  ASSERT_TRUE((*cache)->Get(fp + "/other-weights", texts, dim, out.data(), &found).ok());
  EXPECT_EQ(found, std::vector<uint8_t>(texts.size(), 0));
  // An entry of another width (a model that changed shape under one fingerprint) is a miss.
  ASSERT_TRUE((*cache)->Get(fp, texts, dim / 2, out.data(), &found).ok());
  EXPECT_EQ(found, std::vector<uint8_t>(texts.size(), 0));
}

TEST(TextCacheTest, UnwritableDirectoryIsAnError) {
  if (!TextCacheAvailable()) ADREC_SKIP_WITHOUT_REFERENCE("built without RocksDB");
  ScopedTempDir tmp("adrec-text-cache");
  ASSERT_TRUE(AtomicWriteFile(tmp.path() / "file", "x").ok());
  auto cache = TextEmbeddingCache::Open(tmp.path() / "file" / "cache");
  ASSERT_FALSE(cache.ok());
  EXPECT_NE(cache.status().message().find("file"), std::string::npos) << cache.status().ToString();
}

}  // namespace
}  // namespace adrec::text

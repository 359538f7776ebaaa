// A content-addressed cache of text embeddings in RocksDB (DESIGN.md: "text cache"): the key is
// a 128-bit XXH3 hash of the encoder's fingerprint (its weights, tokenizer, pooling) and the
// text, the value the embedding. Re-running `adrec embed` on the same texts with the same model
// encodes nothing; a changed text or model misses and is encoded. The cache is derived data: an
// unreadable entry is a miss, never an error.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "adrec/core/status.h"
#include "adrec/text/text_encoder.h"

namespace adrec::text {

// True when this build has RocksDB (the cuda preset's vendored build has not).
bool TextCacheAvailable();

// `${ADREC_CACHE_DIR}/text-embeddings`, else `${XDG_CACHE_HOME:-~/.cache}/adrec/text-embeddings`.
std::filesystem::path DefaultTextCacheDir();

class TextEmbeddingCache {
 public:
  // Creates the directory when missing. Unimplemented without RocksDB; naming the
  // directory when another process holds it (FailedPrecondition); IoError for the rest.
  static StatusOr<std::unique_ptr<TextEmbeddingCache>> Open(const std::filesystem::path& dir);
  ~TextEmbeddingCache();
  TextEmbeddingCache(const TextEmbeddingCache&) = delete;
  TextEmbeddingCache& operator=(const TextEmbeddingCache&) = delete;

  // For each text, copies its cached [dim] vector into out[i * dim …] and sets found[i].
  Status Get(std::string_view fingerprint, std::span<const std::string> texts, int64_t dim, float* out,
             std::vector<uint8_t>* found) const;
  // Stores rows[i * dim …] for texts[i], in one atomic write.
  Status Put(std::string_view fingerprint, std::span<const std::string> texts, int64_t dim, const float* rows);
  const std::filesystem::path& dir() const { return dir_; }

 private:
  struct Db;
  TextEmbeddingCache(std::filesystem::path dir, std::unique_ptr<Db> db);
  std::filesystem::path dir_;
  std::unique_ptr<Db> db_;
};

struct TextCacheStats {
  size_t hits = 0, misses = 0;
};

// An encoder that answers from `cache` where it can and embeds (and stores) only the misses.
// Its name() and dim() are the wrapped encoder's; Embed's stats count the misses only.
class CachingTextEncoder final : public TextEncoder {
 public:
  CachingTextEncoder(std::unique_ptr<TextEncoder> encoder, std::unique_ptr<TextEmbeddingCache> cache);
  const std::string& name() const override { return encoder_->name(); }
  const std::string& fingerprint() const override { return encoder_->fingerprint(); }
  int64_t dim() const override { return encoder_->dim(); }
  StatusOr<std::vector<float>> Embed(std::span<const std::string> texts, TextEncodeStats* stats = nullptr) const override;
  TextCacheStats cache_stats() const { return stats_; }
  const std::filesystem::path& cache_dir() const { return cache_->dir(); }

 private:
  std::unique_ptr<TextEncoder> encoder_;
  std::unique_ptr<TextEmbeddingCache> cache_;
  mutable TextCacheStats stats_;
};

// What `adrec embed` and `adrec tag` do with --cache/--no-cache: `encoder` behind the cache at
// `dir` (DefaultTextCacheDir() when empty), or `encoder` itself with `no_cache`, or without
// RocksDB when no dir was asked for. InvalidArgument for both flags; Unimplemented for an
// explicit dir without RocksDB.
StatusOr<std::unique_ptr<TextEncoder>> WithTextCache(std::unique_ptr<TextEncoder> encoder, const std::string& dir,
                                                     bool no_cache);

}  // namespace adrec::text

#include "adrec/text/text_cache.h"

#include <cstdlib>
#include <cstring>

#include "adrec/core/hash.h"
#include "adrec/core/log_line.h"

#ifdef ADREC_HAVE_ROCKSDB
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#endif

namespace adrec::text {

namespace fs = std::filesystem;

namespace {

constexpr uint32_t kValueMagic = 0x31434541;  // "AEC1": value layout version

// 16 bytes: two XXH3-64 of (fingerprint, NUL, text) with different seeds.
std::string Key(std::string_view fingerprint, const std::string& text) {
  std::string buf;
  buf.reserve(fingerprint.size() + 1 + text.size());
  buf.append(fingerprint);
  buf.push_back('\0');
  buf.append(text);
  const uint64_t h[2] = {Hash64(buf, 0x5eed0001), Hash64(buf, 0x5eed0002)};
  return std::string(reinterpret_cast<const char*>(h), sizeof(h));
}

}  // namespace

bool TextCacheAvailable() {
#ifdef ADREC_HAVE_ROCKSDB
  return true;
#else
  return false;
#endif
}

fs::path DefaultTextCacheDir() {
  if (const char* d = std::getenv("ADREC_CACHE_DIR"); d && *d) return fs::path(d) / "text-embeddings";
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return fs::path(x) / "adrec" / "text-embeddings";
  if (const char* home = std::getenv("HOME"); home && *home) return fs::path(home) / ".cache" / "adrec" / "text-embeddings";
  return fs::path(".cache") / "adrec" / "text-embeddings";
}

#ifdef ADREC_HAVE_ROCKSDB
struct TextEmbeddingCache::Db {
  std::unique_ptr<rocksdb::DB> db;
};
#else
struct TextEmbeddingCache::Db {};
#endif

TextEmbeddingCache::TextEmbeddingCache(fs::path dir, std::unique_ptr<Db> db) : dir_(std::move(dir)), db_(std::move(db)) {}
TextEmbeddingCache::~TextEmbeddingCache() = default;

StatusOr<std::unique_ptr<TextEmbeddingCache>> TextEmbeddingCache::Open(const fs::path& dir) {
#ifdef ADREC_HAVE_ROCKSDB
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return IoError("cannot create the text cache " + dir.string() + ": " + ec.message());
  rocksdb::Options options;
  options.create_if_missing = true;
  // Embeddings are incompressible floats; compression would only cost time.
  options.compression = rocksdb::kNoCompression;
  options.info_log_level = rocksdb::InfoLogLevel::ERROR_LEVEL;
  options.keep_log_file_num = 2;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir.string(), &raw);
  if (!s.ok()) {
    if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
      return FailedPreconditionError("the text cache " + dir.string() + " is in use by another process (" + s.ToString() +
                              "); wait for it or pass another --cache");
    }
    return IoError("cannot open the text cache " + dir.string() + ": " + s.ToString());
  }
  auto db = std::make_unique<Db>();
  db->db.reset(raw);
  return std::unique_ptr<TextEmbeddingCache>(new TextEmbeddingCache(dir, std::move(db)));
#else
  return UnimplementedError("this adrec was built without RocksDB (vendored dependencies): the text cache " + dir.string() +
                            " is unavailable; run without a cache (--no-cache)");
#endif
}

Status TextEmbeddingCache::Get(std::string_view fingerprint, std::span<const std::string> texts, int64_t dim, float* out,
                               std::vector<uint8_t>* found) const {
  found->assign(texts.size(), 0);
#ifdef ADREC_HAVE_ROCKSDB
  std::vector<std::string> keys;
  keys.reserve(texts.size());
  for (const std::string& t : texts) keys.push_back(Key(fingerprint, t));
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<std::string> values;
  std::vector<rocksdb::Status> st = db_->db->MultiGet(rocksdb::ReadOptions(), slices, &values);
  const size_t bytes = static_cast<size_t>(dim) * sizeof(float);
  size_t unreadable = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    if (st[i].IsNotFound()) continue;
    uint32_t magic = 0, d = 0;
    const bool sized = st[i].ok() && values[i].size() == 8 + bytes;
    if (sized) {
      std::memcpy(&magic, values[i].data(), 4);
      std::memcpy(&d, values[i].data() + 4, 4);
    }
    if (!sized || magic != kValueMagic || d != static_cast<uint32_t>(dim)) {
      ++unreadable;  // re-encoded and overwritten by the caller's Put
      continue;
    }
    std::memcpy(out + i * dim, values[i].data() + 8, bytes);
    (*found)[i] = 1;
  }
  if (unreadable > 0) LogWarn("text cache " + dir_.string() + ": " + std::to_string(unreadable) + " unreadable entries re-encoded");
  return Status::Ok();
#else
  (void)fingerprint, (void)dim, (void)out;
  return UnimplementedError("text cache: built without RocksDB");
#endif
}

Status TextEmbeddingCache::Put(std::string_view fingerprint, std::span<const std::string> texts, int64_t dim,
                               const float* rows) {
#ifdef ADREC_HAVE_ROCKSDB
  rocksdb::WriteBatch batch;
  const size_t bytes = static_cast<size_t>(dim) * sizeof(float);
  std::string value(8 + bytes, '\0');
  const uint32_t d = static_cast<uint32_t>(dim);
  std::memcpy(value.data(), &kValueMagic, 4);
  std::memcpy(value.data() + 4, &d, 4);
  for (size_t i = 0; i < texts.size(); ++i) {
    std::memcpy(value.data() + 8, rows + i * dim, bytes);
    batch.Put(Key(fingerprint, texts[i]), value);
  }
  rocksdb::Status s = db_->db->Write(rocksdb::WriteOptions(), &batch);
  if (!s.ok()) return IoError("text cache " + dir_.string() + ": cannot write: " + s.ToString());
  return Status::Ok();
#else
  (void)fingerprint, (void)texts, (void)dim, (void)rows;
  return UnimplementedError("text cache: built without RocksDB");
#endif
}

CachingTextEncoder::CachingTextEncoder(std::unique_ptr<TextEncoder> encoder, std::unique_ptr<TextEmbeddingCache> cache)
    : encoder_(std::move(encoder)), cache_(std::move(cache)) {}

StatusOr<std::vector<float>> CachingTextEncoder::Embed(std::span<const std::string> texts, TextEncodeStats* stats) const {
  const int64_t dim = encoder_->dim();
  std::vector<float> out(texts.size() * static_cast<size_t>(dim));
  std::vector<uint8_t> found;
  ADREC_RETURN_IF_ERROR(cache_->Get(encoder_->fingerprint(), texts, dim, out.data(), &found));
  std::vector<std::string> missing;
  std::vector<size_t> where;
  for (size_t i = 0; i < texts.size(); ++i) {
    if (found[i]) continue;
    missing.push_back(texts[i]);
    where.push_back(i);
  }
  stats_.hits += texts.size() - missing.size();
  stats_.misses += missing.size();
  if (missing.empty()) return out;
  ADREC_ASSIGN_OR_RETURN(std::vector<float> fresh, encoder_->Embed(missing, stats));
  for (size_t k = 0; k < where.size(); ++k) {
    std::memcpy(out.data() + where[k] * dim, fresh.data() + k * dim, static_cast<size_t>(dim) * sizeof(float));
  }
  ADREC_RETURN_IF_ERROR(cache_->Put(encoder_->fingerprint(), missing, dim, fresh.data()));
  return out;
}

StatusOr<std::unique_ptr<TextEncoder>> WithTextCache(std::unique_ptr<TextEncoder> encoder, const std::string& dir,
                                                     bool no_cache) {
  if (!dir.empty() && no_cache) return InvalidArgumentError("--cache and --no-cache exclude each other");
  if (no_cache || (!TextCacheAvailable() && dir.empty())) return encoder;
  ADREC_ASSIGN_OR_RETURN(auto cache, TextEmbeddingCache::Open(dir.empty() ? DefaultTextCacheDir() : fs::path(dir)));
  return std::unique_ptr<TextEncoder>(new CachingTextEncoder(std::move(encoder), std::move(cache)));
}

}  // namespace adrec::text

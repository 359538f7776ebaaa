#include "adrec/serve/rocks_encryption.h"

#include <rocksdb/env.h>
#include <rocksdb/env_encryption.h>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>

#include "adrec/core/log_line.h"

namespace adrec::serve {
namespace {

constexpr char kMarker[] = "ADRECRDB";  // 8 bytes, then a version byte
constexpr size_t kMarkerSize = 8;
constexpr uint8_t kVersion = 1;
constexpr size_t kNonce = crypto_stream_xchacha20_NONCEBYTES;  // 24
constexpr size_t kTag = 16;
constexpr size_t kPrefix = 4096;  // a page, as RocksDB advises

using Key = std::array<uint8_t, crypto_stream_xchacha20_KEYBYTES>;

// The stream at any offset: one call for the whole range, the first partial block by hand.
class XChaChaStream : public rocksdb::BlockAccessCipherStream {
 public:
  XChaChaStream(const Key& key, const uint8_t* nonce) : key_(key) { std::memcpy(nonce_.data(), nonce, kNonce); }
  ~XChaChaStream() override { sodium_memzero(key_.data(), key_.size()); }
  size_t BlockSize() override { return 64; }
  rocksdb::Status Encrypt(uint64_t offset, char* data, size_t size) override { return Xor(offset, data, size); }
  rocksdb::Status Decrypt(uint64_t offset, char* data, size_t size) override { return Xor(offset, data, size); }

 protected:
  void AllocateScratch(std::string&) override {}
  rocksdb::Status EncryptBlock(uint64_t block, char* data, char*) override { return Xor(block * 64, data, 64); }
  rocksdb::Status DecryptBlock(uint64_t block, char* data, char*) override { return Xor(block * 64, data, 64); }

 private:
  rocksdb::Status Xor(uint64_t offset, char* data, size_t size) {
    auto* p = reinterpret_cast<unsigned char*>(data);
    if (const size_t skip = offset % 64; skip != 0 && size > 0) {
      std::array<unsigned char, 64> block{};
      crypto_stream_xchacha20_xor_ic(block.data(), block.data(), 64, nonce_.data(), offset / 64, key_.data());
      const size_t n = std::min(size, 64 - skip);
      for (size_t i = 0; i < n; ++i) p[i] ^= block[skip + i];
      p += n;
      size -= n;
      offset += n;
    }
    if (size > 0) crypto_stream_xchacha20_xor_ic(p, p, size, nonce_.data(), offset / 64, key_.data());
    return rocksdb::Status::OK();
  }
  Key key_;
  std::array<uint8_t, kNonce> nonce_{};
};

class XChaChaProvider : public rocksdb::EncryptionProvider {
 public:
  explicit XChaChaProvider(const SecretKey& key) {
    crypto_kdf_derive_from_key(key_.data(), key_.size(), 1, "rocksdb1", key.bytes.data());
    crypto_kdf_derive_from_key(tag_key_.data(), tag_key_.size(), 2, "rocksdb1", key.bytes.data());
  }
  ~XChaChaProvider() override {
    sodium_memzero(key_.data(), key_.size());
    sodium_memzero(tag_key_.data(), tag_key_.size());
  }
  const char* Name() const override { return "AdrecXChaCha20"; }
  size_t GetPrefixLength() const override { return kPrefix; }
  rocksdb::Status CreateNewPrefix(const std::string&, char* prefix, size_t length) const override {
    if (length < kPrefix) return rocksdb::Status::InvalidArgument("adrec at-rest prefix: too short");
    std::memset(prefix, 0, length);
    auto* p = reinterpret_cast<uint8_t*>(prefix);
    std::memcpy(p, kMarker, kMarkerSize);
    p[kMarkerSize] = kVersion;
    randombytes_buf(p + kMarkerSize + 1, kNonce);
    Tag(p, p + kMarkerSize + 1 + kNonce);
    return rocksdb::Status::OK();
  }
  rocksdb::Status AddCipher(const std::string&, const char*, size_t, bool) override {
    return rocksdb::Status::NotSupported("the adrec at-rest provider takes its key from the at-rest key file");
  }
  rocksdb::Status CreateCipherStream(const std::string& fname, const rocksdb::EnvOptions&, rocksdb::Slice& prefix,
                                     std::unique_ptr<rocksdb::BlockAccessCipherStream>* result) override {
    const auto* p = reinterpret_cast<const uint8_t*>(prefix.data());
    if (prefix.size() < kPrefix || std::memcmp(p, kMarker, kMarkerSize) != 0 || p[kMarkerSize] != kVersion) {
      return rocksdb::Status::Corruption(fname + " is not encrypted by adrec (written without --at-rest-key?)");
    }
    std::array<uint8_t, kTag> want{};
    Tag(p, want.data());
    if (sodium_memcmp(want.data(), p + kMarkerSize + 1 + kNonce, kTag) != 0) {
      return rocksdb::Status::Corruption(fname + " was encrypted with another at-rest key");
    }
    *result = std::make_unique<XChaChaStream>(key_, p + kMarkerSize + 1);
    return rocksdb::Status::OK();
  }
  std::string GetMarker() const override { return std::string(kMarker, kMarkerSize); }

 private:
  // BLAKE2b keyed by the tag key over the marker, version and nonce.
  void Tag(const uint8_t* prefix, uint8_t* out) const {
    crypto_generichash(out, kTag, prefix, kMarkerSize + 1 + kNonce, tag_key_.data(), tag_key_.size());
  }
  Key key_{};
  std::array<uint8_t, crypto_generichash_KEYBYTES> tag_key_{};
};

}  // namespace

rocksdb::Env* EncryptedRocksEnv(const SecretKey& key) {
  static std::mutex mu;
  static std::vector<std::pair<SecretKey, std::unique_ptr<rocksdb::Env>>> envs;  // one per key seen
  std::lock_guard<std::mutex> lock(mu);
  for (auto& [k, env] : envs) {
    if (sodium_memcmp(k.bytes.data(), key.bytes.data(), key.bytes.size()) == 0) return env.get();
  }
  if (sodium_init() < 0) return nullptr;
  auto provider = std::make_shared<XChaChaProvider>(key);
  envs.emplace_back(key, std::unique_ptr<rocksdb::Env>(rocksdb::NewEncryptedEnv(rocksdb::Env::Default(), provider)));
  return envs.back().second.get();
}

std::shared_ptr<rocksdb::Logger> RocksLogToAdrec() {
  class ToAdrec : public rocksdb::Logger {
   public:
    ToAdrec() : rocksdb::Logger(rocksdb::InfoLogLevel::ERROR_LEVEL) {}
    using rocksdb::Logger::Logv;
    void Logv(const char* format, va_list ap) override {
      char line[1024];
      std::vsnprintf(line, sizeof(line), format, ap);
      LogWarn(std::string("rocksdb: ") + line);
    }
  };
  return std::make_shared<ToAdrec>();
}

bool IsEncryptedRocksDir(const std::filesystem::path& dir) {
  std::ifstream in(dir / "CURRENT", std::ios::binary);
  char head[kMarkerSize] = {};
  return in.read(head, kMarkerSize) && std::memcmp(head, kMarker, kMarkerSize) == 0;
}

}  // namespace adrec::serve

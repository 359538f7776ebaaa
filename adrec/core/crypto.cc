#include "adrec/core/crypto.h"

#include <sodium.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "adrec/core/file.h"

namespace adrec {
namespace {

Status InitSodium() {
  // Thread-safe and idempotent; -1 only when no entropy source can be opened.
  if (sodium_init() < 0) return InternalError("libsodium could not initialise (no entropy source)");
  return Status::Ok();
}

std::string Hex(const uint8_t* p, size_t n) {
  std::string out(2 * n + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), p, n);
  out.pop_back();
  return out;
}

constexpr char kMagic[] = "ADRECENC";
constexpr size_t kMagicSize = 8;
constexpr uint8_t kVersion = 1;
constexpr size_t kPreamble = kMagicSize + 1 + 4;  // magic, version, chunk size (u32 LE)
constexpr size_t kHeader = crypto_secretstream_xchacha20poly1305_HEADERBYTES;
constexpr size_t kTagBytes = crypto_secretstream_xchacha20poly1305_ABYTES;
constexpr uint32_t kChunk = 1u << 20;

std::array<uint8_t, 32> CipherKey(const SecretKey& key) {
  std::array<uint8_t, 32> sub{};
  crypto_kdf_derive_from_key(sub.data(), sub.size(), 1, "atrest01", key.bytes.data());
  return sub;
}

std::optional<SecretKey>& AtRestKeySlot() {
  static std::optional<SecretKey> key;
  return key;
}

}  // namespace

Status WriteNewKeyFile(const std::filesystem::path& path) {
  ADREC_RETURN_IF_ERROR(InitSodium());
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    return AlreadyExistsError(path.string() + " exists: a key file is never replaced (pseudonyms and encrypted files "
                              "made with it would become unreadable); remove it first if that is meant");
  }
  SecretKey key;
  randombytes_buf(key.bytes.data(), key.bytes.size());
  const std::string text = Hex(key.bytes.data(), key.bytes.size()) + "\n";
  sodium_memzero(key.bytes.data(), key.bytes.size());
  // Created 0600 before any byte is written, so the key is never readable by others.
  const mode_t old = ::umask(077);
  Status s = AtomicWriteFile(path, text, /*plain=*/true);  // a key file is never encrypted with another
  ::umask(old);
  ADREC_RETURN_IF_ERROR(s);
  std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::replace, ec);
  if (ec) return IoError("cannot restrict " + path.string() + " to its owner: " + ec.message());
  return Status::Ok();
}

StatusOr<SecretKey> ReadKeyFile(const std::filesystem::path& path) {
  ADREC_RETURN_IF_ERROR(InitSodium());
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return NotFoundError("key file " + path.string() + " does not exist");
  ADREC_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  if (text.size() != 64) {
    return InvalidArgumentError("key file " + path.string() + ": expected 64 hex digits (32 bytes, as `adrec keygen` "
                                "writes), found " + std::to_string(text.size()) + " characters");
  }
  SecretKey key;
  size_t n = 0;
  const char* end = nullptr;
  if (sodium_hex2bin(key.bytes.data(), key.bytes.size(), text.data(), text.size(), nullptr, &n, &end) != 0 ||
      n != key.bytes.size() || end != text.data() + text.size()) {
    return InvalidArgumentError("key file " + path.string() + ": not hex digits (0-9, a-f) throughout");
  }
  sodium_memzero(text.data(), text.size());
  return key;
}

std::string KeyedHashHex(const SecretKey& key, std::string_view message, size_t out_bytes) {
  out_bytes = std::clamp<size_t>(out_bytes, crypto_generichash_BYTES_MIN, crypto_generichash_BYTES_MAX);
  uint8_t out[crypto_generichash_BYTES_MAX];
  crypto_generichash(out, out_bytes, reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                     key.bytes.data(), key.bytes.size());
  return Hex(out, out_bytes);
}

bool IsEncrypted(std::string_view bytes) {
  return bytes.size() >= kMagicSize && bytes.substr(0, kMagicSize) == std::string_view(kMagic, kMagicSize);
}

std::string EncryptBytes(const SecretKey& key, std::string_view plain) {
  (void)InitSodium();
  std::array<uint8_t, 32> k = CipherKey(key);
  const size_t chunks = plain.empty() ? 1 : (plain.size() + kChunk - 1) / kChunk;
  std::string out(kPreamble + kHeader + plain.size() + chunks * kTagBytes, '\0');
  auto* o = reinterpret_cast<uint8_t*>(out.data());
  std::memcpy(o, kMagic, kMagicSize);
  o[kMagicSize] = kVersion;
  for (int b = 0; b < 4; ++b) o[kMagicSize + 1 + b] = static_cast<uint8_t>(kChunk >> (8 * b));
  crypto_secretstream_xchacha20poly1305_state st;
  crypto_secretstream_xchacha20poly1305_init_push(&st, o + kPreamble, k.data());
  sodium_memzero(k.data(), k.size());
  size_t at = kPreamble + kHeader;
  for (size_t c = 0; c < chunks; ++c) {
    const size_t begin = c * kChunk, n = std::min<size_t>(kChunk, plain.size() - begin);
    const uint8_t tag = c + 1 == chunks ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
                                        : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
    unsigned long long written = 0;
    crypto_secretstream_xchacha20poly1305_push(&st, o + at, &written,
                                               reinterpret_cast<const uint8_t*>(plain.data()) + begin, n, o, kPreamble,
                                               tag);
    at += static_cast<size_t>(written);
  }
  out.resize(at);
  return out;
}

StatusOr<std::string> DecryptBytes(const SecretKey& key, std::string_view enc, const std::filesystem::path& name) {
  ADREC_RETURN_IF_ERROR(InitSodium());
  const std::string what = name.string();
  if (!IsEncrypted(enc)) return InvalidArgumentError(what + " is not an adrec encrypted file (no ADRECENC header)");
  if (enc.size() < kPreamble + kHeader + kTagBytes) return DataLossError(what + ": encrypted file truncated in its header");
  const auto* e = reinterpret_cast<const uint8_t*>(enc.data());
  if (e[kMagicSize] != kVersion) {
    return DataLossError(what + ": encrypted with format version " + std::to_string(e[kMagicSize]) +
                         ", this adrec reads version " + std::to_string(kVersion));
  }
  uint32_t chunk = 0;
  for (int b = 0; b < 4; ++b) chunk |= static_cast<uint32_t>(e[kMagicSize + 1 + b]) << (8 * b);
  if (chunk == 0 || chunk > (1u << 28)) return DataLossError(what + ": encrypted file header is corrupt (chunk size)");
  std::array<uint8_t, 32> k = CipherKey(key);
  crypto_secretstream_xchacha20poly1305_state st;
  const int init = crypto_secretstream_xchacha20poly1305_init_pull(&st, e + kPreamble, k.data());
  sodium_memzero(k.data(), k.size());
  if (init != 0) return DataLossError(what + ": encrypted file header is corrupt");
  std::string out;
  out.reserve(enc.size());
  size_t at = kPreamble + kHeader;
  bool final_seen = false;
  std::vector<uint8_t> buf(static_cast<size_t>(chunk));
  while (at < enc.size()) {
    if (final_seen) return DataLossError(what + ": bytes after the encrypted file's final chunk (tampered)");
    const size_t n = std::min<size_t>(static_cast<size_t>(chunk) + kTagBytes, enc.size() - at);
    if (n < kTagBytes) return DataLossError(what + ": encrypted file truncated mid-chunk");
    unsigned long long got = 0;
    uint8_t tag = 0;
    if (crypto_secretstream_xchacha20poly1305_pull(&st, buf.data(), &got, &tag, e + at, n, e, kPreamble) != 0) {
      return DataLossError(what + ": cannot decrypt: the at-rest key is not the one it was written with, or the "
                           "file was changed after it was written");
    }
    out.append(reinterpret_cast<const char*>(buf.data()), static_cast<size_t>(got));
    final_seen = tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL;
    at += n;
  }
  if (!final_seen) return DataLossError(what + ": encrypted file truncated (its final chunk is missing)");
  return out;
}

void SetAtRestKey(std::optional<SecretKey> key) { AtRestKeySlot() = std::move(key); }

const SecretKey* AtRestKey() { return AtRestKeySlot() ? &*AtRestKeySlot() : nullptr; }

StatusOr<std::string> DecryptAtRest(std::string_view bytes, const std::filesystem::path& path) {
  const SecretKey* key = AtRestKey();
  if (key == nullptr) {
    return FailedPreconditionError(path.string() + " is encrypted at rest: give its key with --at-rest-key FILE "
                                   "(or ADREC_AT_REST_KEY_FILE)");
  }
  return DecryptBytes(*key, bytes, path);
}

}  // namespace adrec

// Keys, keyed hashing and encryption at rest (libsodium): the secret key file, the keyed BLAKE2b
// hash that turns a raw user ID into a pseudonym, and the encrypted file format every file
// adrec writes through adrec/core/file.h takes when an at-rest key is set.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "adrec/core/status.h"

namespace adrec {

// 32 random bytes. The file holds them as 64 hex digits and a newline, mode 0600.
struct SecretKey {
  std::array<uint8_t, 32> bytes{};
};

// A fresh key from the OS's CSPRNG, written to `path` readable by its owner only; an existing
// file is never replaced (AlreadyExists): a lost key makes every pseudonym unlinkable.
Status WriteNewKeyFile(const std::filesystem::path& path);

// Reads a key file: NotFound, or InvalidArgument naming what is wrong (length, a non-hex digit).
StatusOr<SecretKey> ReadKeyFile(const std::filesystem::path& path);

// The keyed BLAKE2b (libsodium crypto_generichash) of `message`, `out_bytes` long (16..64), in
// lowercase hex: the same key and message give the same pseudonym; without the key it cannot
// be reversed or recomputed.
std::string KeyedHashHex(const SecretKey& key, std::string_view message, size_t out_bytes = 16);

// Encrypted files: "ADRECENC", a version byte, the chunk size, a secretstream header, then
// XChaCha20-Poly1305 chunks of 1 MiB, the last one tagged final. Each chunk is authenticated
// with the preamble, so a changed, reordered, truncated or extended file, or another key, is an
// error (DataLoss naming the file), never garbage. The cipher key is derived from the key file's
// (crypto_kdf, its own context), so one key file may also pseudonymise.
bool IsEncrypted(std::string_view bytes);
std::string EncryptBytes(const SecretKey& key, std::string_view plain);
StatusOr<std::string> DecryptBytes(const SecretKey& key, std::string_view encrypted, const std::filesystem::path& name);

// The process's at-rest key: with one set, ReadFile, MappedFile and AtomicWriteFile (and so
// datasets, bundles, checkpoints and indexes) write encrypted files and read them back; without
// one, reading an encrypted file is an error that says a key is needed. Set once at start-up,
// before other threads run (`adrec --at-rest-key FILE`, or ADREC_AT_REST_KEY_FILE).
void SetAtRestKey(std::optional<SecretKey> key);
const SecretKey* AtRestKey();
// What ReadFile and MappedFile do with bytes that IsEncrypted: decrypted with the at-rest key,
// FailedPrecondition naming `path` without one.
StatusOr<std::string> DecryptAtRest(std::string_view bytes, const std::filesystem::path& path);

}  // namespace adrec

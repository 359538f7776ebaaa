// Encryption at rest for the server's RocksDB state: a RocksDB Env whose files (tables, write-
// ahead log, manifest, CURRENT) are XChaCha20-encrypted under a key derived from the at-rest key
// (core/crypto.h). Each file starts with a 4 KiB prefix — a marker, a random 24-byte nonce and a
// BLAKE2b tag of both keyed by the key — so another key is caught when a file is opened, before
// a byte of it is read; the rest is the ChaCha20 stream at the file's offset, random access as
// RocksDB needs. The stream has no per-block tag: RocksDB's block checksums catch a changed byte
// as corruption, and secrecy is what this adds.
#pragma once

#include <filesystem>
#include <memory>

#include "adrec/core/crypto.h"
#include "adrec/core/status.h"

namespace rocksdb {
class Env;
class Logger;
}

namespace adrec::serve {

// The process's encrypting Env for `key` (made once; RocksDB holds a raw pointer to it for as
// long as a database is open, so it lives as long as the process).
rocksdb::Env* EncryptedRocksEnv(const SecretKey& key);

// RocksDB's diagnostics as adrec's log lines (warn level), instead of a LOG file in the
// directory: an encrypted directory must hold only files the Env encrypts.
std::shared_ptr<rocksdb::Logger> RocksLogToAdrec();

// Whether a RocksDB directory was written by EncryptedRocksEnv (its CURRENT file carries the
// prefix marker), so a store opened without a key can say so instead of failing to parse.
bool IsEncryptedRocksDir(const std::filesystem::path& dir);

}  // namespace adrec::serve

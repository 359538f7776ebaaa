// Files: whole-file reads and crash-safe writes (temp file, fsync, rename), temp directories.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "adrec/core/status.h"

namespace adrec {

// A file's bytes; an encrypted file (adrec/core/crypto.h) comes back decrypted with the
// process's at-rest key, or is an error naming the missing or wrong key.
StatusOr<std::string> ReadFile(const std::filesystem::path& path);
// Writes to a temp file beside `path`, fsyncs it, renames it over `path` and fsyncs the directory:
// readers see the old content or the new, never a torn file. With an at-rest key set the file is
// written encrypted, unless `plain` (key files themselves).
Status AtomicWriteFile(const std::filesystem::path& path, std::string_view data, bool plain = false);
// fsync of a file or directory by path.
Status SyncPath(const std::filesystem::path& path);

// A whole file mapped read-only (no copy into anonymous memory: the page cache is read
// directly). Files adrec writes are replaced by rename, never changed in place, so a mapping
// stays valid while held. An encrypted file is decrypted into memory the object owns instead.
class MappedFile {
 public:
  static StatusOr<MappedFile> Open(const std::filesystem::path& path);
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();
  std::string_view data() const {
    return owned_ ? std::string_view(*owned_) : std::string_view(static_cast<const char*>(addr_), size_);
  }

 private:
  MappedFile(void* addr, size_t size) : addr_(addr), size_(size) {}
  void* addr_ = nullptr;
  size_t size_ = 0;
  std::unique_ptr<std::string> owned_;  // decrypted bytes (on the heap: views stay valid when this moves)
};

// A uniquely named directory beside `final_path` that is removed on destruction unless
// Commit() renamed it to `final_path` (a half-written output never appears under its name).
class StagingDir {
 public:
  static StatusOr<StagingDir> Create(const std::filesystem::path& final_path);
  StagingDir(StagingDir&& other) noexcept;
  StagingDir& operator=(StagingDir&&) = delete;
  StagingDir(const StagingDir&) = delete;
  ~StagingDir();

  const std::filesystem::path& path() const { return path_; }
  // Renames into place. Refuses to replace an existing non-empty directory unless `overwrite`.
  Status Commit(bool overwrite = false);

 private:
  StagingDir(std::filesystem::path path, std::filesystem::path final_path)
      : path_(std::move(path)), final_path_(std::move(final_path)) {}
  std::filesystem::path path_;
  std::filesystem::path final_path_;
  bool committed_ = false;
};

// A fresh directory under the system temp dir, removed on destruction (tests, benches).
class ScopedTempDir {
 public:
  explicit ScopedTempDir(std::string_view prefix = "adrec");
  ~ScopedTempDir();
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace adrec

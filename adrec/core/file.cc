#include "adrec/core/file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "adrec/core/crypto.h"

namespace adrec {
namespace fs = std::filesystem;

namespace {

std::string RandomSuffix() {
  static thread_local std::mt19937_64 rng(std::random_device{}() ^ static_cast<uint64_t>(getpid()));
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

}  // namespace

StatusOr<std::string> ReadFile(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFoundError("no such file: " + path.string());
    return ErrnoError("open " + path.string());
  }
  std::string out;
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      Status s = ErrnoError("read " + path.string());
      ::close(fd);
      return s;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (IsEncrypted(out)) return DecryptAtRest(out, path);
  return out;
}

Status SyncPath(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open for fsync " + path.string());
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return ErrnoError("fsync " + path.string());
  return Status::Ok();
}

Status AtomicWriteFile(const fs::path& path, std::string_view data, bool plain) {
  std::string encrypted;
  if (!plain && AtRestKey() != nullptr) {
    encrypted = EncryptBytes(*AtRestKey(), data);
    data = encrypted;
  }
  fs::path tmp = path;
  tmp += ".tmp-" + RandomSuffix();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("create " + tmp.string());
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status s = ErrnoError("write " + tmp.string());
      ::close(fd);
      ::unlink(tmp.c_str());
      return s;
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    Status s = ErrnoError("fsync " + tmp.string());
    ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = ErrnoError("rename " + tmp.string() + " -> " + path.string());
    ::unlink(tmp.c_str());
    return s;
  }
  fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  return SyncPath(dir);
}

StatusOr<MappedFile> MappedFile::Open(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFoundError("no such file: " + path.string());
    return ErrnoError("open " + path.string());
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    Status s = ErrnoError("stat " + path.string());
    ::close(fd);
    return s;
  }
  const auto size = static_cast<size_t>(st.st_size);
  void* addr = nullptr;
  if (size > 0) {  // mmap of length 0 is an error; an empty file is an empty view
    addr = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (addr == MAP_FAILED) {
      Status s = ErrnoError("mmap " + path.string());
      ::close(fd);
      return s;
    }
  }
  ::close(fd);
  MappedFile mapped(addr, size);
  if (!IsEncrypted(mapped.data())) return mapped;
  // Decrypted straight from the mapping; `mapped` unmaps when it goes out of scope.
  ADREC_ASSIGN_OR_RETURN(std::string plain, DecryptAtRest(mapped.data(), path));
  MappedFile owned(nullptr, plain.size());
  owned.owned_ = std::make_unique<std::string>(std::move(plain));
  return owned;
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : addr_(other.addr_), size_(other.size_), owned_(std::move(other.owned_)) {
  other.addr_ = nullptr;
  other.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    if (addr_) ::munmap(addr_, size_);
    addr_ = other.addr_;
    size_ = other.size_;
    owned_ = std::move(other.owned_);
    other.addr_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (addr_) ::munmap(addr_, size_);
}

StatusOr<StagingDir> StagingDir::Create(const fs::path& final_path) {
  fs::path parent = final_path.parent_path().empty() ? fs::path(".") : final_path.parent_path();
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) return IoError("create directory " + parent.string() + ": " + ec.message());
  fs::path staging = parent / ("." + final_path.filename().string() + ".partial-" + RandomSuffix());
  if (!fs::create_directory(staging, ec) || ec) {
    return IoError("create directory " + staging.string() + ": " + ec.message());
  }
  return StagingDir(staging, final_path);
}

StagingDir::StagingDir(StagingDir&& other) noexcept
    : path_(std::move(other.path_)), final_path_(std::move(other.final_path_)), committed_(other.committed_) {
  other.committed_ = true;  // the moved-from object must not delete anything
}

StagingDir::~StagingDir() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
}

Status StagingDir::Commit(bool overwrite) {
  std::error_code ec;
  if (fs::exists(final_path_, ec)) {
    if (!fs::is_directory(final_path_, ec)) {
      return AlreadyExistsError(final_path_.string() + " exists and is not a directory");
    }
    if (!fs::is_empty(final_path_, ec) && !overwrite) {
      return AlreadyExistsError(final_path_.string() + " exists and is not empty (use --force to replace it)");
    }
    // Move the old one aside first so a failed rename leaves it intact.
    fs::path old = final_path_;
    old += ".old-" + RandomSuffix();
    fs::rename(final_path_, old, ec);
    if (ec) return IoError("rename " + final_path_.string() + ": " + ec.message());
    fs::rename(path_, final_path_, ec);
    if (ec) {
      fs::rename(old, final_path_);
      return IoError("rename " + path_.string() + " -> " + final_path_.string() + ": " + ec.message());
    }
    fs::remove_all(old, ec);
  } else {
    fs::rename(path_, final_path_, ec);
    if (ec) return IoError("rename " + path_.string() + " -> " + final_path_.string() + ": " + ec.message());
  }
  committed_ = true;
  fs::path parent = final_path_.parent_path().empty() ? fs::path(".") : final_path_.parent_path();
  return SyncPath(parent);
}

ScopedTempDir::ScopedTempDir(std::string_view prefix) {
  fs::path base = fs::temp_directory_path();
  std::string templ = (base / (std::string(prefix) + "-XXXXXX")).string();
  char* made = ::mkdtemp(templ.data());
  if (made == nullptr) {
    std::perror("mkdtemp");
    std::abort();
  }
  path_ = made;
}

ScopedTempDir::~ScopedTempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

}  // namespace adrec

// Test helpers of the serving stage: a real redis-server started on a free loopback port, in
// its own directory, with the append-only file fsync'ed on every write.
#pragma once

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "adrec/core/testing.h"

namespace adrec::serve::testing {

// A port the kernel just handed out on 127.0.0.1 (free unless another process takes it first).
inline int FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

inline bool PortAccepts(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(fd);
  return ok;
}

inline std::string RedisServerBinary() {
  for (const char* p : {"/usr/bin/redis-server", "/usr/local/bin/redis-server"}) {
    if (std::filesystem::exists(p)) return p;
  }
  return "";
}

class RedisServer {
 public:
  // Starts redis-server with its files in `dir`; ok() false (with why()) when it cannot.
  explicit RedisServer(const std::filesystem::path& dir) {
    const std::string bin = RedisServerBinary();
    if (bin.empty()) {
      why_ = "redis-server is not installed (Debian package redis-server)";
      return;
    }
    port_ = FreeLoopbackPort();
    const std::string port = std::to_string(port_), d = dir.string(), log = (dir / "redis.log").string();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execl(bin.c_str(), bin.c_str(), "--port", port.c_str(), "--bind", "127.0.0.1", "--dir", d.c_str(), "--save", "",
              "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no", "--loglevel", "warning", "--logfile", log.c_str(),
              static_cast<char*>(nullptr));
      std::_Exit(127);
    }
    for (int i = 0; i < 200 && !PortAccepts(port_); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
    if (!PortAccepts(port_)) why_ = "redis-server did not accept connections on port " + port + " within 5 s";
  }
  ~RedisServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
  }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  bool ok() const { return why_.empty(); }
  const std::string& why() const { return why_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

 private:
  int port_ = -1;
  pid_t pid_ = -1;
  std::string why_;
};

}  // namespace adrec::serve::testing

// Skips (fails under ADREC_REQUIRE_REFERENCES=1, as CI runs) when redis-server cannot start.
#define ADREC_REQUIRE_REDIS(server)                                     \
  do {                                                                  \
    if (!(server).ok()) ADREC_SKIP_WITHOUT_REFERENCE((server).why());   \
  } while (0)

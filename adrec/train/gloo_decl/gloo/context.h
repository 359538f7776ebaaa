// The torch wheel ships libtorch's Gloo (ProcessGroupGloo and Gloo itself are exported by
// libtorch_cpu) but not Gloo's headers, which ProcessGroupGloo.hpp includes. These declare the
// few Gloo names that header mentions; adrec reaches Gloo only through ProcessGroupGloo's
// exported functions and never constructs, copies or calls these types itself (a test starts
// real Gloo ranks on 127.0.0.1, so a wheel whose layout differs fails there).
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace gloo {

class Context {
 public:
  void setTimeout(std::chrono::milliseconds timeout);  // named by an inline override; not called
};

namespace transport {
class Device;
class UnboundBuffer;
}  // namespace transport

namespace rendezvous {
// The base of ProcessGroupGloo::GlooStore, whose inline overrides name these.
class Store {
 public:
  virtual ~Store() = default;
  virtual void set(const std::string& key, const std::vector<char>& data) = 0;
  virtual std::vector<char> get(const std::string& key) = 0;
  virtual void wait(const std::vector<std::string>& keys) = 0;
  virtual void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) = 0;
};
}  // namespace rendezvous

}  // namespace gloo

// Progress of long work: a bar with rate and ETA on a terminal, a line every few seconds
// otherwise (CI logs), always on stderr.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace adrec {

struct ProgressOptions {
  std::string unit = "items";
  double line_interval_s = 5.0;  // non-TTY: one line this often
  double bar_interval_s = 0.1;   // TTY: redraw this often
  bool enabled = true;           // off for tests and --quiet
  int fd = 2;
};

class Progress {
 public:
  // total == 0: unknown total (rate only, no ETA).
  Progress(std::string label, uint64_t total, ProgressOptions options = {});
  ~Progress();  // calls Finish()
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void Add(uint64_t n = 1);  // thread-safe; cheap when no redraw is due
  void SetTotal(uint64_t total) { total_.store(total); }
  void Finish();
  uint64_t done() const { return done_.load(); }

  // "1.2M items/s" style helpers, exposed for tests.
  static std::string HumanCount(double v);
  static std::string HumanDuration(double seconds);

 private:
  void Draw(bool final);
  std::string label_;
  ProgressOptions options_;
  std::atomic<uint64_t> total_;
  std::atomic<uint64_t> done_{0};
  std::atomic<int64_t> next_draw_ns_{0};
  std::chrono::steady_clock::time_point start_;
  std::mutex draw_mu_;
  bool tty_ = false;
  bool finished_ = false;
};

}  // namespace adrec

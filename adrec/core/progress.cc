#include "adrec/core/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace adrec {

namespace {
int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

Progress::Progress(std::string label, uint64_t total, ProgressOptions options)
    : label_(std::move(label)), options_(std::move(options)), total_(total), start_(std::chrono::steady_clock::now()) {
  tty_ = ::isatty(options_.fd) == 1;
  double interval = tty_ ? options_.bar_interval_s : options_.line_interval_s;
  next_draw_ns_ = NowNs() + static_cast<int64_t>(interval * 1e9);
}

Progress::~Progress() { Finish(); }

void Progress::Add(uint64_t n) {
  done_.fetch_add(n, std::memory_order_relaxed);
  if (!options_.enabled) return;
  int64_t now = NowNs();
  int64_t due = next_draw_ns_.load(std::memory_order_relaxed);
  if (now < due) return;
  double interval = tty_ ? options_.bar_interval_s : options_.line_interval_s;
  // Only the thread that wins the exchange draws.
  if (next_draw_ns_.compare_exchange_strong(due, now + static_cast<int64_t>(interval * 1e9))) Draw(false);
}

void Progress::Finish() {
  std::lock_guard<std::mutex> lock(draw_mu_);
  if (finished_) return;
  finished_ = true;
  if (!options_.enabled) return;
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  // Short jobs stay quiet off a TTY: a line only when some line was due.
  if (!tty_ && elapsed < options_.line_interval_s) return;
  uint64_t done = done_.load();
  double rate = elapsed > 0 ? done / elapsed : 0.0;
  std::string line = (tty_ ? "\r\033[K" : "") + label_ + ": " + HumanCount(static_cast<double>(done)) + " " +
                     options_.unit + " in " + HumanDuration(elapsed) + " (" + HumanCount(rate) + " " +
                     options_.unit + "/s)\n";
  [[maybe_unused]] auto w = ::write(options_.fd, line.data(), line.size());
}

void Progress::Draw(bool /*final*/) {
  std::lock_guard<std::mutex> lock(draw_mu_);
  if (finished_) return;
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  uint64_t done = done_.load(), total = total_.load();
  double rate = elapsed > 0 ? done / elapsed : 0.0;
  std::string line;
  if (tty_) line += "\r\033[K";
  line += label_ + " ";
  if (total > 0) {
    double frac = std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
    if (tty_) {
      const int width = 30;
      int filled = static_cast<int>(frac * width);
      line += "[" + std::string(filled, '#') + std::string(width - filled, '.') + "] ";
    }
    char pct[16];
    std::snprintf(pct, sizeof(pct), "%5.1f%% ", frac * 100.0);
    line += pct;
    line += HumanCount(static_cast<double>(done)) + "/" + HumanCount(static_cast<double>(total)) + " " + options_.unit;
    line += " " + HumanCount(rate) + "/s";
    if (rate > 0 && done < total) line += " ETA " + HumanDuration((total - done) / rate);
  } else {
    line += HumanCount(static_cast<double>(done)) + " " + options_.unit + " " + HumanCount(rate) + "/s";
  }
  if (!tty_) line += "\n";
  [[maybe_unused]] auto w = ::write(options_.fd, line.data(), line.size());
}

std::string Progress::HumanCount(double v) {
  char buf[32];
  if (v >= 1e9) std::snprintf(buf, sizeof(buf), "%.2fG", v / 1e9);
  else if (v >= 1e6) std::snprintf(buf, sizeof(buf), "%.2fM", v / 1e6);
  else if (v >= 1e3) std::snprintf(buf, sizeof(buf), "%.1fk", v / 1e3);
  else std::snprintf(buf, sizeof(buf), "%.0f", v);
  return buf;
}

std::string Progress::HumanDuration(double s) {
  char buf[32];
  if (!std::isfinite(s)) return "?";
  if (s < 60) std::snprintf(buf, sizeof(buf), "%.1fs", s);
  else if (s < 3600) std::snprintf(buf, sizeof(buf), "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  else std::snprintf(buf, sizeof(buf), "%dh%02dm", static_cast<int>(s) / 3600, (static_cast<int>(s) % 3600) / 60);
  return buf;
}

}  // namespace adrec

#include "adrec/core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>
#include <set>
#include <string>

#include "adrec/core/log_line.h"

#include <cstdio>

namespace adrec {

void LogInfo(std::string_view line) { spdlog::info("{}", line); }
void LogWarn(std::string_view line) { spdlog::warn("{}", line); }
void LogDebug(std::string_view line) { spdlog::debug("{}", line); }

std::string FixedDigits(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

void InitLogging(std::string_view level) {
  static std::once_flag once;
  std::call_once(once, [] {
    auto logger = spdlog::stderr_color_mt("adrec");
    logger->set_pattern("%^[%H:%M:%S.%e %l]%$ %v");
    spdlog::set_default_logger(logger);
  });
  spdlog::set_level(spdlog::level::from_str(std::string(level)));
}

void WarnOnce(std::string_view key, std::string_view message) {
  static std::mutex mu;
  static std::set<std::string, std::less<>> seen;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (!seen.emplace(key).second) return;
  }
  spdlog::warn("{}", message);
}

}  // namespace adrec

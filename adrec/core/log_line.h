// Logging of ready-made lines without spdlog's headers, for translation units that include
// libtorch: torch bundles a newer fmt than the one Debian's spdlog is built against, and the two
// cannot be in one translation unit.
#pragma once

#include <string>
#include <string_view>

namespace adrec {

void LogInfo(std::string_view line);
void LogWarn(std::string_view line);
void LogDebug(std::string_view line);
// Logs a warning the first time a given key is seen in this process (also in log.h).
void WarnOnce(std::string_view key, std::string_view message);
// "0.8123": a number with a fixed count of decimals, for log lines.
std::string FixedDigits(double v, int decimals);

}  // namespace adrec

// Logging: spdlog to stderr, so stdout stays free for --json output.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace adrec {

// level: trace|debug|info|warn|error|off. Safe to call more than once.
void InitLogging(std::string_view level = "info");

// Logs a warning the first time a given key is seen in this process ("no silent fallbacks").
void WarnOnce(std::string_view key, std::string_view message);

}  // namespace adrec

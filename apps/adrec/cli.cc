#include "apps/adrec/cli.h"

#include <csignal>
#include <iostream>

namespace adrec::cli {
namespace {

std::atomic<bool> g_stop{false};

extern "C" void OnStopSignal(int sig) {
  g_stop.store(true);
  std::signal(sig, SIG_DFL);
}

}  // namespace

const std::atomic<bool>* StopOnSignals() {
  std::signal(SIGINT, OnStopSignal);
  std::signal(SIGTERM, OnStopSignal);
  return &g_stop;
}

void AddJsonFlag(CLI::App* cmd, Context& ctx) {
  cmd->add_flag("--json", ctx.json, "Print one JSON object on stdout (logs stay on stderr)");
}

namespace {
void PrintText(const nlohmann::ordered_json& v, const std::string& indent) {
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (it->is_object()) {
      std::cout << indent << it.key() << ":\n";
      PrintText(*it, indent + "  ");
    } else if (it->is_number_float()) {
      std::cout << indent << it.key() << ": " << it->get<double>() << "\n";
    } else if (it->is_string()) {
      std::cout << indent << it.key() << ": " << it->get<std::string>() << "\n";
    } else {
      std::cout << indent << it.key() << ": " << it->dump() << "\n";
    }
  }
}
}  // namespace

void PrintResult(const Context& ctx, const nlohmann::ordered_json& obj) {
  if (ctx.json) {
    std::cout << obj.dump() << std::endl;
  } else {
    PrintText(obj, "");
    std::cout.flush();
  }
}

}  // namespace adrec::cli

// Fuzzes the TOML config reader (adrec train --config, bundles' recorded config): parsing,
// typed reads of every kind and the unknown-key report must return a Status, never crash.
#include <spdlog/spdlog.h>

#include <string>
#include <string_view>
#include <vector>

#include "adrec/core/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  spdlog::set_level(spdlog::level::off);
  auto cfg = adrec::Config::Parse(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.toml");
  if (!cfg.ok()) return 0;
  for (const std::string& table : cfg->KeysOf("")) {
    for (const std::string& key : cfg->KeysOf(table)) {
      const std::string path = table + "." + key;
      bool b;
      int64_t i;
      double d;
      std::string s;
      std::vector<std::string> vs;
      std::vector<int64_t> vi;
      (void)cfg->Get(path, &b);
      (void)cfg->Get(path, &i);
      (void)cfg->Get(path, &d);
      (void)cfg->Get(path, &s);
      (void)cfg->Get(path, &vs);
      (void)cfg->Get(path, &vi);
      (void)cfg->ArraySize(path);
    }
  }
  std::string name;
  (void)cfg->Require("model.name", &name);
  (void)cfg->CheckNoUnknownKeys();
  return 0;
}

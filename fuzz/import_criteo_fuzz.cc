// Fuzzes the Criteo importer over an in-memory buffer; a dataset that comes back must pass
// Validate().
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <string_view>

#include "adrec/data/import.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace adrec::data;
  spdlog::set_level(spdlog::level::off);
  ImportOptions o;
  o.show_progress = false;
  o.max_errors = size % 2 ? 0 : 1000;  // both the fail-fast and the skipping paths
  auto ds = ImportCriteoFromBuffer(std::string_view(reinterpret_cast<const char*>(data), size), o);
  if (ds.ok() && !ds->Validate().ok()) std::abort();
  return 0;
}

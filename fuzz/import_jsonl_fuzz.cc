// Fuzzes the schema-driven JSONL importer (SAX over each line) with a fixed schema; a dataset
// that comes back must pass Validate().
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <string_view>

#include "adrec/data/import.h"

namespace {
constexpr std::string_view kSchema = R"(format = "jsonl"
[fields]
user = "u"
item = "i"
time = "t"
time_format = "unix_ms"
action = "a"
value = "v"
scene = "s"
position = "p"
[[features]]
column = "c"
type = "categorical"
[[features]]
column = "n"
type = "int"
)";
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace adrec::data;
  spdlog::set_level(spdlog::level::off);
  ImportOptions o;
  o.show_progress = false;
  o.max_errors = size % 2 ? 0 : 1000;
  auto ds = ImportJsonlFromBuffer(std::string_view(reinterpret_cast<const char*>(data), size), kSchema, o);
  if (ds.ok() && !ds->Validate().ok()) std::abort();
  return 0;
}

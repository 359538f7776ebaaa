// Fuzzes the schema-driven CSV importer: byte 0 picks one of two schemas (quoted CSV with a
// header and ISO-8601 times; header-less TSV with unix times and no quoting), the rest is the
// file. A dataset that comes back must pass Validate().
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <string_view>

#include "adrec/data/import.h"

namespace {
constexpr std::string_view kSchemas[] = {
    R"(format = "csv"
[fields]
user = "u"
item = "i"
time = "t"
time_format = "iso8601"
action = "a"
value = "v"
scene = "s"
position = "p"
[actions]
imp = "impression"
clk = "click"
[[features]]
column = "c"
type = "categorical"
[[features]]
column = "f"
type = "float"
[[features]]
column = "n"
type = "int"
)",
    R"([csv]
delimiter = "\t"
header = false
quote = ""
columns = ["u", "i", "t", "a", "x"]
[fields]
user = "u"
item = "i"
time = "t"
action = "a"
[[features]]
column = "x"
type = "float"
)"};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace adrec::data;
  spdlog::set_level(spdlog::level::off);
  if (size < 1) return 0;
  ImportOptions o;
  o.show_progress = false;
  o.max_errors = (data[0] >> 1) & 1 ? 0 : 1000;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  auto ds = ImportCsvFromBuffer(text, kSchemas[data[0] & 1], o);
  if (ds.ok() && !ds->Validate().ok()) std::abort();
  return 0;
}

// Fuzzes the MovieLens parsers: byte 0 picks the layout, the rest is ratings \0 items \0 users
// \0 genres. A dataset that comes back must pass Validate().
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <string_view>

#include "adrec/data/import.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace adrec::data;
  spdlog::set_level(spdlog::level::off);
  if (size < 1) return 0;
  MovieLensBuffers b;
  b.layout = static_cast<MovieLensLayout>(data[0] % 4);
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string_view* parts[] = {&b.ratings, &b.items, &b.users, &b.genres};
  for (size_t k = 0; k < 4 && !rest.empty(); ++k) {
    size_t z = k == 3 ? std::string_view::npos : rest.find('\0');
    *parts[k] = rest.substr(0, z);
    rest = z == std::string_view::npos ? std::string_view() : rest.substr(z + 1);
  }
  ImportOptions o;
  o.show_progress = false;
  o.max_errors = (data[0] >> 2) & 1 ? 0 : 1000;
  auto ds = ImportMovieLensFromBuffers(b, o);
  if (ds.ok() && !ds->Validate().ok()) std::abort();
  return 0;
}

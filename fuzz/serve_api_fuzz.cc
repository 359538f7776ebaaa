// The serving API's request bodies (adrec/serve/api.h): any bytes give a request or an
// InvalidArgument, never a crash, a hang or undefined behaviour.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "adrec/serve/api.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto r = adrec::serve::ParseRecommendRequest(body);
  if (r.ok() && (r->k < 1 || r->user_id.empty())) __builtin_trap();
  auto e = adrec::serve::ParseEventsRequest(body);
  if (e.ok() && e->empty()) __builtin_trap();
  return 0;
}

// Fuzzes the feature spec a bundle carries in its manifest (JSON): a spec that parses must
// survive a round trip through ToJson unchanged.
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "adrec/data/features.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json j = nlohmann::json::parse(std::string_view(reinterpret_cast<const char*>(data), size), nullptr,
                                           /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  auto spec = adrec::data::FeatureSpec::FromJson(j);
  if (!spec.ok()) return 0;
  const nlohmann::json once = spec->ToJson();
  auto again = adrec::data::FeatureSpec::FromJson(once);
  if (!again.ok() || again->ToJson() != once) std::abort();
  return 0;
}

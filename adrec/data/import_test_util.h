// Shared by the importer tests: import options for a fixture the test wrote itself.
#pragma once

#include <cstdint>
#include <filesystem>

#include "adrec/data/import.h"

namespace adrec::data {

// No progress output; `max_errors` malformed rows tolerated.
inline ImportOptions Opts(const std::filesystem::path& in, uint64_t max_errors = 0) {
  ImportOptions o;
  o.input = in;
  o.max_errors = max_errors;
  o.show_progress = false;
  return o;
}

// CSV/JSONL: the same with a schema file.
inline ImportOptions Opts(const std::filesystem::path& in, const std::filesystem::path& schema,
                          uint64_t max_errors = 0) {
  ImportOptions o = Opts(in, max_errors);
  o.schema = schema;
  return o;
}

}  // namespace adrec::data

// Test helpers every module shares. Reference tests compare against Python peers (scikit-learn,
// safetensors, transformers, sentence-transformers, the MiniLM weights) and skip where one is
// missing on a developer's machine; under ADREC_REQUIRE_REFERENCES=1 (set by .ci/run) a missing
// reference fails the test instead, so CI cannot pass by skipping. Only tests that need a CUDA
// device skip without it everywhere.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace adrec::testing {

inline bool ReferencesRequired() {
  const char* v = std::getenv("ADREC_REQUIRE_REFERENCES");
  return v != nullptr && std::string(v) != "" && std::string(v) != "0";
}

}  // namespace adrec::testing

// Skips the test (fails it under ADREC_REQUIRE_REFERENCES=1) with `why` as the message.
#define ADREC_SKIP_WITHOUT_REFERENCE(why)                                                \
  do {                                                                                   \
    if (::adrec::testing::ReferencesRequired()) {                                        \
      FAIL() << "ADREC_REQUIRE_REFERENCES is set and a reference is missing: " << (why); \
    } else {                                                                             \
      GTEST_SKIP() << (why);                                                             \
    }                                                                                    \
  } while (0)

// Test helpers of adrec/text: running the transformers references (bench/reference/*.py) in the
// project venv with the Hugging Face Hub switched off.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "adrec/core/build_paths.h"
#include "adrec/core/process.h"
#include "adrec/core/testing.h"

namespace adrec::text::testing {

inline std::string Quote(const std::string& s) { return "'" + s + "'"; }

// Runs `command` with the Hub switched off; returns its exit status, `output` gets stdout (and
// stderr unless `keep_stderr` is false, then stderr goes to the test log).
inline int RunOffline(const std::string& command, std::string* output, bool keep_stderr = true) {
  return RunCommand("HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 " + command, output, keep_stderr);
}

// Empty when the venv's Python imports what the references need, else why not (those tests skip).
inline const std::string& PythonUnavailable() {
  static const std::string why = [] {
    std::string out;
    if (RunOffline(Quote(adrec::build_paths::Python()) + " -c 'import torch, transformers, safetensors'", &out) == 0) return std::string();
    return std::string(adrec::build_paths::Python()) + " cannot import torch, transformers and safetensors (run scripts/setup): " + out;
  }();
  return why;
}

}  // namespace adrec::text::testing

#define SKIP_WITHOUT_REFERENCE()                                          \
  if (!::adrec::text::testing::PythonUnavailable().empty())              \
  ADREC_SKIP_WITHOUT_REFERENCE(::adrec::text::testing::PythonUnavailable())

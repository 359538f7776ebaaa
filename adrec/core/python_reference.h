// Test helper: runs a reference script of the project venv's Python on a JSON file of cases and
// reads back the JSON it writes (`script CASES.json OUT.json`): how the reference-comparison
// tests ask scikit-learn, Opacus and the like for the values adrec must reproduce.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "adrec/core/build_paths.h"
#include "adrec/core/file.h"
#include "adrec/core/status.h"

namespace adrec::testing {

// `script` is relative to the source tree. FailedPrecondition when the script fails.
inline StatusOr<nlohmann::json> RunPythonReference(const std::string& script, const nlohmann::json& cases) {
  const std::filesystem::path python = build_paths::Python();
  const std::filesystem::path path = std::filesystem::path(build_paths::SourceDir()) / script;
  ScopedTempDir tmp("python-ref");
  const auto in_path = tmp.path() / "cases.json", out_path = tmp.path() / "reference.json";
  ADREC_RETURN_IF_ERROR(AtomicWriteFile(in_path, cases.dump()));
  const std::string cmd = "'" + python.string() + "' '" + path.string() + "' '" + in_path.string() + "' '" +
                          out_path.string() + "'";
  if (std::system(cmd.c_str()) != 0) return FailedPreconditionError("reference script failed: " + cmd);
  ADREC_ASSIGN_OR_RETURN(std::string text, ReadFile(out_path));
  return nlohmann::json::parse(text);
}

}  // namespace adrec::testing

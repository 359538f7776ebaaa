// Running a shell command and reading its output: how tests call the reference implementations
// in the project venv (scikit-learn, PyTorch twins, tokenizers, transformers).
#pragma once

#include <string>

namespace adrec {

// Runs `command` with /bin/sh and returns its wait status (0 on success); `output` receives
// stdout, and stderr too when `merge_stderr` (else stderr goes where the caller's goes).
int RunCommand(const std::string& command, std::string* output, bool merge_stderr = true);

}  // namespace adrec

// The one parser of device names ("cpu", "cuda", "cuda:N") for every command, trainer,
// encoder and benchmark, so each accepts the same spellings and fails the same way.
#pragma once

#include <string>

#include <torch/types.h>

#include "adrec/core/status.h"

namespace adrec::tensor {

// "cpu", "cuda" or "cuda:N". FailedPrecondition when CUDA is named and this libtorch sees no
// CUDA device (or fewer than N + 1); InvalidArgument for any other name.
StatusOr<torch::Device> ParseDevice(const std::string& name);

inline constexpr const char* kDeviceHelp = "cpu, cuda or cuda:N";

}  // namespace adrec::tensor

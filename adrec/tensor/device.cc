#include "adrec/tensor/device.h"

#include <torch/cuda.h>

namespace adrec::tensor {

StatusOr<torch::Device> ParseDevice(const std::string& name) {
  if (name == "cpu") return torch::Device(torch::kCPU);
  if (name.rfind("cuda", 0) == 0) {
    std::optional<torch::Device> d;
    try {
      d.emplace(name);
    } catch (const std::exception&) {
    }
    if (d && d->is_cuda()) {
      if (!torch::cuda::is_available()) {
        return FailedPreconditionError("--device " + name + ": this libtorch sees no CUDA device");
      }
      if (d->has_index() && d->index() >= static_cast<int>(torch::cuda::device_count())) {
        return FailedPreconditionError("--device " + name + ": only " + std::to_string(torch::cuda::device_count()) +
                                       " CUDA device(s)");
      }
      return *d;
    }
  }
  return InvalidArgumentError("unknown device '" + name + "' (expected " + kDeviceHelp + ")");
}

}  // namespace adrec::tensor

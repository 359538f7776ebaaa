#include "adrec/tensor/runtime.h"

#include <gtest/gtest.h>

namespace adrec::tensor {
namespace {

// Torch's matmuls call sgemm_ through the PLT: it must be libtorch_cpu's (bundled MKL), not a
// system BLAS loaded earlier (cmake/Torch.cmake puts libtorch_cpu first in load order).
TEST(Runtime, TorchMatmulsRunOnTorchsOwnBlas) {
  EXPECT_NE(BlasLibrary().find("libtorch_cpu"), std::string::npos) << BlasLibrary();
}

}  // namespace
}  // namespace adrec::tensor

// What the running process's libtorch computes with, for logs, /v1/models and the tests that
// guard the link order (cmake/Torch.cmake): which shared object serves BLAS calls.
#pragma once

#include <string>

namespace adrec::tensor {

// Path of the shared object whose sgemm_ this process calls (torch's matmuls go through it):
// libtorch_cpu's bundled MKL when the link order is right, the system's libblas (OpenBLAS) when
// a library that brings it was loaded first. "none" when no sgemm_ is loaded.
std::string BlasLibrary();

}  // namespace adrec::tensor

# libtorch from the PyPI torch wheel (DESIGN.md): by default the project venv's
# torch.utils.cmake_prefix_path; the GPU machine passes its preinstalled torch the same way
# (the cuda preset asks python3, which is that torch).
set(ADREC_TORCH_PREFIX "" CACHE PATH "CMake prefix of libtorch (empty: ask ADREC_PYTHON's torch)")
if(NOT ADREC_TORCH_PREFIX)
  execute_process(
    COMMAND "${ADREC_PYTHON}" -c "import torch, sys; sys.stdout.write(torch.utils.cmake_prefix_path)"
    OUTPUT_VARIABLE _adrec_torch_prefix RESULT_VARIABLE _adrec_torch_rc ERROR_QUIET)
  if(NOT _adrec_torch_rc EQUAL 0 OR NOT _adrec_torch_prefix)
    message(FATAL_ERROR "libtorch not found: '${ADREC_PYTHON}' cannot import torch. "
                        "Run scripts/setup (it installs torch==2.11.0 into .venv) or pass -DADREC_TORCH_PREFIX=.../torch/share/cmake")
  endif()
  set(ADREC_TORCH_PREFIX "${_adrec_torch_prefix}" CACHE PATH "CMake prefix of libtorch" FORCE)
endif()
list(APPEND CMAKE_PREFIX_PATH "${ADREC_TORCH_PREFIX}")
# Torch's config probes the installed GPUs with a CUDA try_run unless told the architectures;
# there is no GPU on the build machines that lack one, and the GPU machine is an H100 (sm_90).
if(NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST} AND NOT TORCH_CUDA_ARCH_LIST)
  set(TORCH_CUDA_ARCH_LIST "9.0")
endif()
# Torch's config looks for the CUDA toolkit; without one it builds CPU-only code paths.
find_package(Torch REQUIRED)
# One imported target that carries libtorch's include dirs, flags and libraries.
if(NOT TARGET adrec_torch)
  add_library(adrec_torch INTERFACE)
  # libtorch.so exports its own copies of ~30 std::filesystem functions; listed before it,
  # libstdc++ wins symbol resolution (otherwise std::filesystem::remove_all crashes in any binary
  # that links torch). --no-as-needed keeps the early entry where the linker defaults to
  # --as-needed (Ubuntu).
  target_link_libraries(adrec_torch INTERFACE "-Wl,--push-state,--no-as-needed" stdc++ "-Wl,--pop-state" ${TORCH_LIBRARIES})
  # libtorch_cpu exports the BLAS it calls (sgemm_ of its bundled MKL) and calls it through the
  # PLT, so the first library in load order that defines sgemm_ serves every torch matmul. FAISS
  # brings the system libblas.so.3 (OpenBLAS, whose kernel detection falls back to a generic SSE3
  # kernel on unrecognised CPUs): listed ahead of torch, it made `adrec` run its models 2-3x slower
  # than the benchmarks. As link options these come before every object and library, so the
  # process loads libstdc++ (see above), then libtorch_cpu, then everything else; FAISS's own
  # sgemm_ calls then run on MKL too. Checked at run time by tensor::BlasLibrary().
  find_library(ADREC_TORCH_CPU_LIBRARY torch_cpu PATHS "${TORCH_INSTALL_PREFIX}/lib" NO_DEFAULT_PATH)
  if(ADREC_TORCH_CPU_LIBRARY)
    target_link_options(adrec_torch INTERFACE "LINKER:--push-state,--no-as-needed" -lstdc++ "${ADREC_TORCH_CPU_LIBRARY}"
                        "LINKER:--pop-state")
  endif()
  # libtorch headers trip -Wextra in places that are not ours.
  target_compile_options(adrec_torch INTERFACE -Wno-unused-parameter)
  # at::parallel_for is an inline `#pragma omp parallel` (libtorch is built with OpenMP): without
  # -fopenmp our own loops through it (row gathers, sparse optimiser steps, fused backward passes)
  # compile to one thread. The runtime is libtorch's own libgomp, which it already loads.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" OR CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    target_compile_options(adrec_torch INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-fopenmp>)
    file(GLOB _adrec_torch_gomp "${TORCH_INSTALL_PREFIX}/lib/libgomp*.so*")
    if(_adrec_torch_gomp)
      list(GET _adrec_torch_gomp 0 _adrec_torch_gomp)
      target_link_libraries(adrec_torch INTERFACE "${_adrec_torch_gomp}")
    else()
      target_link_options(adrec_torch INTERFACE -fopenmp)
    endif()
  endif()
endif()
message(STATUS "libtorch ${Torch_VERSION} from ${ADREC_TORCH_PREFIX}")

# adrec_module(NAME DEPS ...): one library per stage folder (DESIGN.md). Sources are the *.cc
# files beside this CMakeLists.txt; foo_test.cc files form the module's test binary,
# foo_slow_test.cc files a second binary labelled "slow" (make test-fast skips it),
# foo_bench.cc files are benchmarks. TORCH: the stage uses libtorch (precompiled header);
# PCH_GROUP names the group whose header it shares (see adrec_torch_pch; default "torch").

# torch/torch.h costs ~45 s per translation unit on 2 cores, so libtorch targets include it
# precompiled. The .gch is ~0.9 GB with -g: the first target of a group makes it and the rest
# reuse it. GCC takes a header under other -O levels and -D macros that torch.h never reads, but
# not under -D_FILE_OFFSET_BITS (glibc reads it), which the server's libraries bring: their own group.
function(adrec_torch_pch target group)
  if(NOT group)
    set(group torch)
  endif()
  get_property(owner GLOBAL PROPERTY ADREC_TORCH_PCH_${group})
  if(owner)
    target_precompile_headers(${target} REUSE_FROM ${owner})
  else()
    target_precompile_headers(${target} PRIVATE <torch/torch.h>)
    set_property(GLOBAL PROPERTY ADREC_TORCH_PCH_${group} ${target})
  endif()
endfunction()

function(adrec_module name)
  cmake_parse_arguments(M "TORCH" "PCH_GROUP" "DEPS;TEST_DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/*.cc")
  list(FILTER srcs EXCLUDE REGEX "_(test|bench|fuzz)\\.cc$")
  if(NOT srcs)  # a stage with no sources yet
    add_library(adrec_${name} INTERFACE)
    target_include_directories(adrec_${name} INTERFACE "${PROJECT_SOURCE_DIR}")
    target_link_libraries(adrec_${name} INTERFACE ${M_DEPS})
    return()
  endif()
  add_library(adrec_${name} STATIC ${srcs})
  target_include_directories(adrec_${name} PUBLIC "${PROJECT_SOURCE_DIR}")
  target_link_libraries(adrec_${name} PUBLIC ${M_DEPS})
  if(M_TORCH)
    # Private, so torch's include directories (with a bundled fmt that breaks Debian's spdlog)
    # reach only the stages that use torch; its libraries still propagate to every link.
    target_link_libraries(adrec_${name} PRIVATE adrec_torch)
    adrec_torch_pch(adrec_${name} "${M_PCH_GROUP}")
  endif()
  if(NOT ADREC_BUILD_TESTS)
    return()
  endif()
  file(GLOB tests CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/*_test.cc")
  set(slow_tests ${tests})
  list(FILTER slow_tests INCLUDE REGEX "_slow_test\\.cc$")
  list(FILTER tests EXCLUDE REGEX "_slow_test\\.cc$")
  foreach(kind IN ITEMS fast slow)
    if(kind STREQUAL "fast")
      set(files ${tests})
      set(target adrec_${name}_test)
    else()
      set(files ${slow_tests})
      set(target adrec_${name}_slow_test)
    endif()
    if(NOT files)
      continue()
    endif()
    add_executable(${target} ${files})
    target_link_libraries(${target} PRIVATE adrec_${name} ${M_TEST_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
    if(M_TORCH)
      target_link_libraries(${target} PRIVATE adrec_torch)
      adrec_torch_pch(${target} "${M_PCH_GROUP}")
    endif()
    gtest_discover_tests(${target} DISCOVERY_MODE PRE_TEST
      # One label, "<module>-fast" or "<module>-slow": the discovery script flattens a list value
      # into the property list ("LABELS a b TIMEOUT 900" set neither b nor the timeout), and
      # ctest's -L/-LE are regular expressions ("-LE slow", "-L 'data|core'") either way.
      PROPERTIES LABELS "${name}-${kind}" TIMEOUT 900 ENVIRONMENT "${ADREC_TEST_ENV}")
  endforeach()
endfunction()

# Project-wide compile options: warnings everywhere, -Werror in CI
# (tools/test sets DROVER_WERROR=ON), optional sanitizers.
add_compile_options(-Wall -Wextra -Wpedantic -Wno-missing-field-initializers)
if(DROVER_WERROR)
  add_compile_options(-Werror)
endif()
# Sanitizer builds, each in its own build directory (tools/build's
# flavours, which .ci/run uses, configure them with clang):
#   DROVER_FUZZ      clang only: ASan+UBSan plus libFuzzer coverage on every
#                    library; the tests/fuzz targets also link the libFuzzer
#                    driver. The `asan` flavour (build-asan/): the whole
#                    suite and the fuzz targets from the same objects
#   DROVER_TSAN      ThreadSanitizer, the threaded tests (the `tsan` flavour;
#                    suppressions: tests/tsan.supp, each with its reason)
#   DROVER_SANITIZE  ASan+UBSan alone, for a compiler without libFuzzer
#                    (g++)
option(DROVER_TSAN "Build with the thread sanitizer" OFF)
option(DROVER_FUZZ "Build the libFuzzer targets of tests/fuzz (clang)" OFF)
if((DROVER_SANITIZE AND DROVER_TSAN) OR (DROVER_TSAN AND DROVER_FUZZ))
  message(FATAL_ERROR "DROVER_TSAN cannot be combined with ASan (DROVER_SANITIZE, DROVER_FUZZ)")
endif()
if(DROVER_SANITIZE OR DROVER_FUZZ)
  # UBSan findings abort, so that a test or a fuzz run cannot print one
  # and pass.
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined)
  # gcc 12 under ASan reports -Wmaybe-uninitialized in libstdc++'s own
  # <regex> and <functional> (std::function moved into a regex NFA state):
  # false positives of the instrumented code. The -Werror build without
  # sanitizers (tools/build, the users' build) still checks that warning.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    add_compile_options(-Wno-maybe-uninitialized)
  endif()
endif()
if(DROVER_TSAN)
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
endif()
if(DROVER_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "DROVER_FUZZ needs clang (tools/fuzz configures it)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

# drover_module(NAME SOURCES... DEPS ...) declares a static library whose
# headers are included relative to the repository root.
function(drover_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${DROVER_ROOT} ${DROVER_ROOT}/include ${CMAKE_BINARY_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()

# drover_test(NAME LABEL SOURCES... DEPS ...) declares a gtest binary and
# registers its tests with ctest under LABEL (unit or integration).
function(drover_test name)
  cmake_parse_arguments(ARG "" "LABEL;TIMEOUT" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main)
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  gtest_discover_tests(${name}
    PROPERTIES LABELS ${ARG_LABEL} TIMEOUT ${ARG_TIMEOUT}
    WORKING_DIRECTORY ${DROVER_ROOT}
    DISCOVERY_TIMEOUT 60)
endfunction()
include(GoogleTest)

# Project-wide compile options: warnings everywhere, -Werror in CI
# (tools/test sets DROVER_WERROR=ON), optional sanitizers.
add_compile_options(-Wall -Wextra -Wpedantic -Wno-missing-field-initializers)
if(DROVER_WERROR)
  add_compile_options(-Werror)
endif()
if(DROVER_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
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

# Precompiled headers, shared by every C++ target of the build.
#
# Each translation unit of drover preprocesses to 66k-180k lines, and most of
# them are the same: the standard library, spdlog, cppzmq, nlohmann/json and
# the generated drover.pb.h (26k lines on its own). Parsing them was most of
# a small file's compile time (-ftime-report on dispatch_wire.cc, 59 lines:
# 87% of 10.5 s in "phase parsing"). Two headers are compiled once here and
# every target reuses one of them (REUSE_FROM), so nobody parses them again:
#   drover_pch       libraries and programs
#   drover_test_pch  gtest binaries: the same plus gtest and gmock
# A target that compiles with other flags (the -fPIC plugins, C targets)
# keeps its own compile. DROVER_PCH=OFF turns it off, e.g. to check that
# every file includes what it uses.
option(DROVER_PCH "Compile the common headers once (precompiled headers)" ON)

# Unity build: each target's sources are compiled in batches of
# DROVER_UNITY_BATCH files, one translation unit per batch. What a file
# costs beyond its headers is mostly the templates it instantiates (the
# generated protobuf accessors, fmt, the standard containers), and a batch
# instantiates each of them once: the 22 files of drover_coordinator took
# 279 CPU-seconds one by one with the precompiled header, 87 as one unit.
# Names private to a file (anonymous namespaces, static functions) must
# therefore be unique within its target. DROVER_UNITY=OFF compiles file by
# file, e.g. to check that every file includes what it uses.
option(DROVER_UNITY "Compile each target's sources in batches (unity build)" ON)
set(DROVER_UNITY_BATCH 8 CACHE STRING "Source files per unity batch")
if(DROVER_UNITY)
  set(CMAKE_UNITY_BUILD ON)
  set(CMAKE_UNITY_BUILD_BATCH_SIZE ${DROVER_UNITY_BATCH})
endif()

set(DROVER_PCH_HEADERS
  <algorithm> <array> <atomic> <chrono> <condition_variable> <cstddef>
  <cstdint> <cstdio> <cstdlib> <cstring> <deque> <filesystem> <fstream>
  <functional> <limits> <map> <memory> <mutex> <optional> <set> <sstream>
  <string> <string_view> <system_error> <thread> <unordered_map> <utility>
  <vector>
  <nlohmann/json.hpp> <spdlog/spdlog.h> <zmq.hpp>
  "${CMAKE_BINARY_DIR}/core/protocol/drover.pb.h")

# drover_pch_targets(): call once, last, from the top-level CMakeLists.txt.
function(drover_pch_targets)
  if(NOT DROVER_PCH)
    return()
  endif()
  file(WRITE ${CMAKE_BINARY_DIR}/drover_pch.cc "// The precompiled headers' own target.\n")
  add_library(drover_pch STATIC ${CMAKE_BINARY_DIR}/drover_pch.cc)
  target_link_libraries(drover_pch PRIVATE drover_proto cppzmq spdlog::spdlog
                        nlohmann_json::nlohmann_json)
  target_precompile_headers(drover_pch PRIVATE ${DROVER_PCH_HEADERS})
  add_library(drover_test_pch STATIC ${CMAKE_BINARY_DIR}/drover_pch.cc)
  target_link_libraries(drover_test_pch PRIVATE drover_proto cppzmq spdlog::spdlog
                        nlohmann_json::nlohmann_json GTest::gtest GTest::gmock)
  target_precompile_headers(drover_test_pch PRIVATE ${DROVER_PCH_HEADERS}
                            <gtest/gtest.h> <gmock/gmock.h>)

  set(targets)
  drover_collect_targets(${CMAKE_SOURCE_DIR} targets)
  foreach(target IN LISTS targets)
    get_target_property(type ${target} TYPE)
    get_target_property(sources ${target} SOURCES)
    get_target_property(libraries ${target} LINK_LIBRARIES)
    get_target_property(options ${target} COMPILE_OPTIONS)
    # Only C++ executables and static libraries compiled with the project's
    # common flags can share the header.
    if(NOT type MATCHES "^(EXECUTABLE|STATIC_LIBRARY)$" OR target MATCHES "_pch$"
       OR target STREQUAL "drover_proto" OR NOT sources MATCHES "\\.cc(;|$)")
      continue()
    endif()
    # gcc uses a precompiled header only where the macros given on the
    # command line when it was made are given again: spdlog's (and fmt's)
    # come with linking spdlog, which a few test targets do not do.
    target_link_libraries(${target} PRIVATE spdlog::spdlog)
    if(libraries MATCHES "GTest::")
      target_precompile_headers(${target} REUSE_FROM drover_test_pch)
    else()
      target_precompile_headers(${target} REUSE_FROM drover_pch)
    endif()
  endforeach()
endfunction()

function(drover_collect_targets dir out)
  get_property(here DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(subdir IN LISTS subdirs)
    drover_collect_targets(${subdir} below)
    list(APPEND here ${below})
  endforeach()
  set(${out} ${here} PARENT_SCOPE)
endfunction()

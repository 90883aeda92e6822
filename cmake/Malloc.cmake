# The allocator of drover's programs: TCMalloc (gperftools' tcmalloc_minimal,
# Debian's libgoogle-perftools-dev). The coordinator allocates and frees
# small blocks for every message and row, many of them on another thread
# than the one that frees them (ZeroMQ's I/O thread, the loop); the fork
# backend moves buffers of megabytes. glibc's malloc spent 9% of the
# coordinator loop's CPU; jemalloc, also measured, purged every freed block
# of 8 MiB or more at once, so the cow sort of a million numbers refaulted
# its buffers each time. docs/benchmarks.md ("The allocator", session 32)
# has the figures.
#
# drover_malloc is an interface target that executables link: the drover
# binary, and the benches that run drover's code in their own process as
# the drover binary would (and the dispatch limit, so that the limit is not
# held back by the allocator either). The libraries and the test binaries
# do not link it: core/base/allocator.h finds the allocator at run time.
#
# The sanitizer builds keep their own allocator (ASan and TSan replace
# malloc), and a build can do without it: -DDROVER_TCMALLOC=OFF.
option(DROVER_TCMALLOC "Link drover's programs with TCMalloc" ON)
add_library(drover_malloc INTERFACE)
set(DROVER_WITH_TCMALLOC OFF)  # whether drover_malloc brings TCMalloc
if(DROVER_TCMALLOC AND (DROVER_SANITIZE OR DROVER_TSAN OR DROVER_FUZZ))
  message(STATUS "drover: the sanitizer build keeps its own malloc, not TCMalloc")
elseif(DROVER_TCMALLOC)
  pkg_check_modules(TCMALLOC REQUIRED IMPORTED_TARGET libtcmalloc_minimal)
  target_link_libraries(drover_malloc INTERFACE PkgConfig::TCMALLOC)
  # Kept even where the linker drops libraries that no symbol is taken
  # from (--as-needed): TCMalloc replaces malloc only by being loaded.
  target_link_options(drover_malloc INTERFACE "LINKER:--no-as-needed")
  set(DROVER_WITH_TCMALLOC ON)
endif()

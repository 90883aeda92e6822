# The allocator of drover's programs: jemalloc (Debian's libjemalloc-dev).
# The coordinator allocates and frees small blocks for every message and
# row (many of them allocated on ZeroMQ's I/O thread and freed on the
# loop's); glibc's malloc spent 9% of the loop's CPU on them, jemalloc's
# per-thread caches about 4%. Measured in docs/benchmarks.md ("jemalloc",
# session 32), with the figures and the peak RSS.
#
# drover_malloc is an interface target that executables link: the drover
# binary, and the benches that run drover's code in their own process as
# the drover binary would (and the dispatch limit, so that the limit is not
# held back by the allocator either). The libraries and the test binaries
# do not link it: core/base/allocator.h finds jemalloc at run time.
#
# The sanitizer builds keep their own allocator (ASan and TSan replace
# malloc), and a build can do without jemalloc: -DDROVER_JEMALLOC=OFF.
option(DROVER_JEMALLOC "Link drover's programs with jemalloc" ON)
add_library(drover_malloc INTERFACE)
set(DROVER_WITH_JEMALLOC OFF)  # whether drover_malloc brings jemalloc
if(DROVER_JEMALLOC AND (DROVER_SANITIZE OR DROVER_TSAN OR DROVER_FUZZ))
  message(STATUS "drover: the sanitizer build keeps its own malloc, not jemalloc")
elseif(DROVER_JEMALLOC)
  pkg_check_modules(JEMALLOC REQUIRED IMPORTED_TARGET jemalloc)
  target_link_libraries(drover_malloc INTERFACE PkgConfig::JEMALLOC)
  # Kept even where the linker drops libraries that no symbol is taken
  # from (--as-needed): jemalloc replaces malloc only by being loaded.
  target_link_options(drover_malloc INTERFACE "LINKER:--no-as-needed")
  set(DROVER_WITH_JEMALLOC ON)
endif()

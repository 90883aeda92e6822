// Which malloc the process runs on, and giving freed memory back to the
// system whichever it is. The drover binary links jemalloc
// (cmake/Malloc.cmake; why in docs/benchmarks.md); the test binaries and the
// sanitizer builds keep glibc's malloc. The same code serves both: jemalloc
// is looked up at run time, not linked by the libraries.
#ifndef DROVER_CORE_BASE_ALLOCATOR_H_
#define DROVER_CORE_BASE_ALLOCATOR_H_

#include <string>

namespace drover {

// "jemalloc 5.3.0-0-g54eaed1d8b56b1aa528be3bdd1877e59c56fa90c" when the
// process's malloc is jemalloc (linked or preloaded), "glibc" otherwise.
std::string AllocatorName();

// Returns the pages that free() kept to the system now: jemalloc purges
// every arena's unused dirty pages (it would return them by itself only
// after its decay time, and only while the process allocates); glibc's
// malloc trims its heaps (malloc_trim).
void ReleaseFreeMemory();

}  // namespace drover

#endif  // DROVER_CORE_BASE_ALLOCATOR_H_

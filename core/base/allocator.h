// Which malloc the process runs on, and giving freed memory back to the
// system whichever it is. The drover binary links TCMalloc
// (cmake/Malloc.cmake; why in docs/benchmarks.md); the test binaries and the
// sanitizer builds keep glibc's malloc, and a user may preload another. The
// same code serves them all: the allocator is looked up at run time, not
// linked by the libraries.
#ifndef DROVER_CORE_BASE_ALLOCATOR_H_
#define DROVER_CORE_BASE_ALLOCATOR_H_

#include <string>

namespace drover {

// "tcmalloc 2.10" or "jemalloc 5.3.0-0-g54eaed1..." when the process's
// malloc is one of those (linked or preloaded), "glibc" otherwise.
std::string AllocatorName();

// Returns the pages that free() kept to the system now: TCMalloc releases
// its free spans (it would by itself only gradually), jemalloc purges every
// arena's dirty pages, glibc's malloc trims its heaps (malloc_trim).
void ReleaseFreeMemory();

}  // namespace drover

#endif  // DROVER_CORE_BASE_ALLOCATOR_H_

#include "core/base/allocator.h"

#include <dlfcn.h>
#include <malloc.h>

namespace drover {
namespace {

// jemalloc's control entry point (jemalloc(3), "MALLCTL NAMESPACE").
using Mallctl = int (*)(const char* name, void* oldp, size_t* oldlenp, void* newp,
                        size_t newlen);

// jemalloc's mallctl when the process's malloc is jemalloc, else null.
// Debian's jemalloc exports its functions unprefixed, so a malloc that is
// jemalloc's has a `mallctl` beside it in the global scope.
Mallctl FindMallctl() {
  static const Mallctl found =
      reinterpret_cast<Mallctl>(::dlsym(RTLD_DEFAULT, "mallctl"));
  return found;
}

}  // namespace

std::string AllocatorName() {
  Mallctl mallctl = FindMallctl();
  if (mallctl == nullptr) return "glibc";
  const char* version = nullptr;
  size_t size = sizeof version;
  if (mallctl("version", &version, &size, nullptr, 0) != 0 || version == nullptr) {
    return "jemalloc";
  }
  return std::string("jemalloc ") + version;
}

void ReleaseFreeMemory() {
  if (Mallctl mallctl = FindMallctl()) {
    // "arena.<MALLCTL_ARENAS_ALL>.purge": every arena; MALLCTL_ARENAS_ALL is
    // 4096 in jemalloc 5 (jemalloc.h), spelled out so that drover's
    // libraries build without jemalloc's headers.
    (void)mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);
    return;
  }
  ::malloc_trim(0);
}

}  // namespace drover

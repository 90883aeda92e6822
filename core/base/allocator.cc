#include "core/base/allocator.h"

#include <dlfcn.h>
#include <malloc.h>

namespace drover {
namespace {

// The entry points of the allocators drover knows, found in the process's
// global scope: an allocator that replaces malloc, linked or preloaded, has
// its own functions beside it there (Debian builds TCMalloc and jemalloc
// unprefixed).
struct Allocator {
  // TCMalloc (gperftools/tcmalloc.h, gperftools/malloc_extension_c.h).
  const char* (*tc_version)(int* major, int* minor, const char** patch) = nullptr;
  void (*tc_release)() = nullptr;
  // jemalloc's control entry point (jemalloc(3), "MALLCTL NAMESPACE").
  int (*mallctl)(const char* name, void* oldp, size_t* oldlenp, void* newp,
                 size_t newlen) = nullptr;
};

const Allocator& Find() {
  static const Allocator found = [] {
    Allocator a;
    a.tc_version =
        reinterpret_cast<decltype(a.tc_version)>(::dlsym(RTLD_DEFAULT, "tc_version"));
    a.tc_release = reinterpret_cast<decltype(a.tc_release)>(
        ::dlsym(RTLD_DEFAULT, "MallocExtension_ReleaseFreeMemory"));
    a.mallctl = reinterpret_cast<decltype(a.mallctl)>(::dlsym(RTLD_DEFAULT, "mallctl"));
    return a;
  }();
  return found;
}

}  // namespace

std::string AllocatorName() {
  const Allocator& a = Find();
  if (a.tc_version != nullptr) {
    int major = 0, minor = 0;
    const char* patch = nullptr;
    a.tc_version(&major, &minor, &patch);
    return "tcmalloc " + std::to_string(major) + "." + std::to_string(minor) +
           (patch != nullptr ? patch : "");
  }
  if (a.mallctl != nullptr) {
    const char* version = nullptr;
    size_t size = sizeof version;
    if (a.mallctl("version", &version, &size, nullptr, 0) != 0 || version == nullptr) {
      return "jemalloc";
    }
    return std::string("jemalloc ") + version;
  }
  return "glibc";
}

void ReleaseFreeMemory() {
  const Allocator& a = Find();
  if (a.tc_release != nullptr) {
    a.tc_release();
  } else if (a.mallctl != nullptr) {
    // "arena.<MALLCTL_ARENAS_ALL>.purge": every arena; MALLCTL_ARENAS_ALL is
    // 4096 in jemalloc 5 (jemalloc.h), spelled out so that drover builds
    // without jemalloc's headers.
    (void)a.mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);
  } else {
    ::malloc_trim(0);
  }
}

}  // namespace drover

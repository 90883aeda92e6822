// simdjson On-Demand helpers of libs_bench, compiled twice.
//
// On-Demand code is compiled into the caller for one simdjson kernel, the
// best the compiler flags allow (simdjson's "builtin" implementation), and
// does not dispatch at run time as the DOM parser does. So a portable
// x86-64 build, as drover ships, gets the scalar "fallback" kernel: the
// `portable` functions. The `haswell` ones come from a file compiled with
// -march=haswell (AVX2), the best this library can do on the machine; they
// must only be called where the CPU has AVX2 (libs_bench checks).
#ifndef DROVER_TOOLS_BENCH_LIBS_ONDEMAND_H_
#define DROVER_TOOLS_BENCH_LIBS_ONDEMAND_H_

#include <cstdint>
#include <string_view>
#include <vector>

namespace drover::bench {

#define DROVER_LIBS_ONDEMAND_DECLARE(ns)                                             \
  namespace ns {                                                                     \
  /* The name of the kernel these functions were compiled for. */                    \
  const char* Kernel();                                                              \
  /* Whether `padded` (with at least 64 readable bytes after its end) is one JSON */ \
  /* container, every value of which On-Demand visits, and nothing after it. */      \
  bool Validate(std::string_view padded);                                            \
  /* The integers of `padded` when it is an array of int64s, else false. */          \
  bool IntArray(std::string_view padded, std::vector<int64_t>* out);                 \
  }

DROVER_LIBS_ONDEMAND_DECLARE(portable)
DROVER_LIBS_ONDEMAND_DECLARE(haswell)

#undef DROVER_LIBS_ONDEMAND_DECLARE

}  // namespace drover::bench

#endif  // DROVER_TOOLS_BENCH_LIBS_ONDEMAND_H_

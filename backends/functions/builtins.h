// The built-in functions of the threads backend (and of `cow` fork pools).
// docs/backends/threads.md documents each one's args and result.
//
//   noop       -> null                                       (any args)
//   sleep      {"seconds": 0.5} | {"ms": 500} | 0.5  -> null  (cooperative)
//   sort       {"numbers": [3, 1, 2]} | [3, 1, 2]    -> [1, 2, 3]
//   sha256     {"string": "abc"} | {"file": PATH}   -> "ba7816bf..." (hex)
//   wordcount  {"file": PATH} | {"string": S}       -> {"lines", "words", "bytes"}
//   fib        {"n": 30} | 30                        -> 832040 (naive recursion)
//
// Every long-running one (sleep, sha256 and wordcount on a file, fib)
// checks its cancellation token and returns a Cancelled error soon after it
// fires. Bad args are an InvalidArgument error naming the function.
#ifndef DROVER_BACKENDS_FUNCTIONS_BUILTINS_H_
#define DROVER_BACKENDS_FUNCTIONS_BUILTINS_H_

#include <cstdint>
#include <vector>

#include "backends/functions/registry.h"
#include "core/base/status.h"

namespace drover {

// The `source` the built-ins are registered with.
inline constexpr char kBuiltinSource[] = "built-in";

// Adds every built-in to `registry`. Fails (kAlreadyExists) only if one of
// their names is taken already.
Status RegisterBuiltins(FunctionRegistry& registry);

// Sorts `numbers` ascending: what the built-in `sort` does with plain
// integers (and a cow child's fast path, backends/fork/cow_child.cc). An
// LSD radix sort of the numbers' distances from the smallest, in as few
// passes of at most 11 bits as the range needs, the bits split evenly
// (numbers below 10^9: 3 passes of 10 bits), on 32-bit keys when the range
// is below 2^32; passes whose digit every number shares are skipped;
// std::sort below 256 numbers, where it is faster. O(n) extra memory.
// About 5x std::sort on 1,000,000 numbers below 10^9 (docs/benchmarks.md,
// "ipc").
void SortIntegers(std::vector<int64_t>& numbers);
// The same, given the smallest and the largest of the numbers (a reader
// that found them on the way, json_scan.h's ReadIntArray): one read of
// them fewer.
void SortIntegers(std::vector<int64_t>& numbers, int64_t min, int64_t max);

}  // namespace drover

#endif  // DROVER_BACKENDS_FUNCTIONS_BUILTINS_H_

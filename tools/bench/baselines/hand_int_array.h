// The hand-written ParseIntArray that backends/fork/json_scan.cc held until
// simdjson's On-Demand parser replaced it (docs/benchmarks.md, "Libraries
// against hand-written code"). Kept here only as libs_bench's baseline, so
// that the comparison can be run again; nothing else links it.
#ifndef DROVER_TOOLS_BENCH_BASELINES_HAND_INT_ARRAY_H_
#define DROVER_TOOLS_BENCH_BASELINES_HAND_INT_ARRAY_H_

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace drover::bench {

// `text` as a list of integers when it is exactly a JSON array of JSON
// integers (no fraction or exponent) that each fit in int64; nothing
// otherwise. One pass to count the commas, one to read the numbers.
std::optional<std::vector<int64_t>> HandParseIntArray(std::string_view text);

}  // namespace drover::bench

#endif  // DROVER_TOOLS_BENCH_BASELINES_HAND_INT_ARRAY_H_

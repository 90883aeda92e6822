// simdjson On-Demand for libs_bench, compiled with -march=haswell
// (tools/bench/CMakeLists.txt).
#include <simdjson.h>

#include "tools/bench/libs_ondemand.h"

namespace drover::bench::haswell {

#include "tools/bench/libs_ondemand.inc"

}  // namespace drover::bench::haswell

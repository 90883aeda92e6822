// simdjson On-Demand for libs_bench, with drover's usual flags (the fallback kernel).
#include <simdjson.h>

#include "tools/bench/libs_ondemand.h"

namespace drover::bench::portable {

#include "tools/bench/libs_ondemand.inc"

}  // namespace drover::bench::portable

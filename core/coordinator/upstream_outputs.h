// The coordinator's side of `${tasks.NAME.outputs.KEY}` (core/spec/
// outputs.h): a task that refers to upstream outputs gets its payload
// rendered when it is dispatched, from the outputs its upstream tasks'
// rows hold (stored with their attempts, so a restarted coordinator or a
// resumed job still has them).
#ifndef DROVER_CORE_COORDINATOR_UPSTREAM_OUTPUTS_H_
#define DROVER_CORE_COORDINATOR_UPSTREAM_OUTPUTS_H_

#include <cstddef>
#include <cstdint>

#include "core/base/status.h"
#include "core/coordinator/job_state.h"

namespace drover {

// A rendered payload must leave room in a 4 MiB DISPATCH body for the
// rest of the attempt (services, names).
inline constexpr size_t kMaxRenderedPayload = 3u << 20;

// Sets out->payload (and summary) of task `t` of `job`, a task with
// TaskSpec::deferred, from its upstream rows' outputs_json; *out starts as
// a copy of the task's TaskSpec. kNotFound with the reason when an output
// it refers to was not produced, kFailedPrecondition when the payload
// would be over kMaxRenderedPayload (the task then fails as missing-input).
// O(size of the outputs it refers to).
Status RenderUpstreamOutputs(const JobState& job, uint32_t t, spec::TaskSpec* out);

}  // namespace drover

#endif  // DROVER_CORE_COORDINATOR_UPSTREAM_OUTPUTS_H_

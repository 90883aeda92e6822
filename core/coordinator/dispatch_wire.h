// What the coordinator puts on the wire about a job: the DISPATCH of one
// task attempt and the task counts of TASK-EVENT and JOB-EVENT.
#ifndef DROVER_CORE_COORDINATOR_DISPATCH_WIRE_H_
#define DROVER_CORE_COORDINATOR_DISPATCH_WIRE_H_

#include <cstdint>
#include <string>

#include "core/dag/plan.h"
#include "core/protocol/drover.pb.h"
#include "core/spec/job_spec.h"

namespace drover {

// The counts of a job's tasks as clients see them: pending is waiting,
// ready and retry-wait; other is blocked, skipped and cancelled.
wire::Counts CountsToWire(const dag::PlanCounts& counts);
void CountsToWire(const dag::PlanCounts& counts, wire::Counts* out);

// The DISPATCH body for attempt `id` (number `number`) of task `ts` of
// `job`: everything a worker needs to run it, including the declaration of
// its fork pool and the job's plugins.
wire::Dispatch DispatchToWire(const spec::JobSpec& job, const std::string& job_id,
                              const spec::TaskSpec& ts, uint64_t id, uint32_t number);
// The same, into `out` (which may live on an arena).
void DispatchToWire(const spec::JobSpec& job, const std::string& job_id,
                    const spec::TaskSpec& ts, uint64_t id, uint32_t number,
                    wire::Dispatch* out);

}  // namespace drover

#endif  // DROVER_CORE_COORDINATOR_DISPATCH_WIRE_H_

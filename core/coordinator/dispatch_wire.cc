#include "core/coordinator/dispatch_wire.h"

#include <algorithm>
#include <chrono>

#include "core/protocol/convert.h"

namespace drover {

wire::Counts CountsToWire(const dag::PlanCounts& c) {
  wire::Counts out;
  CountsToWire(c, &out);
  return out;
}

void CountsToWire(const dag::PlanCounts& c, wire::Counts* out) {
  out->set_total(c.total);
  // A cached task counts as succeeded (it is one for its dependents and its
  // job); `cached` says how many of them were.
  out->set_succeeded(c.succeeded + c.cached);
  out->set_cached(c.cached);
  out->set_failed(c.failed);
  out->set_running(c.running);
  out->set_pending(c.waiting + c.ready + c.retry_wait);
  out->set_other(c.blocked + c.skipped + c.cancelled);
}

wire::Dispatch DispatchToWire(const spec::JobSpec& job, const std::string& job_id,
                              const spec::TaskSpec& ts, uint64_t id, uint32_t number) {
  wire::Dispatch d;
  DispatchToWire(job, job_id, ts, id, number, &d);
  return d;
}

void DispatchToWire(const spec::JobSpec& job, const std::string& job_id,
                    const spec::TaskSpec& ts, uint64_t id, uint32_t number,
                    wire::Dispatch* out) {
  wire::Dispatch& d = *out;
  d.set_attempt_id(id);
  d.set_job_id(job_id);
  d.set_task(ts.name);
  d.set_attempt(number);
  d.set_backend(ts.backend);
  d.set_payload(ts.payload);  // the backend's message, not read here
  // The services the task needs: the job's with their whole declarations,
  // the worker's own (`from: worker`) by name.
  for (const std::string& name : ts.services) {
    const spec::ServiceDecl* decl = job.FindService(name);
    if (decl == nullptr) continue;  // the loader guarantees it exists
    if (decl->from_worker) {
      d.add_worker_services(name);  // ts.services is sorted and unique
    } else {
      *d.add_services() = protocol::ServiceToWire(*decl);
    }
  }
  d.set_timeout_ms(ts.timeout ? std::max<int64_t>(1, ToMillis(*ts.timeout)) : 0);
  d.set_kill_grace_ms(ToMillis(ts.kill_grace));
  d.set_output_limit(ts.output_limit);
}

}  // namespace drover

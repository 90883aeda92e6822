#include "core/coordinator/dispatch_wire.h"

#include <algorithm>
#include <chrono>

namespace drover {

wire::Counts CountsToWire(const dag::PlanCounts& c) {
  wire::Counts out;
  out.set_total(c.total);
  out.set_succeeded(c.succeeded);
  out.set_failed(c.failed);
  out.set_running(c.running);
  out.set_pending(c.waiting + c.ready + c.retry_wait);
  out.set_other(c.blocked + c.skipped + c.cancelled);
  return out;
}

namespace {

uint64_t Millis(Duration d) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

void AddEnv(const spec::EnvList& env,
            google::protobuf::RepeatedPtrField<wire::EnvVar>* out) {
  for (const auto& [k, v] : env) {
    auto* e = out->Add();
    e->set_name(k);
    e->set_value(v);
  }
}

// The declarations of the services the task needs (by name only for the
// worker's own, `from: worker`).
void AddServices(const spec::JobSpec& job, const spec::TaskSpec& ts, wire::Dispatch* d) {
  for (const std::string& name : ts.services) {
    const spec::ServiceDecl* decl = job.FindService(name);
    if (decl == nullptr) continue;  // the loader guarantees it exists
    if (decl->from_worker) {
      d->add_worker_services(name);  // ts.services is sorted and unique
      continue;
    }
    wire::Service* s = d->add_services();
    s->set_name(decl->name);
    for (const auto& a : decl->command) s->add_command(a);
    s->set_instances(static_cast<uint32_t>(decl->instances));
    s->set_host(decl->host);
    s->set_port(static_cast<uint32_t>(decl->port));
    s->set_mode(decl->mode);
    s->set_ready(decl->ready);
    s->set_ready_path(decl->ready_path);
    s->set_ready_timeout_ms(Millis(decl->ready_timeout));
    AddEnv(decl->env, s->mutable_env());
    s->set_cwd(decl->cwd);
    s->set_idle_timeout_ms(Millis(decl->idle_timeout));
  }
}

}  // namespace

wire::Dispatch DispatchToWire(const spec::JobSpec& job, const std::string& job_id,
                      const spec::TaskSpec& ts, uint64_t id, uint32_t number) {
  wire::Dispatch d;
  d.set_attempt_id(id);
  d.set_job_id(job_id);
  d.set_task(ts.name);
  d.set_attempt(number);
  d.set_backend(ts.backend);
  d.set_payload(ts.payload);  // the backend's message, not read here
  AddServices(job, ts, &d);
  d.set_timeout_ms(ts.timeout ? std::max<uint64_t>(1, Millis(*ts.timeout)) : 0);
  d.set_kill_grace_ms(Millis(ts.kill_grace));
  d.set_output_limit(ts.output_limit);
  return d;
}


}  // namespace drover

#include "core/coordinator/dispatch_wire.h"

#include <algorithm>
#include <chrono>

#include "backends/cluster/cluster.pb.h"
#include "backends/fork/fork.pb.h"
#include "backends/spawn/spawn.pb.h"
#include "backends/threads/threads.pb.h"
#include "core/protocol/convert.h"

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

template <typename EnvVar>
void AddEnv(const spec::EnvList& env, google::protobuf::RepeatedPtrField<EnvVar>* out) {
  for (const auto& [k, v] : env) {
    auto* e = out->Add();
    e->set_name(k);
    e->set_value(v);
  }
}

// BRIDGE: replaced at merge by TaskSpec::payload
// The backend's payload of `ts`, built from the backend fields TaskSpec
// still has on this branch, as each backend's kind will build it at load.
std::string BackendPayload(const spec::JobSpec& job, const spec::TaskSpec& ts) {
  if (ts.backend == "spawn") {
    spawn::SpawnTask t;
    for (const auto& a : ts.argv) t.add_argv(a);
    AddEnv(ts.env, t.mutable_env());
    t.set_cwd(ts.cwd);
    return t.SerializeAsString();
  }
  if (ts.backend == "threads") {
    threads::ThreadsTask t;
    t.set_fn(ts.fn);
    t.set_args_json(ts.args_json);
    for (const auto& plugin : job.plugins) t.add_plugins(plugin);
    return t.SerializeAsString();
  }
  if (ts.backend == "fork") {
    fork::ForkTask t;
    t.set_pool(ts.pool);
    t.set_message_json(ts.message_json);
    t.set_fn(ts.fn);
    t.set_args_json(ts.args_json);
    for (const auto& plugin : job.plugins) t.add_plugins(plugin);
    if (const spec::PoolDecl* pool = job.FindPool(ts.pool)) {
      fork::Pool* p = t.mutable_pool_spec();
      p->set_name(pool->name);
      p->set_mode(pool->mode);
      for (const auto& a : pool->command) p->add_command(a);
      p->set_instances(static_cast<uint32_t>(pool->instances));
      p->set_max_tasks(static_cast<uint32_t>(pool->max_tasks));
      p->set_idle_timeout_ms(Millis(pool->idle_timeout));
      AddEnv(pool->env, p->mutable_env());
      p->set_cwd(pool->cwd);
    }
    return t.SerializeAsString();
  }
  if (ts.backend == "cluster") {
    cluster::ClusterTask t;
    t.set_service(ts.service);
    cluster::Request* r = t.mutable_request();
    r->set_method(ts.request.method);
    r->set_path(ts.request.path);
    AddEnv(ts.request.headers, r->mutable_headers());
    r->set_body(ts.request.body);
    r->set_expect(static_cast<uint32_t>(ts.request.expect));
    if (ts.request.timeout) {
      r->set_timeout_ms(std::max<uint64_t>(1, Millis(*ts.request.timeout)));
    }
    return t.SerializeAsString();
  }
  return std::string();
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
  d.set_payload(BackendPayload(job, ts));
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
  d.set_timeout_ms(ts.timeout ? std::max<uint64_t>(1, Millis(*ts.timeout)) : 0);
  d.set_kill_grace_ms(Millis(ts.kill_grace));
  d.set_output_limit(ts.output_limit);
  return d;
}

}  // namespace drover

#include "backends/fork/fork_attempt.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "backends/fork/fork.pb.h"

namespace drover {
namespace {

void SetPool(const PoolSpec& p, fork::ForkTask* task) {
  task->set_pool(p.name);
  fork::Pool* out = task->mutable_pool_spec();
  out->set_name(p.name);
  out->set_mode(p.mode);
  for (const std::string& a : p.command) out->add_command(a);
  out->set_instances(static_cast<uint32_t>(p.instances));
  out->set_max_tasks(static_cast<uint32_t>(p.max_tasks));
  out->set_idle_timeout_ms(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(p.idle_timeout).count()));
  for (const auto& [name, value] : p.env) {
    fork::EnvVar* e = out->add_env();
    e->set_name(name);
    e->set_value(value);
  }
  out->set_cwd(p.cwd);
}

PoolSpec FromWire(const fork::Pool& p) {
  PoolSpec spec;
  spec.name = p.name();
  spec.mode = p.mode().empty() ? "process" : p.mode();
  spec.command.assign(p.command().begin(), p.command().end());
  spec.instances = static_cast<int>(std::max<uint32_t>(1, p.instances()));
  spec.max_tasks = static_cast<int>(p.max_tasks());
  spec.idle_timeout = std::chrono::milliseconds(p.idle_timeout_ms());
  for (const auto& e : p.env()) spec.env.emplace_back(e.name(), e.value());
  spec.cwd = p.cwd();
  return spec;
}

}  // namespace

PoolSpec ToPoolSpec(const spec::PoolDecl& d) {
  PoolSpec p;
  p.name = d.name;
  p.mode = d.mode;
  p.command = d.command;
  p.instances = d.instances;
  p.max_tasks = d.max_tasks;
  p.idle_timeout = d.idle_timeout;
  p.env = d.env;
  p.cwd = d.cwd;
  return p;
}

Result<ForkAttempt> DecodeForkAttempt(
    TaskAttempt attempt, const std::map<std::string, spec::PoolDecl>& worker_pools) {
  fork::ForkTask task;
  if (!task.ParseFromString(attempt.payload)) {
    return InvalidArgument("the fork task's payload is not a drover.fork.ForkTask");
  }
  ForkAttempt a;
  static_cast<TaskAttempt&>(a) = std::move(attempt);
  a.payload.clear();
  a.pool = task.pool();
  if (task.has_pool_spec()) {
    a.pool_spec = FromWire(task.pool_spec());
  } else if (!a.pool.empty()) {
    const auto own = worker_pools.find(a.pool);
    if (own == worker_pools.end()) {
      return NotFound(
          "pool '" + a.pool +
          "' is declared neither by the job nor by this worker's configuration");
    }
    a.pool_spec = ToPoolSpec(own->second);
  }
  // Moved out of the parsed task, not copied: a message or args may be
  // megabytes (a million numbers to sort are 10 MB).
  a.message_json = std::move(*task.mutable_message_json());
  a.ExpandServiceRefsIn(&a.message_json);
  a.fn = std::move(*task.mutable_fn());
  a.args_json = std::move(*task.mutable_args_json());
  a.ExpandServiceRefsIn(&a.args_json);
  a.plugins.assign(task.plugins().begin(), task.plugins().end());
  return a;
}

TaskAttempt EncodeForkAttempt(ForkAttempt attempt) {
  fork::ForkTask task;
  SetPool(attempt.pool_spec, &task);
  task.set_pool(attempt.pool);
  task.set_message_json(attempt.message_json);
  task.set_fn(attempt.fn);
  task.set_args_json(attempt.args_json);
  for (const std::string& p : attempt.plugins) task.add_plugins(p);
  TaskAttempt a = std::move(static_cast<TaskAttempt&>(attempt));
  a.payload = task.SerializeAsString();
  return a;
}

std::string ForkMessagePayload(const PoolSpec& pool, const std::string& message_json) {
  fork::ForkTask task;
  SetPool(pool, &task);
  task.set_message_json(message_json);
  return task.SerializeAsString();
}

std::string ForkCallPayload(const PoolSpec& pool, const std::string& fn,
                            const std::string& args_json,
                            const std::vector<std::string>& plugins) {
  fork::ForkTask task;
  SetPool(pool, &task);
  task.set_fn(fn);
  task.set_args_json(args_json);
  for (const std::string& p : plugins) task.add_plugins(p);
  return task.SerializeAsString();
}

std::string ForkPayloadForWorkerPool(const std::string& name,
                                     const std::string& message_json) {
  fork::ForkTask task;
  task.set_pool(name);
  task.set_message_json(message_json);
  return task.SerializeAsString();
}

}  // namespace drover

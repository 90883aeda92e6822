#include "backends/spawn/spawn_attempt.h"

#include "backends/spawn/spawn.pb.h"

namespace drover {

Result<SpawnAttempt> DecodeSpawnAttempt(TaskAttempt attempt) {
  spawn::SpawnTask task;
  if (!task.ParseFromString(attempt.payload)) {
    return InvalidArgument("the spawn task's payload is not a drover.spawn.SpawnTask");
  }
  SpawnAttempt a;
  static_cast<TaskAttempt&>(a) = std::move(attempt);
  a.payload.clear();
  a.argv.reserve(task.argv_size());
  for (const std::string& arg : task.argv()) a.argv.push_back(a.ExpandServiceRefs(arg));
  for (const auto& e : task.env())
    a.env.emplace_back(e.name(), a.ExpandServiceRefs(e.value()));
  a.cwd = a.ExpandServiceRefs(task.cwd());
  if (a.cwd.empty() && !a.work_dir.empty()) a.cwd = a.work_dir.string();
  if (task.has_limits()) {
    a.limits.cpu_seconds = task.limits().cpu_seconds();
    a.limits.memory_bytes = task.limits().memory_bytes();
    a.limits.files = task.limits().files();
    a.limits.processes = task.limits().processes();
  }
  return a;
}

TaskAttempt EncodeSpawnAttempt(SpawnAttempt attempt) {
  std::string payload =
      SpawnPayload(attempt.argv, attempt.env, attempt.cwd, attempt.limits);
  TaskAttempt a = std::move(static_cast<TaskAttempt&>(attempt));
  a.env.clear();
  a.payload = std::move(payload);
  return a;
}

std::string SpawnPayload(const std::vector<std::string>& argv,
                         const std::vector<std::pair<std::string, std::string>>& env,
                         const std::string& cwd, const ResourceLimits& limits) {
  spawn::SpawnTask task;
  for (const std::string& arg : argv) task.add_argv(arg);
  for (const auto& [name, value] : env) {
    spawn::EnvVar* e = task.add_env();
    e->set_name(name);
    e->set_value(value);
  }
  task.set_cwd(cwd);
  if (!limits.empty()) {
    spawn::Limits* l = task.mutable_limits();
    l->set_cpu_seconds(limits.cpu_seconds);
    l->set_memory_bytes(limits.memory_bytes);
    l->set_files(limits.files);
    l->set_processes(limits.processes);
  }
  return task.SerializeAsString();
}

}  // namespace drover

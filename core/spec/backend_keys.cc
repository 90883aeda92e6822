// YamlReader, part five: finishing a task. `defaults` applied under the
// task's own keys, then the keys whose meaning depends on its backend (run,
// env and cwd for spawn; fn and args for threads; pool, message, or fn and
// args, for fork), and `${matrix.KEY}` resolved in them.
#include <algorithm>

#include "core/spec/text.h"
#include "core/spec/yaml_reader.h"

namespace drover::spec::internal {
namespace {

// Where fn/args, pool/message and env/cwd apply, for "only applies to".
constexpr std::string_view kFnBackends = "backend threads (and fork tasks on a cow pool)";
constexpr std::string_view kForkBackend = "backend fork";
constexpr std::string_view kSpawnBackend = "backend spawn";
constexpr std::string_view kClusterBackend = "backend cluster";

std::string TaskRef(std::string_view name) { return "task " + Quoted(name); }

}  // namespace

Template YamlReader::Compile(const Located& located, RawTask* task) {
  std::vector<std::string> messages;
  Template t = Template::Compile(located.text, task->matrix_keys, task->has_matrix,
                                 !task->matrix_ok, task->name, &messages);
  for (std::string& message : messages) Error(located.where, std::move(message));
  return t;
}

void YamlReader::Finish(Settings s, const TaskParts& parts, RawTask* task) {
  // Task keys win over `defaults`, one by one; env merges per variable.
  if (!s.backend && !s.backend_invalid) {
    s.backend = defaults_.backend;
    s.backend_invalid = defaults_.backend_invalid;
  }
  task->backend = s.backend.value_or("spawn");
  task->timeout = s.timeout ? s.timeout : defaults_.timeout;
  if (auto v = s.kill_grace ? s.kill_grace : defaults_.kill_grace) task->kill_grace = *v;
  if (auto v = s.retries ? s.retries : defaults_.retries) task->retries = *v;
  if (auto v = s.retry_backoff ? s.retry_backoff : defaults_.retry_backoff) {
    task->retry_backoff = *v;
  }
  if (auto v = s.output_limit ? s.output_limit : defaults_.output_limit) {
    task->output_limit = *v;
  }

  if (!s.backend_invalid && task->backend != "cluster") {
    if (s.service) NotForBackend(*s.service, "service", kClusterBackend, *task);
    if (parts.request != nullptr) NotForBackend(*parts.request, kClusterBackend, *task);
  }
  if (s.backend_invalid) {
    // Already reported; what the task may hold depends on the backend it
    // was meant to have, so only check what stands on its own.
    if (parts.run != nullptr) {
      bool shell = false;
      std::vector<Located> run;
      ReadArgv(*parts.run, " in " + TaskRef(task->name), &shell, &run);
    }
  } else if (task->backend == "threads") {
    FinishThreads(s, parts, task);
  } else if (task->backend == "fork") {
    FinishFork(s, parts, task);
  } else if (task->backend == "cluster") {
    FinishCluster(s, parts, task);
  } else {
    FinishSpawn(std::move(s), parts, task);
  }
  SortServices(task);
}

void YamlReader::NotForBackend(const Entry& e, std::string_view applies_to,
                               const RawTask& task) {
  Error(e.key_pos, "'" + e.key + "' in " + TaskRef(task.name) + " only applies to " +
                       std::string(applies_to) + "; this task's backend is " + task.backend);
}

void YamlReader::NotForBackend(const NameRef& ref, std::string_view key,
                               std::string_view applies_to, const RawTask& task) {
  Error(ref.key, "'" + std::string(key) + "' in " + TaskRef(task.name) + " only applies to " +
                     std::string(applies_to) + "; this task's backend is " + task.backend);
}

void YamlReader::FinishSpawn(Settings s, const TaskParts& parts, RawTask* task) {
  if (s.fn) NotForBackend(*s.fn, "fn", kFnBackends, *task);
  if (parts.args != nullptr) NotForBackend(*parts.args, kFnBackends, *task);
  if (s.pool) NotForBackend(*s.pool, "pool", kForkBackend, *task);
  if (parts.message != nullptr) NotForBackend(*parts.message, kForkBackend, *task);

  std::vector<Located> run;
  if (parts.run == nullptr) {
    Error(parts.key_pos, TaskRef(task->name) + " has no 'run' (the command to run)");
  } else {
    ReadArgv(*parts.run, " in " + TaskRef(task->name), &task->shell, &run);
  }
  if (!s.cwd) s.cwd = defaults_.cwd;
  if (defaults_.env) {
    RawEnv merged = *defaults_.env;
    if (s.env) {
      for (auto& [name, value] : *s.env) {
        auto same = std::find_if(merged.begin(), merged.end(),
                                 [&name = name](const auto& kv) { return kv.first == name; });
        if (same != merged.end()) {
          same->second = std::move(value);
        } else {
          merged.emplace_back(std::move(name), std::move(value));
        }
      }
    }
    s.env = std::move(merged);
  }

  for (const Located& arg : run) NoteServiceRefs(arg.text, arg.where, task);
  if (s.env) {
    for (const auto& [name, value] : *s.env) NoteServiceRefs(value.text, value.where, task);
  }
  if (s.cwd) NoteServiceRefs(s.cwd->text, s.cwd->where, task);
  if (task->shell && !run.empty()) {
    task->argv.push_back(Template::Literal("/bin/sh"));
    task->argv.push_back(Template::Literal("-c"));
    task->argv.push_back(Compile(run.front(), task));
  } else {
    for (const Located& arg : run) task->argv.push_back(Compile(arg, task));
  }
  if (s.env) {
    for (const auto& [name, value] : *s.env) task->env.emplace_back(name, Compile(value, task));
  }
  if (s.cwd) task->cwd = Compile(*s.cwd, task);
}

// A threads task calls a function in the worker's process: it has no
// command, no environment and no directory of its own. `defaults`' env and
// cwd are for spawn tasks and do not apply.
void YamlReader::FinishThreads(const Settings& s, const TaskParts& parts, RawTask* task) {
  const std::string context = " in " + TaskRef(task->name);
  if (parts.run != nullptr) {
    Error(parts.run->key_pos, "'run'" + context +
                                  " does not apply to backend threads: it calls the function "
                                  "named by 'fn'");
  }
  if (s.pool) NotForBackend(*s.pool, "pool", kForkBackend, *task);
  if (parts.message != nullptr) NotForBackend(*parts.message, kForkBackend, *task);
  if (parts.env != nullptr) NotForBackend(*parts.env, kSpawnBackend, *task);
  if (parts.cwd != nullptr) NotForBackend(*parts.cwd, kSpawnBackend, *task);

  const std::optional<NameRef>& fn = s.fn ? s.fn : defaults_.fn;
  if (!fn) {
    Error(parts.key_pos,
          TaskRef(task->name) + " has backend threads but no 'fn' (the function to call)");
  } else if (fn->ok) {
    task->fn = fn->name;
  }
  task->args = parts.args != nullptr ? ReadJson(*parts.args, task) : JsonTemplate::Literal("null");
  if (parts.args != nullptr) NoteServiceRefs(*task->args, parts.args->value_pos, task);
}

// A fork task sends a message to a warm process of its pool, or, on a cow
// pool, has one call a function. The processes' env and cwd are the
// pool's.
void YamlReader::FinishFork(const Settings& s, const TaskParts& parts, RawTask* task) {
  const std::string context = " in " + TaskRef(task->name);
  if (parts.run != nullptr) {
    Error(parts.run->key_pos, "'run'" + context +
                                  " does not apply to backend fork: it sends its 'message' to "
                                  "a process of its 'pool'");
  }
  if (parts.env != nullptr) NotForBackend(*parts.env, kSpawnBackend, *task);
  if (parts.cwd != nullptr) NotForBackend(*parts.cwd, kSpawnBackend, *task);

  const std::optional<NameRef>& pool = s.pool ? s.pool : defaults_.pool;
  if (!pool) {
    Error(parts.key_pos, TaskRef(task->name) +
                             " has backend fork but no 'pool' (the pool of processes to send "
                             "its message to)");
  }
  if (!pool || !pool->ok) {
    // Which of fn, args and message belong depends on the pool's mode;
    // still report what is wrong inside them.
    if (parts.args != nullptr) ReadJson(*parts.args, task);
    if (parts.message != nullptr) ReadJson(*parts.message, task);
    return;
  }
  task->pool = pool->name;
  const std::string pool_ref = "pool " + Quoted(pool->name);
  if (undeclared_pools_ && pools_.find(pool->name) == pools_.end()) {
    // A worker's pool, of a mode we cannot know: `fn` (and `args`) mean a
    // cow pool, else the task sends its `message`.
    const std::optional<NameRef>& fn = s.fn ? s.fn : defaults_.fn;
    if (fn && fn->ok) task->fn = fn->name;
    if (fn) {
      task->args =
          parts.args != nullptr ? ReadJson(*parts.args, task) : JsonTemplate::Literal("null");
    }
    task->message = parts.message != nullptr ? ReadJson(*parts.message, task)
                                             : JsonTemplate::Literal("null");
    return;
  }
  if (!pools_[pool->name].cow) {
    const std::string why = "; " + pool_ref + " is a process pool: send it a 'message'";
    if (s.fn) {
      Error(s.fn->key, "'fn'" + context + " only applies to " + std::string(kFnBackends) + why);
    }
    if (parts.args != nullptr) {
      Error(parts.args->key_pos,
            "'args'" + context + " only applies to " + std::string(kFnBackends) + why);
    }
    task->message = parts.message != nullptr ? ReadJson(*parts.message, task)
                                             : JsonTemplate::Literal("null");
    if (parts.message != nullptr) {
      NoteServiceRefs(*task->message, parts.message->value_pos, task);
    }
    return;
  }
  if (parts.message != nullptr) {
    Error(parts.message->key_pos, "'message'" + context + " does not apply to cow " + pool_ref +
                                      ": its processes call 'fn' with 'args'");
  }
  const std::optional<NameRef>& fn = s.fn ? s.fn : defaults_.fn;
  if (!fn) {
    Error(parts.key_pos, TaskRef(task->name) + " uses cow " + pool_ref +
                             " but has no 'fn' (the function its processes call)");
  } else if (fn->ok) {
    task->fn = fn->name;
  }
  task->args = parts.args != nullptr ? ReadJson(*parts.args, task) : JsonTemplate::Literal("null");
  if (parts.args != nullptr) NoteServiceRefs(*task->args, parts.args->value_pos, task);
}

}  // namespace drover::spec::internal

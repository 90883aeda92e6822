// YamlReader, part five: finishing a task. `defaults` applied under the
// task's own keys, then the task's kind (task_kind.h) reads the keys whose
// meaning depends on its backend, and the keys of other backends the task
// holds are reported.
#include "core/spec/task_kind.h"
#include "core/spec/text.h"
#include "core/spec/yaml_reader.h"

namespace drover::spec::internal {

Template YamlReader::Compile(const Located& located, RawTask* task) {
  std::vector<std::string> messages;
  Template t = Template::Compile(located.text, task->matrix_keys, task->has_matrix,
                                 !task->matrix_ok, task->name, &messages,
                                 &task->output_refs, located.where);
  for (std::string& message : messages) Error(located.where, std::move(message));
  return t;
}

void YamlReader::Finish(Settings s, const std::vector<Entry>& entries, RawTask* task) {
  // Task keys win over `defaults`, one by one; a kind's settings are merged
  // by the kind (TaskReader).
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
  if (auto v = s.cache ? s.cache : defaults_.cache) task->cache = *v;

  const TaskKind* kind = s.backend_invalid ? nullptr : kinds_->Find(task->backend);
  if (kind == nullptr) {
    if (!s.backend_invalid) {  // no `backend`, and no kind registered as "spawn"
      Error(task->where, TaskRef(task->name) + " has no 'backend'");
    }
    // The backend was reported; what the task may hold depends on the
    // backend it was meant to have, so only check what stands on its own.
    for (const Entry& e : entries) {
      const TaskKey* key = kinds_->FindKey(e.key);
      if (key == nullptr || key->type != KeyType::kArgv || key->setting) continue;
      bool shell = false;
      std::vector<Located> argv;
      ReadArgv(e, " in " + TaskRef(task->name), &shell, &argv);
    }
    SortServices(task);
    return;
  }

  TaskReader reader(this, task, &s, &entries);
  task->compiled = kind->Read(reader);
  for (const Entry& e : entries) {
    const TaskKey* key = kinds_->FindKey(e.key);
    if (key == nullptr || kinds_->Declares(task->backend, e.key)) continue;
    const std::string_view why = kind->DoesNotApply(e.key);
    if (why.empty()) {
      NotForBackend(e, key->applies_to, *task);
    } else {
      Error(e.key_pos, "'" + e.key + "' in " + TaskRef(task->name) +
                           " does not apply to backend " + task->backend + ": " +
                           std::string(why));
    }
  }
  SortServices(task);
}

void YamlReader::NotForBackend(const Entry& e, std::string_view applies_to,
                               const RawTask& task) {
  Error(e.key_pos, "'" + e.key + "' in " + TaskRef(task.name) + " only applies to " +
                       std::string(applies_to) + "; this task's backend is " +
                       task.backend);
}

}  // namespace drover::spec::internal

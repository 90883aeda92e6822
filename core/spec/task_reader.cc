// YamlReader, part two: `tasks` and each task's run, needs and matrix.
#include <algorithm>
#include <limits>
#include <unordered_map>

#include "core/spec/text.h"
#include "core/spec/yaml_reader.h"

namespace drover::spec::internal {
namespace {

constexpr std::string_view kTaskOnlyKeys[] = {"run", "needs", "matrix"};

std::string TaskRef(std::string_view name) { return "task " + Quoted(name); }

bool IsBlank(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
  });
}

bool HasControlCharacter(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7F;
  });
}

uint64_t SaturatingProduct(const std::vector<std::vector<std::string>>& lists) {
  uint64_t product = 1;
  for (const auto& list : lists) {
    if (__builtin_mul_overflow(product, list.size(), &product)) {
      return std::numeric_limits<uint64_t>::max();
    }
  }
  return product;
}

}  // namespace

void YamlReader::ReadTasks(const Entry& e, RawJob* job) {
  job->tasks_where = e.key_pos;
  if (IsEmpty(e.value) || (e.value.IsMap() && e.value.size() == 0)) {
    Error(e.key_pos, "'tasks' is empty: a job needs at least one task");
    return;
  }
  if (!e.value.IsMap()) {
    Error(e.value_pos, "'tasks' must be a map of task name to task, " + Got(e.value));
    return;
  }
  std::vector<Entry> entries = Entries(e.value, "", MapKind::kTasks);
  job->tasks.reserve(entries.size());
  for (const Entry& entry : entries) ReadTask(entry, &job->tasks.emplace_back());
}

void YamlReader::ReadTask(const Entry& e, RawTask* out) {
  RawTask& task = *out;
  task.name = e.key;
  task.where = e.key_pos;
  const std::string context = " in " + TaskRef(task.name);
  if (task.name.empty()) {
    Error(e.key_pos, "a task name cannot be empty");
  } else if (!IsValidName(task.name)) {
    Error(e.key_pos, "invalid task name " + Quoted(task.name) +
                         ": use letters, digits, '_', '.' and '-'");
  }
  if (!e.value.IsMap()) {
    std::string message =
        TaskRef(task.name) + " must be a map with at least 'run', " + Got(e.value);
    if (e.value.IsScalar()) message += " (write " + task.name + ": {run: ...})";
    Error(e.value_pos, std::move(message));
    return;
  }

  const std::vector<Entry> entries = Entries(e.value, context, MapKind::kKeys);
  // The matrix first: checking `${matrix.KEY}` needs its keys.
  for (const Entry& entry : entries) {
    if (entry.key == "matrix") ReadMatrix(entry, context, &task);
  }
  std::vector<std::string_view> candidates(std::begin(kTaskOnlyKeys), std::end(kTaskOnlyKeys));
  candidates.insert(candidates.end(), std::begin(kSettingKeys), std::end(kSettingKeys));
  bool has_run = false;
  std::vector<Located> run;
  Settings own;
  for (const Entry& entry : entries) {
    if (entry.key == "matrix") continue;
    if (entry.key == "run") {
      has_run = true;
      ReadRun(entry, context, &task, &run);
    } else if (entry.key == "needs") {
      ReadNeeds(entry, context, &task);
    } else if (ReadSetting(entry, context, &own)) {
      continue;
    } else if (const PlannedKey* planned = FindPlannedTaskKey(entry.key)) {
      Error(entry.key_pos, PlannedTaskKeyMessage(*planned, context));
    } else {
      UnknownKey(entry, context, candidates);
    }
  }
  if (!has_run) Error(e.key_pos, TaskRef(task.name) + " has no 'run' (the command to run)");
  Finish(std::move(own), run, &task);
}

void YamlReader::ReadRun(const Entry& e, std::string_view context, RawTask* task,
                         std::vector<Located>* run) {
  if (IsEmpty(e.value) || (e.value.IsScalar() && IsBlank(e.value.Scalar()))) {
    Error(e.value_pos, "'run'" + std::string(context) + " is empty");
    return;
  }
  if (e.value.IsScalar()) {
    task->shell = true;
    run->push_back(Located{e.value.Scalar(), e.value_pos});
    return;
  }
  if (!e.value.IsSequence()) {
    Error(e.value_pos, "'run'" + std::string(context) +
                           " must be a command line or a list of arguments, " + Got(e.value));
    return;
  }
  if (e.value.size() == 0) {
    Error(e.value_pos, "'run'" + std::string(context) + " is an empty list");
    return;
  }
  for (size_t i = 0; i < e.value.size(); ++i) {
    const YNode item = e.value.Item(i);
    const size_t number = i + 1;
    const Pos where = IsEmpty(item) ? e.value_pos : At(item);
    if (!item.IsScalar()) {
      Error(where, "'run' item " + std::to_string(number) + std::string(context) +
                       " must be a string, " + Got(item));
      continue;
    }
    if (number == 1 && item.Scalar().empty()) {
      Error(where, "the program ('run' item 1)" + std::string(context) + " is empty");
    }
    run->push_back(Located{item.Scalar(), where});
  }
}

void YamlReader::ReadNeeds(const Entry& e, std::string_view context, RawTask* task) {
  auto add = [&](const YNode& item, Pos where) {
    if (!item.IsScalar()) {
      Error(where, "'needs'" + std::string(context) + " must list task names, " + Got(item));
      return;
    }
    task->needs.push_back(NeedRef{item.Scalar(), where});
  };
  if (e.value.IsScalar()) {
    add(e.value, e.value_pos);
  } else if (e.value.IsSequence()) {
    for (size_t i = 0; i < e.value.size(); ++i) {
      const YNode item = e.value.Item(i);
      add(item, IsEmpty(item) ? e.value_pos : At(item));
    }
  } else {
    Error(e.value_pos, "'needs'" + std::string(context) +
                           " must be a task name or a list of task names, " + Got(e.value));
  }
}

void YamlReader::ReadMatrix(const Entry& e, std::string_view context, RawTask* task) {
  task->has_matrix = true;
  task->matrix_where = e.key_pos;
  const size_t errors_before = errors_->size();
  if (IsEmpty(e.value) || !e.value.IsMap()) {
    Error(e.value_pos, "'matrix'" + std::string(context) +
                           " must be a map of key to a list of values, " + Got(e.value));
    task->matrix_ok = false;
    return;
  }
  if (e.value.size() == 0) {
    Error(e.value_pos, "'matrix'" + std::string(context) +
                           " is empty: give it at least one key with a list of values");
    task->matrix_ok = false;
    return;
  }
  const std::vector<Entry> keys = Entries(e.value, " in the matrix" + std::string(context),
                                          MapKind::kKeys);
  for (const Entry& key : keys) {
    const std::string key_ref = "matrix key " + Quoted(key.key) + std::string(context);
    const bool key_ok = IsValidName(key.key);
    if (!key_ok) {
      Error(key.key_pos, "invalid " + key_ref + ": use letters, digits, '_', '.' and '-'");
    }
    if (IsEmpty(key.value) || (key.value.IsSequence() && key.value.size() == 0)) {
      Error(key.value_pos, key_ref + " has no values");
      continue;
    }
    if (!key.value.IsSequence()) {
      Error(key.value_pos, key_ref + " must be a list of values, " + Got(key.value));
      continue;
    }
    std::vector<std::string> values;
    values.reserve(key.value.size());
    // Views into `values`, which never reallocates (reserved above).
    std::unordered_map<std::string_view, int> first_line;
    first_line.reserve(key.value.size());
    for (size_t i = 0; i < key.value.size(); ++i) {
      const YNode item = key.value.Item(i);
      const size_t number = i + 1;
      const Pos where = IsEmpty(item) ? key.value_pos : At(item);
      if (!item.IsScalar()) {
        Error(where, key_ref + ": item " + std::to_string(number) +
                         " must be a single value, " + Got(item));
        continue;
      }
      const std::string& value = item.Scalar();
      // Values become part of instance names, which must stay one line
      // and, with several keys, split back unambiguously at the commas.
      if (HasControlCharacter(value)) {
        Error(where, key_ref + ": value " + Quoted(value) +
                         " cannot contain control characters (it becomes part of a task name)");
        continue;
      }
      if (keys.size() > 1 && value.find(',') != std::string::npos) {
        Error(where, key_ref + ": value " + Quoted(value) +
                         " cannot contain ',' when the matrix has several keys "
                         "(instance names would be ambiguous)");
        continue;
      }
      values.push_back(value);
      const auto [seen, inserted] = first_line.emplace(values.back(), where.line);
      if (!inserted) {
        Error(where, "duplicate value " + Quoted(value) + " for " + key_ref +
                         " (first at line " + std::to_string(seen->second) + ")");
        values.pop_back();
      }
    }
    if (key_ok && !values.empty()) {
      task->matrix_keys.push_back(key.key);
      task->matrix_values.push_back(std::move(values));
    }
  }
  if (errors_->size() != errors_before || task->matrix_keys.empty()) task->matrix_ok = false;
  task->instances = SaturatingProduct(task->matrix_values);
}

void YamlReader::Finish(Settings s, const std::vector<Located>& run, RawTask* task) {
  // Task keys win over `defaults`, one by one; env merges per variable.
  task->backend = s.backend.value_or(defaults_.backend.value_or("spawn"));
  task->timeout = s.timeout ? s.timeout : defaults_.timeout;
  if (auto v = s.kill_grace ? s.kill_grace : defaults_.kill_grace) task->kill_grace = *v;
  if (auto v = s.retries ? s.retries : defaults_.retries) task->retries = *v;
  if (auto v = s.retry_backoff ? s.retry_backoff : defaults_.retry_backoff) {
    task->retry_backoff = *v;
  }
  if (auto v = s.output_limit ? s.output_limit : defaults_.output_limit) {
    task->output_limit = *v;
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

  std::vector<std::string> messages;
  auto compile = [&](const Located& located) {
    messages.clear();
    Template t = Template::Compile(located.text, task->matrix_keys, task->has_matrix,
                                   !task->matrix_ok, task->name, &messages);
    for (std::string& message : messages) Error(located.where, std::move(message));
    return t;
  };
  if (task->shell && !run.empty()) {
    task->argv.push_back(Template::Literal("/bin/sh"));
    task->argv.push_back(Template::Literal("-c"));
    task->argv.push_back(compile(run.front()));
  } else {
    for (const Located& arg : run) task->argv.push_back(compile(arg));
  }
  if (s.env) {
    for (const auto& [name, value] : *s.env) task->env.emplace_back(name, compile(value));
  }
  if (s.cwd) task->cwd = compile(*s.cwd);
}

}  // namespace drover::spec::internal

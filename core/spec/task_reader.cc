// YamlReader, part two: `tasks` and each task's run, needs and matrix.
// The keys that depend on a task's backend: backend_keys.cc and the
// backends' task kinds (task_kind.h).
#include <algorithm>
#include <bit>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>

#include "core/spec/text.h"
#include "core/spec/yaml_reader.h"

namespace drover::spec::internal {
namespace {

// The keys every task has that `defaults` cannot hold; a task's kind adds
// its own (task_kind.h).
constexpr std::string_view kTaskOnlyKeys[] = {"needs", "matrix", "on", "slots", "inputs"};
// Bounds `slots`: more than any worker offers is legal (the task then waits
// with a reason), but a value past this is a typo.
constexpr int64_t kMaxTaskSlots = 1'000'000;

bool IsBlank(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
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
  std::vector<std::string_view> candidates(std::begin(kTaskOnlyKeys),
                                           std::end(kTaskOnlyKeys));
  candidates.insert(candidates.end(), std::begin(kSettingKeys), std::end(kSettingKeys));
  for (const TaskKey& key : kinds_->keys()) candidates.push_back(key.name);
  Settings own;
  for (const Entry& entry : entries) {
    if (entry.key == "matrix") continue;
    if (entry.key == "needs") {
      ReadNeeds(entry, context, &task);
    } else if (entry.key == "inputs") {
      ReadInputs(entry, context, &task);
    } else if (entry.key == "slots") {
      if (auto n = Integer(entry, context, "a positive integer", 1, kMaxTaskSlots)) {
        task.slots = static_cast<uint32_t>(*n);
      }
    } else if (entry.key == "on") {
      // Labels a worker must have: `on: {zone: a, gpu: "yes"}`.
      if (IsEmpty(entry.value) || !entry.value.IsMap()) {
        Error(entry.value_pos, "'on'" + context +
                                   " must be a map of worker label to value, " +
                                   Got(entry.value));
        continue;
      }
      for (const Entry& label :
           Entries(entry.value, " in 'on'" + context, MapKind::kKeys)) {
        if (!IsValidName(label.key)) {
          Error(label.key_pos, "invalid label " + Quoted(label.key) + " in 'on'" +
                                   context + ": use letters, digits, '_', '.' and '-'");
          continue;
        }
        if (auto value = Scalar(label, " in 'on'" + context, "a label value")) {
          task.on.emplace_back(label.key, std::move(*value));
        }
      }
      std::sort(task.on.begin(), task.on.end());
    } else if (ReadSetting(entry, context, &own)) {
      continue;
    } else if (kinds_->FindKey(entry.key) == nullptr) {
      // A kind's other keys: whether they are allowed, and what they mean,
      // depends on the backend, which may come later in the task or from
      // `defaults` (Finish).
      UnknownKey(entry, context, candidates);
    }
  }
  Finish(std::move(own), entries, &task);
}

void YamlReader::ReadArgv(const Entry& e, std::string_view context, bool* shell,
                          std::vector<Located>* argv) {
  const std::string key = "'" + e.key + "'";
  if (IsEmpty(e.value) || (e.value.IsScalar() && IsBlank(e.value.Scalar()))) {
    Error(e.value_pos, key + std::string(context) + " is empty");
    return;
  }
  if (e.value.IsScalar()) {
    *shell = true;
    argv->push_back(Located{e.value.Scalar(), e.value_pos});
    return;
  }
  if (!e.value.IsSequence()) {
    Error(e.value_pos, key + std::string(context) +
                           " must be a command line or a list of arguments, " +
                           Got(e.value));
    return;
  }
  if (e.value.size() == 0) {
    Error(e.value_pos, key + std::string(context) + " is an empty list");
    return;
  }
  for (size_t i = 0; i < e.value.size(); ++i) {
    const YNode item = e.value.Item(i);
    const size_t number = i + 1;
    const Pos where = IsEmpty(item) ? e.value_pos : At(item);
    if (!item.IsScalar()) {
      Error(where, key + " item " + std::to_string(number) + std::string(context) +
                       " must be a string, " + Got(item));
      continue;
    }
    if (number == 1 && item.Scalar().empty()) {
      Error(where,
            "the program (" + key + " item 1)" + std::string(context) + " is empty");
    }
    argv->push_back(Located{item.Scalar(), where});
  }
}

void YamlReader::ReadNeeds(const Entry& e, std::string_view context, RawTask* task) {
  auto add = [&](const YNode& item, Pos where) {
    if (!item.IsScalar()) {
      Error(where,
            "'needs'" + std::string(context) + " must list task names, " + Got(item));
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
                           " must be a task name or a list of task names, " +
                           Got(e.value));
  }
}

namespace {

// The values of a matrix key seen so far, to find one written twice: open
// addressing over their indices, each slot with its value's hash. A
// std::unordered_map of 100,000 values was 10 ms of a submit, most of it
// cache misses on its nodes.
class ValueSet {
 public:
  explicit ValueSet(size_t n) : slots_(std::bit_ceil(std::max<size_t>(16, 2 * n))) {}
  // Adds the last of `values`; the index of an equal one added before, if
  // any (then the last is not added: the caller drops it).
  std::optional<uint32_t> Insert(const std::vector<std::string>& values) {
    const auto index = static_cast<uint32_t>(values.size() - 1);
    const std::string& value = values.back();
    const size_t hash = std::hash<std::string_view>{}(value);
    const auto tag = static_cast<uint32_t>(hash >> 32);
    const size_t mask = slots_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      Slot& slot = slots_[i];
      if (slot.index == kEmpty) {
        slot = {index, tag};
        return std::nullopt;
      }
      if (slot.tag == tag && values[slot.index] == value) return slot.index;
    }
  }

 private:
  static constexpr uint32_t kEmpty = UINT32_MAX;
  struct Slot {
    uint32_t index = kEmpty;
    uint32_t tag = 0;
  };
  std::vector<Slot> slots_;  // at most half full
};

}  // namespace

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
  const std::vector<Entry> keys =
      Entries(e.value, " in the matrix" + std::string(context), MapKind::kKeys);
  for (const Entry& key : keys) {
    const std::string key_ref = "matrix key " + Quoted(key.key) + std::string(context);
    const bool key_ok = IsValidName(key.key);
    if (!key_ok) {
      Error(key.key_pos,
            "invalid " + key_ref + ": use letters, digits, '_', '.' and '-'");
    }
    if (IsEmpty(key.value) || (key.value.IsSequence() && key.value.size() == 0)) {
      Error(key.value_pos, key_ref + " has no values");
      continue;
    }
    if (key.value.IsScalar() &&
        key.value.Scalar().find(kTasksRefOpen) != std::string::npos) {
      if (key_ok) ReadDynamicKey(key, key_ref, task);
      continue;
    }
    if (!key.value.IsSequence()) {
      Error(key.value_pos, key_ref + " must be a list of values, " + Got(key.value) +
                               " (or one ${tasks.NAME.outputs.KEY}: a dynamic matrix)");
      continue;
    }
    std::vector<std::string> values;
    values.reserve(key.value.size());
    std::vector<std::string> json;  // the JSON form of each of `values`
    json.reserve(key.value.size());
    ValueSet seen(key.value.size());
    std::vector<int> lines;  // the line of each of `values`
    lines.reserve(key.value.size());
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
        Error(where,
              key_ref + ": value " + Quoted(value) +
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
      if (const std::optional<uint32_t> first = seen.Insert(values)) {
        Error(where, "duplicate value " + Quoted(value) + " for " + key_ref +
                         " (first at line " + std::to_string(lines[*first]) + ")");
        values.pop_back();
        continue;
      }
      lines.push_back(where.line);
      if (item.IsPlain()) {
        json.push_back(PlainScalarJson(value).value_or(std::string()));
      } else {
        json.emplace_back();
        AppendJsonString(value, &json.back());
      }
    }
    if (key_ok && !values.empty()) {
      task->matrix_keys.push_back(key.key);
      task->matrix_values.push_back(std::move(values));
      task->matrix_json.push_back(std::move(json));
    }
  }
  if (errors_->size() != errors_before || task->matrix_keys.empty())
    task->matrix_ok = false;
  // A dynamic task is one placeholder until it is expanded.
  task->instances =
      task->dynamic_keys.empty() ? SaturatingProduct(task->matrix_values) : 1;
}

void YamlReader::ReadDynamicKey(const Entry& key, const std::string& key_ref,
                                RawTask* task) {
  const std::string& text = key.value.Scalar();
  size_t length = 0;
  std::optional<OutputRef> ref;
  std::string why;
  if (text.starts_with(kTasksRefOpen)) {
    Result<OutputRef> parsed = ParseOutputRef(text, &length);
    if (!parsed.ok()) {
      why = ": " + parsed.status().message();
    } else if (length == text.size()) {
      ref = std::move(*parsed);
    }
  }
  if (!ref) {
    Error(key.value_pos,
          key_ref +
              " must be a list of values or exactly one reference "
              "${tasks.NAME.outputs.KEY} or ${tasks.NAME.result} (a dynamic matrix), "
              "got " +
              Quoted(text) + why);
    return;
  }
  ref->where = key.value_pos;
  task->dynamic_keys.push_back(DynamicKey{task->matrix_keys.size(), std::move(*ref)});
  // The reference's text stands for the key's value at load: in the
  // placeholder's summary and wherever ${matrix.KEY} is checked.
  std::string json;
  AppendJsonString(text, &json);
  task->matrix_keys.push_back(key.key);
  task->matrix_values.push_back({text});
  task->matrix_json.push_back({std::move(json)});
}

}  // namespace drover::spec::internal

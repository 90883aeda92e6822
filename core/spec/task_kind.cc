// TaskReader (the kinds' view of a task, over YamlReader), Instance and
// the TaskKinds registry.
#include "core/spec/task_kind.h"

#include <algorithm>

#include "core/spec/text.h"
#include "core/spec/yaml_reader.h"

namespace drover::spec {

using internal::Entry;

const std::string& Field::key() const { return entry_->key; }
Pos Field::key_pos() const { return entry_->key_pos; }
Pos Field::value_pos() const { return entry_->value_pos; }

TaskReader::TaskReader(internal::YamlReader* reader, internal::RawTask* task,
                       const internal::Settings* own, const std::vector<Entry>* entries)
    : reader_(reader), task_(task), own_(own), entries_(entries) {}

const std::string& TaskReader::name() const { return task_->name; }
const std::string& TaskReader::backend() const { return task_->backend; }
Pos TaskReader::where() const { return task_->where; }
std::string TaskReader::Ref() const { return "task " + internal::Quoted(task_->name); }
std::string TaskReader::Context() const { return " in " + Ref(); }

void TaskReader::Error(Pos where, std::string message) {
  reader_->Error(where, std::move(message));
}

std::optional<Field> TaskReader::Own(std::string_view key) const {
  for (const Entry& e : *entries_) {
    if (e.key == key) return Field(&e);
  }
  return std::nullopt;
}

const NameRef* TaskReader::OwnName(std::string_view key) const {
  const internal::KindSetting* own = own_->Find(key);
  return own != nullptr && own->name ? &*own->name : nullptr;
}

const NameRef* TaskReader::Name(std::string_view key) const {
  if (const NameRef* own = OwnName(key)) return own;
  const internal::KindSetting* inherited = reader_->defaults_.Find(key);
  return inherited != nullptr && inherited->name ? &*inherited->name : nullptr;
}

const Located* TaskReader::Text(std::string_view key) const {
  const internal::KindSetting* own = own_->Find(key);
  if (own != nullptr && own->text) return &*own->text;
  const internal::KindSetting* inherited = reader_->defaults_.Find(key);
  return inherited != nullptr && inherited->text ? &*inherited->text : nullptr;
}

std::optional<RawEnv> TaskReader::Env(std::string_view key) const {
  const internal::KindSetting* own = own_->Find(key);
  const internal::KindSetting* inherited = reader_->defaults_.Find(key);
  std::optional<RawEnv> env;
  if (own != nullptr) env = own->env;
  if (inherited == nullptr || !inherited->env) return env;
  RawEnv merged = *inherited->env;
  if (env) {
    for (auto& [name, value] : *env) {
      auto same = std::find_if(merged.begin(), merged.end(),
                               [&name = name](const auto& kv) { return kv.first == name; });
      if (same != merged.end()) {
        same->second = std::move(value);
      } else {
        merged.emplace_back(std::move(name), std::move(value));
      }
    }
  }
  return merged;
}

TaskLimits TaskReader::Limits(std::string_view key) const {
  TaskLimits limits;
  const internal::KindSetting* inherited = reader_->defaults_.Find(key);
  if (inherited != nullptr && inherited->limits) limits = *inherited->limits;
  const internal::KindSetting* own = own_->Find(key);
  if (own == nullptr || !own->limits) return limits;
  const TaskLimits& mine = *own->limits;
  if (mine.cpu) limits.cpu = mine.cpu;
  if (mine.memory) limits.memory = mine.memory;
  if (mine.files) limits.files = mine.files;
  if (mine.processes) limits.processes = mine.processes;
  return limits;
}

void TaskReader::Argv(const Field& f, bool* shell, std::vector<Located>* argv) {
  reader_->ReadArgv(*f.entry_, Context(), shell, argv);
}

JsonTemplate TaskReader::Json(const Field& f) { return reader_->ReadJson(*f.entry_, task_); }

std::vector<Located> TaskReader::Strings(const Field& f, std::string_view expected) {
  std::vector<Located> out;
  const internal::YNode& v = f.entry_->value;
  const std::string key = "'" + f.entry_->key + "'" + Context();
  if (!internal::IsEmpty(v) && v.IsScalar()) {
    out.push_back(Located{v.Scalar(), f.entry_->value_pos});
    return out;
  }
  if (internal::IsEmpty(v) || !v.IsSequence()) {
    Error(f.entry_->value_pos, key + " must be " + std::string(expected) + " or a list of them, " +
                                   internal::Got(v));
    return out;
  }
  for (size_t i = 0; i < v.size(); ++i) {
    const internal::YNode item = v.Item(i);
    const Pos where = internal::IsEmpty(item) ? f.entry_->value_pos : reader_->At(item);
    if (internal::IsEmpty(item) || !item.IsScalar()) {
      Error(where, key + ": item " + std::to_string(i + 1) + " must be " +
                       std::string(expected) + ", " + internal::Got(item));
      continue;
    }
    out.push_back(Located{item.Scalar(), where});
  }
  return out;
}

bool TaskReader::IsMap(const Field& f) const {
  return !internal::IsEmpty(f.entry_->value) && f.entry_->value.IsMap();
}

std::string TaskReader::Got(const Field& f) const { return internal::Got(f.entry_->value); }

std::vector<Field> TaskReader::Entries(const Field& map, std::string_view context) {
  std::vector<Entry>& entries = nested_.emplace_back(
      reader_->Entries(map.entry_->value, context, internal::YamlReader::MapKind::kKeys));
  std::vector<Field> fields;
  fields.reserve(entries.size());
  for (const Entry& e : entries) fields.push_back(Field(&e));
  return fields;
}

std::optional<std::string> TaskReader::Scalar(const Field& f, std::string_view context,
                                              std::string_view expected) {
  return reader_->Scalar(*f.entry_, context, expected);
}

std::optional<int64_t> TaskReader::Integer(const Field& f, std::string_view context,
                                           std::string_view expected, int64_t min,
                                           int64_t max) {
  return reader_->Integer(*f.entry_, context, expected, min, max);
}

std::optional<Duration> TaskReader::DurationValue(const Field& f, std::string_view context,
                                                  bool allow_zero) {
  return reader_->DurationValue(*f.entry_, context, allow_zero);
}

void TaskReader::UnknownKey(const Field& f, std::string_view context,
                            const std::vector<std::string_view>& candidates) {
  reader_->UnknownKey(*f.entry_, context, candidates);
}

Template TaskReader::Compile(const Located& text) {
  reader_->NoteServiceRefs(text.text, text.where, task_);
  return reader_->Compile(text, task_);
}

void TaskReader::CheckEachValue(
    const Template& t, Pos where,
    const std::function<std::optional<std::string>(std::string_view)>& bad) {
  const internal::RawTask& task = *task_;
  if (t.constant() || !task.matrix_ok) return;
  const size_t keys = task.matrix_keys.size();
  std::vector<bool> dynamic(keys, false);  // their values come at run time
  for (const internal::DynamicKey& d : task.dynamic_keys) {
    if (d.key < keys) dynamic[d.key] = true;
  }
  std::vector<const std::string*> values(keys, nullptr);
  for (size_t k = 0; k < keys; ++k) {
    if (task.matrix_values[k].empty()) return;  // reported where it was read
    values[k] = &task.matrix_values[k].front();
  }
  std::vector<bool> done(keys, false);
  for (uint32_t k : t.refs()) {
    if (k >= keys || done[k] || dynamic[k]) continue;
    done[k] = true;
    const std::string* first = values[k];
    for (const std::string& value : task.matrix_values[k]) {
      values[k] = &value;
      if (std::optional<std::string> why = bad(t.Render(values))) {
        Error(where, *why + " (with matrix value " + task.matrix_keys[k] + "=" +
                         internal::Quoted(value) + ")" + Context());
        return;
      }
    }
    values[k] = first;
  }
}

void TaskReader::NoteServiceRefs(std::string_view text, Pos where) {
  reader_->NoteServiceRefs(text, where, task_);
}

void TaskReader::NoteServiceRefs(const JsonTemplate& json, Pos where) {
  reader_->NoteServiceRefs(json, where, task_);
}

void TaskReader::NeedService(std::string name) { task_->services.push_back(std::move(name)); }

const PoolDecl* TaskReader::FindPool(std::string_view pool) const {
  for (const PoolDecl& decl : reader_->job_->pools) {
    if (decl.name == pool) return &decl;
  }
  return nullptr;
}

const std::vector<std::string>& TaskReader::plugins() const { return reader_->job_->plugins; }

std::string Instance::Render(const Template& t) const {
  return t.constant() ? t.text() : t.Render(values_);
}

std::string Instance::Render(const std::optional<JsonTemplate>& t) const {
  if (!t) return std::string();
  return t->constant() ? t->text() : t->Render(values_, json_);
}

void CompiledTask::SetConstant(std::string summary, std::string payload) {
  constant_ = Constant{std::move(summary), std::move(payload)};
}

bool CompiledTask::AssignConstant(TaskSpec* ts) const {
  if (!constant_) return false;
  ts->summary = constant_->summary;
  ts->payload = constant_->payload;
  return true;
}

bool TaskKinds::Add(std::string name, std::unique_ptr<TaskKind> kind) {
  if (Find(name) != nullptr) return false;
  Registered r{std::move(kind), {}};
  r.keys = r.kind->Keys();
  for (const TaskKey& key : r.keys) {
    if (FindKey(key.name) == nullptr) keys_.push_back(key);
  }
  names_.push_back(std::move(name));
  kinds_.push_back(std::move(r));
  return true;
}

const TaskKind* TaskKinds::Find(std::string_view name) const {
  for (size_t i = 0; i < names_.size(); ++i) {
    if (names_[i] == name) return kinds_[i].kind.get();
  }
  return nullptr;
}

const TaskKey* TaskKinds::FindKey(std::string_view key) const {
  for (const TaskKey& k : keys_) {
    if (k.name == key) return &k;
  }
  return nullptr;
}

bool TaskKinds::Declares(std::string_view name, std::string_view key) const {
  for (size_t i = 0; i < names_.size(); ++i) {
    if (names_[i] != name) continue;
    const std::vector<TaskKey>& keys = kinds_[i].keys;
    return std::any_of(keys.begin(), keys.end(),
                       [key](const TaskKey& k) { return k.name == key; });
  }
  return false;
}

}  // namespace drover::spec

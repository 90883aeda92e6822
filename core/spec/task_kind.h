// TaskKind: how a backend reads its own keys of a task (`run` for spawn,
// `fn` and `args` for threads, ...) and turns each task instance into its
// wire payload. Each backend folder implements one (backends/X/X_kind.h);
// a TaskKinds registry maps the names `backend:` may take to them, and the
// loader (LoadOptions::kinds) calls the task's kind through a TaskReader,
// a facade over the YAML that hides the document.
//
// Reading a task, the loader:
//   1. reads the keys every task has (needs, matrix, on, slots, timeout,
//      ...) and every key a kind declares as a `setting` (with the type the
//      kind gives it), in the task and in `defaults`, whatever the task's
//      backend;
//   2. calls Read() of the task's kind, which reads its other keys and
//      compiles what it needs per instance;
//   3. reports each key of the task that another kind declares and this one
//      does not: "'pool' in task 'a' only applies to backend fork; this
//      task's backend is spawn" (TaskKey::applies_to), or the kind's own
//      DoesNotApply() reason;
// and, when the whole job has no error, calls CompiledTask::Render() once
// per matrix instance.
//
// Details callers may rely on:
// - Errors go through TaskReader::Error and the typed reads, with the file's
//   line and column; a kind reports what is wrong and carries on (every error
//   of a file is reported in one pass).
// - A TaskReader and the Fields it hands out are valid during Read() only.
// - Kinds are immutable once registered and shared by every load: Read()
//   and Render() must be thread-safe (const, no state of their own).
#ifndef DROVER_CORE_SPEC_TASK_KIND_H_
#define DROVER_CORE_SPEC_TASK_KIND_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/base/clock.h"
#include "core/spec/job_spec.h"
#include "core/spec/json_template.h"
#include "core/spec/template.h"

namespace drover::spec {

namespace internal {
struct Entry;
struct RawTask;
struct Settings;
class YamlReader;
}  // namespace internal

using internal::JsonTemplate;
using internal::Located;
using internal::NameRef;
using internal::Pos;
using internal::RawEnv;
using internal::Template;

// How the loader reads a key a kind declares as a setting.
enum class KeyType : uint8_t {
  kOther,         // read by the kind itself, through TaskReader
  kArgv,          // a command: a string (for /bin/sh -c) or a list of arguments;
                  // checked even in a task whose `backend` is wrong
  kText,          // a string (TaskKey::expected says what it holds)
  kEnv,           // a map NAME: value; a task's merges over `defaults`' per variable
  kFunctionName,  // the name of a registered function
  kPoolName,      // a name in `pools:` (or a worker's, with undeclared_pools)
  kServiceName,   // a name in `services:`
  kLimits,        // a map of resource limits (TaskLimits); a task's merges
                  // over `defaults`' per limit
};

// A key a kind reads in a task.
struct TaskKey {
  std::string_view name;
  KeyType type = KeyType::kOther;
  // `defaults` may hold it. The loader then reads it wherever it is
  // written, for tasks of every backend (type is not kOther or kArgv).
  bool setting = false;
  // kText: what it must be ("a directory"), for "must be ..., got a list".
  std::string_view expected;
  // Where it applies, for "'env' in task 'a' only applies to backend spawn;
  // this task's backend is threads". When several kinds declare a key, the
  // first registered one's text is used: give the same text in each.
  std::string_view applies_to;
};

// A key and its value, in a task or in a map inside one (a handle: valid
// while the TaskReader that gave it is).
class Field {
 public:
  const std::string& key() const;
  Pos key_pos() const;
  Pos value_pos() const;  // the key's position when the value is empty

 private:
  friend class TaskReader;
  explicit Field(const internal::Entry* entry) : entry_(entry) {}
  const internal::Entry* entry_;
};

// One task of a kind, as its Read() sees it. Not thread-safe; one per Read.
class TaskReader {
 public:
  const std::string& name() const;     // the task's key in `tasks:`
  const std::string& backend() const;
  Pos where() const;                   // of the task's key
  std::string Ref() const;             // "task 'a'"
  std::string Context() const;         // " in task 'a'"
  void Error(Pos where, std::string message);

  // The task's own `key` (not `defaults`'), if written.
  std::optional<Field> Own(std::string_view key) const;

  // Settings (TaskKey::setting), read by the loader: the task's own value,
  // else `defaults`'. Nullptr when neither holds a readable one; a name
  // with ok == false was written but is wrong and already reported.
  const NameRef* Name(std::string_view key) const;
  const NameRef* OwnName(std::string_view key) const;  // the task's only
  const Located* Text(std::string_view key) const;
  // `defaults`' variables with the task's over them, one by one.
  std::optional<RawEnv> Env(std::string_view key) const;
  // `defaults`' limits with the task's over them, one by one (empty when
  // neither writes any).
  TaskLimits Limits(std::string_view key) const;

  // Typed reads of a task's key or of a field of a map inside it. Each
  // reports its own error and returns nothing on failure. `context` ends a
  // message's subject (" in 'request' in task 'a'").
  //
  // A command: one string for the shell (then *shell is set), or the items.
  void Argv(const Field& f, bool* shell, std::vector<Located>* argv);
  // Any YAML value as JSON text, with holes for `${matrix.KEY}` (capped
  // in size and depth; "null" after an error).
  JsonTemplate Json(const Field& f);
  // A string, or a list of strings (`expected` names one: "a path"). A
  // list item that is not a string is reported and left out.
  std::vector<Located> Strings(const Field& f, std::string_view expected);
  bool IsMap(const Field& f) const;   // a map (possibly empty), not nothing
  std::string Got(const Field& f) const;  // "got a list", for messages
  // The fields of a map, in file order; duplicates reported and left out.
  std::vector<Field> Entries(const Field& map, std::string_view context);
  std::optional<std::string> Scalar(const Field& f, std::string_view context,
                                    std::string_view expected);
  std::optional<int64_t> Integer(const Field& f, std::string_view context,
                                 std::string_view expected, int64_t min, int64_t max);
  std::optional<Duration> DurationValue(const Field& f, std::string_view context,
                                        bool allow_zero);
  // "unknown key 'x' ... (did you mean 'y'?)" over `candidates`.
  void UnknownKey(const Field& f, std::string_view context,
                  const std::vector<std::string_view>& candidates);

  // `text` with its `${matrix.KEY}` references resolved (errors reported
  // at text.where), after noting its `${services.NAME.port|host}` ones.
  Template Compile(const Located& text);
  // Renders `t` with each value of each static matrix key it refers to, one
  // key at a time (the other keys at their first value), and reports at
  // `where` the first rendering `bad` refuses, naming the value. For rules
  // on each part of a path, which no other key's value can mend: a `..`
  // or an absolute start is caught at load, not in every attempt.
  void CheckEachValue(
      const Template& t, Pos where,
      const std::function<std::optional<std::string>(std::string_view)>& bad);
  // Notes the `${services...}` references in `text` or `json` (written at
  // `where`): the task needs those services up on its worker.
  void NoteServiceRefs(std::string_view text, Pos where);
  void NoteServiceRefs(const JsonTemplate& json, Pos where);
  // The task needs service `name` (a declared one) up on its worker.
  void NeedService(std::string name);

  // The job: its well-formed pools (nullptr when `name` is none of them:
  // undeclared, broken, or a worker's), and its `plugins`.
  const PoolDecl* FindPool(std::string_view name) const;
  const std::vector<std::string>& plugins() const;

 private:
  friend class internal::YamlReader;
  TaskReader(internal::YamlReader* reader, internal::RawTask* task,
             const internal::Settings* own, const std::vector<internal::Entry>* entries);

  internal::YamlReader* reader_;
  internal::RawTask* task_;
  const internal::Settings* own_;
  const std::vector<internal::Entry>* entries_;
  std::deque<std::vector<internal::Entry>> nested_;  // what Entries() returned
};

// The matrix values of one task instance.
class Instance {
 public:
  Instance(const std::vector<const std::string*>& values,
           const std::vector<const std::string*>& json)
      : values_(values), json_(json) {}
  std::string Render(const Template& t) const;
  // "" when `t` is unset.
  std::string Render(const std::optional<JsonTemplate>& t) const;

 private:
  const std::vector<const std::string*>& values_;  // the value of each matrix key
  const std::vector<const std::string*>& json_;    // its JSON form
};

// A task of a kind, read: what each of its instances needs.
class CompiledTask {
 public:
  virtual ~CompiledTask() = default;
  // Sets ts->payload and, if the kind has them, ts->fingerprint (left 0,
  // the loader uses TaskFingerprint(); fingerprint.h), ts->worker_pool and
  // ts->summary. Every other field of *ts is set: name, matrix, backend,
  // timeout, kill_grace, output_limit, services, services_fingerprint, ...
  virtual void Render(const Instance& instance, TaskSpec* ts) const = 0;

 protected:
  // For a task whose summary and payload do not vary with its instance (no
  // matrix reference in what they are made from): the kind's Read makes
  // them once (SetConstant), and Render assigns them (AssignConstant)
  // instead of making them again for each of a matrix's instances.
  void SetConstant(std::string summary, std::string payload);
  // Sets ts's summary and payload when SetConstant was called, and says
  // so. Assigned, so that an instance made into a released one's node
  // keeps its buffers (TaskList::operator[]).
  bool AssignConstant(TaskSpec* ts) const;

 private:
  struct Constant {
    std::string summary;
    std::string payload;
  };
  std::optional<Constant> constant_;
};

class TaskKind {
 public:
  virtual ~TaskKind() = default;
  // The keys it reads in a task, beyond those every task has.
  virtual std::vector<TaskKey> Keys() const = 0;
  // Why `key`, another kind's key written in a task of this one, does not
  // apply, when "only applies to ..." would not say enough: the message
  // becomes "'run' in task 'a' does not apply to backend threads: WHY".
  // Empty for the usual message.
  virtual std::string_view DoesNotApply(std::string_view key) const {
    (void)key;
    return {};
  }
  // Reads a task whose backend is this kind's. The result is used only
  // when the job has no error; it may be null after one.
  virtual std::unique_ptr<CompiledTask> Read(TaskReader& task) const = 0;
};

// Backend name -> TaskKind. Filled once at startup, then read-only (safe
// to share between threads).
class TaskKinds {
 public:
  // Registers `kind` as backend `name`. False (nothing added) when `name`
  // is already registered.
  bool Add(std::string name, std::unique_ptr<TaskKind> kind);
  // The kind of backend `name`, or nullptr.
  const TaskKind* Find(std::string_view name) const;
  // The backends, in registration order.
  const std::vector<std::string>& names() const { return names_; }
  // The first declaration of `key` by a registered kind, or nullptr.
  const TaskKey* FindKey(std::string_view key) const;
  // Whether backend `name`'s kind declares `key`.
  bool Declares(std::string_view name, std::string_view key) const;
  // Every key some kind declares, each once, in registration order.
  const std::vector<TaskKey>& keys() const { return keys_; }

 private:
  struct Registered {
    std::unique_ptr<TaskKind> kind;
    std::vector<TaskKey> keys;
  };
  std::vector<std::string> names_;
  std::vector<Registered> kinds_;  // parallel to names_
  std::vector<TaskKey> keys_;
};

}  // namespace drover::spec

#endif  // DROVER_CORE_SPEC_TASK_KIND_H_

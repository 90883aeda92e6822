// The loader's intermediate form: a job as read from the YAML, before its
// matrices are expanded. yaml_reader.cc and task_reader.cc fill it from the
// document, graph.cc checks the dependency graph and the size caps,
// expand.cc turns it into the JobSpec the coordinator runs. Internal to
// core/spec; no yaml-cpp here.
#ifndef DROVER_CORE_SPEC_RAW_JOB_H_
#define DROVER_CORE_SPEC_RAW_JOB_H_

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/base/clock.h"
#include "core/spec/job_spec.h"
#include "core/spec/json_template.h"
#include "core/spec/outputs.h"
#include "core/spec/template.h"

namespace drover::spec {
class CompiledTask;  // task_kind.h
}  // namespace drover::spec

namespace drover::spec::internal {

// Collects the errors of one load, sorts them by position at the end.
class ErrorSink {
 public:
  explicit ErrorSink(std::string file) : file_(std::move(file)) {}
  void Add(Pos where, std::string message);
  bool empty() const { return errors_.empty(); }
  size_t size() const { return errors_.size(); }
  const std::string& file() const { return file_; }
  // The errors sorted by (line, column); errors at the same position keep
  // the order they were found in, and one reported twice there is kept once.
  std::vector<SpecError> Take();

 private:
  std::string file_;
  std::vector<SpecError> errors_;
};

// loader.cc: why a spec file could not be read, from ReadWholeFile's
// errno: "the file is larger than 4 MiB", "is a directory", ...
std::string ReadFailure(int err);

// A key a task kind declares as a setting (task_kind.h), as read from a
// task or `defaults`: one of `name`, `env` and `text` is set when the value
// was readable (a name is set, with ok == false, even when it was not).
struct KindSetting {
  std::string key;
  std::optional<NameRef> name;
  std::optional<RawEnv> env;
  std::optional<Located> text;
  std::optional<TaskLimits> limits;
};

// The keys a task and `defaults` share. Unset means "not written here".
struct Settings {
  std::optional<std::string> backend;
  bool backend_invalid = false;  // `backend` was written, and was wrong
  std::optional<Duration> timeout;
  std::optional<Duration> kill_grace;
  std::optional<int> retries;
  std::optional<Duration> retry_backoff;
  std::optional<uint64_t> output_limit;
  std::optional<bool> cache;
  std::vector<KindSetting> kind;  // in file order

  const KindSetting* Find(std::string_view key) const {
    for (const KindSetting& k : kind) {
      if (k.key == key) return &k;
    }
    return nullptr;
  }
};

constexpr uint32_t kNoTask = std::numeric_limits<uint32_t>::max();

struct NeedRef {
  std::string name;
  Pos where;
  uint32_t target = kNoTask;  // index into RawJob::tasks once resolved
};

// A dynamic matrix key (dynamic_matrix.h): the key's index in
// RawTask::matrix_keys and the reference that gives its values.
struct DynamicKey {
  size_t key = 0;
  OutputRef ref;
};

struct RawTask {
  std::string name;
  Pos where;  // of the task's key
  std::vector<NeedRef> needs;

  bool has_matrix = false;
  bool matrix_ok = true;
  Pos matrix_where;
  std::vector<std::string> matrix_keys;                 // in file order
  std::vector<std::vector<std::string>> matrix_values;  // one list per key
  // The JSON form of each matrix value (json_template.h: typed when written
  // plain, a string when quoted), or "" for a number JSON cannot hold.
  std::vector<std::vector<std::string>> matrix_json;

  // The task's settings, its own keys applied over `defaults` over the
  // built-in defaults.
  std::string backend = "spawn";
  std::optional<Duration> timeout;
  Duration kill_grace = std::chrono::seconds(5);
  int retries = 0;
  Duration retry_backoff = std::chrono::seconds(1);
  uint64_t output_limit = 8ull << 20;
  bool cache = false;             // `cache:` (docs/spec.md, "Caching")
  std::vector<InputDecl> inputs;  // `inputs:`, as written (file left empty)
  // What its backend's kind read (task_kind.h); null after an error.
  std::shared_ptr<const CompiledTask> compiled;
  // Every service the task needs (service_reader.cc), sorted, unique.
  std::vector<std::string> services;
  // `on` (sorted by key) and `slots`: placement, copied to every instance.
  EnvList on;
  uint32_t slots = 1;

  uint64_t instances = 1;  // product of the matrix lists (saturating)
  // Its dynamic matrix keys, in file order; a task with any has one
  // instance at load (`instances` is 1), the placeholder. Each key's
  // matrix_values list holds the reference's text alone.
  std::vector<DynamicKey> dynamic_keys;

  // The `${tasks.NAME...}` references in its templates, each once, in the
  // order first met (outputs.h); checked against `needs` by graph.cc.
  std::vector<OutputRef> output_refs;
};

struct RawJob {
  std::string name;
  bool fail_fast = false;
  int priority = 0;
  std::optional<ScheduleDecl> schedule;
  Pos tasks_where;
  std::vector<RawTask> tasks;  // in file order; duplicates left out
  std::vector<PoolDecl> pools;  // the well-formed ones, in file order
  std::vector<ServiceDecl> services;  // the well-formed ones, in file order
  std::vector<std::string> plugins;
};

// graph.cc: resolves every `needs` name to a task index, reporting unknown
// names and self-dependencies; then reports dependency cycles, and jobs
// over the instance or edge caps.
void CheckGraph(RawJob* job, const LoadOptions& options, ErrorSink* errors);

// expand.cc: appends `count` instances of task `task` to *out, each a copy
// of `proto` named task[k=v,...] with its `matrix`, rendered by `compiled`
// with the values of `values` (and their JSON forms `json`, one list per
// key) and with each of `deferred`'s references standing for its own text;
// then fingerprinted. The last key varies fastest. Every list is non-empty
// and `count` is the product of their sizes (1 without keys).
void AppendInstances(std::string_view task, const std::vector<std::string>& keys,
                     const std::vector<const std::vector<std::string>*>& values,
                     const std::vector<const std::vector<std::string>*>& json,
                     const CompiledTask& compiled, const DeferredRender* deferred,
                     uint64_t count, TaskSpec proto, std::vector<TaskSpec>* out);

// expand.cc: the JobSpec of a job that passed every check.
JobSpec Expand(RawJob&& job, const std::string& file);

}  // namespace drover::spec::internal

#endif  // DROVER_CORE_SPEC_RAW_JOB_H_

// The loader's intermediate form: a job as read from the YAML, before its
// matrices are expanded. yaml_reader.cc and task_reader.cc fill it from the
// document, graph.cc checks the dependency graph and the size caps,
// expand.cc turns it into the JobSpec the coordinator runs. Internal to
// core/spec; no yaml-cpp here.
#ifndef DROVER_CORE_SPEC_RAW_JOB_H_
#define DROVER_CORE_SPEC_RAW_JOB_H_

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/base/clock.h"
#include "core/spec/job_spec.h"
#include "core/spec/json_template.h"

namespace drover::spec::internal {

// A 1-based line and column (in characters); {0, 0} when unknown. Kept
// apart from SourceLocation so that a large file does not carry a copy of
// its own name for every value it holds.
struct Pos {
  int line = 0;
  int column = 0;
};

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

// A string in which every `${matrix.KEY}` was found and resolved to the
// index of KEY in the task's matrix. Any other `$` is literal text, so that
// shell variables such as ${HOME} reach the shell untouched.
class Template {
 public:
  Template() = default;
  static Template Literal(std::string text);
  // Splits `text`. A reference to a key that is not in `keys`, or an
  // unterminated "${matrix.", adds a message to `errors` (`task` names the
  // task in it); with `lenient`, unknown keys are not reported (the matrix
  // itself was bad, so they would only repeat its error).
  static Template Compile(std::string_view text,
                          const std::vector<std::string>& keys, bool has_matrix,
                          bool lenient, std::string_view task,
                          std::vector<std::string>* errors);

  bool constant() const { return refs_.empty(); }
  // The text; only meaningful when constant().
  const std::string& text() const { return parts_.front(); }
  // The text with references replaced: values[k] is the value of key k.
  std::string Render(const std::vector<const std::string*>& values) const;
  // The literal pieces around the references (refs().size() + 1 of them),
  // and the matrix key index of each reference.
  const std::vector<std::string>& parts() const { return parts_; }
  const std::vector<uint32_t>& refs() const { return refs_; }

 private:
  std::vector<std::string> parts_{std::string()};  // refs_.size() + 1 parts
  std::vector<uint32_t> refs_;
};

// A scalar as written, with where it was written.
struct Located {
  std::string text;
  Pos where;
};

using RawEnv = std::vector<std::pair<std::string, Located>>;

// A name a task or `defaults` refers to (`fn`, `pool`), with where it was
// written. `ok` is false when it was already reported as wrong: whoever
// inherits it must not report it again.
struct NameRef {
  std::string name;
  Pos key;  // of the key, for "does not apply" errors
  bool ok = true;
};

// The keys a task and `defaults` share. Unset means "not written here".
struct Settings {
  std::optional<std::string> backend;
  bool backend_invalid = false;  // `backend` was written, and was wrong
  std::optional<NameRef> fn;
  std::optional<NameRef> pool;
  std::optional<NameRef> service;
  std::optional<RawEnv> env;
  std::optional<Located> cwd;
  std::optional<Duration> timeout;
  std::optional<Duration> kill_grace;
  std::optional<int> retries;
  std::optional<Duration> retry_backoff;
  std::optional<uint64_t> output_limit;
};

constexpr uint32_t kNoTask = std::numeric_limits<uint32_t>::max();

struct NeedRef {
  std::string name;
  Pos where;
  uint32_t target = kNoTask;  // index into RawJob::tasks once resolved
};

struct RawTask {
  std::string name;
  Pos where;  // of the task's key
  bool shell = false;  // `run` was a string
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
  // built-in defaults. What to run, with `${matrix.KEY}` resolved to keys.
  std::string backend = "spawn";
  std::optional<Duration> timeout;
  Duration kill_grace = std::chrono::seconds(5);
  int retries = 0;
  Duration retry_backoff = std::chrono::seconds(1);
  uint64_t output_limit = 8ull << 20;
  std::vector<Template> argv;
  std::vector<std::pair<std::string, Template>> env;
  Template cwd;
  // threads tasks and fork tasks on a cow pool: fn and args; fork tasks on
  // a process pool: pool and message. Unset templates are left empty.
  std::string fn;
  std::string pool;
  std::optional<JsonTemplate> args;
  std::optional<JsonTemplate> message;
  // cluster tasks: the service and the request (path, header values and
  // body may hold `${matrix.KEY}`).
  std::string service;
  RequestSpec request;  // path, headers and body unused: see below
  Template request_path;
  std::vector<std::pair<std::string, Template>> request_headers;
  Template request_body;
  // Every service the task needs (service_reader.cc), sorted, unique.
  std::vector<std::string> services;
  // `on` (sorted by key) and `slots`: placement, copied to every instance.
  EnvList on;
  uint32_t slots = 1;

  uint64_t instances = 1;  // product of the matrix lists (saturating)
};

struct RawJob {
  std::string name;
  bool fail_fast = false;
  int priority = 0;
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

// expand.cc: the JobSpec of a job that passed every check.
JobSpec Expand(RawJob&& job, const std::string& file);

}  // namespace drover::spec::internal

#endif  // DROVER_CORE_SPEC_RAW_JOB_H_

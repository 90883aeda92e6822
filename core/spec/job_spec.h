// JobSpec: a validated job, as the coordinator runs it, with its task
// instances by index (TaskList: a static matrix's instances are made on
// demand from the matrix).
//
// core/spec is the only place that includes yaml-cpp. Load* parse the YAML,
// check every rule of docs/spec.md, report every error of a file in one pass
// (FILE:LINE:COL: message), and expand `matrix` into task instances.
#ifndef DROVER_CORE_SPEC_JOB_SPEC_H_
#define DROVER_CORE_SPEC_JOB_SPEC_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/base/clock.h"
#include "core/base/status.h"

namespace drover::spec {

struct DeferredRender;  // outputs.h
struct DynamicMatrix;   // dynamic_matrix.h

struct SourceLocation {
  std::string file;
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based; 0 when unknown
};

struct SpecError {
  SourceLocation where;
  std::string message;
  // "job.yaml:12:5: unknown key 'neds' in task 'build' (did you mean 'needs'?)"
  std::string ToString() const;
};

using EnvList = std::vector<std::pair<std::string, std::string>>;

// A pool of warm worker processes for the fork backend, declared under
// `pools:`. It mirrors drover::PoolSpec (backends/backend.h) field for field
// so that the coordinator can copy it into a task attempt; core does not
// depend on backends/, hence the twin.
struct PoolDecl {
  std::string name;  // its key in `pools:`
  // "process": each instance runs `command` and speaks the IPC channel on
  // fd 3. "cow": instances are forked from the worker's zygote and call
  // registered functions (`fn` and `args` of the task).
  std::string mode = "process";
  // The argv of each process; empty in cow mode. `command: "node x.js"` (a
  // string) becomes {"/bin/sh", "-c", "node x.js"}.
  std::vector<std::string> command;
  int instances = 1;      // processes kept warm, >= 1
  int max_tasks = 0;      // recycle a process after this many tasks; 0: never
  Duration idle_timeout{0};  // stop a process idle this long; 0: never
  EnvList env;            // added to the environment inherited from the worker
  std::string cwd;        // empty: the worker's working directory

  SourceLocation where;   // of the pool's key in the file

  // A stable 64-bit fingerprint of what decides how the pool's processes
  // behave (mode, command, env, cwd, max_tasks; not `instances` or
  // `idle_timeout`, which only decide how many run and for how long).
  // Part of the fingerprint of every task that uses the pool.
  uint64_t Fingerprint() const;
};

// A service for the cluster backend, declared under `services:`: N
// supervised instances of a server program sharing one listening port
// (backends/cluster/service.h). A twin of what the worker's cluster backend
// starts, for the same reason as PoolDecl.
struct ServiceDecl {
  std::string name;  // its key in `services:`
  // The argv of each instance. `command: "node x.js"` (a string) becomes
  // {"/bin/sh", "-c", "node x.js"}.
  std::vector<std::string> command;
  int instances = 1;
  std::string host = "127.0.0.1";  // of `listen: HOST:PORT`
  int port = 0;                     // 0: a free port, picked per worker
  std::string mode = "reuseport";   // reuseport | shared | round-robin
  // When an instance counts as serving: "tcp" (a connect succeeds) or
  // "http" (GET ready_path answers 2xx), within ready_timeout.
  std::string ready = "tcp";
  std::string ready_path;           // "http" only
  Duration ready_timeout = std::chrono::seconds(30);
  EnvList env;         // added to the environment inherited from the worker
  std::string cwd;     // empty: the worker's working directory
  // A worker stops the service when no task of the job has used it for
  // this long (a safety net: the coordinator's JOB-DONE normally stops it
  // when the job ends), and at worker shutdown.
  Duration idle_timeout = std::chrono::seconds(60);
  // `NAME: {from: worker}`: not declared by the job but the workers' own
  // service NAME (their configuration's `services:`). Every other field
  // keeps its default: the worker knows how to run it. A task needing such
  // a service is placed only on a worker whose HELLO offers it, and its
  // DISPATCH names it in `worker_services` instead of `services`.
  bool from_worker = false;

  SourceLocation where;  // of the service's key in the file

  // A stable 64-bit fingerprint of what decides how the service behaves
  // (command, env, cwd, listen, mode, ready; not `instances` or
  // `idle_timeout`); of the name and the flag alone for a `from: worker`
  // one. Part of the fingerprint of every task that needs it.
  uint64_t Fingerprint() const;
};

// `limits` of a task (or of `defaults`): resource limits its process and
// every process it starts run under (docs/spec.md, "limits"). Each is unset
// when not written; a task's own keys win over `defaults`' one by one.
struct TaskLimits {
  std::optional<Duration> cpu;        // CPU time per process, whole seconds
  std::optional<uint64_t> memory;     // bytes of data memory per process
  std::optional<uint64_t> files;      // open file descriptors per process
  std::optional<uint64_t> processes;  // processes of the task's user

  bool empty() const { return !cpu && !memory && !files && !processes; }
};

// One entry of a task's `inputs:` (docs/spec.md, "Caching"): a path or
// glob of local files, relative to the submitting client's working
// directory, whose content is part of the task's cache key.
struct InputDecl {
  std::string pattern;
  SourceLocation where;  // of the entry in the file
};

// One runnable task instance. A task without `matrix` is one instance named
// like the task; a matrix task `shards` with matrix {shard: [0, 1]} gives the
// instances "shards[shard=0]" and "shards[shard=1]" (keys in the order of
// the file).
struct TaskSpec {
  std::string name;       // the instance name; unique within the job
  std::string base_name;  // the task's key in `tasks:`
  EnvList matrix;         // this instance's matrix values, in key order

  // The backend, a name in the LoadOptions::kinds the job was loaded with.
  std::string backend = "spawn";
  // The backend's own message for this instance (for the built-in ones
  // drover.spawn.SpawnTask, drover.threads.ThreadsTask, drover.fork.ForkTask,
  // drover.cluster.ClusterTask), serialized; core carries it to the worker
  // in Dispatch.payload without reading it. `${services.NAME.port|host}`
  // references stay literal text in it: the worker replaces them.
  std::string payload;
  // A stable 64-bit fingerprint of everything that decides how the task
  // runs (its payload, backend, timeout, kill_grace, output_limit, the
  // declarations of its services ...; not `retries` or placement), set at
  // load (core/spec/fingerprint.h). `--resume` re-runs a task whose
  // fingerprint changed. Stable across builds and hosts.
  uint64_t fingerprint = 0;
  // fork tasks only: a pool the job does not declare (a worker's own,
  // LoadOptions::undeclared_pools); placement needs a worker whose HELLO
  // lists it. Empty otherwise.
  std::string worker_pool;
  // One line for humans: the command, the function, the request.
  std::string summary;
  // `artifacts:` (spawn tasks): the paths and globs of the files an
  // attempt that succeeds uploads, relative to its working directory,
  // checked by artifacts::BadArtifactPath. Part of the fingerprint.
  std::vector<std::string> artifacts;
  // The working directory the task sets itself (spawn: `cwd`), which its
  // artifacts are relative to; empty: the attempt's own fresh directory
  // (or, for a task without artifacts or inputs, the worker's).
  std::string cwd;

  // Set when the task refers to upstream outputs (`${tasks.NAME...}`,
  // outputs.h): `payload` and `summary` then hold each reference as its
  // own text, and the coordinator renders the real payload at dispatch
  // with spec::RenderWithOutputs. `matrix_json` is then the JSON form of
  // each `matrix` value (empty otherwise).
  std::shared_ptr<const DeferredRender> deferred;
  std::vector<std::string> matrix_json;
  // Set on the placeholder of a task with a dynamic matrix (`matrix: {k:
  // "${tasks.plan.outputs.K}"}`, dynamic_matrix.h): the one instance the
  // task has until the coordinator expands it, named like the task. It is
  // never dispatched.
  std::shared_ptr<const DynamicMatrix> dynamic;

  // `cache: true` (docs/spec.md, "Caching"): the task is not run when an
  // earlier successful attempt had the same cache key (core/coordinator/
  // cache.h). Not in the fingerprint: it decides whether the task runs,
  // not how. `inputs` are the local files whose content is part of that
  // key (the client hashes them); checked by artifacts::BadArtifactPath.
  bool cache = false;
  std::vector<InputDecl> inputs;

  std::optional<Duration> timeout;      // none: no timeout
  Duration kill_grace = std::chrono::seconds(5);  // TERM -> KILL grace
  int retries = 0;                      // extra attempts after the first
  Duration retry_backoff = std::chrono::seconds(1);     // first delay
  Duration retry_backoff_max = std::chrono::seconds(60);  // or retry_backoff if longer
  uint64_t output_limit = 8ull << 20;   // bytes kept per stream (the tail)

  // Every service the task needs up on its worker: those its backend's
  // keys name (a cluster task's `service`) or refer to as
  // `${services.NAME.port}` or `${services.NAME.host}`; sorted, unique,
  // each declared in JobSpec::services. The worker starts them before the
  // attempt and replaces those references (they stay literal text here).
  std::vector<std::string> services;
  // A fingerprint of the declarations of `services`, so that a task's
  // fingerprint changes when one of them does; 0 when `services` is empty.
  uint64_t services_fingerprint = 0;

  // Placement (docs/spec.md, "on and slots"): the labels a worker must
  // have, sorted by key, and the slots of `backend` the task holds on it.
  // They decide where the task runs, not how: not in the fingerprint.
  EnvList on;
  uint32_t slots = 1;

  // Indices into JobSpec::tasks of the instances this one waits for. A
  // dependency on a matrix task is a dependency on all of its instances.
  std::vector<uint32_t> needs;

  SourceLocation where;   // of the task's key in the file
};

// `schedule:` and its companions (docs/spec.md, "Schedules"): a job spec
// that `drover coordinator --pipelines DIR` runs on a schedule. Validated
// by the loader (core/sched parses it again where it is used).
struct ScheduleDecl {
  std::string schedule;          // a cron line, an @name or "@every N{s,m,h}"
  std::string timezone = "UTC";  // an IANA zone name
  std::string concurrency = "skip";  // skip | queue | replace
  bool catchup = false;
  int line = 0;  // of `schedule:`
  int column = 0;
};

namespace internal {
struct MatrixGroup;  // matrix_group.h
}  // namespace internal

// The task instances of a job, by index (0 .. size()-1, in file order,
// matrix instances in expansion order). A task without a matrix, and every
// instance of a dynamic matrix, is held whole. A static matrix's instances
// are held as one internal::MatrixGroup (the fields they share, the
// matrix's axes and the task's compiled kind) and made on demand, so that
// a million-instance matrix costs its axes, not a million TaskSpecs: the
// coordinator makes an instance when it dispatches it and drops it when
// the instance has ended (Release).
class TaskList {
 public:
  TaskList();
  ~TaskList();
  TaskList(const TaskList& other);
  TaskList& operator=(const TaskList& other);
  TaskList(TaskList&& other) noexcept;
  TaskList& operator=(TaskList&& other) noexcept;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // Instance i (< size()). A matrix instance is made on first use and kept
  // until Release(i); the reference is valid until then, or until the list
  // is modified (push_back, reserve, ForEachShared). O(log tasks).
  const TaskSpec& operator[](size_t i) const;
  const TaskSpec& at(size_t i) const { return (*this)[i]; }
  const TaskSpec& back() const { return (*this)[size_ - 1]; }
  // Instance i, made afresh and not kept (a view that reads every instance
  // of a large job uses this, not operator[]).
  TaskSpec Make(size_t i) const;
  // Instance i's name, without making the instance.
  std::string Name(size_t i) const;
  // Instance i's fingerprint: a matrix instance is made for it (and not
  // kept), a whole one is not.
  uint64_t Fingerprint(size_t i) const;
  // What instance i shares with the other instances of its task, without
  // making it: the whole instance, or its matrix's shared fields (see
  // ForEachShared). For the fields every instance of a task has alike:
  // base_name, backend, needs, retries, timeouts, on, slots, services,
  // cache, inputs, deferred, dynamic, worker_pool.
  const TaskSpec& Shared(size_t i) const;
  // Whether instance i uploads artifacts, without making it.
  bool HasArtifacts(size_t i) const;
  // Forgets the made copy of matrix instance i (nothing for a whole one).
  void Release(size_t i) const;
  // How many matrix instances are made and kept now.
  size_t made() const { return made_.size(); }

  // A whole instance, to change it. Precondition: instance i is held whole
  // (IsWhole(i)); a matrix instance cannot be changed on its own.
  TaskSpec& MutableWhole(size_t i);
  bool IsWhole(size_t i) const;

  // The instances of the task (as written in `tasks:`) that instance i
  // belongs to: [first, first + count). For a whole instance, itself.
  struct Span {
    uint32_t first = 0;
    uint32_t count = 0;
  };
  Span SpanOf(size_t i) const;

  // Calls f(shared, span) once per span in index order: `shared` is the
  // whole instance, or for a matrix the fields every instance shares (its
  // name, matrix, matrix_json, payload, summary, fingerprint, artifacts
  // and cwd are those of no instance). O(tasks as written + whole ones).
  void ForEachShared(const std::function<void(const TaskSpec& shared, Span span)>& f) const;
  // Changes, with f, what instances share: each whole instance, and each
  // matrix's shared fields and its made instances. f must change only
  // fields that are the same for every instance of a task (needs,
  // deferred, dynamic).
  void UpdateShared(const std::function<void(TaskSpec& shared)>& f);

  // The names of instances `indices` (ascending) as they are now, with
  // each one's task (its base_name) and backend, for use on another thread
  // while this list changes: matrix groups never change once made
  // (UpdateShared copies one), so the table shares them, and it copies
  // what the whole instances among `indices` have. O(tasks as written +
  // indices) to make.
  class Names {
   public:
    // For i one of the indices it was made for.
    std::string Name(size_t i) const;
    const std::string& Group(size_t i) const;
    const std::string& Backend(size_t i) const;

   private:
    friend class TaskList;
    struct Whole {
      uint32_t index = 0;
      std::string name, group, backend;
    };
    struct Segment {
      uint32_t first = 0;
      std::shared_ptr<const internal::MatrixGroup> group;  // null: whole instances
    };
    const Segment& SegmentOf(size_t i) const;
    const Whole& WholeAt(size_t i) const;
    std::vector<Whole> whole_;  // by index
    std::vector<Segment> segments_;
    size_t size_ = 0;  // the list's, when made
  };
  Names NamesOf(const std::vector<uint32_t>& indices) const;

  // The index of the instance called `name`. O(tasks as written + whole
  // ones), not O(instances).
  std::optional<uint32_t> Find(std::string_view name) const;

  void push_back(TaskSpec ts);  // a whole instance
  void reserve(size_t n);       // for whole instances
  // Appends the instances of `group` (group->count of them).
  void AppendMatrix(std::shared_ptr<const internal::MatrixGroup> group);

  // Iterates over every instance, each made afresh for the iteration step
  // and not kept (the cost of Make per matrix instance).
  class const_iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = TaskSpec;
    using difference_type = std::ptrdiff_t;
    using pointer = const TaskSpec*;
    using reference = const TaskSpec&;
    const_iterator() = default;
    const_iterator(const TaskList* list, size_t i) : list_(list), i_(i) {}
    const TaskSpec& operator*() const;
    const TaskSpec* operator->() const { return &**this; }
    const_iterator& operator++() {
      ++i_;
      made_.reset();
      return *this;
    }
    const_iterator operator++(int) {
      const_iterator old(list_, i_);
      ++*this;
      return old;
    }
    bool operator==(const const_iterator& o) const { return i_ == o.i_; }

   private:
    const TaskList* list_ = nullptr;
    size_t i_ = 0;
    mutable std::shared_ptr<TaskSpec> made_;  // this step's matrix instance
  };
  const_iterator begin() const { return const_iterator(this, 0); }
  const_iterator end() const { return const_iterator(this, size_); }

 private:
  struct Segment {
    uint32_t first = 0;  // index of its first instance
    uint32_t count = 0;
    uint32_t whole = 0;  // whole_[whole .. whole + count) when group is null
    std::shared_ptr<const internal::MatrixGroup> group;
  };
  const Segment& SegmentOf(size_t i) const;

  std::vector<TaskSpec> whole_;
  std::vector<Segment> segments_;
  size_t size_ = 0;
  using Made = std::unordered_map<uint32_t, TaskSpec>;
  mutable Made made_;
  // Nodes of released instances, kept for the next ones: copying the
  // shared fields into a spec that had them reuses its strings' buffers
  // (the coordinator makes and releases one instance a dispatch). Not
  // copied with the list.
  struct Spare {
    std::vector<Made::node_type> nodes;
    Spare() = default;
    Spare(const Spare&) {}
    Spare& operator=(const Spare&) {
      nodes.clear();
      return *this;
    }
    Spare(Spare&&) noexcept = default;
    Spare& operator=(Spare&&) noexcept = default;
  };
  mutable Spare spare_;
};

struct JobSpec {
  int version = 1;
  std::string name;          // `name:`, or the file's stem when absent
  std::string file;          // the path it was loaded from (as given)
  bool fail_fast = false;
  int priority = 0;
  std::optional<ScheduleDecl> schedule;  // `schedule:`, if the spec has one
  // Instances in file order, matrix instances in expansion order. Every
  // `needs` index is valid and the graph is acyclic.
  TaskList tasks;
  // `pools:`, in file order.
  std::vector<PoolDecl> pools;
  // `services:`, in file order; every name in a TaskSpec::services is one.
  std::vector<ServiceDecl> services;
  // Whether any of `services` is the job's own (not `from: worker`): the
  // workers that ran the job then get JOB-DONE when it ends.
  bool DeclaresServices() const;
  // The names of `ts.services` that are `from: worker`, sorted (as
  // ts.services is). O(|ts.services| * services).
  std::vector<std::string> WorkerServices(const TaskSpec& ts) const;
  // `plugins:`, shared libraries for the threads backend (and cow pools),
  // in file order, as written: a relative path is resolved by the worker
  // against its own working directory.
  std::vector<std::string> plugins;

  // The index of the instance called `name`, if any (TaskList::Find).
  std::optional<uint32_t> Find(std::string_view name) const;
  // The pool called `name`, or nullptr. O(pools). The pointer is valid
  // while `pools` is not modified.
  const PoolDecl* FindPool(std::string_view name) const;
  // The service called `name`, or nullptr. O(services).
  const ServiceDecl* FindService(std::string_view name) const;
};

class TaskKinds;  // task_kind.h

struct LoadOptions {
  // The backends a task may name, and how each reads its keys. Required:
  // backends/kinds.h registers the built-in ones.
  const TaskKinds* kinds = nullptr;
  // A job whose matrices expand to more instances than this is refused.
  // What the coordinator holds: a job of 1,000,000 no-op instances runs in
  // about 250 MB (docs/benchmarks.md, "scale"); instances are made as they
  // are dispatched and task rows as tasks leave their first state.
  uint64_t max_instances = 1'000'000;
  // A job with more dependency edges between instances than this is
  // refused. A matrix task that needs another matrix task needs every one
  // of its instances, so two large matrices multiply; this bounds the
  // memory the expanded `needs` lists take (4 bytes an edge).
  uint64_t max_edges = 10'000'000;
  // A fork task may name a pool its job does not declare, because a
  // worker's configuration declares it (`drover coordinator` sets this;
  // core/spec/worker_config.h). Such a task may carry `message` or `fn` and
  // `args` (the pool's mode is the worker's to know); a worker without the
  // pool fails it as launch-failed.
  bool undeclared_pools = false;
};

struct LoadResult {
  std::optional<JobSpec> spec;   // set iff errors is empty
  std::vector<SpecError> errors; // every error found, in file order
  bool ok() const { return errors.empty(); }
};

// Parses and validates `text` as if read from `file` (used in messages).
LoadResult LoadString(std::string_view text, std::string file,
                      const LoadOptions& options = {});
// Whether the spec `text` may give a task `inputs` (docs/spec.md,
// "Caching"): false only when it holds neither the word "inputs" nor a
// backslash, since no YAML scalar spells that key otherwise (only an escape
// in a double-quoted one could). A client that loads a spec only to hash
// the inputs of its cached tasks (drover submit) skips the load when false:
// yaml-cpp takes about 0.15 s for a 100,000-value matrix, and the
// coordinator loads the text again anyway.
bool MayNameInputs(std::string_view text);

// The most text a job spec (or a worker configuration) may hold: what a
// SUBMIT body carries (docs/protocol.md: 4 MiB bodies). `drover validate`,
// `run` and `submit` read files through ReadSpecFile, so they refuse the
// same ones.
inline constexpr size_t kMaxSpecBytes = 4u << 20;

// Reads a spec file whole (core/base/files.h: never blocking on a FIFO
// without a writer, never past kMaxSpecBytes, never a directory). The
// error's message starts with the file's name: "job.yaml: the file is
// larger than 4 MiB", "jobs: cannot read the file: it is a directory",
// "x.yaml: cannot read the file: No such file or directory".
Result<std::string> ReadSpecFile(const std::string& path);

// Reads `path` (as ReadSpecFile does) and calls LoadString. A missing,
// unreadable or too large file is one error at line 0.
LoadResult LoadFile(const std::filesystem::path& path,
                    const LoadOptions& options = {});

// Parses "500ms", "30s", "5m", "1h", "1m30s", "1.5s" ("0" is not a
// duration: a bare number has no unit).
std::optional<Duration> ParseDuration(std::string_view text);

// Parses a byte count: "1048576", "64KiB", "8MiB", "1GiB", "10MB" (KB, MB,
// GB, TB are powers of 1000; KiB, MiB, GiB, TiB powers of 1024; units are
// case-insensitive, "B" is bytes). Nullopt when malformed or over 2^63.
std::optional<uint64_t> ParseSize(std::string_view text);

}  // namespace drover::spec

#endif  // DROVER_CORE_SPEC_JOB_SPEC_H_

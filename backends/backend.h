// Backend: where a worker runs task attempts. The shape is ninja's
// CommandRunner (src/build.h): start, capacity, submit, cancel, shut down,
// and completion events.
//
// Threading: Submit, Cancel and Shutdown are called from the worker's I/O
// thread. A backend runs its work on threads of its own and reports through
// BackendEvents, from any of its threads; or, driven (BackendConfig::
// driven, PollFd), on the worker's thread, through Poll.
#ifndef DROVER_BACKENDS_BACKEND_H_
#define DROVER_BACKENDS_BACKEND_H_

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/base/clock.h"
#include "core/base/outcome.h"
#include "core/base/status.h"
#include "core/spec/job_spec.h"
#include "core/spec/task_kind.h"

namespace drover {

// Where a task reaches a service the worker runs for it: a connectable host
// (a wildcard listen address 0.0.0.0 / :: becomes 127.0.0.1 / ::1) and the
// bound port.
struct ServiceAddress {
  std::string host;
  int port = 0;
};

// One attempt to run a task, as a backend receives it: what every backend
// shares. What the task runs is the backend's own: `payload`, one message
// of its .proto (backends/BACKEND/BACKEND.proto), which its Submit decodes
// into its own attempt type.
struct TaskAttempt {
  uint64_t attempt_id = 0;  // unique per coordinator; names the attempt
  std::string job_id;
  std::string task;     // the instance name
  uint32_t number = 1;  // 1 for the first attempt of the task

  Duration timeout{0};                            // 0: none
  Duration kill_grace = std::chrono::seconds(5);  // TERM -> KILL
  uint64_t output_limit = 8ull << 20;             // bytes kept per stream

  // The backend's task, serialized (Dispatch.payload). `${services.NAME.
  // port|host}` references in it are still literal text: the backend
  // expands them with ExpandServiceRefs.
  std::string payload;

  // The environment the worker gives every attempt (DROVER_JOB_ID,
  // DROVER_TASK, DROVER_ATTEMPT, DROVER_WORKER), for backends that start
  // processes; a task's own variables come after, so they may override.
  std::vector<std::pair<std::string, std::string>> env;

  // The services the task needs, up and ready for as long as the attempt
  // runs (the worker starts them before Submit, backends/services/), by
  // name.
  std::map<std::string, ServiceAddress> services;

  // `text` with every `${services.NAME.port}` / `${services.NAME.host}`
  // whose NAME is in `services` replaced. Other text, and references to
  // services not in `services`, are left as they are.
  std::string ExpandServiceRefs(std::string_view text) const;
  // The same in place: `*text` is left alone (not copied) when there is
  // nothing to expand, as for a large payload without references.
  void ExpandServiceRefsIn(std::string* text) const;

  // A fresh directory the worker made for this attempt (an attempt that
  // declares or receives artifacts), or empty. Backends that start
  // processes run them there when the task sets no `cwd` of its own.
  std::filesystem::path work_dir;

  // Where the backend writes the captured stdout and stderr. The files are
  // created only when the stream produces output. Strings, not paths: a
  // std::filesystem::path keeps its components in a list of their own,
  // which every attempt would allocate and copy, and most backends never
  // open them.
  std::string stdout_path;
  std::string stderr_path;
};

// The outcome of an attempt that ended without running (`reason`, e.g.
// kLaunchFailed for a payload that does not decode, and why).
AttemptOutcome AttemptFailure(FailureReason reason, std::string message);

// Receives a backend's events. Implementations must be thread-safe and
// return quickly (they are called on the backend's own threads).
class BackendEvents {
 public:
  virtual ~BackendEvents() = default;
  // The attempt is running (pid of its process, or 0 when there is none).
  virtual void OnStarted(uint64_t attempt_id, int pid) = 0;
  // The attempt ended. Called exactly once per submitted attempt, also for
  // a launch failure, a timeout, a cancel and at Shutdown.
  virtual void OnFinished(uint64_t attempt_id, AttemptOutcome outcome) = 0;
};

class Zygote;    // backends/fork/zygote.h
class Guardian;  // backends/process/guardian.h

// A backend's view of the worker: what it may need besides its slots. A
// backend reads the fields that concern it and ignores the others.
struct BackendConfig {
  int slots = 1;  // attempts that may run at once
  // threads backend: shared libraries to load functions from (plugin ABI,
  // include/drover/plugin.h), in order.
  std::vector<std::filesystem::path> plugins;
  // fork backend: the zygote that `cow` pools fork their processes from
  // (StartZygote, called by the worker's main before any thread starts).
  // Null: cow pools fail their attempts with launch-failed.
  std::shared_ptr<Zygote> zygote;
  // spawn and fork backends: told each process group they start and reap,
  // so that the groups die with the worker (guardian.h). Null: not told.
  std::shared_ptr<Guardian> guardian;
  // fork backend: the pools of the worker's configuration (`pools:`), by
  // name; a task naming a pool its job does not declare runs on one of
  // these.
  std::map<std::string, spec::PoolDecl> pools;
  // Where the backend reads time for its deadlines (timeouts, kill graces,
  // idle timeouts, backoff); must outlive the backend. Null: the real
  // steady clock. Tests pass a FakeClock.
  const Clock* clock = nullptr;
  // Run on the caller's thread, if the backend can (Backend::PollFd): the
  // worker asks for it, and its loop then drives the backend. The spawn
  // backend can; the others keep their threads and ignore it.
  bool driven = false;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // Starts the backend's threads. `events` must outlive the backend.
  // On failure nothing is running.
  virtual Status Start(BackendEvents* events) = 0;
  // How many attempts may run at once.
  virtual int Capacity() const = 0;
  // Queues an attempt; never blocks on the attempt itself. A failure to
  // launch it, a payload that is not the backend's message among them, is
  // reported through OnFinished(kLaunchFailed), not here; a non-ok Status
  // means the call itself was wrong (not started, at capacity, duplicate
  // id) and no event will follow.
  virtual Status Submit(TaskAttempt attempt) = 0;
  // Asks for the attempt to stop (TERM to its process group, the attempt's
  // kill_grace, then KILL). OnFinished(kCancelled) follows unless it
  // finished first. Unknown ids are ignored.
  virtual void Cancel(uint64_t attempt_id) = 0;
  // Cancels everything still running, waits up to `grace` for it to stop,
  // kills what is left, and joins the backend's threads. Every submitted
  // attempt has had its OnFinished when this returns. Idempotent.
  virtual void Shutdown(Duration grace) = 0;
  // Whether an attempt's task sees TaskAttempt::env (a process started per
  // attempt, as spawn does). Only then does the worker create the
  // attempt's $DROVER_OUTPUT file and read it back when the attempt ends
  // (docs/spec.md, "Outputs"): the other backends hand their outputs back
  // in the outcome, and a file created and removed per attempt costs them
  // more than the task itself (ext4's inode allocation dominated a
  // profile of threads `noop` tasks, docs/benchmarks.md).
  virtual bool TakesEnvironment() const { return false; }
  // Whether it may write an attempt's output to TaskAttempt::stdout_path
  // and stderr_path. One that never does (threads: a function hands back
  // a result, not a stream) is given no paths, and the worker makes none
  // for its attempts.
  virtual bool CapturesOutput() const { return true; }

  // A driven backend (BackendConfig::driven) has no thread of its own: its
  // owner waits until PollFd() is readable, or PollTimeoutMs() passed (-1:
  // no deadline), and then calls Poll(), which handles what is ready
  // without blocking and reports through BackendEvents on the caller's
  // thread. The owner calls Poll() only then: when PollFd() was readable,
  // or PollTimeoutMs() is 0. So a Submit or Cancel made on the owner's
  // thread, which writes no descriptor, must make PollTimeoutMs() 0 until
  // the next Poll() takes it. All three on the owner's one thread; -1 from
  // PollFd() (the default) means the backend runs its own threads.
  virtual int PollFd() const { return -1; }
  virtual void Poll() {}
  virtual int PollTimeoutMs() const { return -1; }
  // Driven: how long the owner should look for PollFd() to be readable,
  // without blocking, before its wait blocks (zero: not at all). A backend
  // that expects an answer within microseconds says so (fork: a pool
  // process's reply), and a wake-up from a blocking wait costs more than
  // that on many machines. Bounded by the backend; on the owner's thread.
  virtual std::chrono::nanoseconds SpinBeforeWait() const { return {}; }
  // Driven: the owner starts its spin (true), and ends it (false) before
  // it blocks or turns. While the owner spins, a backend whose peers can
  // answer through shared memory (fork: a cow process's mailbox,
  // backends/fork/cow_mailbox.h) lets them skip the descriptor write that
  // would wake the owner; such an answer makes PollTimeoutMs() 0, which the
  // owner asks in its spin and once more after Spinning(false), before it
  // blocks. An owner that never spins need not call it.
  virtual void Spinning(bool /*on*/) {}
};

using BackendFactory =
    std::function<Result<std::unique_ptr<Backend>>(const BackendConfig&)>;

// Maps the backend names used in job specs to what each backend is: its
// task kind (how the spec loader reads its keys into its wire payload,
// core/spec/task_kind.h) and the factory a worker makes it with. tools/cli's
// main builds one registry and hands it to every command; a new backend is
// one folder plus one Register call (docs/backends/adding-a-backend.md).
//
// Filled at startup, then read-only: safe to share between threads.
class BackendRegistry {
 public:
  // Registers backend `name`: its kind and its factory, together. Fails with
  // kAlreadyExists (nothing registered) on a duplicate name, and with
  // kInvalidArgument on a null kind or factory.
  Status Register(std::string name, std::unique_ptr<spec::TaskKind> kind,
                  BackendFactory factory);
  Result<std::unique_ptr<Backend>> Create(const std::string& name,
                                          const BackendConfig& config) const;
  bool Has(const std::string& name) const;
  // In name order.
  std::vector<std::string> Names() const;
  // The kinds of every registered backend, for spec::LoadOptions::kinds.
  const spec::TaskKinds& kinds() const { return kinds_; }

 private:
  std::map<std::string, BackendFactory> factories_;
  spec::TaskKinds kinds_;
};

// Registers every backend compiled into this build: spawn, fork, threads,
// cluster.
void RegisterBuiltinBackends(BackendRegistry& registry);

}  // namespace drover

#endif  // DROVER_BACKENDS_BACKEND_H_

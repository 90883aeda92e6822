// ForkBackend: sends each attempt's message to a pool of warm, long-lived
// worker processes and takes the process's reply as the task's result.
// The models are Node's child_process.fork + process.send, Bazel's
// persistent workers and Celery's prefork pool. docs/backends/fork.md is the
// user's guide.
//
// Pools. An attempt's payload (a drover.fork.ForkTask, decoded by
// fork_attempt.h in Submit) names its pool and carries the pool's
// declaration when the job declares it; otherwise the pool is the worker's
// configuration's of that name (BackendConfig::pools), and a pool declared
// by neither fails the attempt with kLaunchFailed
// (ForkAttempt::pool_spec). The first attempt for a declaration creates the
// pool and starts its `instances` processes; pools are keyed by name and
// PoolFingerprint(), so a changed declaration is a new pool (the old one
// finishes what it has and stops). Each process runs one attempt at a time;
// attempts beyond a pool's free processes wait in its FIFO queue. A process
// is recycled after `max_tasks` tasks and stopped after `idle_timeout` idle
// (restarted on demand). Capacity() is config.slots, across all pools.
//
// Processes. `mode: process` runs `command` with posix_spawn (the spawn
// backend's ChildLauncher): its own process group, stdin from /dev/null,
// stdout/stderr into pipes, the IPC channel on fd 3 (ipc_channel.h). `mode:
// cow` forks it from the worker's zygote (zygote.h); it runs registered
// functions, ForkAttempt::fn and args_json.
//
// Per attempt: the message (message_json, or {"fn","args"} for cow) goes
// out as one line; the first reply line that is not a Node internal
// message is the result (AttemptOutcome::result_json, reason kNone,
// exit_code 0). Output the process writes while it holds the attempt goes
// to the attempt's stdout_path/stderr_path (capped at output_limit, tail
// kept); output between attempts is discarded.
//
// Failures (reason, message):
//   - the pool cannot start a process (command not found, bad cwd, no
//     zygote for a cow pool): kLaunchFailed, "pool 'sorter': command not
//     found: nodex", for every attempt queued on it; no OnStarted;
//   - a bad declaration, no pool, a message that is not JSON or is over
//     kMaxMessageBytes: kLaunchFailed, no OnStarted;
//   - the process dies mid-task: kProcessCrashed, "pool 'p' process 123
//     was killed by signal SIGSEGV while running the task" (signal or
//     exit_code set); the pool starts a new one. A process that exits
//     within kQuickExit of starting is restarted after CrashBackoff() (100
//     ms doubling to 30 s); from the second quick exit in a row the message
//     says the pool is crash-looping, and the log says so each time;
//   - a reply that is not valid JSON: kInternal, "pool 'p' replied with
//     invalid JSON (...)"; the process stays (the framing is intact);
//   - a reply over kMaxMessageBytes: kInternal; the process is replaced
//     (the channel is out of step);
//   - timeout (from the moment a process takes the attempt) or Cancel:
//     SIGTERM to the process group, kill_grace, SIGKILL; kTimeout or
//     kCancelled once the process is gone; the pool starts a new one. A
//     queued attempt is cancelled at once.
//   - A cow function that returns an error or throws: kExit, exit_code 1;
//     an unknown function or bad args: kLaunchFailed (after OnStarted).
//
// Threading: one reactor thread owns every pool, process, pipe and timer
// and waits in epoll. Driven (BackendConfig::driven, what the worker asks
// for), there is no such thread: the owner waits on PollFd() with its own
// descriptors, for at most PollTimeoutMs(), and calls Poll() for a turn, so
// a reply reaches the worker's loop on the thread that reads it, and
// Shutdown runs the last turns on the caller's thread. Submit/Cancel/
// Shutdown may be called from any thread, and from inside BackendEvents
// callbacks. Submit refuses with
// kFailedPrecondition (not started, shut down), kAlreadyExists (the id is
// in flight) or kUnavailable (all slots busy).
#ifndef DROVER_BACKENDS_FORK_FORK_BACKEND_H_
#define DROVER_BACKENDS_FORK_FORK_BACKEND_H_

#include <map>
#include <memory>
#include <string>

#include "backends/backend.h"
#include "backends/fork/fork_attempt.h"

namespace drover {

class ForkReactor;
class Zygote;

class ForkBackend final : public Backend {
 public:
  // `config.slots` attempts at once; cow pools fork from `config.zygote`.
  explicit ForkBackend(const BackendConfig& config);
  ~ForkBackend() override;  // calls Shutdown(0)

  ForkBackend(const ForkBackend&) = delete;
  ForkBackend& operator=(const ForkBackend&) = delete;

  Status Start(BackendEvents* events) override;
  int Capacity() const override;
  Status Submit(TaskAttempt attempt) override;
  void Cancel(uint64_t attempt_id) override;
  void Shutdown(Duration grace) override;
  // Driven (BackendConfig::driven): the reactor's turns run on the
  // caller's thread (backend.h).
  int PollFd() const override;
  void Poll() override;
  int PollTimeoutMs() const override;
  std::chrono::nanoseconds SpinBeforeWait() const override;
  void Spinning(bool on) override;

 private:
  RealClock real_clock_;  // used when the config gives no clock; before reactor_
  std::unique_ptr<ForkReactor> reactor_;
  int slots_;
  bool driven_;  // BackendConfig::driven
  // The worker's configuration's pools, for tasks naming a pool their job
  // does not declare (DecodeForkAttempt).
  std::map<std::string, spec::PoolDecl> worker_pools_;
  BackendEvents* events_ = nullptr;  // set by Start
};

}  // namespace drover

#endif  // DROVER_BACKENDS_FORK_FORK_BACKEND_H_

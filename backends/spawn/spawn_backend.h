// SpawnBackend: runs each attempt as a fresh child process (posix_spawn).
//
// Each child is the leader of its own process group, with stdin from
// /dev/null and stdout/stderr read through pipes into per-attempt files
// capped at output_limit (the tail is kept). A timeout sends SIGTERM to the
// whole group, waits kill_grace, then sends SIGKILL. When the leader exits,
// whatever is left of its group is killed, so no grandchild is orphaned.
//
// One thread (the reactor) owns every child, pipe and timer; it waits in
// epoll on pidfds, pipes and an eventfd that Submit/Cancel use, with the
// epoll timeout set to the nearest deadline on BackendConfig::clock (the
// steady clock when null); a FakeClock's Advance wakes it.
//
// Driven (BackendConfig::driven, what the worker asks for): the reactor has
// no thread; its owner waits on PollFd() with its own descriptors, for at
// most PollTimeoutMs(), and calls Poll() for a turn, so a task's exit and
// the next launch cross no thread (docs/benchmarks.md, "The spawn reactor
// on the worker's thread"). Events then come on the owner's thread, and
// Shutdown runs the reactor's last turns on the caller's.
//
// Details callers may rely on:
//   - A stream whose path is empty goes to /dev/null (no pipe, no file).
//   - The payload is a drover.spawn.SpawnTask (spawn_attempt.h); one that
//     does not decode is a launch failure.
//   - A launch failure (command not found, bad cwd, empty argv, ...) gets
//     OnFinished(kLaunchFailed) and no OnStarted.
//   - Submit refuses with kFailedPrecondition (not started, shut down),
//     kAlreadyExists (the id is in flight) or kUnavailable (all slots busy);
//     a slot is free again before the OnFinished of the attempt that held it.
//   - After a timeout or cancel the exit status is not trusted: the reason
//     stays kTimeout / kCancelled whatever the process did on SIGTERM.
//   - PATH lookup uses the worker's PATH, not the attempt's env.
#ifndef DROVER_BACKENDS_SPAWN_SPAWN_BACKEND_H_
#define DROVER_BACKENDS_SPAWN_SPAWN_BACKEND_H_

#include <memory>

#include "backends/backend.h"
#include "backends/spawn/spawn_attempt.h"

namespace drover {

class SpawnBackend final : public Backend {
 public:
  explicit SpawnBackend(const BackendConfig& config);
  ~SpawnBackend() override;  // calls Shutdown(0)

  Status Start(BackendEvents* events) override;
  int Capacity() const override;
  Status Submit(TaskAttempt attempt) override;
  void Cancel(uint64_t attempt_id) override;
  void Shutdown(Duration grace) override;
  bool TakesEnvironment() const override { return true; }
  int PollFd() const override;
  void Poll() override;
  int PollTimeoutMs() const override;

 private:
  class Reactor;
  RealClock real_clock_;  // used when the config gives no clock; before reactor_
  std::unique_ptr<Reactor> reactor_;
  int slots_;
  bool driven_;                      // BackendConfig::driven
  BackendEvents* events_ = nullptr;  // set by Start
};

}  // namespace drover

#endif  // DROVER_BACKENDS_SPAWN_SPAWN_BACKEND_H_

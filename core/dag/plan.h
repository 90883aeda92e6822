// Plan: the state of one job's task graph. Plain data, no I/O, no clock of
// its own: every call that depends on time takes `now`.
//
// Task state machine (docs/spec.md, "Task states"):
//
//   waiting --deps done--> ready --Start--> running --OnSucceeded--> succeeded
//                            ^                 |
//                            |                 +--OnFailed, retries left--> retry-wait
//                            +----Promote(now) at retry time-------------------+
//                                              +--OnFailed, none left--> failed
//   a failed (or cancelled) task makes every transitive dependent `blocked`;
//   with fail_fast, a failure also makes every task that has not started
//   `skipped` (running tasks are left to the caller to cancel).
//
// Not thread-safe: owned by the coordinator's loop.
#ifndef DROVER_CORE_DAG_PLAN_H_
#define DROVER_CORE_DAG_PLAN_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <string_view>
#include <vector>

#include "core/base/clock.h"

namespace drover::dag {

enum class TaskState : uint8_t {
  kWaiting,    // some dependency has not succeeded yet
  kReady,      // may be dispatched
  kRunning,    // an attempt is out
  kRetryWait,  // failed, will be ready again at retry_at
  kSucceeded,
  kFailed,     // failed with no retries left
  kBlocked,    // a dependency failed, was cancelled or blocked
  kSkipped,    // not started because of fail_fast or a job cancel
  kCancelled,  // its running attempt was cancelled
};

std::string_view TaskStateName(TaskState s);   // "waiting", "retry-wait", ...
std::optional<TaskState> ParseTaskState(std::string_view name);
bool IsTerminal(TaskState s);  // succeeded, failed, blocked, skipped, cancelled

struct PlanTask {
  std::vector<uint32_t> needs;  // indices of tasks this one waits for
  int retries = 0;              // extra attempts allowed after the first
  Duration backoff = std::chrono::seconds(1);       // delay before retry 1
  Duration backoff_max = std::chrono::seconds(60);  // cap on the delay
};

struct PlanOptions {
  bool fail_fast = false;
  uint64_t jitter_seed = 0;  // seeds the backoff jitter (tests pin it)
};

struct PlanCounts {
  uint32_t total = 0, waiting = 0, ready = 0, running = 0, retry_wait = 0,
           succeeded = 0, failed = 0, blocked = 0, skipped = 0, cancelled = 0;
};

class Plan {
 public:
  // Precondition: every `needs` index < tasks.size() and the graph is
  // acyclic (core/spec guarantees both). Tasks without needs start ready.
  Plan(std::vector<PlanTask> tasks, PlanOptions options);

  uint32_t size() const;
  TaskState state(uint32_t task) const;
  int attempts(uint32_t task) const;  // attempts started so far
  const PlanCounts& counts() const;
  // True when every task is in a terminal state.
  bool Finished() const;
  // True when finished and every task succeeded.
  bool Succeeded() const;

  // Resume: marks a task succeeded before the run starts (its result is
  // carried over from an earlier run) and releases its dependents.
  void MarkSucceeded(uint32_t task);

  // The oldest ready task (FIFO in the order tasks became ready), without
  // removing it; nullopt when none is ready.
  std::optional<uint32_t> PeekReady() const;
  // ready -> running; counts an attempt. Precondition: state(task) == kReady.
  void Start(uint32_t task);
  // running -> ready without counting the attempt (a dispatch that never
  // reached a worker). Precondition: running.
  void Unstart(uint32_t task);

  void OnSucceeded(uint32_t task);
  // running -> retry-wait (returns the time it becomes ready again) when
  // `retryable` and retries remain; else -> failed (returns nullopt), which
  // blocks its dependents and, with fail_fast, skips what has not started.
  // The delay is backoff * 2^(attempt-1), capped at backoff_max, with up to
  // +-20% jitter.
  std::optional<SteadyTime> OnFailed(uint32_t task, SteadyTime now, bool retryable);
  // running -> cancelled, blocking dependents.
  void OnCancelled(uint32_t task);
  // Every task that has not started (waiting, ready, retry-wait) -> skipped.
  // Running tasks are returned so the caller can cancel them.
  std::vector<uint32_t> CancelPending();

  // Moves retry-wait tasks whose time has come to ready.
  void Promote(SteadyTime now);
  // The earliest retry time of a retry-wait task, if any.
  std::optional<SteadyTime> NextRetryAt() const;

 private:
  struct Node {
    std::vector<uint32_t> dependents;
    uint32_t unmet = 0;  // dependencies not yet succeeded
    int attempts = 0;
    TaskState state = TaskState::kWaiting;
    SteadyTime retry_at{};
  };

  void SetState(uint32_t task, TaskState s);
  void MakeReady(uint32_t task);
  void Release(uint32_t task);  // a task succeeded: unblock dependents
  void Block(uint32_t task);    // a task failed: block its dependents

  std::vector<PlanTask> tasks_;
  std::vector<Node> nodes_;
  PlanOptions options_;
  PlanCounts counts_;
  std::deque<uint32_t> ready_;  // may hold stale entries; PeekReady skips
  std::mt19937_64 rng_;
};

}  // namespace drover::dag

#endif  // DROVER_CORE_DAG_PLAN_H_

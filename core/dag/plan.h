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
// Once fail_fast has fired or CancelPending was called the plan is halted:
// no task starts again. A running task that then fails does not retry (it
// becomes failed) and one that is Unstart-ed becomes skipped, so the job
// still reaches Finished() once the caller's cancels come back.
//
// A call whose precondition does not hold (an index out of range, Start on a
// task that is not ready, ...) changes nothing: the coordinator may see late
// or duplicate results and must not be able to corrupt the plan with them.
//
// Cost: construction O(tasks + edges); every transition O(1) amortized,
// except blocking (O(dependents reached)) and halting (O(tasks), once).
//
// Not thread-safe: owned by the coordinator's loop.
#ifndef DROVER_CORE_DAG_PLAN_H_
#define DROVER_CORE_DAG_PLAN_H_

#include <cstdint>
#include <deque>  // kept: includers may rely on it
#include <optional>
#include <random>
#include <string_view>
#include <vector>

#include "core/base/clock.h"
#include "core/dag/states.h"  // TaskState: includers of plan.h rely on it

namespace drover::dag {

struct PlanTask {
  std::vector<uint32_t> needs;  // indices of tasks this one waits for
  int retries = 0;              // extra attempts allowed after the first
  Duration backoff = std::chrono::seconds(1);       // delay before retry 1
  Duration backoff_max = std::chrono::seconds(60);  // cap on the delay
  // The ready queue the task joins (a placement class of the coordinator:
  // tasks that fit the same workers). Queues are 0..max(queue); each is
  // FIFO, so a class no worker can take does not hold up the others.
  uint32_t queue = 0;
};

struct PlanOptions {
  bool fail_fast = false;
  uint64_t jitter_seed = 0;  // seeds the backoff jitter (tests pin it)
};

struct PlanCounts {
  uint32_t total = 0, waiting = 0, ready = 0, running = 0, retry_wait = 0, succeeded = 0,
           failed = 0, blocked = 0, skipped = 0, cancelled = 0, cached = 0;
};

class Plan {
 public:
  // Precondition: every `needs` index < tasks.size() and the graph is
  // acyclic (core/spec guarantees both). Tasks without needs start ready.
  Plan(std::vector<PlanTask> tasks, PlanOptions options);

  uint32_t size() const;
  TaskState state(uint32_t task) const;  // kSkipped when out of range
  int attempts(uint32_t task) const;  // attempts started so far; 0 if out of range
  const PlanCounts& counts() const;
  // True when every task is in a terminal state.
  bool Finished() const;
  // True when finished and every task succeeded or was cached.
  bool Succeeded() const;

  // Resume: marks a task succeeded before the run starts (its result is
  // carried over from an earlier run) and releases its dependents.
  void MarkSucceeded(uint32_t task);
  // A task not run because an earlier attempt with its cache key succeeded
  // (or carried over as such by a resume): waiting or ready -> cached,
  // releasing its dependents as a success does. Any other state: ignored.
  void MarkCached(uint32_t task);

  // The oldest ready task (FIFO in the order tasks became ready), without
  // removing it; nullopt when none is ready. O(queues).
  std::optional<uint32_t> PeekReady() const;
  // The oldest ready task of `queue`; nullopt when it has none. O(1).
  std::optional<uint32_t> PeekReady(uint32_t queue) const;
  // Number of ready queues (1 + the largest PlanTask::queue).
  uint32_t queues() const;
  // The queue of `task` (0 when out of range).
  uint32_t queue(uint32_t task) const;
  // Whether any task needs `task`; false if out of range. O(1).
  bool HasDependents(uint32_t task) const {
    return Valid(task) && dep_begin_[task + 1] > dep_begin_[task];
  }
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
  // running -> cancelled, blocking dependents. Does not trigger fail_fast:
  // cancelling is the caller's decision, not a failure of the task.
  void OnCancelled(uint32_t task);
  // Every task that has not started (waiting, ready, retry-wait) -> skipped.
  // Running tasks are returned so the caller can cancel them.
  std::vector<uint32_t> CancelPending();
  // One task that has not started (waiting, ready, retry-wait) ->
  // cancelled, blocking its dependents; the plan is not halted. Returns
  // false and changes nothing for a task in any other state.
  bool CancelNotStarted(uint32_t task);

  // Dynamic fan-out (docs/spec.md, "Dynamic matrix"): appends `count`
  // tasks that are copies of `like`: its needs, its dependents, its queue
  // and its retry policy. Returns the index of the first; they are
  // size()-count .. size()-1. Precondition: state(like) == kReady (every
  // need has succeeded), so the copies are ready at once, queued after
  // every task ready now; each waiting dependent of `like` also waits for
  // them. Changes nothing and returns size() when the precondition does
  // not hold or the plan would pass 2^32-1 tasks.
  // O(count * dependents(like)).
  uint32_t Grow(uint32_t like, uint32_t count);

  // Recovery: sets the attempts counted for `task` (a coordinator restart
  // rebuilds the plan from the store, where earlier attempts are recorded,
  // so that retries stay counted). Precondition: attempts >= 0.
  void RestoreAttempts(uint32_t task, int attempts);

  // Moves retry-wait tasks whose time has come to ready.
  void Promote(SteadyTime now);
  // The earliest retry time of a retry-wait task, if any.
  std::optional<SteadyTime> NextRetryAt() const;

  // True once fail_fast fired or CancelPending was called (see above).
  bool halted() const;

 private:
  static constexpr uint32_t kNil = UINT32_MAX;

  // Per-task mutable state, kept small: a 100,000-task plan is a few MB.
  struct Node {
    uint64_t ready_seq = 0;   // when it last became ready (global FIFO order)
    uint32_t unmet = 0;       // dependencies not yet succeeded
    uint32_t prev = kNil;     // ready list links, valid while kReady
    uint32_t next = kNil;
    uint32_t queue = 0;       // its ready queue
    int32_t attempts = 0;
    TaskState state = TaskState::kWaiting;
  };
  struct Queue {
    uint32_t head = kNil;
    uint32_t tail = kNil;
  };
  struct RetryPolicy {
    int retries = 0;
    Duration backoff{0};
    Duration backoff_max{0};
  };
  struct RetryEntry {
    SteadyTime at;
    uint32_t task;
  };

  static bool RetryLater(const RetryEntry& a, const RetryEntry& b);
  bool Valid(uint32_t task) const { return task < nodes_.size(); }
  uint32_t& Count(TaskState s);
  void SetState(uint32_t task, TaskState s);
  // waiting or ready -> `done` (succeeded or cached), releasing dependents.
  void MarkDone(uint32_t task, TaskState done);
  void MakeReady(uint32_t task);
  void Unlink(uint32_t task);  // removes a ready task from the ready list
  void Release(uint32_t task);  // a task succeeded: unblock dependents
  void Block(uint32_t task);    // a task failed: block its dependents
  // Skips every waiting, ready and retry-wait task and halts the plan.
  void SkipPending();
  Duration RetryDelay(uint32_t task);

  std::vector<Node> nodes_;
  std::vector<RetryPolicy> policies_;
  // Dependents in compressed form: those of task t are
  // dependents_[dep_begin_[t] .. dep_begin_[t + 1]).
  std::vector<size_t> dep_begin_;
  std::vector<uint32_t> dependents_;
  PlanOptions options_;
  PlanCounts counts_;
  // Ready tasks as one intrusive FIFO list per queue through
  // Node::prev/next: O(1) removal of any ready task (Start, MarkSucceeded)
  // and no stale entries.
  std::vector<Queue> ready_;
  uint64_t next_ready_seq_ = 0;
  // Min-heap on (at, task) of the retry-wait tasks. A task leaves
  // retry-wait through Promote (pops it), SkipPending (clears all) or
  // CancelNotStarted (leaves a stale entry that Promote discards).
  std::vector<RetryEntry> retry_heap_;
  bool halted_ = false;
  std::mt19937_64 rng_;
};

}  // namespace drover::dag

#endif  // DROVER_CORE_DAG_PLAN_H_

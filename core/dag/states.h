// The states of a task and of a job, and their names. In code a state is
// one of these enums; its name is what the edges carry: the store's rows
// (docs/state.md), the wire (docs/protocol.md, TASK-EVENT, JOB-EVENT,
// STATUS-REPLY), the CLI's tables and its JSON. The names never change: a
// state directory written by an earlier drover is read with them.
//
// How the CLI shows a task state to a person (its tags) is in
// tools/cli/render.h, not here.
#ifndef DROVER_CORE_DAG_STATES_H_
#define DROVER_CORE_DAG_STATES_H_

#include <cstdint>
#include <optional>
#include <string_view>

namespace drover::dag {

// A task's state (the machine is in plan.h).
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
  // Not run: an earlier successful attempt had the same cache key
  // (docs/spec.md, "cache"). Counts as succeeded for its dependents, its
  // job's success and `--resume`.
  kCached,
};

std::string_view TaskStateName(TaskState s);  // "waiting", "retry-wait", ...
std::optional<TaskState> ParseTaskState(std::string_view name);  // nullopt: unknown
bool IsTerminal(TaskState s);  // succeeded, cached, failed, blocked, skipped, cancelled
// Succeeded or cached: its outputs and artifacts are there for dependents.
bool IsSuccess(TaskState s);

// A job's state: running until its plan is finished, then succeeded (every
// task did), cancelled (a cancel stopped it) or failed. A job that a
// coordinator left running when it stopped, and that cannot be taken up
// again, is interrupted.
enum class JobState : uint8_t {
  kRunning,
  kSucceeded,
  kFailed,
  kCancelled,
  kInterrupted,
};

std::string_view JobStateName(JobState s);  // "running", "succeeded", ...
std::optional<JobState> ParseJobState(std::string_view name);  // nullopt: unknown

}  // namespace drover::dag

#endif  // DROVER_CORE_DAG_STATES_H_

// The vocabulary of how one attempt of a task ended, shared by the backends,
// the wire protocol, the store and the CLI.
#ifndef DROVER_CORE_BASE_OUTCOME_H_
#define DROVER_CORE_BASE_OUTCOME_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/base/clock.h"
#include "core/base/outputs.h"

namespace drover {

// Why an attempt did not succeed. The names (ReasonName) are part of the
// public surface: they appear in `drover status`, its JSON and the protocol.
enum class FailureReason : uint8_t {
  kNone = 0,         // succeeded
  kExit,             // exited with a non-zero code
  kSignal,           // killed by a signal it did not ask for
  kTimeout,          // ran past its timeout and was killed
  kCancelled,        // cancelled by a user or by fail_fast
  kWorkerLost,       // the worker running it died or was cut off
  kLaunchFailed,     // could not be started (command not found, bad cwd, ...)
  kProcessCrashed,   // a pool process died mid-task (fork backend)
  kInternal,         // drover itself failed to run it; see the message
  kRequestFailed,    // cluster backend: the service answered with another
                     // status than expected, or refused or reset the connection
  kBadOutputs,      // its outputs are malformed ($DROVER_OUTPUT) or over the cap
  kMissingInput,    // an output it refers to was not produced upstream; it
                    // never ran (not retried: the upstream result stands)
  kArtifactFailed,   // its artifacts could not be staged before it ran or
                     // stored after it succeeded (docs/spec.md, artifacts)
  kLimit,            // ended by one of its `limits` (cpu, memory); the
                     // message names it
};

std::string_view ReasonName(FailureReason reason);  // "exit", "worker-lost", ...
std::optional<FailureReason> ParseReason(std::string_view name);

// One captured output stream of an attempt.
struct StreamInfo {
  uint64_t bytes = 0;    // bytes kept (at most the output limit)
  uint64_t dropped = 0;  // bytes dropped from the head when the limit was hit
};

struct AttemptOutcome {
  FailureReason reason = FailureReason::kNone;
  int exit_code = -1;    // valid when the process exited (reason kNone/kExit)
  int signal = 0;        // the signal that ended it, or 0
  std::string message;   // human detail: errno text, "timed out after 30s"
  Duration wall{0};
  Duration cpu_user{0};
  Duration cpu_sys{0};
  int64_t max_rss_kb = 0;
  StreamInfo out;
  StreamInfo err;
  std::string result_json;  // the returned value (threads/fork backends)
  // Named values for dependents (core/base/outputs.h); set on success only.
  Outputs outputs;
  // With kWorkerLost: the attempt never began (it waited in a prefetching
  // worker, which handed it back as it drained or stopped). It does not
  // count against the task's retries.
  bool not_started = false;

  bool ok() const { return reason == FailureReason::kNone; }
  // "exit 0" (a process) or "ok" (a function or a pool reply), "exit 3",
  // "signal SIGKILL", "timeout: timed out after 2.00s",
  // "launch-failed: command not found: foo"
  std::string Describe() const;
};

// Whether a failure with this reason may be retried under `retries:`.
// Every reason but kCancelled and kMissingInput is retryable.
bool IsRetryable(FailureReason reason);

}  // namespace drover

#endif  // DROVER_CORE_BASE_OUTCOME_H_

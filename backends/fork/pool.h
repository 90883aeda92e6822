// What the fork backend knows about a pool apart from its processes: the
// identity of a declaration, its checks, and the restart policy. Pure
// functions, no I/O: the reactor (fork_backend.cc) applies them.
#ifndef DROVER_BACKENDS_FORK_POOL_H_
#define DROVER_BACKENDS_FORK_POOL_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "backends/fork/fork_attempt.h"
#include "core/base/clock.h"
#include "core/base/outcome.h"
#include "core/base/status.h"

namespace drover {

// A process that exits (without being asked to) this soon after it started
// counts as a quick exit; a run of them is a crash loop.
inline constexpr Duration kQuickExit = std::chrono::seconds(1);
// Restart delays of a crash-looping pool slot: the first quick exit waits
// kFirstBackoff, each further one doubles it, up to kMaxBackoff.
inline constexpr Duration kFirstBackoff = std::chrono::milliseconds(100);
inline constexpr Duration kMaxBackoff = std::chrono::seconds(30);
// How long a retired process (max_tasks reached, idle_timeout, superseded
// declaration, shutdown of an idle pool) gets between SIGTERM (with its
// channel closed) and SIGKILL.
inline constexpr Duration kRetireGrace = std::chrono::seconds(2);

// A stable fingerprint of everything in a declaration (name, mode,
// command, instances, max_tasks, idle_timeout, env, cwd). Pools are keyed
// by name and fingerprint: a changed declaration is a new pool.
uint64_t PoolFingerprint(const PoolSpec& spec);

// Ok when the declaration can be run; otherwise kInvalidArgument with the
// text the user sees after "pool 'NAME': ", e.g. "instances must be at
// least 1, got 0", "mode 'x' is not process or cow", "command is empty".
Status CheckPoolSpec(const PoolSpec& spec);

// The delay before restarting a slot after its `quick_exits`-th quick exit
// in a row (>= 1): 100 ms, 200 ms, 400 ms, ... capped at 30 s.
Duration CrashBackoff(int quick_exits);

// "exited with code 3", "was killed by signal SIGSEGV" (and "(core
// dumped)"), from a wait status.
std::string DescribeWaitStatus(int status);

// "SIGSEGV", or "signal 77" for a number without a name.
std::string SignalName(int sig);

// "pool 'NAME'": how every message names a pool.
std::string PoolLabel(const std::string& name);

// An outcome that failed for `reason`, with `message`.
AttemptOutcome Failed(FailureReason reason, std::string message);

}  // namespace drover

#endif  // DROVER_BACKENDS_FORK_POOL_H_

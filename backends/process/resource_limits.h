// ResourceLimits: the `limits` of a spawn task (docs/spec.md, "limits"),
// as the process library applies them and explains a failure by them.
//
// Enforcement is setrlimit in the child between fork and exec (fork_exec.h),
// inherited by everything the task starts:
//   cpu        RLIMIT_CPU, soft = the limit, hard = the limit + 2 s: the
//              kernel sends SIGXCPU at the soft limit (fatal by default) and
//              SIGKILL at the hard one, so a task that catches SIGXCPU still
//              ends. Per process: each process of the task has its own budget.
//   memory     RLIMIT_DATA (heap, brk and private writable mappings), not
//              RLIMIT_AS: address space counts reservations that are never
//              touched, which V8 (node), Go, the JVM and sanitizers make by
//              the gigabyte, so an AS limit breaks them at startup. Per
//              process; an allocation past it fails (ENOMEM), nothing is
//              killed.
//   files      RLIMIT_NOFILE: open() and friends fail with EMFILE.
//   processes  RLIMIT_NPROC: fork() fails with EAGAIN once the task's real
//              user has that many processes, counted across the whole user
//              (the worker and its other tasks included when they share the
//              uid). The kernel exempts root (uid 0) and holders of
//              CAP_SYS_ADMIN or CAP_SYS_RESOURCE: for them it is not enforced.
// A limit never raises one the worker itself runs under (it is capped at
// the worker's hard limit). cgroup v2 (memory.max, pids.max) would be exact
// per task; it is not used yet (docs/security.md, "Resource limits").
//
// Thread-safe (no state).
#ifndef DROVER_BACKENDS_PROCESS_RESOURCE_LIMITS_H_
#define DROVER_BACKENDS_PROCESS_RESOURCE_LIMITS_H_

#include <sys/resource.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/outcome.h"

namespace drover {

// 0 means "no limit".
struct ResourceLimits {
  uint64_t cpu_seconds = 0;
  uint64_t memory_bytes = 0;
  uint64_t files = 0;
  uint64_t processes = 0;

  bool empty() const {
    return cpu_seconds == 0 && memory_bytes == 0 && files == 0 && processes == 0;
  }
  // "cpu 10s, memory 512MiB, files 1024, processes 64" (the ones set).
  std::string Describe() const;
};

// The seconds between SIGXCPU and SIGKILL.
inline constexpr uint64_t kCpuKillAfterSeconds = 2;

// One setrlimit call for the child.
struct RlimitSetting {
  int resource;  // RLIMIT_*
  rlimit value;
};

// The setrlimit calls that put a child under `limits`, each capped at the
// calling process's own hard limit (lowering is always allowed, so the
// child's calls cannot fail for lack of privilege).
std::vector<RlimitSetting> PlanRlimits(const ResourceLimits& limits);

// "512MiB", "1GiB", "1000000 bytes".
std::string FormatBytes(uint64_t bytes);

// Explains `outcome`, the end of a process that ran under `limits` and
// that drover did not stop itself (no timeout or cancel), by the limit that
// ended it, where that can be told from outside:
// - death by SIGXCPU (or SIGKILL, or exit 152 from a shell whose child got
//   SIGXCPU) with the CPU time at the limit: reason kLimit, "cpu limit 10s
//   exceeded (SIGXCPU)";
// - a failure with a peak RSS at 3/4 of the memory limit or more: reason
//   kLimit, "memory limit 64MiB reached (max RSS 61MiB)".
// Otherwise the reason stays; a failed attempt's message then says which
// limits were in force ("limits in force: files 64"), since an EMFILE or an
// EAGAIN from fork() inside the task leaves no trace outside it.
// `processes_enforced` is false when the task runs as a user RLIMIT_NPROC
// exempts; the message then says so, success or not.
void ExplainByLimits(const ResourceLimits& limits, bool processes_enforced,
                     AttemptOutcome* outcome);

// Whether RLIMIT_NPROC binds processes this one starts: false for root and
// for holders of CAP_SYS_ADMIN or CAP_SYS_RESOURCE.
bool NprocEnforced();

}  // namespace drover

#endif  // DROVER_BACKENDS_PROCESS_RESOURCE_LIMITS_H_

// Guardian: makes a worker's tasks die with the worker, even by kill -9.
//
// A process group cannot be told "die when your supervisor dies"
// (PR_SET_PDEATHSIG covers one process, and only the leader), so the worker
// forks a small guardian process at start, while it is still single-threaded
// (like the zygote: backends/fork/zygote.h). The guardian holds one end of a
// socket pair whose other end only the worker has (close-on-exec, so no
// task inherits it; the guardian closes every other descriptor it got), and
// shares one page-backed table with the worker: a bit per process id, set
// while the worker has a live group led by that id. The worker sets the bit
// of each process group it starts (Watch) and clears the bit of each one it
// is about to reap (Forget); when the worker dies, however it dies, the
// socket reaches EOF and the guardian SIGKILLs every group whose bit is
// still set, then exits. The worker clears a bit before it reaps the
// leader, and the guardian reads the table only once the worker is dead, so
// every group the guardian kills is still the worker's (its leader not
// reaped: the id cannot have been reused).
//
// Watch and Forget are memory operations, not messages: the guardian sleeps
// through them. As messages they woke the guardian twice a task, which
// cost a spawn task 70 us of CPU (docs/benchmarks.md, "The guardian's
// table").
//
// The guardian also keeps the live groups in a spool file (`spool_file`),
// with the worker's marker: a random token every task inherits in its
// environment as DROVER_GUARDIAN=TOKEN. It rewrites the file at most once
// a second, when the table changed. When worker and guardian both died
// (the host's OOM killer, a kill of the whole session), a worker restarted
// on the same spool claims it (ClaimSpool) before it registers: it
// SIGKILLs each process of a recorded group whose /proc/PID/environ carries
// that token, and nothing else, so a recycled pid is never touched.
//
// Escapes. A process that leaves its group (setsid or setpgid, as a
// daemonizing grandchild does) is not reached by the group kill, so after
// it the guardian (and ClaimSpool) also SIGKILLs every process whose
// /proc/PID/environ holds DROVER_GUARDIAN=TOKEN. What still escapes: a
// process exec'd with an environment of its own that drops the variable
// (env -i), one started after the last scan round, or one run as another
// user whose environ we cannot read. Closing that needs a cgroup per
// attempt (kill the cgroup), not done here.
//
// Not used: PR_SET_PDEATHSIG. It covers one process, not its group; and
// it fires when the parent *thread* that forked exits (a service host
// thread, a reactor), not when the worker dies, so it would kill tasks and
// service instances at the wrong time. The guardian sees the worker process
// itself die (EOF on a socket only the worker holds). Nor
// PR_SET_CHILD_SUBREAPER in the worker: orphaned grandchildren would become
// the worker's children, which its backends (each reaping its own pids)
// would leave as zombies, and a worker killed -9 hands them to init anyway.
//
// Thread-safe: Watch and Forget are atomic operations on the shared table,
// from any thread, with no syscall.
#ifndef DROVER_BACKENDS_PROCESS_GUARDIAN_H_
#define DROVER_BACKENDS_PROCESS_GUARDIAN_H_

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "backends/process/unique_fd.h"
#include "core/base/status.h"

namespace drover {

// The guardian's record in a worker's spool directory.
inline constexpr char kGuardianSpoolFile[] = "task-groups";

// The environment variable that marks a worker's tasks.
inline constexpr char kGuardianMarkerEnv[] = "DROVER_GUARDIAN";

// Sets DROVER_GUARDIAN to a fresh random token in this process's
// environment, so that every process started from now on (tasks, the
// zygote and its pool processes) inherits it, and returns the token. Call
// it before any thread exists (setenv is not thread-safe).
std::string SetGuardianMarker();

struct GuardianOptions {
  std::string marker;                 // from SetGuardianMarker
  std::filesystem::path spool_file;   // empty: no record on disk
};

class Guardian {
 public:
  ~Guardian();
  Guardian(const Guardian&) = delete;
  Guardian& operator=(const Guardian&) = delete;

  // Starts the guardian. Call it from the main thread while the process
  // has no other thread, after the zygote (which must not inherit the
  // write end). On failure nothing is left running.
  static Result<std::shared_ptr<Guardian>> Start(const GuardianOptions& options);

  pid_t pid() const { return pid_; }

  // The group led by `pgid` (just started) must die with the worker.
  void Watch(pid_t pgid);
  // The group led by `pgid` is about to be reaped: call before wait4.
  void Forget(pid_t pgid);

  // Whether the group led by `pgid` is watched (for tests).
  bool Watching(pid_t pgid) const;

  // The shared table: a bit per process id, below the kernel's PID_MAX_LIMIT
  // on 64-bit (4,194,304: no pid is larger, whatever pid_max says), and a
  // count of changes, by which the guardian knows when to rewrite its record.
  struct Table {
    static constexpr uint32_t kPids = 4u << 20;
    uint64_t changes;
    uint64_t bits[kPids / 64];
  };

 private:
  Guardian(pid_t pid, UniqueFd write_end, Table* table)
      : pid_(pid), write_end_(std::move(write_end)), table_(table) {}

  const pid_t pid_;
  UniqueFd write_end_;
  Table* const table_;  // MAP_SHARED with the guardian
};

// What ClaimSpool found.
struct SpoolClaim {
  // The lock on DIR/lock, held while this lives (keep it for the process's
  // life); none when the spool cannot be locked (see `unlocked`).
  UniqueFd lock;
  // Why the spool could not be locked (a file system without POSIX locks,
  // a path that cannot be opened); empty when it is locked.
  std::string unlocked;
  // Processes an earlier owner of the spool left running, now killed.
  int killed = 0;
};

// Claims the spool `dir` (created if needed) for this worker or `drover
// run`, before it starts anything. One live owner per spool: a POSIX record
// lock on DIR/lock (fcntl F_SETLK), which the kernel drops when the process
// dies, however it dies, and which children forked afterwards (zygote,
// guardian, tasks) do not inherit. Then, and only then, it SIGKILLs what an
// earlier owner left running when it died together with its guardian: each
// process whose environment carries the marker recorded in
// DIR/task-groups (in a recorded group or escaped from it), and removes
// that file; a recycled pid is never touched.
//
// FailedPrecondition, naming the holder's pid, when another live process
// holds the spool: nothing is killed then, since those are its running
// tasks. A spool that cannot be locked is claimed without the lock
// (`unlocked` says why): a second owner would then not be refused.
Result<SpoolClaim> ClaimSpool(const std::filesystem::path& dir);

}  // namespace drover

#endif  // DROVER_BACKENDS_PROCESS_GUARDIAN_H_

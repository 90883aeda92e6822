// CloneExec: what posix_spawnp does for ChildLauncher, with less.
//
// The child is a clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD), as glibc's
// posix_spawn child is a clone(CLONE_VM | CLONE_VFORK): it shares our
// memory, and the calling thread waits until it has exec'd or failed. The
// differences, each measured (docs/benchmarks.md, "A spawn of our own"):
//
// - It runs on a stack CloneExec keeps. glibc maps a stack and unmaps it on
//   every call, and an unmap in a process of several threads interrupts
//   every CPU that ran one of them lately, to flush its TLB.
// - The kernel hands back its pidfd with the pid (CLONE_PIDFD): no
//   pidfd_open after it.
// - It puts each signal back to its default in one call (and a second only
//   for one we ignore and the caller does not reset), where glibc asks
//   first and then sets; and it needs no file-actions object (whose every
//   entry asks the kernel for RLIMIT_NOFILE).
//
// What the child does is posix_spawnp's, in its order: every signal with
// a handler, and those of `defaults`, back to SIG_DFL (ignored ones stay
// ignored); a process group of its own; `fds` onto 0, 1, 2 (and 3); the
// cwd; an empty signal mask; the exec, of argv[0] itself when it holds a
// '/', else of the first that execs of that name in each directory of
// `path` (execvp's rules: an EACCES is remembered and the search goes on;
// "" is the current directory). An exec that fails reports its errno,
// which Start returns, and the child is reaped.
//
// Everything the child touches is prepared before the clone; between the
// clone and the exec it makes raw system calls only, and runs no code of
// any sanitizer (their interceptors keep state in memory the child shares
// with us). Signals are blocked in the calling thread around the clone, so
// that no handler of ours runs on the child's stack.
//
// Not thread-safe: one stack, one launch at a time (ChildLauncher's owner).
#ifndef DROVER_BACKENDS_PROCESS_CLONE_EXEC_H_
#define DROVER_BACKENDS_PROCESS_CLONE_EXEC_H_

#include <signal.h>
#include <sys/types.h>

#include <cstddef>

#include "backends/process/unique_fd.h"
#include "core/base/status.h"

namespace drover {

struct CloneExecSpec {
  char* const* argv = nullptr;  // NULL-terminated; argv[0] a path or a name
  char* const* envp = nullptr;  // NULL-terminated
  const char* path = nullptr;   // searched for a name; null: "/usr/bin:/bin"
  const char* cwd = nullptr;    // null: inherit
  // Become the child's 0, 1, 2 and 3 (-1 for 3: none), copied in that
  // order: the first three must be numbered above 2 and the fourth above
  // 3, so that no copy clobbers one still to be made.
  int fds[4] = {-1, -1, -1, -1};
  sigset_t defaults{};  // reset to SIG_DFL even when ignored here
};

class CloneExec {
 public:
  CloneExec() = default;
  ~CloneExec();
  CloneExec(const CloneExec&) = delete;
  CloneExec& operator=(const CloneExec&) = delete;

  // Maps the child's stack, with a guard page below it.
  Status Init();

  struct Started {
    pid_t pid = -1;          // leads its own process group; not reaped yet
    UniqueFd pidfd;          // readable when it exits
    int error = 0;           // when not 0, nothing runs: the clone's or the child's errno
    const char* stage = "";  // what failed: "clone", "dup2", "chdir", "exec"
  };
  Started Start(const CloneExecSpec& spec);

 private:
  void* stack_ = nullptr;  // the mapping, guard page first
  size_t size_ = 0;
};

}  // namespace drover

#endif  // DROVER_BACKENDS_PROCESS_CLONE_EXEC_H_

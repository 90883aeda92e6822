// A child process that leads its own process group (pgid = pid), as every
// launcher in this folder starts one: signalling the group, watching the
// leader through a pidfd, and reaping it with its resource usage.
//
// The rule every function here relies on: the leader is not reaped yet, so
// its pid (= the group id) cannot have been reused by another process.
//
// Thread-safe: plain system calls, no state.
#ifndef DROVER_BACKENDS_PROCESS_PROCESS_GROUP_H_
#define DROVER_BACKENDS_PROCESS_PROCESS_GROUP_H_

#include <sys/resource.h>
#include <sys/types.h>

#include "core/base/clock.h"
#include "core/base/outcome.h"

namespace drover {

// Signals the group led by `pgid`, and the leader itself if it moved out of
// its group (for SIGKILL always: it must die whatever it did).
void SignalGroup(pid_t pgid, int sig);

// pidfd_open(2): a descriptor that becomes readable when `pid` exits, or -1
// with errno set. glibc 2.36 wraps it and older ones do not; the syscall
// works on both.
int PidfdOpen(pid_t pid);

// SIGKILLs the group of `pid` and reaps the leader, blocking until it is
// gone. For a child that cannot be watched (no pidfd, epoll refused it):
// stopping it at once is better than losing track of it.
void KillAndReap(pid_t pid);

// Waits up to `within` (real time) for `pidfd` to become readable, i.e.
// for its process to exit. False on a timeout (e.g. a process stuck in
// uninterruptible I/O after SIGKILL).
bool WaitExited(int pidfd, Duration within);

// What wait4 said about an exited leader.
struct Reaped {
  bool ok = false;   // false: wait4 failed (`error` says why), e.g. ECHILD
                     // when someone else reaped it
  int status = 0;    // the wait status, when ok
  rusage usage{};    // its resource usage, when ok
  int error = 0;
};

// Reaps `pid`, blocking until it exits (call once its pidfd is readable, and
// it returns at once).
Reaped Reap(pid_t pid);

// Copies user and system CPU time and the peak RSS of `usage` into
// `outcome`.
void SetUsage(const rusage& usage, AttemptOutcome& outcome);

}  // namespace drover

#endif  // DROVER_BACKENDS_PROCESS_PROCESS_GROUP_H_

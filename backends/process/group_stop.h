// GroupStop: the TERM -> grace -> KILL life of one process group, as Bazel's
// process-wrapper does it: ask with SIGTERM (and SIGCONT, since a stopped
// process acts on SIGTERM only once continued), wait out a grace, then
// SIGKILL the whole group.
//
// It holds the phase and sends the signals; the caller owns the timer (a
// DeadlineSet entry): Terminate returns when the grace ends, and the caller
// calls GraceOver then. Why the process is stopped (timeout, cancel, ...)
// is the caller's too: after a stop the exit status is not trusted.
//
// Only used while the leader is not reaped (process_group.h). Not
// thread-safe: one owner (a reactor thread).
#ifndef DROVER_BACKENDS_PROCESS_GROUP_STOP_H_
#define DROVER_BACKENDS_PROCESS_GROUP_STOP_H_

#include <sys/types.h>

#include <optional>

#include "core/base/clock.h"

namespace drover {

class GroupStop {
 public:
  enum class Phase {
    kAlive,        // no signal sent
    kTerminating,  // SIGTERM sent, waiting out the grace
    kKilled,       // SIGKILL sent
  };

  // The group led by `pgid`, alive.
  explicit GroupStop(pid_t pgid = -1) : pgid_(pgid) {}

  Phase phase() const { return phase_; }
  // SIGKILL was needed after the grace ran out.
  bool term_ignored() const { return term_ignored_; }

  // Starts a stop with `grace`: SIGTERM + SIGCONT and the phase
  // kTerminating, returning when the grace ends (now + grace, saturating).
  // With grace <= 0: SIGKILL at once and nullopt (no timer is needed).
  // Called again while terminating it signals nothing and returns the
  // new end, which the caller applies only if earlier (DeadlineSet::Lower);
  // once killed it does nothing and returns nullopt.
  std::optional<SteadyTime> Terminate(Duration grace, SteadyTime now);
  // The grace ended while terminating: SIGKILL, and term_ignored().
  // Does nothing in another phase.
  void GraceOver();
  // SIGKILL now, whatever the phase (shutdown, a reactor failure).
  void Kill();

 private:
  pid_t pgid_;
  Phase phase_ = Phase::kAlive;
  bool term_ignored_ = false;
};

}  // namespace drover

#endif  // DROVER_BACKENDS_PROCESS_GROUP_STOP_H_

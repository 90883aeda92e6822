// Looking for an answer without sleeping, for a bounded time, before a
// blocking wait: for a process that expects its peer's answer within
// microseconds (the fork backend and its pool processes, request and reply
// over a socket). On a VM a wake-up from a blocking wait can cost tens of
// microseconds (a halted vCPU woken by an interrupt); a round trip where
// both ends look for a few microseconds first costs neither end a wake-up
// (docs/benchmarks.md, ipc, session 32).
//
// Adaptive: the next wait spins only while the answers came within the
// budget. One answer that took longer turns the spin off, so a peer that
// is slow (a long task, an idle pool) costs at most one budget of CPU; a
// blocking wait whose answer came within the budget turns it on again.
// Plain data: the caller measures on the real clock and reports.
#ifndef DROVER_BACKENDS_PROCESS_ADAPTIVE_SPIN_H_
#define DROVER_BACKENDS_PROCESS_ADAPTIVE_SPIN_H_

#include <poll.h>
#include <sched.h>

#include <chrono>

namespace drover {

class AdaptiveSpin {
 public:
  using Duration = std::chrono::nanoseconds;

  // The default: above a fast answer's few microseconds, below what a task
  // of any size costs.
  static constexpr Duration kDefaultBudget = std::chrono::microseconds(50);

  explicit AdaptiveSpin(Duration budget = kDefaultBudget) : budget_(budget) {}

  // How long the next wait looks before it blocks: the budget while the
  // answers come within it, else zero.
  Duration Budget() const { return spinning_ ? budget_ : Duration(0); }

  // An answer came `waited` after the wait for it began (spun or not).
  void Answered(Duration waited) { spinning_ = waited <= budget_; }

 private:
  Duration budget_;
  bool spinning_ = true;
};

// Asks `ready` (a check that does not block) again and again until it says
// true or `budget` passed, on the real clock, yielding the CPU between
// asks to any thread that is ready to run on it. Returns its last answer;
// false at once for a budget of zero. Every spin of drover's goes through
// here: the cow child's, the fork reactor's, the worker's loop's.
template <typename Ready>
bool SpinUntil(AdaptiveSpin::Duration budget, Ready&& ready) {
  if (budget <= AdaptiveSpin::Duration(0)) return false;
  const auto until = std::chrono::steady_clock::now() + budget;
  do {
    if (ready()) return true;
    ::sched_yield();
  } while (std::chrono::steady_clock::now() < until);
  return false;
}

// SpinUntil `fd` has input (or is in error: the read that follows says
// which).
inline bool SpinUntilReadable(int fd, AdaptiveSpin::Duration budget) {
  return SpinUntil(budget, [fd] {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) != 0;
  });
}

}  // namespace drover

#endif  // DROVER_BACKENDS_PROCESS_ADAPTIVE_SPIN_H_

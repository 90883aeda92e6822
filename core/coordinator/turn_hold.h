// TurnHold: how long after a turn the coordinator may hold off the next,
// without looking at its socket, so that the next turn takes more than
// one message (docs/operations.md, "Turns held for more results").
//
// A turn costs about the same whatever it holds (a transaction, a commit,
// a message to each peer it concerns, and the wake-ups of the threads that
// read them: docs/benchmarks.md, "Turns held for more results"). Workers
// of short tasks with a prefetch send a RESULT every time one ends, and a
// coordinator that answers each at once takes a turn a task: at two
// `true`s in flight on two cores, those turns took a CPU time comparable
// to the tasks themselves. Holding the turn costs nobody anything while
// every worker holding attempts has more of them waiting for its slots
// than it will start before the turn: its slots stay busy and the RESULTs
// wait in the socket instead of in the loop.
//
// So the hold is half the shortest backlog among the (worker, backend)
// pairs holding attempts, where a backlog is the attempts waiting beyond
// the slots times the average wall time of that backend's recent attempts
// there, divided by the slots: the time until the last of them starts if
// nothing new comes. Half, so that the turn comes while there is still a
// margin of the backlog to cover its commit and the DISPATCH back. None at
// all when some pair holds no more than its slots (a slot frees with
// nothing behind it), or runs tasks of no known length yet; none when it
// is too short to gather anything (kWorthHolding); never more than the
// coordinator's `max_turn_hold`. Long tasks never get a prefetch beyond
// their slots (prefetch_grant.h), so they are never held for.
//
// Plain data, no clock: the loop feeds it what each worker holds at the
// end of a turn (coordinator.cc) and waits the hold before the next.
#ifndef DROVER_CORE_COORDINATOR_TURN_HOLD_H_
#define DROVER_CORE_COORDINATOR_TURN_HOLD_H_

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>

#include "core/base/clock.h"

namespace drover {

class TurnHold {
 public:
  // A shorter hold gathers nothing a turn would not have taken anyway.
  static constexpr Duration kWorthHolding = std::chrono::microseconds(200);

  explicit TurnHold(Duration most) : most_(most) {}

  // One backend of one worker: `held` attempts placed there and not ended
  // (running and waiting), `slots` its slots for that backend, `recent`
  // the average wall time of its recent attempts there (none ended yet:
  // nullopt). A pair holding nothing need not be added.
  void Add(uint32_t held, uint32_t slots, std::optional<Duration> recent) {
    if (held == 0) return;
    if (held <= slots || slots == 0 || !recent || *recent <= Duration(0)) {
      none_ = true;
      return;
    }
    const Duration backlog = *recent * (held - slots) / slots;
    shortest_ = shortest_ ? std::min(*shortest_, backlog) : backlog;
  }

  // Once true, hold() is zero whatever is added: stop adding.
  bool settled() const { return none_ || most_ < kWorthHolding; }

  // How long the next turn may wait after the last one ended.
  Duration hold() const {
    if (settled() || !shortest_) return Duration(0);
    const Duration half = std::min(*shortest_ / 2, most_);
    return half < kWorthHolding ? Duration(0) : half;
  }

 private:
  Duration most_;
  std::optional<Duration> shortest_;  // the shortest backlog added
  bool none_ = false;                 // a pair with nothing waiting behind it
};

}  // namespace drover

#endif  // DROVER_CORE_COORDINATOR_TURN_HOLD_H_

// The coordinator's held turns (turn_hold.h; docs/operations.md, "Turns
// held for more results"): how long the next turn may wait, and the wait.
#include "core/coordinator/turn_hold.h"

#include <poll.h>
#include <time.h>

#include <algorithm>
#include <chrono>

#include "core/coordinator/loop.h"

namespace drover {

Duration Coordinator::Loop::NextTurnHold() {
  TurnHold hold(options_.max_turn_hold);
  if (hold.settled()) return Duration(0);
  auto add = [&hold](const WorkerConn& w) {
    if (w.attempts.empty()) return;
    for (const auto& [backend, used] : w.used) {
      if (used == 0) continue;
      const auto slots = w.slots.find(backend);
      const auto grant = w.grants.find(backend);
      hold.Add(used, slots == w.slots.end() ? 0 : slots->second,
               grant == w.grants.end() ? std::nullopt : grant->second.recent());
      if (hold.settled()) return;
    }
  };
  // The worker that ruled out a hold last time most often rules it out
  // again: asked first, it spares a turn the walk over every worker.
  if (auto w = workers_.find(hold_breaker_); w != workers_.end()) {
    add(w->second);
    if (hold.settled()) return Duration(0);
  }
  for (const auto& [rid, w] : workers_) {
    if (rid == hold_breaker_) continue;
    add(w);
    if (hold.settled()) {
      hold_breaker_ = rid;
      return Duration(0);
    }
  }
  return hold.hold();
}

void Coordinator::Loop::HoldTurn() {
  SteadyTime until = turn_ended_ + turn_hold_;
  if (auto deadline = NextDeadline()) until = std::min(until, *deadline);
  const auto left =
      std::chrono::duration_cast<std::chrono::nanoseconds>(until - clock_.Now());
  if (left <= std::chrono::nanoseconds(0)) return;
  // One bounded wait, whatever the clock does meanwhile: a turn is never
  // held longer than turn_hold_ of real time (a test's FakeClock stands
  // still). The wake fd ends it early (a stop, a loaded spec, a read) and
  // is left unread: the loop's own wait, next, takes it and goes straight
  // to the turn that the wake-up asked for.
  const SteadyTime start = clock_.Now();
  pollfd wake{wake_fd_, POLLIN, 0};
  const timespec ts{static_cast<time_t>(left.count() / 1'000'000'000),
                    static_cast<long>(left.count() % 1'000'000'000)};
  (void)::ppoll(&wake, 1, &ts, nullptr);
  // A turn was held only if something came meanwhile: a hold that ends
  // with the socket empty was time the loop would have slept anyway, and
  // the turn comes when the next message does.
  if ((router_->get(zmq::sockopt::events) & ZMQ_POLLIN) == 0) return;
  ++stats_.turns_held;
  ++metrics_.turns_held;
  metrics_.turn_hold_seconds +=
      std::chrono::duration<double>(clock_.Now() - start).count();
}

}  // namespace drover

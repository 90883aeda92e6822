// LogLimiter: at most one log line per peer per reason per window, with
// the count of the events that were not logged (docs/protocol.md,
// "Malformed messages": one line per peer per reason per minute). A flood
// of bad messages then costs a few lines, not one line each.
//
// Plain data, no I/O and no clock of its own: the caller passes the time
// and logs what it is told to. Not thread-safe (the coordinator's loop
// owns it). Memory: one entry per (peer, reason) seen within a window;
// Sweep() forgets the older ones.
#ifndef DROVER_CORE_COORDINATOR_LOG_LIMITER_H_
#define DROVER_CORE_COORDINATOR_LOG_LIMITER_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/base/clock.h"

namespace drover {

class LogLimiter {
 public:
  explicit LogLimiter(Duration window) : window_(window) {}

  // Whether an event of `reason` from `peer` at `now` gets a line: true for
  // the first event of a key in a window, which opens the window. On true,
  // *suppressed (when given) is the number of events of this key that were
  // not logged before it (0 for a new key). O(log keys).
  bool Allow(const std::string& peer, std::string_view reason, SteadyTime now,
             uint64_t* suppressed = nullptr);

  // A key whose window ended with events that were not logged.
  struct Summary {
    std::string peer;
    std::string reason;
    uint64_t suppressed = 0;
  };
  // Ends the windows that are over at `now`: keys with no event left
  // unlogged are forgotten; the others are returned (the caller logs one
  // summary line for each) and start a new window at `now`, so that the
  // summary counts as that window's line. O(keys).
  std::vector<Summary> Sweep(SteadyTime now);

  // Forgets every key whose window is over at `now`, without summaries
  // (for limits on replies rather than on lines). O(keys).
  void Prune(SteadyTime now);

  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    SteadyTime start{};
    uint64_t suppressed = 0;
  };
  Duration window_;
  std::map<std::pair<std::string, std::string>, Entry, std::less<>> entries_;
};

}  // namespace drover

#endif  // DROVER_CORE_COORDINATOR_LOG_LIMITER_H_

// DeadlineSet: the timers of a reactor, at most one per key (a child's or a
// pool process's serial), ordered by when they fire.
//
// A key's one timer serves whatever the owner waits for next: a task's
// timeout, the end of a kill grace, an idle timeout. Plain data, no clock
// and no I/O: the owner passes `now` in and asks for the nearest deadline
// to compute its epoll timeout (EpollTimeoutMs).
//
// Costs: Set, Lower and PopDue are O(log n); Next and Get O(1)/O(log n).
// Not thread-safe: one owner (a reactor thread).
#ifndef DROVER_BACKENDS_PROCESS_DEADLINE_SET_H_
#define DROVER_BACKENDS_PROCESS_DEADLINE_SET_H_

#include <cstdint>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>

#include "core/base/clock.h"

namespace drover {

class DeadlineSet {
 public:
  // Sets `key`'s timer to `when`, replacing any it had; nullopt clears it.
  void Set(uint64_t key, std::optional<SteadyTime> when);
  void Clear(uint64_t key) { Set(key, std::nullopt); }
  // Sets `key`'s timer to `when` unless it already fires earlier. A grace
  // that a shutdown caps, a stop that must not postpone a kill.
  void Lower(uint64_t key, SteadyTime when);
  // `key`'s timer, if it has one.
  std::optional<SteadyTime> Get(uint64_t key) const;
  // The earliest timer, if any.
  std::optional<SteadyTime> Next() const;
  // Removes and returns the key of the earliest timer due at `now` (<=),
  // or nullopt when none is. Callers loop until nullopt.
  std::optional<uint64_t> PopDue(SteadyTime now);
  bool empty() const { return by_time_.empty(); }

 private:
  std::set<std::pair<SteadyTime, uint64_t>> by_time_;
  std::unordered_map<uint64_t, SteadyTime> by_key_;
};

// now + d, saturating: a timeout or grace of "forever" must not wrap.
SteadyTime After(SteadyTime now, Duration d);

// The epoll_wait timeout (ms) that wakes a reactor at `next`: -1 with no
// deadline, 0 when it is due, else rounded up (waking a little late is
// fine, spinning with zero timeouts until the deadline is not).
int EpollTimeoutMs(std::optional<SteadyTime> next, SteadyTime now);

// The earlier of two optional deadlines.
std::optional<SteadyTime> Earliest(std::optional<SteadyTime> a, std::optional<SteadyTime> b);

}  // namespace drover

#endif  // DROVER_BACKENDS_PROCESS_DEADLINE_SET_H_

// PrefetchGrant: how much of what a worker offers beyond its slots
// (Hello.prefetch) the coordinator uses, for one backend of one worker
// (docs/protocol.md, "Prefetch").
//
// Prefetch hides the trip from a worker's RESULT to its next DISPATCH (the
// commit in between). How much it takes to hide it depends on how long the
// tasks run: one waiting attempt a slot covers a round trip as long as a
// task, and tasks shorter than the round trip need several. But every
// waiting attempt is one that a later job of higher priority waits behind,
// or that may wait behind a long task while a slot idles elsewhere. So the
// grant follows the tasks: while that backend's recent attempts on the
// worker ran under kShort, the coordinator uses all of the offer (at most
// kMaxPrefetch); before any has ended, or once they run longer, at most as
// many again as its slots (what drover has always granted).
//
// "Recent" is an average that weighs each ended attempt 1/8: one long task
// among short ones ends the larger grant at once, and it takes a run of
// short ones to win it back (30 after a task of 2 s, 47 after one of 20 s).
//
// Plain data, no clock: the coordinator feeds it each RESULT's wall time
// (core/coordinator/results.cc) and refiles the worker when the grant moves.
#ifndef DROVER_CORE_COORDINATOR_PREFETCH_GRANT_H_
#define DROVER_CORE_COORDINATOR_PREFETCH_GRANT_H_

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>

#include "core/base/clock.h"

namespace drover {

class PrefetchGrant {
 public:
  // Shorter than this on average, a backend's attempts get all of the
  // worker's offer.
  static constexpr Duration kShort = std::chrono::milliseconds(5);
  // The most the coordinator uses of any offer.
  static constexpr uint32_t kMaxPrefetch = 1024;

  PrefetchGrant() = default;
  // `offered` beyond `slots` (Hello.prefetch, Hello.slots).
  PrefetchGrant(uint32_t slots, uint32_t offered)
      : slots_(slots), offered_(std::min(offered, kMaxPrefetch)) {}

  // An attempt of this backend ran `wall` on the worker. Returns whether
  // granted() changed.
  bool Observe(Duration wall) {
    const uint32_t before = granted();
    const double us = static_cast<double>(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::microseconds>(wall).count()));
    recent_us_ = recent_us_ < 0 ? us : recent_us_ + (us - recent_us_) / 8;
    return granted() != before;
  }

  // The slots beyond its own the worker is given now.
  uint32_t granted() const {
    return short_tasks() ? offered_ : std::min(offered_, slots_);
  }
  uint32_t offered() const { return offered_; }
  // The average wall time of the recent attempts; nullopt before one ended.
  std::optional<Duration> recent() const {
    if (recent_us_ < 0) return std::nullopt;
    return std::chrono::duration_cast<Duration>(
        std::chrono::duration<double, std::micro>(recent_us_));
  }
  bool short_tasks() const {
    return recent_us_ >= 0 &&
           recent_us_ <
               static_cast<double>(
                   std::chrono::duration_cast<std::chrono::microseconds>(kShort).count());
  }

 private:
  uint32_t slots_ = 0;
  uint32_t offered_ = 0;
  double recent_us_ = -1;  // microseconds; -1: no attempt has ended yet
};

}  // namespace drover

#endif  // DROVER_CORE_COORDINATOR_PREFETCH_GRANT_H_

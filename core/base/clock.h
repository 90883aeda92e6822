// Clock: the seam through which time enters drover.
//
// Every interval, timeout, backoff and heartbeat is measured on the steady
// clock through Now(); the wall clock (WallNow) is for display and for the
// timestamps stored for users. Tests drive time with FakeClock instead of
// sleeping.
#ifndef DROVER_CORE_BASE_CLOCK_H_
#define DROVER_CORE_BASE_CLOCK_H_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace drover {

using Duration = std::chrono::nanoseconds;
using SteadyTime = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;

// Whole milliseconds, truncated: how the wire and the logs carry durations.
constexpr int64_t ToMillis(Duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

// Told when a clock's time jumps instead of flowing (FakeClock::Advance).
// Code that waits for a deadline with a real timeout (epoll_wait, a
// condition variable) subscribes, so that a test's jump wakes it to re-read
// the clock instead of leaving it asleep for the real duration.
class ClockListener {
 public:
  virtual ~ClockListener() = default;
  // Called on the thread that moved the clock, after Now() moved. Must
  // return quickly and must not call back into the clock.
  virtual void OnClockJump() = 0;
};

// Thread-safe: implementations may be read from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual SteadyTime Now() const = 0;
  virtual WallTime WallNow() const = 0;
  // Tells `listener` of every jump until Unsubscribe, which returns only
  // once no call to it is in progress. A real clock never jumps: the
  // defaults keep nothing.
  virtual void Subscribe(ClockListener* /*listener*/) const {}
  virtual void Unsubscribe(ClockListener* /*listener*/) const {}
};

class RealClock final : public Clock {
 public:
  SteadyTime Now() const override { return std::chrono::steady_clock::now(); }
  WallTime WallNow() const override { return std::chrono::system_clock::now(); }
};

// A clock that only moves when told. Starts at an arbitrary fixed point.
class FakeClock final : public Clock {
 public:
  FakeClock() = default;
  SteadyTime Now() const override {
    return SteadyTime(Duration(steady_ns_.load(std::memory_order_acquire)));
  }
  WallTime WallNow() const override {
    return WallTime(std::chrono::duration_cast<WallTime::duration>(
        Duration(wall_ns_.load(std::memory_order_acquire))));
  }
  // Moves both clocks by `d`, then tells every listener.
  void Advance(Duration d) {
    steady_ns_.fetch_add(d.count(), std::memory_order_acq_rel);
    wall_ns_.fetch_add(d.count(), std::memory_order_acq_rel);
    std::lock_guard<std::mutex> lock(listeners_mu_);
    for (ClockListener* listener : listeners_) listener->OnClockJump();
  }
  void Subscribe(ClockListener* listener) const override {
    std::lock_guard<std::mutex> lock(listeners_mu_);
    listeners_.push_back(listener);
  }
  void Unsubscribe(ClockListener* listener) const override {
    std::lock_guard<std::mutex> lock(listeners_mu_);
    listeners_.erase(std::remove(listeners_.begin(), listeners_.end(), listener),
                     listeners_.end());
  }

 private:
  mutable std::mutex listeners_mu_;
  mutable std::vector<ClockListener*> listeners_;  // guarded by listeners_mu_
  std::atomic<int64_t> steady_ns_{1'000'000'000'000};       // 1000 s
  std::atomic<int64_t> wall_ns_{1'780'000'000'000'000'000};  // 2026
};

// "1.50s", "250ms", "2m03s", "1h02m": for humans, never parsed back.
std::string FormatDuration(Duration d);
// Milliseconds since the Unix epoch; the form stored in the state database.
int64_t ToUnixMillis(WallTime t);
// "2026-11-26 08:33:42" in local time.
std::string FormatWallTime(int64_t unix_millis);

}  // namespace drover

#endif  // DROVER_CORE_BASE_CLOCK_H_

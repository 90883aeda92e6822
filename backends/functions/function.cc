#include "backends/functions/function.h"

namespace drover {

bool CancelToken::SleepFor(Duration d) const {
  const SteadyTime now = std::chrono::steady_clock::now();
  // Saturate: a "forever" sleep must not wrap around.
  if (d > SteadyTime::max() - now) return SleepUntil(SteadyTime::max());
  return SleepUntil(now + d);
}

bool CancelToken::SleepUntil(SteadyTime t) const {
  std::unique_lock<std::mutex> lock(mu_);
  if (t == SteadyTime::max()) {
    cv_.wait(lock, [this] { return cancelled(); });
    return false;
  }
  return !cv_.wait_until(lock, t, [this] { return cancelled(); });
}

void CancelToken::Cancel() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_.store(true, std::memory_order_release);
  }
  cv_.notify_all();
}

}  // namespace drover

// What a registered function is: a callable from parsed JSON arguments and a
// cancellation token to a JSON result or an error.
//
// Functions run on the threads backend's pool (and in `cow` fork pools).
// drover cannot stop a thread, so timeouts and cancels are cooperative: a
// long-running function polls token.cancelled() or waits with
// token.SleepFor(), and returns soon after the token fires.
#ifndef DROVER_BACKENDS_FUNCTIONS_FUNCTION_H_
#define DROVER_BACKENDS_FUNCTIONS_FUNCTION_H_

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>

#include <nlohmann/json.hpp>

#include "core/base/clock.h"
#include "core/base/status.h"

namespace drover {

// Tells a running function to stop. Set once by the backend (timeout,
// cancel, shutdown); never reset. Thread-safe. Not copyable: a function gets
// a reference that is valid for the duration of its call.
class CancelToken {
 public:
  CancelToken() = default;
  CancelToken(const CancelToken&) = delete;
  CancelToken& operator=(const CancelToken&) = delete;

  // True once the call should stop. One atomic load: poll it freely.
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

  // The call's deadline on the steady clock, SteadyTime::max() without one.
  SteadyTime deadline() const { return deadline_; }

  // Blocks until `d` has passed or the token fires, whichever is first.
  // Returns true when the full time passed, false when cancelled.
  bool SleepFor(Duration d) const;
  bool SleepUntil(SteadyTime t) const;

  // Fires the token and wakes every SleepFor/SleepUntil. Idempotent.
  void Cancel();

  // Set by the backend before the function is called, never during it.
  void set_deadline(SteadyTime t) { deadline_ = t; }

 private:
  std::atomic<bool> cancelled_{false};
  SteadyTime deadline_ = SteadyTime::max();
  mutable std::mutex mu_;  // pairs with cv_ so that Cancel cannot be missed
  mutable std::condition_variable cv_;
};

// A registered function. `args` is the task's `args:` (null when absent).
// Returns the result, or an error Status whose message the user sees (the
// code is not shown). Exceptions are allowed and caught by the caller: their
// what() becomes the message. A function that notices token.cancelled()
// should return Cancelled(...) promptly: its result is discarded anyway.
using Function =
    std::function<Result<nlohmann::json>(const nlohmann::json& args, const CancelToken& token)>;

}  // namespace drover

#endif  // DROVER_BACKENDS_FUNCTIONS_FUNCTION_H_

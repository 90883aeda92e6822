// ReactorMailbox: what the spawn and fork reactors share between the
// threads that call a backend and the one reactor thread that runs it.
//
// Callers (the worker's I/O thread, an event callback) Submit, Cancel and
// Shutdown; each queues a Command under a mutex and wakes the reactor's
// epoll through an eventfd. The reactor takes the whole queue once per turn
// (Take). The mailbox also keeps the backend's lifecycle (new, running,
// stopping, stopped) and the attempts in flight, which bound Submit by the
// slots and let a failing reactor report every attempt it still owes.
//
// From the reactor's own thread (an event callback that resubmits or
// cancels) a command is queued without the eventfd round trip: more()
// tells the reactor to take it at the end of its turn. Shutdown from the
// reactor's thread only queues; the owner's Shutdown joins.
//
// The reactor reads time from the backend's Clock. When that clock jumps (a
// test's FakeClock::Advance) the mailbox wakes the reactor as a command
// would, so its epoll timeout, computed from the clock, is computed again.
#ifndef DROVER_BACKENDS_PROCESS_REACTOR_MAILBOX_H_
#define DROVER_BACKENDS_PROCESS_REACTOR_MAILBOX_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "backends/backend.h"
#include "backends/process/unique_fd.h"
#include "core/base/clock.h"
#include "core/base/status.h"

namespace drover {

class ReactorMailbox final : private ClockListener {
 public:
  struct Command {
    enum class Kind { kSubmit, kCancel, kShutdown };
    Kind kind = Kind::kSubmit;
    TaskAttempt attempt;      // kSubmit
    uint64_t attempt_id = 0;  // kCancel
    Duration grace{0};        // kShutdown
  };

  // The eventfd's epoll token: 0, which no descriptor of a reactor's
  // children uses (their tokens carry a serial >= 1).
  static constexpr uint64_t kWakeToken = 0;

  // `backend` names it in messages ("spawn"); `slots` bounds the attempts
  // in flight; `clock` (which must outlive the mailbox) is the reactor's.
  ReactorMailbox(std::string backend, int slots, const Clock& clock);
  ~ReactorMailbox() override;  // the owner has called Shutdown (joined)
  ReactorMailbox(const ReactorMailbox&) = delete;
  ReactorMailbox& operator=(const ReactorMailbox&) = delete;

  // Checks the slots, creates the epoll instance with the eventfd in it,
  // calls `init` (the reactor's own set-up, still on the caller's thread)
  // and starts `run` on a thread named `thread_name`. Errors: slots < 1,
  // a second Start, a failed syscall, a failed init.
  Status Start(const std::function<Status()>& init, std::function<void()> run,
               const char* thread_name);
  // Queues an attempt. FailedPrecondition before Start or once shutting
  // down, AlreadyExists for an id in flight, Unavailable when every slot
  // is busy.
  Status Submit(TaskAttempt attempt);
  // Queues a cancel of an attempt in flight; ignored otherwise.
  void Cancel(uint64_t attempt_id);
  // Queues a shutdown with `grace` and, unless called on the reactor's
  // thread, waits for the reactor thread to end. Serialised; idempotent.
  void Shutdown(Duration grace);

  // ---- the reactor's side
  const Clock& clock() const { return clock_; }
  int epoll_fd() const { return epoll_fd_.get(); }
  bool on_reactor() const { return std::this_thread::get_id() == reactor_id_.load(); }
  // Commands were queued from the reactor's thread during this turn.
  bool more() const { return more_; }
  // The queued commands, oldest first (valid until the next Take). With
  // `read_wake` (the eventfd fired) the eventfd is reset first, so a command
  // queued after the swap wakes the reactor again.
  std::vector<Command>& Take(bool read_wake);
  // The attempt was reported: its slot is free (call before its event, as
  // the receiver may Submit at once).
  void Release(uint64_t attempt_id);
  // The reactor failed: refuse new work and drop what is queued.
  void Abandon();
  // The attempts in flight: not reported yet.
  std::vector<uint64_t> InFlight();
  // The reactor ended normally: drop what is still queued (only Cancels
  // can be: Submit is refused once shutting down).
  void DropQueued();

 private:
  enum class State { kNew, kRunning, kStopping, kStopped };

  void Wake();
  void OnClockJump() override { Wake(); }
  // Appends `command` under mu_ and wakes the reactor when needed.
  void Push(Command command);

  const std::string backend_;
  const int slots_;
  const Clock& clock_;
  std::mutex mu_;
  State state_ = State::kNew;               // GUARDED_BY(mu_)
  std::vector<Command> queue_;              // GUARDED_BY(mu_)
  std::unordered_set<uint64_t> in_flight_;  // GUARDED_BY(mu_): not reported yet
  std::mutex shutdown_mu_;                  // serialises Shutdown calls
  std::thread thread_;
  std::atomic<std::thread::id> reactor_id_{};
  UniqueFd wake_fd_;  // eventfd: written by callers, read by the reactor
  UniqueFd epoll_fd_;
  // Reactor thread only.
  bool more_ = false;
  std::vector<Command> batch_;
};

}  // namespace drover

#endif  // DROVER_BACKENDS_PROCESS_REACTOR_MAILBOX_H_

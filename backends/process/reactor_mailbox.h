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
// Driven (StartDriven), the mailbox starts no thread: the backend's owner
// runs the reactor's turns on its own thread (Backend::Poll), calling
// Drive() first, and ShutdownDriven runs the last ones.
//
// The reactor reads time from the backend's Clock. When that clock jumps (a
// test's FakeClock::Advance) the mailbox wakes the reactor as a command
// would, so its epoll timeout, computed from the clock, is computed again.
#ifndef DROVER_BACKENDS_PROCESS_REACTOR_MAILBOX_H_
#define DROVER_BACKENDS_PROCESS_REACTOR_MAILBOX_H_

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "backends/process/epoll_wake.h"
#include "backends/process/unique_fd.h"
#include "core/base/clock.h"
#include "core/base/status.h"

namespace drover {

// `Attempt` is the backend's own attempt type (a TaskAttempt with its
// decoded payload): SpawnAttempt, ForkAttempt.
template <typename Attempt>
class ReactorMailbox final : private ClockListener {
 public:
  struct Command {
    enum class Kind { kSubmit, kCancel, kShutdown };
    Kind kind = Kind::kSubmit;
    Attempt attempt;          // kSubmit
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
  // Driven mode: the same, with no thread. The owner runs the reactor's
  // turns on a thread of its own (the worker's loop, Backend::Poll), calling
  // Drive() first, and ShutdownDriven instead of Shutdown.
  Status StartDriven(const std::function<Status()>& init);
  // The calling thread runs the reactor from now on: commands it queues
  // need no eventfd write (more()).
  void Drive() {
    const std::thread::id self = std::this_thread::get_id();
    if (reactor_id_.load(std::memory_order_relaxed) != self) reactor_id_.store(self);
  }
  // Queues an attempt. FailedPrecondition before Start or once shutting
  // down, AlreadyExists for an id in flight, Unavailable when every slot
  // is busy.
  Status Submit(Attempt attempt);
  // Queues a cancel of an attempt in flight; ignored otherwise.
  void Cancel(uint64_t attempt_id);
  // Queues a shutdown with `grace` and, unless called on the reactor's
  // thread, waits for the reactor thread to end. Serialised; idempotent.
  void Shutdown(Duration grace);
  // Driven mode's Shutdown: queues it, then calls `run` (the reactor's
  // turns until it has reported everything) on this thread. Serialised;
  // idempotent.
  void ShutdownDriven(Duration grace, const std::function<void()>& run);

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

  // Start's and StartDriven's checks and set-up, with mu_ held.
  Status OpenLocked(const std::function<Status()>& init);
  // Shutdown's and ShutdownDriven's first step: queues the shutdown; false
  // when there is nothing to stop (never started, or stopped already).
  bool QueueShutdown(Duration grace);
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

// ---- implementation (a template: every backend instantiates its own)

template <typename Attempt>
ReactorMailbox<Attempt>::ReactorMailbox(std::string backend, int slots, const Clock& clock)
    : backend_(std::move(backend)), slots_(slots), clock_(clock) {}

template <typename Attempt>
ReactorMailbox<Attempt>::~ReactorMailbox() {
  clock_.Unsubscribe(this);
}

template <typename Attempt>
Status ReactorMailbox<Attempt>::OpenLocked(const std::function<Status()>& init) {
  if (slots_ < 1) {
    return InvalidArgument(backend_ + " backend: slots must be at least 1, got " +
                           std::to_string(slots_));
  }
  if (state_ != State::kNew) {
    return FailedPrecondition(backend_ + " backend: Start called twice or after Shutdown");
  }
  DROVER_RETURN_IF_ERROR(OpenEpollWithWake(epoll_fd_, wake_fd_, kWakeToken));
  return init();
}

template <typename Attempt>
Status ReactorMailbox<Attempt>::Start(const std::function<Status()>& init,
                                      std::function<void()> run,
                                      const char* thread_name) {
  std::lock_guard<std::mutex> lock(mu_);
  DROVER_RETURN_IF_ERROR(OpenLocked(init));
  try {
    thread_ = std::thread([this, run = std::move(run), thread_name] {
      reactor_id_.store(std::this_thread::get_id());
      pthread_setname_np(pthread_self(), thread_name);  // for ps/gdb/perf
      run();
    });
  } catch (const std::exception& e) {
    return Internal(backend_ + " backend: cannot start its thread: " + e.what());
  }
  state_ = State::kRunning;
  clock_.Subscribe(this);
  return Status::Ok();
}

template <typename Attempt>
Status ReactorMailbox<Attempt>::StartDriven(const std::function<Status()>& init) {
  std::lock_guard<std::mutex> lock(mu_);
  DROVER_RETURN_IF_ERROR(OpenLocked(init));
  // No thread drives it until the first turn (Drive): a command queued
  // before then writes the eventfd, which the driver waits on.
  state_ = State::kRunning;
  clock_.Subscribe(this);
  return Status::Ok();
}

template <typename Attempt>
bool ReactorMailbox<Attempt>::QueueShutdown(Duration grace) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ == State::kNew || state_ == State::kStopped) {
    state_ = State::kStopped;
    return false;
  }
  if (state_ == State::kRunning) {
    state_ = State::kStopping;
    Command command;
    command.kind = Command::Kind::kShutdown;
    command.grace = std::max(grace, Duration(0));
    Push(std::move(command));
  }
  return true;
}

template <typename Attempt>
void ReactorMailbox<Attempt>::ShutdownDriven(Duration grace,
                                             const std::function<void()>& run) {
  std::lock_guard<std::mutex> serial(shutdown_mu_);
  if (!QueueShutdown(grace)) return;
  Drive();
  run();
  clock_.Unsubscribe(this);
  std::lock_guard<std::mutex> lock(mu_);
  state_ = State::kStopped;
}

template <typename Attempt>
void ReactorMailbox<Attempt>::Wake() {
  const uint64_t one = 1;
  // Fails only if the counter would overflow, and then it is non-zero
  // anyway: the reactor wakes.
  [[maybe_unused]] ssize_t n = ::write(wake_fd_.get(), &one, sizeof one);
}

template <typename Attempt>
void ReactorMailbox<Attempt>::Push(Command command) {
  // mu_ is held. The reactor empties the whole queue per turn: only the
  // first command of a batch writes the eventfd, and one queued from the
  // reactor's own thread needs no eventfd at all.
  const bool from_reactor = on_reactor();
  const bool wake = !from_reactor && queue_.empty();
  queue_.push_back(std::move(command));
  if (from_reactor) more_ = true;
  if (wake) Wake();
}

template <typename Attempt>
Status ReactorMailbox<Attempt>::Submit(Attempt attempt) {
  const uint64_t id = attempt.attempt_id;
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ == State::kNew) return FailedPrecondition(backend_ + " backend is not started");
  if (state_ != State::kRunning) return FailedPrecondition(backend_ + " backend is shut down");
  if (in_flight_.count(id) != 0) {
    return AlreadyExists("attempt " + std::to_string(id) + " is already running on this backend");
  }
  if (in_flight_.size() >= static_cast<size_t>(slots_)) {
    return Unavailable(backend_ + " backend is at capacity (" + std::to_string(slots_) +
                       " slots busy)");
  }
  in_flight_.insert(id);
  Command command;
  command.kind = Command::Kind::kSubmit;
  command.attempt = std::move(attempt);
  Push(std::move(command));
  return Status::Ok();
}

template <typename Attempt>
void ReactorMailbox<Attempt>::Cancel(uint64_t attempt_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kRunning || in_flight_.count(attempt_id) == 0) return;
  Command command;
  command.kind = Command::Kind::kCancel;
  command.attempt_id = attempt_id;
  Push(std::move(command));
}

template <typename Attempt>
void ReactorMailbox<Attempt>::Shutdown(Duration grace) {
  // From an event callback the reactor cannot join itself: it only queues
  // the shutdown, and the owner's Shutdown (at the latest its destructor's)
  // joins.
  const bool from_reactor = on_reactor();
  std::unique_lock<std::mutex> serial(shutdown_mu_, std::defer_lock);
  if (!from_reactor) serial.lock();
  if (!QueueShutdown(grace) || from_reactor) return;
  if (thread_.joinable()) thread_.join();
  clock_.Unsubscribe(this);
  std::lock_guard<std::mutex> lock(mu_);
  state_ = State::kStopped;
}

template <typename Attempt>
std::vector<typename ReactorMailbox<Attempt>::Command>& ReactorMailbox<Attempt>::Take(
    bool read_wake) {
  if (read_wake) {
    uint64_t count;
    [[maybe_unused]] ssize_t n = ::read(wake_fd_.get(), &count, sizeof count);
  }
  more_ = false;
  batch_.clear();
  std::lock_guard<std::mutex> lock(mu_);
  batch_.swap(queue_);
  return batch_;
}

template <typename Attempt>
void ReactorMailbox<Attempt>::Release(uint64_t attempt_id) {
  std::lock_guard<std::mutex> lock(mu_);
  in_flight_.erase(attempt_id);
}

template <typename Attempt>
void ReactorMailbox<Attempt>::Abandon() {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ == State::kRunning) state_ = State::kStopping;  // refuse Submit
  queue_.clear();
}

template <typename Attempt>
std::vector<uint64_t> ReactorMailbox<Attempt>::InFlight() {
  std::lock_guard<std::mutex> lock(mu_);
  return std::vector<uint64_t>(in_flight_.begin(), in_flight_.end());
}

template <typename Attempt>
void ReactorMailbox<Attempt>::DropQueued() {
  std::lock_guard<std::mutex> lock(mu_);
  queue_.clear();
}

}  // namespace drover

#endif  // DROVER_BACKENDS_PROCESS_REACTOR_MAILBOX_H_

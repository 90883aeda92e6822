#include "backends/process/reactor_mailbox.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <exception>
#include <utility>

#include "backends/process/epoll_wake.h"

namespace drover {

ReactorMailbox::ReactorMailbox(std::string backend, int slots, const Clock& clock)
    : backend_(std::move(backend)), slots_(slots), clock_(clock) {}

ReactorMailbox::~ReactorMailbox() { clock_.Unsubscribe(this); }

Status ReactorMailbox::Start(const std::function<Status()>& init, std::function<void()> run,
                             const char* thread_name) {
  if (slots_ < 1) {
    return InvalidArgument(backend_ + " backend: slots must be at least 1, got " +
                           std::to_string(slots_));
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kNew) {
    return FailedPrecondition(backend_ + " backend: Start called twice or after Shutdown");
  }
  DROVER_RETURN_IF_ERROR(OpenEpollWithWake(epoll_fd_, wake_fd_, kWakeToken));
  DROVER_RETURN_IF_ERROR(init());
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

void ReactorMailbox::Wake() {
  const uint64_t one = 1;
  // Fails only if the counter would overflow, and then it is non-zero
  // anyway: the reactor wakes.
  [[maybe_unused]] ssize_t n = ::write(wake_fd_.get(), &one, sizeof one);
}

void ReactorMailbox::Push(Command command) {
  // mu_ is held. The reactor empties the whole queue per turn: only the
  // first command of a batch writes the eventfd, and one queued from the
  // reactor's own thread needs no eventfd at all.
  const bool from_reactor = on_reactor();
  const bool wake = !from_reactor && queue_.empty();
  queue_.push_back(std::move(command));
  if (from_reactor) more_ = true;
  if (wake) Wake();
}

Status ReactorMailbox::Submit(TaskAttempt attempt) {
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

void ReactorMailbox::Cancel(uint64_t attempt_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kRunning || in_flight_.count(attempt_id) == 0) return;
  Command command;
  command.kind = Command::Kind::kCancel;
  command.attempt_id = attempt_id;
  Push(std::move(command));
}

void ReactorMailbox::Shutdown(Duration grace) {
  // From an event callback the reactor cannot join itself: it only queues
  // the shutdown, and the owner's Shutdown (at the latest its destructor's)
  // joins.
  const bool from_reactor = on_reactor();
  std::unique_lock<std::mutex> serial(shutdown_mu_, std::defer_lock);
  if (!from_reactor) serial.lock();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ == State::kNew || state_ == State::kStopped) {
      state_ = State::kStopped;
      return;
    }
    if (state_ == State::kRunning) {
      state_ = State::kStopping;
      Command command;
      command.kind = Command::Kind::kShutdown;
      command.grace = std::max(grace, Duration(0));
      Push(std::move(command));
    }
  }
  if (from_reactor) return;
  if (thread_.joinable()) thread_.join();
  clock_.Unsubscribe(this);
  std::lock_guard<std::mutex> lock(mu_);
  state_ = State::kStopped;
}

std::vector<ReactorMailbox::Command>& ReactorMailbox::Take(bool read_wake) {
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

void ReactorMailbox::Release(uint64_t attempt_id) {
  std::lock_guard<std::mutex> lock(mu_);
  in_flight_.erase(attempt_id);
}

void ReactorMailbox::Abandon() {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ == State::kRunning) state_ = State::kStopping;  // refuse Submit
  queue_.clear();
}

std::vector<uint64_t> ReactorMailbox::InFlight() {
  std::lock_guard<std::mutex> lock(mu_);
  return std::vector<uint64_t>(in_flight_.begin(), in_flight_.end());
}

void ReactorMailbox::DropQueued() {
  std::lock_guard<std::mutex> lock(mu_);
  queue_.clear();
}

}  // namespace drover

#include "backends/cluster/cluster_backend.h"

#include <algorithm>

namespace drover {
namespace {

// Requests block a thread each.
constexpr int kMaxThreads = 256;

}  // namespace

ClusterBackend::ClusterBackend(const BackendConfig& config)
    : slots_(std::max(0, config.slots)) {}

ClusterBackend::~ClusterBackend() { Shutdown(Duration(0)); }

Status ClusterBackend::Start(BackendEvents* events) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kNew) return FailedPrecondition("cluster backend started twice");
  events_ = events;
  state_ = State::kRunning;
  const int n = std::clamp(slots_, 1, kMaxThreads);
  threads_.reserve(n);
  for (int i = 0; i < n; ++i) threads_.emplace_back([this] { RunWorker(); });
  return Status::Ok();
}

Status ClusterBackend::Submit(TaskAttempt attempt) {
  const uint64_t id = attempt.attempt_id;
  Result<cluster::ClusterAttempt> decoded =
      cluster::DecodeClusterAttempt(std::move(attempt));
  std::unique_lock<std::mutex> lock(mu_);
  if (state_ == State::kNew) return FailedPrecondition("cluster backend is not started");
  if (state_ != State::kRunning)
    return FailedPrecondition("cluster backend is shut down");
  if (attempts_.count(id) != 0) {
    return AlreadyExists("attempt " + std::to_string(id) +
                         " is already running on this backend");
  }
  if (attempts_.size() >= static_cast<size_t>(slots_)) {
    return Unavailable("cluster backend is at capacity (" + std::to_string(slots_) +
                       " slots busy)");
  }
  if (!decoded.ok()) {
    lock.unlock();
    events_->OnFinished(
        id, AttemptFailure(FailureReason::kLaunchFailed, decoded.status().message()));
    return Status::Ok();
  }
  attempts_.insert(id);
  queue_.push_back(std::move(decoded).value());
  cv_.notify_one();
  return Status::Ok();
}

void ClusterBackend::Cancel(uint64_t attempt_id) {
  std::shared_ptr<cluster::RequestControl> control;
  bool was_queued = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto queued = std::find_if(
        queue_.begin(), queue_.end(),
        [&](const cluster::ClusterAttempt& a) { return a.attempt_id == attempt_id; });
    if (queued != queue_.end()) {
      queue_.erase(queued);
      attempts_.erase(attempt_id);
      was_queued = true;
    } else if (const auto found = active_.find(attempt_id); found != active_.end()) {
      control = found->second;
    }
  }
  if (was_queued) {
    events_->OnFinished(
        attempt_id, AttemptFailure(FailureReason::kCancelled, "cancelled before it ran"));
  } else if (control) {
    control->Cancel();
  }
}

void ClusterBackend::Shutdown(Duration) {
  std::deque<cluster::ClusterAttempt> dropped;
  std::vector<std::shared_ptr<cluster::RequestControl>> in_flight;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ == State::kStopped) return;
    const bool started = state_ == State::kRunning;
    state_ = State::kStopped;
    if (!started) return;
    dropped.swap(queue_);
    for (const auto& a : dropped) attempts_.erase(a.attempt_id);
    for (auto& [id, control] : active_) in_flight.push_back(control);
    cv_.notify_all();
  }
  for (const auto& a : dropped) {
    events_->OnFinished(a.attempt_id, AttemptFailure(FailureReason::kCancelled,
                                                     "the worker is shutting down"));
  }
  for (auto& control : in_flight) control->Cancel();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

void ClusterBackend::RunWorker() {
  while (true) {
    cluster::ClusterAttempt attempt;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return state_ != State::kRunning || !queue_.empty(); });
      if (state_ != State::kRunning) return;
      attempt = std::move(queue_.front());
      queue_.pop_front();
    }
    RunRequest(std::move(attempt));
  }
}

void ClusterBackend::RunRequest(cluster::ClusterAttempt attempt) {
  const uint64_t id = attempt.attempt_id;
  auto control = std::make_shared<cluster::RequestControl>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    active_[id] = control;
    if (state_ != State::kRunning) control->Cancel();  // Shutdown ran meanwhile
  }
  events_->OnStarted(id, 0);
  AttemptOutcome outcome = cluster::SendRequest(attempt, attempt.address, control.get());
  {
    std::lock_guard<std::mutex> lock(mu_);
    active_.erase(id);
  }
  Finish(id, std::move(outcome));
}

void ClusterBackend::Finish(uint64_t attempt_id, AttemptOutcome outcome) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    attempts_.erase(attempt_id);
  }
  events_->OnFinished(attempt_id, std::move(outcome));
}

}  // namespace drover

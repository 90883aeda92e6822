#include "backends/cluster/cluster_backend.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "backends/cluster/service_refs.h"

namespace drover {
namespace {

// Requests block a thread each; service start-ups of other backends'
// attempts take one more, so they are not starved by requests.
constexpr int kMaxThreads = 256;
// How often the janitor looks for idle services when none is idle yet.
constexpr Duration kJanitorPeriod = std::chrono::seconds(1);

AttemptOutcome Failed(FailureReason reason, std::string message) {
  AttemptOutcome o;
  o.reason = reason;
  o.message = std::move(message);
  return o;
}

}  // namespace

// 0 slots: a worker that runs only its own services (no cluster task is
// dispatched to it, yet other backends' tasks use those services).
ClusterBackend::ClusterBackend(const BackendConfig& config)
    : slots_(std::max(0, config.slots)) {}

ClusterBackend::~ClusterBackend() { Shutdown(Duration(0)); }

Status ClusterBackend::Start(BackendEvents* events) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kNew) return FailedPrecondition("cluster backend started twice");
  events_ = events;
  state_ = State::kRunning;
  const int n = std::clamp(slots_ + 1, 2, kMaxThreads);
  threads_.reserve(n);
  for (int i = 0; i < n; ++i) threads_.emplace_back([this] { RunWorker(); });
  janitor_ = std::thread([this] { RunJanitor(); });
  return Status::Ok();
}

Status ClusterBackend::Submit(TaskAttempt attempt) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ == State::kNew) return FailedPrecondition("cluster backend is not started");
  if (state_ != State::kRunning) return FailedPrecondition("cluster backend is shut down");
  const uint64_t id = attempt.attempt_id;
  if (cluster_attempts_.count(id) != 0) {
    return AlreadyExists("attempt " + std::to_string(id) + " is already running on this backend");
  }
  if (cluster_attempts_.size() >= static_cast<size_t>(slots_)) {
    return Unavailable("cluster backend is at capacity (" + std::to_string(slots_) +
                       " slots busy)");
  }
  cluster_attempts_.insert(id);
  queue_.push_back(Work{std::move(attempt), nullptr});
  cv_.notify_all();  // not notify_one: the janitor shares cv_ (see SubmitVia)
  return Status::Ok();
}

Status ClusterBackend::SubmitVia(Backend* target, TaskAttempt attempt) {
  const uint64_t id = attempt.attempt_id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ != State::kRunning) return FailedPrecondition("cluster backend is not running");
  }
  // The common case once a job's services are up: no thread hop.
  if (auto lease =
          registry_.TryAcquire(attempt.job_id, attempt.services, attempt.worker_services)) {
    cluster::ReplaceServiceRefs(lease->addresses, &attempt);
    {
      std::lock_guard<std::mutex> lock(mu_);
      leases_[id] = *lease;
    }
    const Status s = target->Submit(std::move(attempt));
    if (!s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      leases_.erase(id);
      registry_.Release(*lease);
    }
    return s;
  }
  std::lock_guard<std::mutex> lock(mu_);
  deferred_.insert(id);
  queue_.push_back(Work{std::move(attempt), target});
  // notify_all: the janitor waits on the same condition variable, and a
  // notify_one that woke only the janitor would leave this work unclaimed.
  cv_.notify_all();
  return Status::Ok();
}

void ClusterBackend::AttemptEnded(uint64_t attempt_id) {
  std::optional<cluster::Lease> lease;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto found = leases_.find(attempt_id);
    if (found == leases_.end()) return;
    lease = std::move(found->second);
    leases_.erase(found);
    cv_.notify_all();  // the janitor recomputes its deadline
  }
  registry_.Release(*lease);
}

bool ClusterBackend::CancelDeferred(uint64_t attempt_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (deferred_.erase(attempt_id) == 0) return false;
    // Still queued: drop it. Else RunDeferred is acquiring its services;
    // it sees the attempt is no longer deferred and lets go of them.
    const auto queued = std::find_if(queue_.begin(), queue_.end(), [&](const Work& w) {
      return w.target != nullptr && w.attempt.attempt_id == attempt_id;
    });
    if (queued != queue_.end()) queue_.erase(queued);
  }
  events_->OnFinished(attempt_id, Failed(FailureReason::kCancelled,
                                         "cancelled while waiting for its services"));
  return true;
}

void ClusterBackend::JobDone(std::string job_id) {
  AddChore([this, job_id = std::move(job_id)] {
    const int stopped = registry_.StopJob(job_id);
    if (stopped > 0) spdlog::info("cluster: job {} ended: stopped {} service(s)", job_id, stopped);
  });
}

void ClusterBackend::ReloadAsync(std::string job_id, std::string name, ReloadDone done) {
  AddChore([this, job_id = std::move(job_id), name = std::move(name), done = std::move(done)] {
    done(registry_.Reload(job_id, name));
  });
}

void ClusterBackend::AddChore(std::function<void()> chore) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kRunning) return;
  chores_.push_back(std::move(chore));
  cv_.notify_all();
}

void ClusterBackend::Cancel(uint64_t attempt_id) {
  std::shared_ptr<cluster::RequestControl> control;
  bool was_queued = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto queued = std::find_if(queue_.begin(), queue_.end(), [&](const Work& w) {
      return w.target == nullptr && w.attempt.attempt_id == attempt_id;
    });
    if (queued != queue_.end()) {
      queue_.erase(queued);
      cluster_attempts_.erase(attempt_id);
      was_queued = true;
    } else if (const auto found = active_.find(attempt_id); found != active_.end()) {
      control = found->second;
    }
  }
  if (was_queued) {
    events_->OnFinished(attempt_id, Failed(FailureReason::kCancelled, "cancelled before it ran"));
  } else if (control) {
    control->Cancel();
  }
}

void ClusterBackend::Shutdown(Duration grace) {
  std::deque<Work> dropped;
  std::vector<std::shared_ptr<cluster::RequestControl>> in_flight;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ == State::kStopped) return;
    const bool started = state_ == State::kRunning;
    state_ = State::kStopped;
    if (!started) return;
    dropped.swap(queue_);
    chores_.clear();
    for (auto& [id, control] : active_) in_flight.push_back(control);
    cv_.notify_all();
  }
  for (Work& w : dropped) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (w.target == nullptr) {
        cluster_attempts_.erase(w.attempt.attempt_id);
      } else if (deferred_.erase(w.attempt.attempt_id) == 0) {
        continue;  // cancelled already (CancelDeferred reported it)
      }
    }
    events_->OnFinished(w.attempt.attempt_id,
                        Failed(FailureReason::kCancelled, "the worker is shutting down"));
  }
  for (auto& control : in_flight) control->Cancel();
  // Wakes the threads waiting for a service to become ready.
  registry_.Shutdown(grace);
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  if (janitor_.joinable()) janitor_.join();
}

void ClusterBackend::RunWorker() {
  while (true) {
    Work work;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return state_ != State::kRunning || !queue_.empty(); });
      if (state_ != State::kRunning) return;
      work = std::move(queue_.front());
      queue_.pop_front();
    }
    if (work.target == nullptr) {
      RunRequest(std::move(work.attempt));
    } else {
      RunDeferred(work.target, std::move(work.attempt));
    }
  }
}

void ClusterBackend::RunRequest(TaskAttempt attempt) {
  const uint64_t id = attempt.attempt_id;
  const auto target = std::find_if(attempt.services.begin(), attempt.services.end(),
                                   [&](const ServiceConfig& s) { return s.name == attempt.service; });
  const bool workers_own =
      std::find(attempt.worker_services.begin(), attempt.worker_services.end(),
                attempt.service) != attempt.worker_services.end();
  if (attempt.service.empty() || (target == attempt.services.end() && !workers_own)) {
    return Finish(id, Failed(FailureReason::kLaunchFailed,
                             "the task names service '" + attempt.service +
                                 "' but its declaration did not come with it"));
  }
  auto lease = registry_.Acquire(attempt.job_id, attempt.services, attempt.worker_services);
  if (!lease.ok()) {
    return Finish(id, Failed(FailureReason::kLaunchFailed, lease.status().message()));
  }
  cluster::ReplaceServiceRefs(lease->addresses, &attempt);
  auto control = std::make_shared<cluster::RequestControl>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    active_[id] = control;
    if (state_ != State::kRunning) control->Cancel();  // Shutdown ran meanwhile
  }
  events_->OnStarted(id, 0);
  AttemptOutcome outcome = cluster::SendRequest(attempt, lease->addresses[attempt.service],
                                                control.get());
  registry_.Release(*lease);
  {
    std::lock_guard<std::mutex> lock(mu_);
    active_.erase(id);
  }
  Finish(id, std::move(outcome));
}

void ClusterBackend::RunDeferred(Backend* target, TaskAttempt attempt) {
  const uint64_t id = attempt.attempt_id;
  auto lease = registry_.Acquire(attempt.job_id, attempt.services, attempt.worker_services);
  std::unique_lock<std::mutex> lock(mu_);
  if (deferred_.erase(id) == 0) {
    // Cancelled meanwhile (CancelDeferred reported it) or dropped by
    // Shutdown: only the services are left to let go of.
    lock.unlock();
    if (lease.ok()) registry_.Release(*lease);
    return;
  }
  if (!lease.ok()) {
    lock.unlock();
    events_->OnFinished(id, Failed(FailureReason::kLaunchFailed, lease.status().message()));
    return;
  }
  if (state_ != State::kRunning) {
    lock.unlock();
    registry_.Release(*lease);
    events_->OnFinished(id, Failed(FailureReason::kCancelled, "the worker is shutting down"));
    return;
  }
  cluster::ReplaceServiceRefs(lease->addresses, &attempt);
  leases_[id] = *lease;
  // Submitted with mu_ held, so that a CANCEL finds the attempt either here
  // (CancelDeferred) or in `target`, never in between. Backends' Submit is
  // thread-safe, only queues and never calls into this backend; `target`
  // outlives this backend's threads, which Shutdown joins first
  // (docs/backends/cluster.md).
  const Status s = target->Submit(std::move(attempt));
  if (!s.ok()) {
    leases_.erase(id);
    lock.unlock();
    registry_.Release(*lease);
    events_->OnFinished(id, Failed(FailureReason::kInternal, s.ToString()));
  }
}

void ClusterBackend::Finish(uint64_t attempt_id, AttemptOutcome outcome) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cluster_attempts_.erase(attempt_id);
  }
  events_->OnFinished(attempt_id, std::move(outcome));
}

void ClusterBackend::RunJanitor() {
  std::unique_lock<std::mutex> lock(mu_);
  while (state_ == State::kRunning) {
    if (!chores_.empty()) {
      std::function<void()> chore = std::move(chores_.front());
      chores_.pop_front();
      lock.unlock();
      chore();
      lock.lock();
      continue;
    }
    lock.unlock();
    const int stopped = registry_.StopIdle();
    if (stopped > 0) spdlog::info("cluster: stopped {} idle service(s)", stopped);
    const std::optional<SteadyTime> next = registry_.NextIdleDeadline();
    lock.lock();
    const SteadyTime now = clock_.Now();
    const SteadyTime wake = next ? std::min(*next, now + kJanitorPeriod) : now + kJanitorPeriod;
    cv_.wait_for(lock, wake - now,
                 [&] { return state_ != State::kRunning || !chores_.empty(); });
  }
}

}  // namespace drover

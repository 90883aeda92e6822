#include "backends/services/service_host.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

namespace drover::services {
namespace {

constexpr int kMaxThreads = 256;
// How often the janitor looks for idle services when none is idle yet.
constexpr Duration kJanitorPeriod = std::chrono::seconds(1);

}  // namespace

ServiceHost::ServiceHost(const Clock& clock, int threads,
                         std::shared_ptr<Guardian> guardian)
    : clock_(clock),
      threads_(std::clamp(threads, 1, kMaxThreads)),
      registry_(clock_, std::move(guardian)) {}

ServiceHost::~ServiceHost() { Shutdown(Duration(0)); }

Status ServiceHost::Start(BackendEvents* events) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kNew) return FailedPrecondition("service host started twice");
  events_ = events;
  state_ = State::kRunning;
  workers_.reserve(threads_);
  for (int i = 0; i < threads_; ++i) workers_.emplace_back([this] { RunWorker(); });
  janitor_ = std::thread([this] { RunJanitor(); });
  return Status::Ok();
}

Status ServiceHost::Submit(Backend& target, TaskAttempt attempt, ServiceNeeds needs) {
  const uint64_t id = attempt.attempt_id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ != State::kRunning)
      return FailedPrecondition("the worker's services are not running");
  }
  // The common case once a job's services are up: no thread hop.
  if (auto lease = registry_.TryAcquire(attempt.job_id, needs.job, needs.worker)) {
    attempt.services = lease->addresses;
    {
      std::lock_guard<std::mutex> lock(mu_);
      leases_[id] = *lease;
    }
    const Status s = target.Submit(std::move(attempt));
    if (!s.ok()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        leases_.erase(id);
      }
      registry_.Release(*lease);
    }
    return s;
  }
  std::lock_guard<std::mutex> lock(mu_);
  deferred_.insert(id);
  queue_.push_back(Work{std::move(attempt), std::move(needs), &target});
  // notify_all: the janitor waits on the same condition variable, and a
  // notify_one that woke only the janitor would leave this work unclaimed.
  cv_.notify_all();
  return Status::Ok();
}

void ServiceHost::AttemptEnded(uint64_t attempt_id) {
  std::optional<Lease> lease;
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

bool ServiceHost::Cancel(uint64_t attempt_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (deferred_.erase(attempt_id) == 0) return false;
    // Still queued: drop it. Else RunDeferred is acquiring its services;
    // it sees the attempt is no longer deferred and lets go of them.
    const auto queued = std::find_if(queue_.begin(), queue_.end(), [&](const Work& w) {
      return w.attempt.attempt_id == attempt_id;
    });
    if (queued != queue_.end()) queue_.erase(queued);
  }
  events_->OnFinished(attempt_id,
                      AttemptFailure(FailureReason::kCancelled,
                                     "cancelled while waiting for its services"));
  return true;
}

void ServiceHost::JobDone(std::string job_id) {
  AddChore([this, job_id = std::move(job_id)] {
    const int stopped = registry_.StopJob(job_id);
    if (stopped > 0)
      spdlog::info("services: job {} ended: stopped {} service(s)", job_id, stopped);
  });
}

void ServiceHost::ReloadAsync(std::string job_id, std::string name, ReloadDone done) {
  AddChore([this, job_id = std::move(job_id), name = std::move(name),
            done = std::move(done)] { done(registry_.Reload(job_id, name)); });
}

void ServiceHost::AddChore(std::function<void()> chore) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kRunning) return;
  chores_.push_back(std::move(chore));
  cv_.notify_all();
}

void ServiceHost::Shutdown(Duration grace) {
  std::deque<Work> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ == State::kStopped) return;
    const bool started = state_ == State::kRunning;
    state_ = State::kStopped;
    if (!started) return;
    dropped.swap(queue_);
    chores_.clear();
    cv_.notify_all();
  }
  for (Work& w : dropped) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (deferred_.erase(w.attempt.attempt_id) == 0) continue;  // Cancel reported it
    }
    events_->OnFinished(
        w.attempt.attempt_id,
        AttemptFailure(FailureReason::kCancelled, "the worker is shutting down"));
  }
  // Wakes the threads waiting for a service to become ready.
  registry_.Shutdown(grace);
  for (std::thread& t : workers_) t.join();
  workers_.clear();
  if (janitor_.joinable()) janitor_.join();
}

void ServiceHost::RunWorker() {
  while (true) {
    Work work;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return state_ != State::kRunning || !queue_.empty(); });
      if (state_ != State::kRunning) return;
      work = std::move(queue_.front());
      queue_.pop_front();
    }
    RunDeferred(std::move(work));
  }
}

void ServiceHost::RunDeferred(Work work) {
  TaskAttempt& attempt = work.attempt;
  const uint64_t id = attempt.attempt_id;
  auto lease = registry_.Acquire(attempt.job_id, work.needs.job, work.needs.worker);
  std::unique_lock<std::mutex> lock(mu_);
  if (deferred_.erase(id) == 0) {
    // Cancelled meanwhile (Cancel reported it) or dropped by Shutdown:
    // only the services are left to let go of.
    lock.unlock();
    if (lease.ok()) registry_.Release(*lease);
    return;
  }
  if (!lease.ok()) {
    lock.unlock();
    events_->OnFinished(
        id, AttemptFailure(FailureReason::kLaunchFailed, lease.status().message()));
    return;
  }
  if (state_ != State::kRunning) {
    lock.unlock();
    registry_.Release(*lease);
    events_->OnFinished(
        id, AttemptFailure(FailureReason::kCancelled, "the worker is shutting down"));
    return;
  }
  attempt.services = lease->addresses;
  leases_[id] = *lease;
  // Submitted with mu_ held, so that a CANCEL finds the attempt either here
  // (Cancel) or in its backend, never in between. Backends' Submit is
  // thread-safe, only queues and never calls into this host; the backend
  // outlives this host's threads, which Shutdown joins first.
  const Status s = work.target->Submit(std::move(attempt));
  if (!s.ok()) {
    leases_.erase(id);
    lock.unlock();
    registry_.Release(*lease);
    events_->OnFinished(id, AttemptFailure(FailureReason::kInternal, s.ToString()));
  }
}

void ServiceHost::RunJanitor() {
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
    if (stopped > 0) spdlog::info("services: stopped {} idle service(s)", stopped);
    const std::optional<SteadyTime> next = registry_.NextIdleDeadline();
    lock.lock();
    const SteadyTime now = clock_.Now();
    const SteadyTime wake =
        next ? std::min(*next, now + kJanitorPeriod) : now + kJanitorPeriod;
    cv_.wait_for(lock, wake - now,
                 [&] { return state_ != State::kRunning || !chores_.empty(); });
  }
}

}  // namespace drover::services

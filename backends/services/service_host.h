// ServiceHost: the worker's services, offered to the attempts of every
// backend (docs/backends/cluster.md, "Services").
//
// An attempt that needs services (Dispatch.services, worker_services) goes
// through Submit instead of straight to its backend: its services are
// started if they do not run yet on this worker (and waited for until
// ready), their addresses go into TaskAttempt::services, and the attempt is
// submitted to its backend, which expands `${services.NAME.port|host}` in
// its payload. The worker tells AttemptEnded when such an attempt's RESULT
// is out, so that a service's idle time counts from its last user.
//
// The coordinator tells the worker when a job ends (JOB-DONE: JobDone
// stops its services) and asks for reloads (SERVICE-RELOAD: ReloadAsync).
// Both run on the janitor thread, which also stops job services left idle
// (the safety net when no JOB-DONE came). The worker's own services (its
// configuration's `services:`) live in the same registry; the worker
// starts them (registry().StartWorkerService).
//
// Threading: Submit, Cancel, AttemptEnded, JobDone, ReloadAsync and
// Shutdown are called from the worker's I/O thread and never block on a
// service. Service start-ups run on this host's threads; events (an
// attempt whose services failed, or that was cancelled while it waited)
// are reported from them.
#ifndef DROVER_BACKENDS_SERVICES_SERVICE_HOST_H_
#define DROVER_BACKENDS_SERVICES_SERVICE_HOST_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "backends/backend.h"
#include "backends/services/service_registry.h"
#include "core/base/clock.h"
#include "core/base/status.h"
#include "core/spec/job_spec.h"

namespace drover::services {

// The services one attempt needs.
struct ServiceNeeds {
  std::vector<spec::ServiceDecl> job;  // its job's, with their declarations
  std::vector<std::string> worker;     // the worker's own, by name
  bool empty() const { return job.empty() && worker.empty(); }
};

class ServiceHost {
 public:
  // `threads`: how many attempts may wait for their services at once (the
  // worker's slots is a good bound). `clock` must outlive the host.
  // `guardian` (may be null) watches the groups of every service instance
  // (backends/process/guardian.h).
  ServiceHost(const Clock& clock, int threads,
              std::shared_ptr<Guardian> guardian = nullptr);
  ~ServiceHost();  // Shutdown(0)
  ServiceHost(const ServiceHost&) = delete;
  ServiceHost& operator=(const ServiceHost&) = delete;

  // Starts the threads. `events` (the worker) receives the OnFinished of
  // attempts that never reach their backend, and must outlive the host.
  Status Start(BackendEvents* events);

  // Submits `attempt` to `target` once the services of `needs` are up,
  // with their addresses in attempt.services: at once when they are all up
  // and ready, else from one of this host's threads. A service that cannot
  // start fails the attempt with kLaunchFailed, a refusal of `target` with
  // kInternal, both through the events given to Start. `target` must
  // outlive the host's threads (Shutdown joins them). Errors: not running.
  Status Submit(Backend& target, TaskAttempt attempt, ServiceNeeds needs);
  // The attempt `attempt_id` has ended on this worker: its services may go
  // idle. Unknown ids are ignored.
  void AttemptEnded(uint64_t attempt_id);
  // A CANCEL for an attempt Submit still holds (waiting for its services):
  // it ends as kCancelled at once, and true is returned. False when the
  // host does not hold it (it reached its backend, which is the one to
  // cancel it, or it is unknown).
  bool Cancel(uint64_t attempt_id);

  // JOB-DONE: stops the job's services, on the janitor thread.
  void JobDone(std::string job_id);
  // SERVICE-RELOAD: reloads the services called `name` (job `job_id`'s, or
  // every job's and the worker's own when it is empty; see
  // ServiceRegistry::Reload) on the janitor thread, then calls `done` there
  // with what happened. `done` is not called when the host shuts down
  // first.
  using ReloadDone = std::function<void(std::vector<ReloadOutcome>)>;
  void ReloadAsync(std::string job_id, std::string name, ReloadDone done);

  ServiceRegistry& registry() { return registry_; }
  const ServiceRegistry& registry() const { return registry_; }

  // Ends the attempts still waiting (kCancelled), stops every service
  // (SIGTERM, `grace`, SIGKILL) and joins the threads. Idempotent.
  void Shutdown(Duration grace);

 private:
  struct Work {
    TaskAttempt attempt;
    ServiceNeeds needs;
    Backend* target = nullptr;
  };

  void RunWorker();
  void RunJanitor();
  void AddChore(std::function<void()> chore);
  void RunDeferred(Work work);

  const Clock& clock_;
  const int threads_;
  ServiceRegistry registry_;
  BackendEvents* events_ = nullptr;

  std::mutex mu_;
  std::condition_variable cv_;
  enum class State { kNew, kRunning, kStopped };
  State state_ = State::kNew;  // GUARDED_BY(mu_)
  std::deque<Work> queue_;     // GUARDED_BY(mu_)
  // Attempts holding services, until AttemptEnded.
  std::map<uint64_t, Lease> leases_;  // GUARDED_BY(mu_)
  // Attempts waiting (queued or in RunDeferred) for their services; Cancel
  // takes them out.
  std::set<uint64_t> deferred_;  // GUARDED_BY(mu_)
  // JobDone and ReloadAsync work for the janitor, in order.
  std::deque<std::function<void()>> chores_;  // GUARDED_BY(mu_)
  std::vector<std::thread> workers_;
  std::thread janitor_;
};

}  // namespace drover::services

#endif  // DROVER_BACKENDS_SERVICES_SERVICE_HOST_H_

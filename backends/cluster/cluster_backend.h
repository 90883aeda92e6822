// ClusterBackend: tasks that are HTTP requests to a job's services, and the
// worker-side registry of those services (service_registry.h).
//
// A cluster attempt names a service and a request. On one of this
// backend's threads, the job's services the attempt needs are started if
// they do not run yet on this worker (and waited for until ready), the
// attempt's `${services.NAME.port|host}` are replaced, and the request is
// sent to the service's port (http_request.h). The response body is the
// attempt's stdout.
//
// Attempts of other backends may need services too (a spawn task running
// `curl http://127.0.0.1:${services.api.port}/`): the worker hands them to
// SubmitVia (attempt_hook.h), which starts the services the same way and
// then submits the attempt, with its references replaced, to its own
// backend. The worker tells AttemptEnded when such an attempt is over, so
// that a service's idle time counts from its last user.
//
// The coordinator tells the worker when a job ends (JOB-DONE: JobDone stops
// its services) and asks for reloads (SERVICE-RELOAD: ReloadAsync). Both
// run on the janitor thread, which also stops job services left idle (the
// safety net when no JOB-DONE came). The worker's own services (its
// configuration's `services:`) live in the same registry; Start does not
// start them, the worker does (services().StartWorkerService).
//
// Threading: Submit, SubmitVia, Cancel, CancelDeferred, AttemptEnded,
// JobDone, ReloadAsync and Shutdown are called from the worker's I/O
// thread and never block on a service or a request. Requests and service
// start-ups run on this backend's threads; events are reported from them.
#ifndef DROVER_BACKENDS_CLUSTER_CLUSTER_BACKEND_H_
#define DROVER_BACKENDS_CLUSTER_CLUSTER_BACKEND_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "backends/backend.h"
#include "backends/cluster/http_request.h"
#include "backends/cluster/service_registry.h"
#include "core/base/clock.h"

namespace drover {

class ClusterBackend final : public Backend {
 public:
  explicit ClusterBackend(const BackendConfig& config);
  ~ClusterBackend() override;
  ClusterBackend(const ClusterBackend&) = delete;
  ClusterBackend& operator=(const ClusterBackend&) = delete;

  Status Start(BackendEvents* events) override;
  int Capacity() const override { return slots_; }
  // A cluster attempt: attempt.service names one of attempt.services.
  Status Submit(TaskAttempt attempt) override;
  void Cancel(uint64_t attempt_id) override;
  // Stops the requests in flight (kCancelled), then every service
  // (SIGTERM, `grace`, SIGKILL), and joins the threads.
  void Shutdown(Duration grace) override;

  // An attempt of `target` (another backend) that needs attempt.services:
  // submitted at once when they are all up, else once this backend has
  // started them. A service that cannot start fails the attempt with
  // kLaunchFailed through the events given to Start. Errors as Submit's.
  Status SubmitVia(Backend* target, TaskAttempt attempt);
  // The attempt `attempt_id` (of any backend) has ended on this worker.
  // Unknown ids are ignored.
  void AttemptEnded(uint64_t attempt_id);
  // A CANCEL for an attempt SubmitVia still holds (waiting for its
  // services): it ends as kCancelled at once, and true is returned. False
  // when SubmitVia does not hold it (it reached its own backend, which is
  // the one to cancel it, or it is unknown).
  bool CancelDeferred(uint64_t attempt_id);

  // JOB-DONE: stops the job's services, on the janitor thread.
  void JobDone(std::string job_id);
  // SERVICE-RELOAD: reloads the services called `name` (job `job_id`'s, or
  // every job's and the worker's own when it is empty; see
  // ServiceRegistry::Reload) on the janitor thread, then calls `done` there
  // with what happened. `done` is not called when the backend shuts down
  // first.
  using ReloadDone = std::function<void(std::vector<cluster::ReloadOutcome>)>;
  void ReloadAsync(std::string job_id, std::string name, ReloadDone done);

  cluster::ServiceRegistry& services() { return registry_; }

 private:
  struct Work {
    TaskAttempt attempt;
    Backend* target = nullptr;  // null: a cluster request; else SubmitVia's
  };

  void RunWorker();
  void RunJanitor();
  void AddChore(std::function<void()> chore);
  void RunRequest(TaskAttempt attempt);
  void RunDeferred(Backend* target, TaskAttempt attempt);
  void Finish(uint64_t attempt_id, AttemptOutcome outcome);

  const int slots_;
  RealClock clock_;
  cluster::ServiceRegistry registry_{clock_};
  BackendEvents* events_ = nullptr;

  std::mutex mu_;
  std::condition_variable cv_;
  enum class State { kNew, kRunning, kStopped };
  State state_ = State::kNew;                          // GUARDED_BY(mu_)
  std::deque<Work> queue_;                             // GUARDED_BY(mu_)
  std::set<uint64_t> cluster_attempts_;                // GUARDED_BY(mu_)
  std::map<uint64_t, std::shared_ptr<cluster::RequestControl>> active_;  // GUARDED_BY(mu_)
  // Attempts of other backends holding services, until AttemptEnded.
  std::map<uint64_t, cluster::Lease> leases_;          // GUARDED_BY(mu_)
  // Attempts of other backends waiting (queued or in RunDeferred) for
  // their services; CancelDeferred takes them out.
  std::set<uint64_t> deferred_;                        // GUARDED_BY(mu_)
  // JobDone and ReloadAsync work for the janitor, in order.
  std::deque<std::function<void()>> chores_;           // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;
  std::thread janitor_;
};

}  // namespace drover

#endif  // DROVER_BACKENDS_CLUSTER_CLUSTER_BACKEND_H_

// ServiceRegistry: the services on one worker, of two kinds.
//
// A job's service starts on a worker when the first attempt that needs it
// arrives, is shared by every later attempt of that job on that worker, and
// stops (SIGTERM, its grace, SIGKILL) when the coordinator says the job
// ended (JOB-DONE, StopJob) or at Shutdown. Its idle_timeout (no attempt
// of the job used it for that long) is a safety net for a coordinator that
// died before it could send JOB-DONE.
//
// The worker's own services (its configuration's `services:`) are started
// eagerly by StartWorkerService, never idle-stopped, changed by
// UpdateWorkerServices (SIGHUP) and stopped at Shutdown. They are keyed by
// the empty job id, which no job has.
//
// A job's service that fails to start, exits at once or never becomes
// ready fails every attempt waiting for it with the same clear error, and
// is forgotten: the next attempt (a retry) starts it afresh.
//
// Thread-safe. Acquire, StartWorkerService, UpdateWorkerServices, StopJob
// and Reload block (up to the services' ready timeouts, grace and drain
// periods) and are meant for ServiceHost's threads or the worker's main
// thread, never the worker's I/O thread; TryAcquire never blocks.
#ifndef DROVER_BACKENDS_SERVICES_SERVICE_REGISTRY_H_
#define DROVER_BACKENDS_SERVICES_SERVICE_REGISTRY_H_

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/backend.h"
#include "backends/services/service.h"
#include "core/base/clock.h"
#include "core/base/status.h"
#include "core/spec/job_spec.h"

namespace drover::services {

// The services one attempt holds: released exactly once (Release).
struct Lease {
  std::string job_id;
  std::vector<std::string> names;         // the job's services
  std::vector<std::string> worker_names;  // the worker's own services
  std::map<std::string, ServiceAddress> addresses;  // name -> where to reach it
};

// What a SERVICE-RELOAD did to one service.
struct ReloadOutcome {
  std::string job_id;  // empty: the worker's own service
  std::string name;
  Status status;
  std::string describe;  // Service::Describe() after the reload
};

// The supervisor's spec for a declaration: the one place a declaration
// becomes what Service::Start runs (the mode parsed, `drover` resolved to
// this executable, the ready check). InvalidArgument for a bad mode.
Result<ServiceSpec> ToServiceSpec(const spec::ServiceDecl& decl);

// The host a client on this machine connects to for a service listening
// on `listen_host`.
std::string ConnectableHost(std::string_view listen_host);

class ServiceRegistry {
 public:
  // `guardian`: watches every instance's group (Service::Start); may be null.
  explicit ServiceRegistry(const Clock& clock,
                           std::shared_ptr<Guardian> guardian = nullptr)
      : clock_(clock), guardian_(std::move(guardian)) {}
  ~ServiceRegistry() { Shutdown(std::chrono::seconds(5)); }
  ServiceRegistry(const ServiceRegistry&) = delete;
  ServiceRegistry& operator=(const ServiceRegistry&) = delete;

  // Makes sure every service of `configs` runs for `job_id` and is ready,
  // starting those that do not; blocks while one starts. On success the
  // attempt counts as a user of each until Release. On failure nothing is
  // held, and the status says which service failed and why.
  // `worker_names` are the worker's own services the attempt holds too; a
  // name the worker does not run is NotFound.
  Result<Lease> Acquire(const std::string& job_id, const std::vector<spec::ServiceDecl>& configs,
                        const std::vector<std::string>& worker_names = {});
  // Acquire without blocking: nullopt when a service is not up and ready.
  std::optional<Lease> TryAcquire(const std::string& job_id,
                                  const std::vector<spec::ServiceDecl>& configs,
                                  const std::vector<std::string>& worker_names = {});
  // Ends the attempt's use of its services; their idle time starts when
  // their last user leaves.
  void Release(const Lease& lease);

  // Starts the worker's own service (declared by its configuration; its
  // `where` is the origin errors name) and waits until it is ready (bounded
  // by its ready timeout). On failure it is not kept, and the error names
  // the service and its origin. AlreadyExists when one of that name runs.
  Status StartWorkerService(const spec::ServiceDecl& service);
  // The worker's own services, sorted by name.
  std::vector<std::string> WorkerServiceNames() const;
  // The worker's configuration was re-read: services not in `next` stop;
  // unchanged ones stay; changed ones get Service::Reload(next) (a change
  // of listen or mode cannot be applied to a running service: an error
  // naming its origin, and the old one keeps running); new ones start.
  // Returns one error per service it could not bring to `next`; what
  // could be done is done regardless.
  std::vector<Status> UpdateWorkerServices(const std::vector<spec::ServiceDecl>& next);

  // Stops the services of job `job_id` (SIGTERM, their grace, SIGKILL), in
  // parallel, whoever still uses them. Returns how many it stopped. A
  // service still starting is stopped as soon as it has started, and the
  // attempts waiting for it fail. The empty job id (the worker's own) is
  // ignored.
  int StopJob(const std::string& job_id);
  // Reloads (Service::Reload(), a rolling replacement) every ready service
  // called `name`: job `job_id`'s, or when `job_id` is empty every job's
  // and the worker's own. One outcome per service reached, none when no
  // service has that name.
  std::vector<ReloadOutcome> Reload(const std::string& job_id, const std::string& name);

  // Stops every job service with no user for longer than its idle_timeout.
  // Returns how many it stopped.
  int StopIdle();
  // The soonest time StopIdle may have something to stop; nullopt when
  // nothing is idle.
  std::optional<SteadyTime> NextIdleDeadline() const;

  // Stops every service (SIGTERM, `grace`, SIGKILL); wakes the Acquire
  // calls waiting for one, which then fail. Later Acquire calls fail.
  // Idempotent.
  void Shutdown(Duration grace);

  // How many services run, for tests and `drover workers`.
  size_t size() const;

 private:
  struct Entry {
    enum class State { kStarting, kReady, kFailed };
    State state = State::kStarting;
    std::shared_ptr<Service> service;  // set once Start returned
    Status error;                      // kFailed
    ServiceAddress address;            // kReady
    int users = 0;
    SteadyTime idle_since{};
    Duration idle_timeout{};
    Duration kill_grace{};
    // The worker's own: never idle-stopped; `config` says what it runs
    // now (and where it is declared), for UpdateWorkerServices.
    bool pinned = false;
    spec::ServiceDecl config;
    // JOB-DONE came while it was starting: StartOne stops it once started.
    bool job_done = false;
  };
  using Key = std::pair<std::string, std::string>;  // job id, service name

  // Starts one service and waits for it (called without mu_).
  // `users`: how many hold it once ready (1: the attempt that started it).
  Status StartOne(const Key& key, const spec::ServiceDecl& config,
                  const std::shared_ptr<Entry>& entry, int users);
  void ReleaseLocked(const std::string& job_id, const std::vector<std::string>& names);
  void ReleaseLocked(const Lease& lease);
  // Waits (mu_ held through `lock`) until `entry` is no longer starting;
  // Ok with a user added, or why it cannot be used.
  Status JoinLocked(std::unique_lock<std::mutex>& lock, const std::string& name,
                    const std::shared_ptr<Entry>& entry);
  // Shuts each service down with its grace, in parallel; called off mu_.
  static void StopAll(std::vector<std::pair<std::shared_ptr<Service>, Duration>> stop);

  const Clock& clock_;
  const std::shared_ptr<Guardian> guardian_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<Key, std::shared_ptr<Entry>> entries_;  // GUARDED_BY(mu_)
  bool shut_down_ = false;                         // GUARDED_BY(mu_)
};

}  // namespace drover::services

#endif  // DROVER_BACKENDS_SERVICES_SERVICE_REGISTRY_H_

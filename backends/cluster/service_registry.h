// ServiceRegistry: the cluster services of each job on one worker.
//
// A job's service starts on a worker when the first attempt that needs it
// arrives, is shared by every later attempt of that job on that worker, and
// stops (SIGTERM, its grace, SIGKILL) when no attempt of the job has used it
// for its idle_timeout, or at Shutdown. Workers are not told when a job
// ends (docs/protocol.md), hence the idle timeout.
//
// A service that fails to start, exits at once or never becomes ready
// fails every attempt waiting for it with the same clear error, and is
// forgotten: the next attempt (a retry) starts it afresh.
//
// Thread-safe. Acquire blocks (up to the services' ready timeouts) and is
// meant for the cluster backend's own threads, never the worker's I/O
// thread; TryAcquire never blocks.
#ifndef DROVER_BACKENDS_CLUSTER_SERVICE_REGISTRY_H_
#define DROVER_BACKENDS_CLUSTER_SERVICE_REGISTRY_H_

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backends/backend.h"
#include "backends/cluster/service.h"
#include "backends/cluster/service_refs.h"
#include "core/base/clock.h"
#include "core/base/status.h"

namespace drover::cluster {

// The services one attempt holds: released exactly once (Release).
struct Lease {
  std::string job_id;
  std::vector<std::string> names;
  std::map<std::string, ServiceAddress> addresses;  // name -> where to reach it
};

// The supervisor's spec for a declaration. InvalidArgument for a bad mode.
Result<ServiceSpec> ToServiceSpec(const ServiceConfig& config);

class ServiceRegistry {
 public:
  explicit ServiceRegistry(const Clock& clock) : clock_(clock) {}
  ~ServiceRegistry() { Shutdown(std::chrono::seconds(5)); }
  ServiceRegistry(const ServiceRegistry&) = delete;
  ServiceRegistry& operator=(const ServiceRegistry&) = delete;

  // Makes sure every service of `configs` runs for `job_id` and is ready,
  // starting those that do not; blocks while one starts. On success the
  // attempt counts as a user of each until Release. On failure nothing is
  // held, and the status says which service failed and why.
  Result<Lease> Acquire(const std::string& job_id, const std::vector<ServiceConfig>& configs);
  // Acquire without blocking: nullopt when a service is not up and ready.
  std::optional<Lease> TryAcquire(const std::string& job_id,
                                  const std::vector<ServiceConfig>& configs);
  // Ends the attempt's use of its services; their idle time starts when
  // their last user leaves.
  void Release(const Lease& lease);

  // Stops every service with no user for longer than its idle_timeout.
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
  };
  using Key = std::pair<std::string, std::string>;  // job id, service name

  // Starts one service and waits for it (called without mu_).
  Status StartOne(const Key& key, const ServiceConfig& config,
                  const std::shared_ptr<Entry>& entry);
  void ReleaseLocked(const std::string& job_id, const std::vector<std::string>& names);

  const Clock& clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<Key, std::shared_ptr<Entry>> entries_;  // GUARDED_BY(mu_)
  bool shut_down_ = false;                         // GUARDED_BY(mu_)
};

}  // namespace drover::cluster

#endif  // DROVER_BACKENDS_CLUSTER_SERVICE_REGISTRY_H_

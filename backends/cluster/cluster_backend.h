// ClusterBackend: tasks that are HTTP requests to a service.
//
// A cluster attempt's payload (a drover.cluster.ClusterTask, decoded in
// Submit by cluster_attempt.h) names a service and a request. The service
// is the worker's to run (backends/services/): it is up and ready before
// the attempt reaches this backend, and its address is in
// TaskAttempt::services. On one of this backend's threads the request is
// sent to that address (http_request.h); the response body is the
// attempt's stdout.
//
// Threading: Submit, Cancel and Shutdown are called from the worker's I/O
// thread and never block on a request. Requests run on this backend's
// threads; events are reported from them.
#ifndef DROVER_BACKENDS_CLUSTER_CLUSTER_BACKEND_H_
#define DROVER_BACKENDS_CLUSTER_CLUSTER_BACKEND_H_

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "backends/backend.h"
#include "backends/cluster/cluster_attempt.h"
#include "backends/cluster/http_request.h"

namespace drover {

class ClusterBackend final : public Backend {
 public:
  explicit ClusterBackend(const BackendConfig& config);
  ~ClusterBackend() override;
  ClusterBackend(const ClusterBackend&) = delete;
  ClusterBackend& operator=(const ClusterBackend&) = delete;

  Status Start(BackendEvents* events) override;
  int Capacity() const override { return slots_; }
  // A payload that does not decode, or names a service that is not in
  // attempt.services, fails the attempt with kLaunchFailed.
  Status Submit(TaskAttempt attempt) override;
  void Cancel(uint64_t attempt_id) override;
  // Stops the requests in flight (kCancelled) and joins the threads.
  void Shutdown(Duration grace) override;

 private:
  void RunWorker();
  void RunRequest(cluster::ClusterAttempt attempt);
  void Finish(uint64_t attempt_id, AttemptOutcome outcome);

  const int slots_;
  BackendEvents* events_ = nullptr;

  std::mutex mu_;
  std::condition_variable cv_;
  enum class State { kNew, kRunning, kStopped };
  State state_ = State::kNew;                  // GUARDED_BY(mu_)
  std::deque<cluster::ClusterAttempt> queue_;  // GUARDED_BY(mu_)
  std::set<uint64_t> attempts_;                // GUARDED_BY(mu_)
  std::map<uint64_t, std::shared_ptr<cluster::RequestControl>>
      active_;  // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;
};

}  // namespace drover

#endif  // DROVER_BACKENDS_CLUSTER_CLUSTER_BACKEND_H_

// The HTTP request of one cluster task, sent with cpp-httplib (the only
// file that includes it: it is a large header).
#ifndef DROVER_BACKENDS_CLUSTER_HTTP_REQUEST_H_
#define DROVER_BACKENDS_CLUSTER_HTTP_REQUEST_H_

#include <functional>
#include <mutex>

#include "backends/backend.h"
#include "backends/cluster/cluster_attempt.h"
#include "core/base/outcome.h"

namespace drover::cluster {

// Lets another thread abort a request in flight (Cancel, Shutdown).
// Thread-safe.
class RequestControl {
 public:
  // Aborts the request; SendRequest then returns kCancelled. May come
  // before the request starts.
  void Cancel();
  bool cancelled() const;

 private:
  friend AttemptOutcome SendRequest(const ClusterAttempt&, const ServiceAddress&,
                                    RequestControl*);
  // Installs how to abort the request in flight; false when already
  // cancelled.
  bool Arm(std::function<void()> stop);
  void Disarm();

  mutable std::mutex mu_;
  std::function<void()> stop_;  // GUARDED_BY(mu_)
  bool cancelled_ = false;      // GUARDED_BY(mu_)
};

// The request's deadline: its own timeout, the attempt's, the shorter of
// the two when both are set, or 30s when neither is.
Duration RequestTimeout(const ClusterAttempt& attempt);

// Sends attempt.request to `address` and waits for the whole response. The
// body goes to attempt.stdout_path, its last attempt.output_limit bytes
// kept. Success is a response with status request.expect; a different
// status, a refused or reset connection fail with kRequestFailed, no
// response in time with kTimeout, a Cancel with kCancelled, each with a
// message that names the request, the service and what happened.
AttemptOutcome SendRequest(const ClusterAttempt& attempt, const ServiceAddress& address,
                           RequestControl* control);

}  // namespace drover::cluster

#endif  // DROVER_BACKENDS_CLUSTER_HTTP_REQUEST_H_

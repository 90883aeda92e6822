// The worker's two calls into the cluster backend (worker/worker.cc): the
// cluster fields of a DISPATCH go into the attempt here, and an attempt
// that needs services goes through the worker's cluster backend, which
// starts them and replaces `${services.NAME.port|host}` before the
// attempt reaches its own backend.
#ifndef DROVER_BACKENDS_CLUSTER_ATTEMPT_HOOK_H_
#define DROVER_BACKENDS_CLUSTER_ATTEMPT_HOOK_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "backends/backend.h"
#include "core/protocol/drover.pb.h"

namespace drover {
class ClusterBackend;
}

namespace drover::cluster {

using BackendMap = std::map<std::string, std::unique_ptr<Backend>>;

// The "cluster" backend of `backends`, or nullptr.
ClusterBackend* FindCluster(const BackendMap& backends);

// Copies the cluster fields of `dispatch` (services, worker_services,
// service, request)
// into `attempt`, then submits it: straight to `target` when it needs no
// service, else through the "cluster" backend of `backends`. Returns what
// the Submit returned; FailedPrecondition when services are needed and the
// worker has no cluster backend to run them.
Status SubmitAttempt(const wire::Dispatch& dispatch, const BackendMap& backends,
                     Backend& target, TaskAttempt attempt);

// The attempt ended (its RESULT is out): lets the services it held go idle.
void AttemptEnded(const BackendMap& backends, uint64_t attempt_id);
// A CANCEL for an attempt that needs services: true when the cluster
// backend still held it (waiting for them) and ended it as cancelled;
// false when its own backend is the one to cancel it.
bool CancelDeferred(const BackendMap& backends, uint64_t attempt_id);

}  // namespace drover::cluster

#endif  // DROVER_BACKENDS_CLUSTER_ATTEMPT_HOOK_H_

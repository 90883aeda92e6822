// ClusterAttempt: the cluster backend's attempt, a TaskAttempt with its
// payload (a drover.cluster.ClusterTask, backends/cluster/cluster.proto)
// decoded, and the conversions between them.
#ifndef DROVER_BACKENDS_CLUSTER_CLUSTER_ATTEMPT_H_
#define DROVER_BACKENDS_CLUSTER_CLUSTER_ATTEMPT_H_

#include <string>
#include <utility>
#include <vector>

#include "backends/backend.h"
#include "core/base/clock.h"
#include "core/base/status.h"

namespace drover::cluster {

// A cluster task's HTTP request (docs/spec.md, `request:`).
struct HttpRequestSpec {
  std::string method = "GET";
  std::string path = "/";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int expect = 200;
  Duration timeout{0};  // 0: the attempt's timeout, else 30s
};

struct ClusterAttempt : TaskAttempt {
  std::string service;  // the service to send `request` to
  HttpRequestSpec request;
  ServiceAddress address;  // where `service` is: services[service]
};

// The cluster backend's attempt for `attempt`: its payload decoded,
// `${services.NAME.port|host}` expanded in the request's path, header
// values and body, and the address of its service taken from
// attempt.services. InvalidArgument when the payload is not a ClusterTask;
// FailedPrecondition when its service is not among attempt.services (its
// declaration did not come with the DISPATCH).
Result<ClusterAttempt> DecodeClusterAttempt(TaskAttempt attempt);

// A serialized ClusterTask (what a cluster task's DISPATCH carries), for
// tests and tools.
std::string ClusterPayload(const std::string& service,
                           const HttpRequestSpec& request = {});

}  // namespace drover::cluster

#endif  // DROVER_BACKENDS_CLUSTER_CLUSTER_ATTEMPT_H_

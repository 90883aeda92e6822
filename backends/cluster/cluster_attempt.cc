#include "backends/cluster/cluster_attempt.h"

#include <chrono>

#include "backends/cluster/cluster.pb.h"

namespace drover::cluster {

Result<ClusterAttempt> DecodeClusterAttempt(TaskAttempt attempt) {
  ClusterTask task;
  if (!task.ParseFromString(attempt.payload)) {
    return InvalidArgument(
        "the cluster task's payload is not a drover.cluster.ClusterTask");
  }
  ClusterAttempt a;
  static_cast<TaskAttempt&>(a) = std::move(attempt);
  a.payload.clear();
  a.service = task.service();
  const auto found = a.services.find(a.service);
  if (a.service.empty() || found == a.services.end()) {
    return FailedPrecondition("the task names service '" + a.service +
                              "' but its declaration did not come with it");
  }
  a.address = found->second;
  if (task.has_request()) {
    const Request& r = task.request();
    if (!r.method().empty()) a.request.method = r.method();
    if (!r.path().empty()) a.request.path = a.ExpandServiceRefs(r.path());
    for (const auto& h : r.headers()) {
      a.request.headers.emplace_back(h.name(), a.ExpandServiceRefs(h.value()));
    }
    a.request.body = a.ExpandServiceRefs(r.body());
    if (r.expect() != 0) a.request.expect = static_cast<int>(r.expect());
    a.request.timeout = std::chrono::milliseconds(r.timeout_ms());
  }
  return a;
}

std::string ClusterPayload(const std::string& service, const HttpRequestSpec& request) {
  ClusterTask task;
  task.set_service(service);
  Request* r = task.mutable_request();
  r->set_method(request.method);
  r->set_path(request.path);
  for (const auto& [name, value] : request.headers) {
    Header* h = r->add_headers();
    h->set_name(name);
    h->set_value(value);
  }
  r->set_body(request.body);
  r->set_expect(static_cast<uint32_t>(request.expect));
  r->set_timeout_ms(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(request.timeout).count()));
  return task.SerializeAsString();
}

}  // namespace drover::cluster

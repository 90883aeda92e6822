#include "backends/cluster/attempt_hook.h"

#include <chrono>

#include "backends/cluster/cluster_backend.h"

namespace drover::cluster {
namespace {

Duration Millis(uint64_t ms) { return std::chrono::milliseconds(static_cast<int64_t>(ms)); }

void FromWire(const wire::Dispatch& d, TaskAttempt* a) {
  for (const wire::Service& s : d.services()) {
    ServiceConfig& c = a->services.emplace_back();
    c.name = s.name();
    c.command.assign(s.command().begin(), s.command().end());
    c.instances = static_cast<int>(std::max<uint32_t>(1, s.instances()));
    if (!s.host().empty()) c.host = s.host();
    c.port = static_cast<int>(s.port());
    if (!s.mode().empty()) c.mode = s.mode();
    if (!s.ready().empty()) c.ready = s.ready();
    if (!s.ready_path().empty()) c.ready_path = s.ready_path();
    if (s.ready_timeout_ms() > 0) c.ready_timeout = Millis(s.ready_timeout_ms());
    for (const auto& e : s.env()) c.env.emplace_back(e.name(), e.value());
    c.cwd = s.cwd();
    if (s.idle_timeout_ms() > 0) c.idle_timeout = Millis(s.idle_timeout_ms());
  }
  a->worker_services.assign(d.worker_services().begin(), d.worker_services().end());
  a->service = d.service();
  if (d.has_request()) {
    const wire::Request& r = d.request();
    if (!r.method().empty()) a->request.method = r.method();
    if (!r.path().empty()) a->request.path = r.path();
    for (const auto& h : r.headers()) a->request.headers.emplace_back(h.name(), h.value());
    a->request.body = r.body();
    if (r.expect() != 0) a->request.expect = static_cast<int>(r.expect());
    a->request.timeout = Millis(r.timeout_ms());
  }
}

}  // namespace

ClusterBackend* FindCluster(const BackendMap& backends) {
  const auto found = backends.find("cluster");
  if (found == backends.end()) return nullptr;
  return dynamic_cast<ClusterBackend*>(found->second.get());
}

Status SubmitAttempt(const wire::Dispatch& dispatch, const BackendMap& backends,
                     Backend& target, TaskAttempt attempt) {
  FromWire(dispatch, &attempt);
  if ((attempt.services.empty() && attempt.worker_services.empty()) ||
      dispatch.backend() == "cluster") {
    return target.Submit(std::move(attempt));
  }
  ClusterBackend* cluster = FindCluster(backends);
  if (cluster == nullptr) {
    const std::string& name = attempt.services.empty() ? attempt.worker_services.front()
                                                       : attempt.services.front().name;
    return FailedPrecondition("the task needs service '" + name +
                              "', and this worker has no cluster backend to run it (give it "
                              "cluster slots)");
  }
  return cluster->SubmitVia(&target, std::move(attempt));
}

void AttemptEnded(const BackendMap& backends, uint64_t attempt_id) {
  if (ClusterBackend* cluster = FindCluster(backends)) cluster->AttemptEnded(attempt_id);
}

bool CancelDeferred(const BackendMap& backends, uint64_t attempt_id) {
  ClusterBackend* cluster = FindCluster(backends);
  return cluster != nullptr && cluster->CancelDeferred(attempt_id);
}

}  // namespace drover::cluster

// The worker's side of services (docs/backends/cluster.md): its own
// services (started at Start(), changed on SIGHUP, listed in HELLO),
// SERVICE-RELOAD answered through the outbox, and the check of a
// DISPATCH's worker_services. JOB-DONE is one call, in Handle().
#include <algorithm>

#include <spdlog/spdlog.h>

#include "worker/worker_loop.h"

namespace drover {

using protocol::Command;
using protocol::Message;

Status Worker::Loop::StartServices() {
  // One after the other: a worker's services are few, and a failure stops
  // the worker before it offers anything.
  for (const spec::ServiceDecl& service : options_.services) {
    if (Status s = services_.registry().StartWorkerService(service); !s.ok()) return s;
    spdlog::info("worker {}: service {} is ready", options_.name, service.name);
  }
  return Status::Ok();
}

std::vector<Status> Worker::Loop::UpdateServices(const std::vector<spec::ServiceDecl>& next) {
  std::vector<Status> errors = services_.registry().UpdateWorkerServices(next);
  {
    std::lock_guard<std::mutex> lock(mu_);
    hello_again_ = true;  // the coordinator learns the new list
  }
  Wake();
  return errors;
}

void Worker::Loop::Post(Message m) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    outbox_.push_back(std::move(m));
  }
  Wake();
}

void Worker::Loop::DrainOutbox() {
  std::deque<Message> out;
  bool hello = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    out.swap(outbox_);
    std::swap(hello, hello_again_);
  }
  for (const Message& m : out) Send(m);
  // A HELLO from a registered worker with the same session updates its
  // registration (core/coordinator/workers.cc); unregistered, the next
  // HELLO carries the list anyway.
  if (hello && registered_) SendHello();
}


void Worker::Loop::HandleServiceReload(const Message& m) {
  auto request = protocol::Parse<wire::ServiceReload>(m);
  if (!request.ok()) {
    spdlog::warn("worker {}: {}", options_.name, request.status().message());
    return;
  }
  const uint64_t request_id = request->request_id();
  spdlog::info("worker {}: reloading service {}{}", options_.name, request->service(),
               request->job_id().empty() ? "" : " of job " + request->job_id());
  // Reloads run on services_' janitor thread (they block for the rolling
  // replacement); the answer comes back through Post.
  services_.ReloadAsync(
      request->job_id(), request->service(),
      [this, request_id](std::vector<services::ReloadOutcome> outcomes) {
        wire::ServiceReloaded answer;
        answer.set_request_id(request_id);
        for (const services::ReloadOutcome& o : outcomes) {
          wire::ReloadedService* s = answer.add_services();
          s->set_job_id(o.job_id);
          s->set_name(o.name);
          if (!o.status.ok()) s->set_error(o.status.message());
          s->set_describe(o.describe);
          if (!o.status.ok()) {
            spdlog::error("worker {}: reloading service {}: {}", options_.name, o.name,
                          o.status.message());
          }
        }
        Post(protocol::Make(Command::kServiceReloaded, answer));
      });
}


std::optional<std::string> Worker::Loop::MissingWorkerService(const wire::Dispatch& d) const {
  if (d.worker_services_size() == 0) return std::nullopt;
  const std::vector<std::string> have = ServiceNames();
  for (const std::string& wanted : d.worker_services()) {
    if (std::find(have.begin(), have.end(), wanted) != have.end()) continue;
    std::string list;
    for (const std::string& n : have) list += (list.empty() ? "" : ", ") + n;
    return "worker " + options_.name + " has no service '" + wanted +
           "' (its configuration declares: " + (list.empty() ? "none" : list) + ")";
  }
  return std::nullopt;
}

}  // namespace drover

// Coordinator::Loop, services (the cluster backend, docs/protocol.md
// "Services"): JOB-DONE to the workers when a job with services of its own
// ends, and a client's SERVICE-RELOAD fanned out to every worker, their
// SERVICE-RELOADED answers gathered into one for the client.
//
// A reload replaces instances one at a time, each new one ready before the
// old one goes, so a worker may take minutes to answer. The loop never
// waits for it: the reload stays in reloads_ until every worker asked has
// answered or left, its deadline passes, or its client's connection goes
// (Flush sees a send to it fail; the client is heartbeated meanwhile so
// that both sides notice). reloads_ is bounded by max_pending_reloads.
#include <algorithm>
#include <tuple>

#include "core/coordinator/loop.h"

namespace drover {

void Coordinator::Loop::SendJobDone(const Job& job) {
  if (!job.spec.DeclaresServices()) return;
  wire::JobDone done;
  done.set_job_id(job.record.id);
  // Every worker, draining ones too: a worker that ran one of the job's
  // tasks keeps its services until it is told (or they idle out).
  for (const auto& [rid, w] : workers_) Reply(rid, Command::kJobDone, done);
}

void Coordinator::Loop::SendRecoveredJobDone(const std::string& rid) {
  if (recovered_done_.empty() || clock_.Now() >= orphan_deadline_) return;
  for (const std::string& id : recovered_done_) {
    wire::JobDone done;
    done.set_job_id(id);
    Reply(rid, Command::kJobDone, done);
  }
}

void Coordinator::Loop::HandleServiceReload(const Message& m) {
  auto req = protocol::Parse<wire::ServiceReload>(m);
  if (!req.ok()) return RefuseMalformed(m.routing_id, req.status());
  const std::string& name = req->service();
  if (name.empty()) return ReplyError(m.routing_id, "SERVICE-RELOAD names no service");
  const std::string& job_id = req->job_id();
  if (!job_id.empty()) {
    auto it = jobs_.find(job_id);
    if (it == jobs_.end()) {
      auto state = store_->JobStateOf(job_id);  // not its spec
      if (state.ok() && *state) {
        return ReplyError(m.routing_id, "job " + job_id + " has already finished (" +
                                            **state + "): its services are stopped");
      }
      return ReplyError(m.routing_id, "no running job " + job_id);
    }
    const spec::ServiceDecl* decl = it->second->spec.FindService(name);
    if (decl == nullptr) {
      return ReplyError(m.routing_id, "job " + job_id + " declares no service '" + name + "'");
    }
  }
  if (reloads_.size() >= options_.max_pending_reloads) {
    return ReplyError(m.routing_id, std::to_string(reloads_.size()) +
                                        " reloads are already in progress; try again later");
  }
  PendingReload reload;
  reload.client = m.routing_id;
  reload.job_id = job_id;
  reload.service = name;
  reload.deadline = clock_.Now() + options_.reload_timeout;
  for (const auto& [rid, w] : workers_) {
    // A draining worker is leaving: what it runs is not worth replacing.
    if (!w.draining) reload.waiting.emplace(rid, w.name);
  }
  if (reload.waiting.empty()) {
    return ReplyError(m.routing_id, workers_.empty()
                                        ? "no worker is registered"
                                        : "every registered worker is draining");
  }
  const uint64_t id = next_reload_id_++;
  reload.reply.set_request_id(0);  // Cl -> C: the client's request_id is 0
  wire::ServiceReload fwd;
  fwd.set_request_id(id);
  fwd.set_job_id(job_id);
  fwd.set_service(name);
  for (const auto& [rid, worker] : reload.waiting) Reply(rid, Command::kServiceReload, fwd);
  spdlog::info("coordinator: reloading service {}{} on {} workers", name,
               job_id.empty() ? "" : " of job " + job_id, reload.waiting.size());
  reloads_.emplace(id, std::move(reload));
}

bool Coordinator::Loop::HandleServiceReloaded(WorkerConn& w, const Message& m) {
  auto answer = protocol::Parse<wire::ServiceReloaded>(m);
  if (!answer.ok()) {
    stats_.malformed.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("coordinator: worker {}: {}", w.name, answer.status().message());
    return false;
  }
  auto it = reloads_.find(answer->request_id());
  if (it == reloads_.end() || it->second.waiting.erase(w.rid) == 0) {
    // Past its deadline, its client gone, or not asked of this worker.
    spdlog::debug("coordinator: worker {} answered reload {}, which no longer waits for it",
                  w.name, answer->request_id());
    return true;
  }
  for (const wire::ReloadedService& s : answer->services()) {
    wire::ReloadedService* out = it->second.reply.add_services();
    *out = s;
    out->set_worker(w.name);
  }
  if (it->second.waiting.empty()) FinishReload(it->first);
  return true;
}

void Coordinator::Loop::AbandonReloads(const WorkerConn& w, const std::string& why) {
  std::vector<uint64_t> done;
  for (auto& [id, reload] : reloads_) {
    if (reload.waiting.erase(w.rid) == 0) continue;
    reload.reply.add_missing(w.name + ": " + why);
    if (reload.waiting.empty()) done.push_back(id);
  }
  for (uint64_t id : done) FinishReload(id);
}

void Coordinator::Loop::ExpireReloads(SteadyTime now) {
  std::vector<uint64_t> expired;
  for (const auto& [id, reload] : reloads_) {
    if (now >= reload.deadline) expired.push_back(id);
  }
  const std::string why = "no answer within " + FormatDuration(options_.reload_timeout);
  for (uint64_t id : expired) {
    PendingReload& reload = reloads_.at(id);
    for (const auto& [rid, name] : reload.waiting) reload.reply.add_missing(name + ": " + why);
    reload.waiting.clear();
    FinishReload(id);
  }
}

void Coordinator::Loop::DropReloads(const std::set<std::string>& gone) {
  for (auto it = reloads_.begin(); it != reloads_.end();) {
    it = gone.count(it->second.client) ? reloads_.erase(it) : std::next(it);
  }
}

void Coordinator::Loop::FinishReload(uint64_t id) {
  auto it = reloads_.find(id);
  if (it == reloads_.end()) return;
  PendingReload reload = std::move(it->second);
  reloads_.erase(it);
  if (reload.reply.services_size() == 0 && reload.reply.missing_size() == 0) {
    // Every worker answered, none runs it.
    return ReplyError(reload.client,
                      "no worker runs a service named '" + reload.service + "'" +
                          (reload.job_id.empty() ? "" : " for job " + reload.job_id));
  }
  // Stable output: by worker, then job, then name.
  auto* services = reload.reply.mutable_services();
  std::sort(services->begin(), services->end(),
            [](const wire::ReloadedService& a, const wire::ReloadedService& b) {
              return std::tie(a.worker(), a.job_id(), a.name()) <
                     std::tie(b.worker(), b.job_id(), b.name());
            });
  std::sort(reload.reply.mutable_missing()->begin(), reload.reply.mutable_missing()->end());
  Reply(reload.client, Command::kServiceReloaded, reload.reply);
}

}  // namespace drover

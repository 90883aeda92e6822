// Coordinator::Loop, workers: registration (HELLO/WELCOME, adopting the
// attempts of a reconnect or of a coordinator restart), draining, leaving,
// liveness, and the WORKERS listing.
#include <algorithm>

#include "core/coordinator/loop.h"
#include "core/protocol/codec.h"
#include "core/protocol/hello_limits.h"

namespace drover {
namespace {

// How long WORKERS keeps showing a worker that drained or was lost, and
// how many such entries it keeps at most.
constexpr Duration kDepartedKeep = std::chrono::minutes(5);
constexpr size_t kMaxDeparted = 256;

// A worker's announced heartbeat (Hello.heartbeat_ms): 0 is the default;
// longer ones are taken as this, so that a silent registration (and the
// attempts placed on it) cannot be kept for days (docs/protocol.md,
// "Heartbeating").
constexpr Duration kDefaultWorkerHeartbeat = std::chrono::seconds(1);
constexpr Duration kMaxWorkerHeartbeat = std::chrono::minutes(1);

// The most bytes of WorkerInfo a WORKERS-REPLY carries (docs/protocol.md,
// WORKERS): under the 4 MiB body limit, with room to spare.
constexpr size_t kWorkersReplyBudget = size_t{3} << 20;

}  // namespace

void Coordinator::Loop::HandleHello(const Message& m) {
  auto hello = protocol::Parse<wire::Hello>(m);
  if (!hello.ok()) return RefuseMalformed(m.routing_id, hello.status());
  // Names identify workers in the store, in results and in `drover
  // workers`: a worker without one is refused (docs/protocol.md, HELLO).
  if (hello->name().empty()) {
    stats_.malformed.fetch_add(1, std::memory_order_relaxed);
    return ReplyError(m.routing_id, "HELLO without a name: a worker must name itself");
  }
  if (const std::string problem = protocol::HelloProblem(*hello); !problem.empty()) {
    stats_.malformed.fetch_add(1, std::memory_order_relaxed);
    Note(m.routing_id, "refused HELLOs", spdlog::level::warn,
         PeerName(m.routing_id) + ": HELLO refused: " + problem);
    return ReplyError(m.routing_id, "HELLO refused: " + problem);
  }
  // The same worker process (same session) on a new connection adopts its
  // attempts.
  std::unordered_set<uint64_t> adopted;
  bool draining = false;
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (it->second.name != hello->name() || it->first == m.routing_id) {
      ++it;
      continue;
    }
    if (it->second.session != hello->session()) {
      // Another live process has this name. Names identify workers in the
      // store and in `drover workers`, so the newcomer waits (it retries
      // HELLO) until the old registration is gone or expires.
      return ReplyError(m.routing_id, "worker name \"" + hello->name() +
                                          "\" is in use by a live worker");
    }
    adopted = std::move(it->second.attempts);
    draining = it->second.draining;
    it->second.attempts.clear();
    // Its answer to a reload, if any, would come on the old connection.
    AbandonReloads(it->second, "reconnected before answering");
    load_index_.Remove(&it->second);
    it = workers_.erase(it);
  }
  WorkerConn& w = workers_[m.routing_id];
  const bool known = !w.name.empty();
  if (known && w.session == hello->session()) draining = draining || w.draining;
  w.rid = m.routing_id;
  w.name = hello->name();
  w.session = hello->session();
  w.hostname = hello->hostname();
  w.address = m.peer_address;
  w.version = hello->version();
  w.pid = hello->pid();
  w.draining = draining;
  w.slots.clear();
  for (const auto& [backend, n] : hello->slots()) w.slots[backend] = n;
  // Prefetch is offered per backend; how much of it is used follows the
  // backend's tasks there (prefetch_grant.h), from at most as many again as
  // its slots until its first attempts end.
  w.prefetch.clear();
  w.grants.clear();
  for (const auto& [backend, n] : hello->prefetch()) {
    if (auto s = w.slots.find(backend); s != w.slots.end() && n > 0 && s->second > 0) {
      const PrefetchGrant& grant = w.grants[backend] = PrefetchGrant(s->second, n);
      w.prefetch[backend] = grant.granted();
    }
  }
  w.takes_recall = hello->takes_recall();
  w.reports_starts = hello->reports_starts();
  w.takes_dispatch_acks = hello->takes_dispatch_acks();
  if (w.takes_recall && !w.prefetch.empty()) {
    recallable_.insert(w.rid);
  } else {
    recallable_.erase(w.rid);
  }
  w.max_batch = std::clamp<uint32_t>(hello->max_batch(), 1, kMaxBatch);
  w.labels.clear();
  for (const auto& [k, v] : hello->labels()) w.labels[k] = v;
  // A HELLO on a registered connection (a worker whose configuration was
  // reloaded) replaces its offer and keeps its attempts.
  w.services.clear();
  for (const auto& name : hello->services()) w.services.insert(name);
  w.pools.clear();
  for (const auto& name : hello->pools()) w.pools.insert(name);
  w.last_seen = clock_.Now();
  w.heartbeat = hello->heartbeat_ms() == 0
                    ? kDefaultWorkerHeartbeat
                    : std::min<Duration>(std::chrono::milliseconds(hello->heartbeat_ms()),
                                         kMaxWorkerHeartbeat);
  const std::unordered_set<uint64_t> running(hello->running().begin(),
                                             hello->running().end());
  // On a new connection the old one is gone with whatever was still in it:
  // an attempt placed there that the worker does not hold never reached it
  // (a worker lists every attempt it holds), so it is placed again without
  // spending a retry. On the same connection a DISPATCH may still be on its
  // way, so there every attempt stays (docs/protocol.md, "Registration").
  std::vector<uint64_t> undelivered;
  for (uint64_t id : adopted) {
    if (running.count(id)) {
      w.attempts.insert(id);
    } else {
      undelivered.push_back(id);
    }
  }
  departed_.erase(std::remove_if(departed_.begin(), departed_.end(),
                                 [&](const Departed& d) { return d.info.name() == w.name; }),
                  departed_.end());

  // After a coordinator restart: the attempts the store says this worker
  // ran are claimed if it still holds them, lost otherwise.
  wire::Cancel cancel;
  std::vector<uint64_t> lost;
  if (auto o = orphans_.find(w.name); o != orphans_.end()) {
    for (uint64_t id : o->second) {
      auto a = attempts_.find(id);
      if (a == attempts_.end()) continue;
      if (running.count(id)) {
        a->second.worker_rid = w.rid;
        w.attempts.insert(id);
        stats_.claimed_attempts.fetch_add(1, std::memory_order_relaxed);
        const Job& job = *a->second.job;
        if (job.cancelling || job.cancel_requested.count(a->second.task)) {
          cancel.add_attempt_ids(id);  // asked for while it was unclaimed
        }
      } else {
        lost.push_back(id);
      }
    }
    const size_t total = o->second.size();
    orphans_.erase(o);
    spdlog::info("coordinator: worker {} claimed {} of its {} recovered attempts", w.name,
                 total - lost.size(), total);
  }

  wire::Welcome welcome;
  welcome.set_heartbeat_ms(static_cast<uint32_t>(ToMillis(options_.heartbeat_interval)));
  welcome.set_liveness(static_cast<uint32_t>(options_.liveness));
  welcome.set_coordinator(instance_);
  welcome.set_max_batch(kMaxBatch);
  welcome.set_takes_result_starts(true);
  w.used.clear();
  // Which of its attempts wait, as the worker says now (a start it
  // reported on an old connection may not have arrived).
  const std::unordered_set<uint64_t> waiting(hello->waiting().begin(),
                                             hello->waiting().end());
  for (uint64_t id : w.attempts) {
    auto a = attempts_.find(id);
    if (a != attempts_.end()) {
      a->second.worker_rid = w.rid;
      a->second.waiting = w.reports_starts && waiting.count(id) > 0;
      w.used[a->second.backend] += a->second.slots;
    }
  }
  Refile(w);
  for (uint64_t id : hello->running()) {
    if (!w.attempts.count(id)) welcome.add_unknown(id);
  }
  Reply(m.routing_id, Command::kWelcome, welcome);
  if (cancel.attempt_ids_size() > 0) Reply(m.routing_id, Command::kCancel, cancel);
  // After WELCOME: ending a job here may send this worker JOB-DONE, which
  // must not come before it is registered. The lost attempts held no slot
  // of w, so WELCOME is the same either way.
  if (!undelivered.empty()) {
    AttemptOutcome outcome;
    outcome.reason = FailureReason::kWorkerLost;
    outcome.message = "worker " + w.name +
                      " registered again on a new connection without the attempt: its "
                      "DISPATCH was lost with the old connection, and it had not started";
    outcome.not_started = true;
    for (uint64_t id : undelivered) Finish(id, outcome, w.name, nullptr);
  }
  if (!lost.empty()) {
    AttemptOutcome outcome;
    outcome.reason = FailureReason::kWorkerLost;
    outcome.message = "worker " + w.name +
                      " registered again without the attempt (coordinator restart)";
    for (uint64_t id : lost) Finish(id, outcome, w.name, nullptr);
  }
  if (!known) {
    spdlog::info("coordinator: worker {} ({}) registered", w.name, w.hostname);
    SendRecoveredJobDone(w.rid);
  }
}

bool Coordinator::Loop::HandleDraining(WorkerConn& w, const Message& m) {
  auto d = protocol::Parse<wire::Draining>(m);
  if (!d.ok()) {
    stats_.malformed.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  if (!w.draining) {
    spdlog::info("coordinator: worker {} is draining ({} attempts running, deadline {} ms)",
                 w.name, w.attempts.size(), d->deadline_ms());
  }
  w.draining = true;
  Refile(w);
  return true;
}

bool Coordinator::Loop::HandleHeartbeat(WorkerConn& w, const Message& m) {
  if (m.body.empty()) return true;  // the usual one: a sign of life only
  auto hb = protocol::Parse<wire::Heartbeat>(m);
  if (!hb.ok()) {
    stats_.malformed.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  NoteStarts(w, hb->started());
  return true;
}

void Coordinator::Loop::NoteStarts(
    WorkerConn& w, const google::protobuf::RepeatedField<uint64_t>& started) {
  for (uint64_t id : started) {
    // Only its own attempts: an id it does not hold changes nothing.
    if (!w.attempts.count(id)) continue;
    auto a = attempts_.find(id);
    if (a == attempts_.end()) continue;
    a->second.waiting = false;
    if (a->second.recalled) {
      // It started before our recall reached the worker, which leaves it
      // be and sends no answer: the next recall need not wait for its end.
      a->second.recalled = false;
      if (w.recalling > 0) --w.recalling;
    }
  }
}

void Coordinator::Loop::HandleDisconnect(WorkerConn& w, const Message& m) {
  auto d = protocol::Parse<wire::Disconnect>(m);
  const bool drained = d.ok() && d->drained();
  spdlog::info("coordinator: worker {} disconnected{}: {}", w.name,
               drained ? " (drained)" : "", d.ok() ? d->reason() : std::string("?"));
  RemoveWorker(w, "worker " + w.name + " disconnected", drained ? "drained" : "lost");
}

void Coordinator::Loop::ExpireWorkers(SteadyTime now) {
  // Each worker by its own announced interval.
  // Every turn: O(workers) comparisons, and a lookup per dropped peer.
  std::vector<WorkerConn*> dead;
  std::vector<WorkerConn*> unread;
  for (const auto& [rid, q] : peer_queues_) {
    if (!q.dropped) continue;
    if (auto w = workers_.find(rid); w != workers_.end()) unread.push_back(&w->second);
  }
  for (auto& [rid, w] : workers_) {
    if (now - w.last_seen > w.heartbeat * options_.liveness &&
        std::find(unread.begin(), unread.end(), &w) == unread.end()) {
      dead.push_back(&w);
    }
  }
  for (WorkerConn* w : dead) {
    stats_.workers_lost.fetch_add(1, std::memory_order_relaxed);
    ++metrics_.workers_lost["heartbeat"];
    spdlog::warn("coordinator: worker {} missed {} heartbeats of {} ms; its attempts are lost",
                 w->name, options_.liveness, ToMillis(w->heartbeat));
    RemoveWorker(*w, "worker " + w->name + " stopped heartbeating", "lost");
  }
  for (WorkerConn* w : unread) {
    // Over its send budget (DropPeer logged it): it reads nothing we send.
    stats_.workers_lost.fetch_add(1, std::memory_order_relaxed);
    ++metrics_.workers_lost["unread"];
    RemoveWorker(*w, "worker " + w->name + " stopped reading", "lost");
  }
  while (!departed_.empty() &&
         (now - departed_.front().at > kDepartedKeep || departed_.size() > kMaxDeparted)) {
    departed_.pop_front();
  }
}

void Coordinator::Loop::RemoveWorker(WorkerConn& w, const std::string& why,
                                     const std::string& state) {
  const SteadyTime now = clock_.Now();
  Departed d;
  d.info = Info(w, now);
  d.info.set_state(state);
  d.info.set_running(0);
  for (auto& [backend, slots] : *d.info.mutable_slots()) slots.set_used(0);
  d.at = now;
  departed_.push_back(std::move(d));

  AttemptOutcome lost;
  lost.reason = FailureReason::kWorkerLost;
  lost.message = why;
  // An attempt still waiting for a slot there never ran: it is placed
  // again without spending a retry (docs/protocol.md, "Prefetch").
  AttemptOutcome unstarted = lost;
  unstarted.message =
      why + "; the attempt was waiting for a slot there and had not started";
  unstarted.not_started = true;
  const std::vector<uint64_t> ids(w.attempts.begin(), w.attempts.end());
  const std::string name = w.name;
  const std::string rid = w.rid;
  AbandonReloads(w, state == "drained" ? "left (drained)" : why);
  // Its uploads end here: their temporary files go, nothing is indexed.
  AbortTransfers({rid});
  for (uint64_t id : ids) {
    auto a = attempts_.find(id);
    const bool waited = a != attempts_.end() && a->second.waiting;
    Finish(id, waited ? unstarted : lost, name, nullptr);
  }
  load_index_.Remove(&w);
  workers_.erase(rid);
}

wire::WorkerInfo Coordinator::Loop::Info(const WorkerConn& w, SteadyTime now) const {
  wire::WorkerInfo info;
  info.set_name(w.name);
  info.set_hostname(w.hostname);
  info.set_address(w.address);
  info.set_pid(w.pid);
  info.set_version(w.version);
  for (const auto& [k, v] : w.labels) (*info.mutable_labels())[k] = v;
  for (const auto& name : w.services) info.add_services(name);
  for (const auto& name : w.pools) info.add_pools(name);
  std::map<std::string, uint32_t> waiting;  // by backend (AttemptRef::waiting)
  if (w.reports_starts) {
    for (uint64_t id : w.attempts) {
      auto a = attempts_.find(id);
      if (a != attempts_.end() && a->second.waiting)
        waiting[a->second.backend] += a->second.slots;
    }
  }
  for (const auto& [backend, total] : w.slots) {
    wire::BackendSlots& s = (*info.mutable_slots())[backend];
    if (auto n = waiting.find(backend); n != waiting.end()) s.set_waiting(n->second);
    s.set_total(total);
    auto used = w.used.find(backend);
    s.set_used(used == w.used.end() ? 0 : used->second);
    if (auto p = w.prefetch.find(backend); p != w.prefetch.end())
      s.set_prefetch(p->second);
  }
  const auto ago = now - w.last_seen;
  info.set_last_heartbeat_ms_ago(static_cast<uint64_t>(std::max<int64_t>(
      0, std::chrono::duration_cast<std::chrono::milliseconds>(ago).count())));
  info.set_state(w.draining ? "draining" : "ready");
  info.set_running(static_cast<uint32_t>(w.attempts.size()));
  return info;
}

void Coordinator::Loop::HandleWorkersRequest(const Message& m) {
  const SteadyTime now = clock_.Now();
  wire::WorkersReply reply;
  std::vector<const WorkerConn*> live;
  for (const auto& [rid, w] : workers_) live.push_back(&w);
  std::sort(live.begin(), live.end(),
            [](const WorkerConn* a, const WorkerConn* b) { return a->name < b->name; });
  // Within the budget; what does not fit is counted in `omitted`.
  size_t bytes = 0;
  auto add = [&](wire::WorkerInfo info) {
    const size_t size = info.ByteSizeLong();
    if (reply.omitted() > 0 || bytes + size > kWorkersReplyBudget) {
      reply.set_omitted(reply.omitted() + 1);
      return;
    }
    bytes += size;
    *reply.add_workers() = std::move(info);
  };
  for (const WorkerConn* w : live) add(Info(*w, now));
  // Departed ones after the live ones, most recent first; their last
  // heartbeat age keeps growing.
  for (auto it = departed_.rbegin(); it != departed_.rend(); ++it) {
    wire::WorkerInfo info = it->info;
    const auto since = std::chrono::duration_cast<std::chrono::milliseconds>(now - it->at);
    info.set_last_heartbeat_ms_ago(info.last_heartbeat_ms_ago() +
                                   static_cast<uint64_t>(std::max<int64_t>(0, since.count())));
    add(std::move(info));
  }
  Reply(m.routing_id, Command::kWorkersReply, reply);
}

}  // namespace drover

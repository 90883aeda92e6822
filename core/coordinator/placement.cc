// Coordinator::Loop, placement: which ready task goes to which worker.
//
// Jobs are taken by priority (higher first), then in submission order.
// Within a job, each placement class (backend, `on:` labels, `slots:`, the
// `from: worker` services it needs) is
// its own FIFO ready queue of the Plan: a class that no worker can take
// now is passed over after one look, so it never holds up the others and a
// turn costs O(jobs * classes + dispatches * log workers), not O(ready
// tasks). A task goes to the least loaded of the live, non-draining workers
// that have its labels, offer its worker services (and the pool of their
// own it names, if any) and have enough free slots of its backend; the
// index of load_index.h finds it without looking at every worker (ties go
// to the worker registered first).
//
// After placement, Recall takes back an attempt that waits beyond a
// prefetching worker's slots when a worker that could run it has an own
// slot that this turn left free (docs/protocol.md, "Prefetch"). Workers
// without prefetch cost it one look each.
#include <algorithm>

#include "core/coordinator/dispatch_wire.h"
#include "core/coordinator/fanout.h"
#include "core/coordinator/loop.h"
#include "core/coordinator/upstream_outputs.h"

namespace drover {
namespace {

bool HasLabels(const std::map<std::string, std::string>& labels,
               const spec::EnvList& on) {
  for (const auto& [k, v] : on) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

bool HasServices(const std::set<std::string>& offered,
                 const std::vector<std::string>& needed) {
  return std::all_of(needed.begin(), needed.end(),
                     [&](const std::string& name) { return offered.count(name) > 0; });
}

// Whether `w` may run tasks of class `p` at all (slots aside): its labels,
// its services, and the pool of its own the class names. (A template: the
// loop's WorkerConn is private to it.)
template <typename Worker>
bool Eligible(const Worker& w, const Placement& p) {
  return HasLabels(w.labels, p.on) && HasServices(w.services, p.worker_services) &&
         (p.worker_pool.empty() || w.pools.count(p.worker_pool) > 0);
}

}  // namespace

void Coordinator::Loop::OrderJobs() {
  // Stable: jobs of one priority keep their submission order.
  std::stable_sort(order_.begin(), order_.end(), [](const Job* a, const Job* b) {
    return a->record.priority > b->record.priority;
  });
}

Coordinator::Loop::WorkerConn* Coordinator::Loop::PickWorker(const Placement& p) {
  // The index yields the live, non-draining workers with enough free slots
  // of the backend, least loaded first (load_index.h).
  return load_index_.Pick(p.backend, p.slots,
                          [&](const WorkerConn* w) { return Eligible(*w, p); });
}

void Coordinator::Loop::Schedule() {
  // Before placement: a ready placeholder is never dispatched, it becomes
  // its instances (even with no worker yet, so that status shows them).
  for (Job* job : order_) {
    if (!job->fanouts.empty()) ExpandFanouts(*job);
  }
  for (Job* job : order_) {
    if (job->cancelling) continue;
    dag::Plan& plan = *job->plan;
    for (uint32_t q = 0; q < plan.queues(); ++q) {
      while (auto t = plan.PeekReady(q)) {
        // A cache hit leaves the queue without a worker (cache.cc); a miss
        // is not looked up again, so it waits for one like any task.
        if (TryCache(*job, *t)) continue;
        WorkerConn* w = workers_.empty() ? nullptr : PickWorker(job->queues[q]);
        if (!w) break;  // nothing fits this class now: the next class
        Dispatch(*job, *t, *w);
      }
    }
  }
  Recall();
  FlushDispatches();
}

void Coordinator::Loop::Recall() {
  if (recallable_.empty()) return;  // the common case: no worker prefetches
  // Free own slots that this turn's placement left: no ready task fits
  // them, so an attempt waiting behind a busy worker's slots would start
  // sooner there. Reserved per target within the turn, so that one free
  // slot draws one attempt.
  std::unordered_map<const WorkerConn*, uint32_t> reserved;
  auto own_free = [&](const WorkerConn* v, const std::string& backend, uint32_t need) {
    auto s = v->slots.find(backend);
    if (s == v->slots.end()) return false;
    auto u = v->used.find(backend);
    const uint32_t used = (u == v->used.end() ? 0 : u->second) + reserved[v];
    return used + need <= s->second;
  };
  for (auto it = recallable_.begin(); it != recallable_.end();) {
    auto found = workers_.find(*it);
    if (found == workers_.end()) {
      it = recallable_.erase(it);  // it left
      continue;
    }
    const std::string& rid = *it++;
    WorkerConn& w = found->second;
    // One recall at a time a worker: until it is answered, the free slot
    // it was for still looks free.
    if (w.draining || w.recalling > 0) continue;
    for (const auto& offered : w.prefetch) {
      // Not a structured binding: clang does not let a lambda capture one.
      const std::string& backend = offered.first;
      const uint32_t slots = w.slots[backend];
      if (w.used[backend] <= slots) continue;  // nothing waits
      // Cheap first: is any other worker's own slot free at all?
      if (!load_index_.Pick(backend, 1, [&](const WorkerConn* v) {
            return v != &w && own_free(v, backend, 1);
          })) {
        continue;
      }
      // The newest attempt (the last to start, in dispatch order); from a
      // worker that reports starts, the newest that still waits.
      uint64_t newest = 0;
      for (uint64_t id : w.attempts) {
        auto a = attempts_.find(id);
        if (a != attempts_.end() && a->second.backend == backend &&
            (a->second.waiting || !w.reports_starts)) {
          newest = std::max(newest, id);
        }
      }
      if (newest == 0) continue;
      AttemptRef& ref = attempts_.at(newest);
      const Placement& p = ref.job->queues[ref.job->plan->queue(ref.task)];
      WorkerConn* v = load_index_.Pick(p.backend, p.slots, [&](const WorkerConn* c) {
        return c != &w && own_free(c, p.backend, p.slots) && Eligible(*c, p);
      });
      if (v == nullptr) continue;
      reserved[v] += p.slots;
      ref.recalled = true;
      ++w.recalling;
      stats_.recalled.fetch_add(1, std::memory_order_relaxed);
      wire::Cancel recall;
      recall.add_recall(newest);
      Reply(rid, Command::kCancel, recall);
      break;  // one at a time a worker, whatever the backend
    }
  }
}

void Coordinator::Loop::ExpandFanouts(Job& job) {
  std::vector<uint32_t> waiting;
  for (uint32_t t : std::vector<uint32_t>(std::move(job.fanouts))) {
    const dag::TaskState s = job.plan->state(t);
    if (s == dag::TaskState::kWaiting) waiting.push_back(t);
    if (s != dag::TaskState::kReady) continue;  // waiting, or blocked/skipped: done
    const std::string name = job.spec.tasks[t].name;
    std::vector<store::TaskRecord> rows;
    Result<std::vector<uint32_t>> instances =
        ExpandFanout(job, t, options_.spec_options, &rows);
    if (!instances.ok()) {
      spdlog::info("coordinator: job {}: fan-out of {} failed: {}", job.record.id, name,
                   instances.status().message());
      job.Row(t).pending_reason.clear();  // it waits no more
      FailUndispatched(job, t, FailureReason::kMissingInput,
                       "fan-out: " + instances.status().message());
      continue;
    }
    // The placeholder's row goes and the instances' rows come, in this
    // turn's transaction.
    Check(store_->ExpandTask(job.record, name, rows), "store a fan-out");
    spdlog::info("coordinator: job {}: {} expanded to {} instances", job.record.id, name,
                 instances->size());
    for (uint32_t i : *instances) {
      if (job.plan->state(i) == dag::TaskState::kSucceeded) EmitTask(job, i, nullptr);
    }
  }
  job.fanouts = std::move(waiting);
}

void Coordinator::Loop::QueueDispatch(WorkerConn& w, wire::Dispatch* body) {
  if (w.max_batch <= 1) {
    Message m = protocol::Make(Command::kDispatch, *body);
    m.routing_id = w.rid;
    return Queue(std::move(m));
  }
  // A batch stays far below the 4 MiB body limit: a task's payload may be
  // big (its args), and one that is sends its batch ahead of it.
  constexpr size_t kBatchBytes = 1 << 20;
  const size_t bytes = body->ByteSizeLong();
  if (w.batch &&
      (w.batch->more_size() + 1u >= w.max_batch || w.batch_bytes + bytes > kBatchBytes)) {
    Message m = protocol::Make(Command::kDispatch, *w.batch);
    m.routing_id = w.rid;
    Queue(std::move(m));
    w.batch = nullptr;
  }
  if (!w.batch) {
    if (!w.in_batched) batched_.push_back(&w);
    w.in_batched = true;
    w.batch = body;
    w.batch_bytes = bytes;
  } else {
    w.batch->mutable_more()->AddAllocated(body);  // same arena: no copy
    w.batch_bytes += bytes + 8;  // the entry's tag and length
  }
}

void Coordinator::Loop::FlushDispatches() {
  for (WorkerConn* w : batched_) {
    w->in_batched = false;
    if (!w->batch) continue;
    Message m = protocol::Make(Command::kDispatch, *w->batch);
    m.routing_id = w->rid;
    Queue(std::move(m));
    w->batch = nullptr;
    w->batch_bytes = 0;
  }
  batched_.clear();
  // Every body of this turn is serialized (or queued singly above).
  dispatch_arena_.arena.Reset();
}

std::string Coordinator::Loop::PendingReason(const Placement& p) const {
  const std::string& b = p.backend;
  std::vector<const WorkerConn*> offering;
  size_t draining = 0;
  for (const auto& [rid, w] : workers_) {
    auto s = w.slots.find(b);
    if (s == w.slots.end() || s->second == 0) continue;
    if (w.draining) {
      ++draining;
      continue;
    }
    offering.push_back(&w);
  }
  if (offering.empty()) {
    std::string why = "no live worker offers backend " + b;
    if (draining) why += " (" + std::to_string(draining) + " draining)";
    return why;
  }
  std::vector<const WorkerConn*> matching;
  for (const WorkerConn* w : offering) {
    if (HasLabels(w->labels, p.on)) matching.push_back(w);
  }
  if (matching.empty()) {
    // Name the first label nobody has; if each exists somewhere, the
    // combination is what is missing.
    for (const auto& label : p.on) {
      const std::string& k = label.first;
      const std::string& v = label.second;
      // (a lambda cannot capture a structured binding in clang 14)
      const bool somewhere = std::any_of(offering.begin(), offering.end(), [&](auto* w) {
        auto it = w->labels.find(k);
        return it != w->labels.end() && it->second == v;
      });
      if (!somewhere)
        return "no worker with label " + k + "=" + v + " offers backend " + b;
    }
    std::string all;
    for (const auto& [k, v] : p.on) all += (all.empty() ? "" : ",") + k + "=" + v;
    return "no worker with all of the labels " + all + " offers backend " + b;
  }
  if (!p.worker_services.empty()) {
    std::vector<const WorkerConn*> serving;
    for (const WorkerConn* w : matching) {
      if (HasServices(w->services, p.worker_services)) serving.push_back(w);
    }
    if (serving.empty()) {
      // Name the first service none of them offers; if each is offered
      // somewhere, no one worker offers them all.
      const std::string where = p.on.empty() ? "" : " with the labels it needs";
      for (const std::string& name : p.worker_services) {
        const bool somewhere =
            std::any_of(matching.begin(), matching.end(),
                        [&](auto* w) { return w->services.count(name) > 0; });
        if (!somewhere) {
          return "no live worker" + where + " offers service '" + name + "'";
        }
      }
      std::string all;
      for (const std::string& name : p.worker_services) {
        all += (all.empty() ? "'" : ", '") + name + "'";
      }
      return "no live worker" + where + " offers all of the services " + all;
    }
    matching = std::move(serving);
  }
  if (!p.worker_pool.empty()) {
    std::vector<const WorkerConn*> pooled;
    for (const WorkerConn* w : matching) {
      if (w->pools.count(p.worker_pool) > 0) pooled.push_back(w);
    }
    if (pooled.empty()) {
      return "no live worker" +
             std::string(p.on.empty() ? "" : " with the labels it needs") +
             " offers pool '" + p.worker_pool +
             "' (the job does not declare it: it must come from a worker's "
             "configuration)";
    }
    matching = std::move(pooled);
  }
  uint32_t largest = 0;
  for (const WorkerConn* w : matching) largest = std::max(largest, w->slots.at(b));
  if (largest < p.slots) {
    return "needs " + std::to_string(p.slots) + " " + b + " slots, largest worker has " +
           std::to_string(largest);
  }
  return p.slots == 1 ? "waiting for a free " + b + " slot"
                      : "waiting for " + std::to_string(p.slots) + " free " + b +
                            " slots on one worker";
}

void Coordinator::Loop::Dispatch(Job& job, uint32_t t, WorkerConn& w) {
  const spec::TaskSpec* spec_of = &job.spec.tasks[t];
  // A task that refers to upstream outputs is rendered now, when they are
  // known (core/coordinator/upstream_outputs.h).
  spec::TaskSpec rendered;
  if (spec_of->deferred) {
    rendered = *spec_of;
    if (Status s = RenderUpstreamOutputs(job, t, &rendered); !s.ok()) {
      return FailUndispatched(job, t, FailureReason::kMissingInput, s.message());
    }
    spec_of = &rendered;
  }
  const spec::TaskSpec& ts = *spec_of;
  const Placement& p = job.queues[job.plan->queue(t)];
  job.plan->Start(t);
  const uint64_t id = next_attempt_id_++;
  const uint32_t number =
      job.attempt_base[t] + static_cast<uint32_t>(job.plan->attempts(t));
  const int64_t now_ms = WallMillis(clock_);

  store::AttemptRecord rec;
  rec.id = id;
  rec.job_id = job.record.id;
  rec.task = ts.name;
  rec.number = number;
  rec.worker = w.name;
  rec.started_ms = now_ms;
  rec.task_index = t;
  Check(store_->InsertAttempt(rec), "insert attempt");

  // The attempt, in the store's dispatch log, is the durable record that
  // the task runs: the task's row and the attempt's are written when the
  // attempt ends (Store::Tasks reads them together; docs/state.md).
  store::TaskRecord& row = job.Row(t, &ts.name);
  row.fingerprint = ts.fingerprint;
  row.state = dag::TaskStateName(dag::TaskState::kRunning);
  row.attempts = number;
  row.worker = w.name;
  row.pending_reason.clear();
  if (row.started_ms == 0) row.started_ms = now_ms;

  AttemptRef& ref = attempts_[id];
  ref = AttemptRef{&job, t, number, w.rid, ts.backend, p.slots, w.name};
  w.attempts.insert(id);
  uint32_t& used = w.used[ts.backend];
  // Beyond its own slots (prefetch) it waits in the worker; a worker that
  // reports starts tells when it leaves (HandleHeartbeat). Within them it
  // starts at once: the worker's slots in use are never more than ours.
  ref.waiting = w.reports_starts && used + p.slots > w.slots[ts.backend];
  used += p.slots;
  Refile(w);
  job.current[t] = id;
  stats_.dispatched.fetch_add(1, std::memory_order_relaxed);
  metrics_.RecordDispatch(ts.backend);

  auto* body =
      google::protobuf::Arena::CreateMessage<wire::Dispatch>(&dispatch_arena_.arena);
  DispatchToWire(job.spec, job.record.id, ts, id, number, body);
  body->set_slots(p.slots);
  AddArtifacts(job, ts, body);
  QueueDispatch(w, body);
  EmitStarted(job, t, w.name);
}

void Coordinator::Loop::FailUndispatched(Job& job, uint32_t t, FailureReason reason,
                                         std::string message) {
  const spec::TaskSpec& ts = job.spec.tasks[t];
  const Placement& p = job.queues[job.plan->queue(t)];
  job.plan->Start(t);
  const uint64_t id = next_attempt_id_++;
  const uint32_t number =
      job.attempt_base[t] + static_cast<uint32_t>(job.plan->attempts(t));
  // An attempt with no worker, so that history and `drover status` show why.
  store::AttemptRecord rec;
  rec.id = id;
  rec.job_id = job.record.id;
  rec.task = ts.name;
  rec.number = number;
  rec.started_ms = WallMillis(clock_);
  rec.task_index = t;
  Check(store_->InsertAttempt(rec), "insert attempt");
  store::TaskRecord& row = job.Row(t);
  row.fingerprint = ts.fingerprint;
  row.attempts = number;
  if (row.started_ms == 0) row.started_ms = rec.started_ms;
  attempts_[id] = AttemptRef{&job, t, number, "", ts.backend, p.slots, ""};
  job.current[t] = id;
  AttemptOutcome outcome;
  outcome.reason = reason;
  outcome.message = std::move(message);
  Finish(id, outcome, "", nullptr);
}

}  // namespace drover

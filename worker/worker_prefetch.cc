// The worker's prefetch (docs/protocol.md, "Prefetch"): an attempt
// dispatched beyond its backend's slots waits here, in dispatch order, and
// starts the moment a slot frees, after the coordinator is told
// (Heartbeat.started); a CANCEL, a recall, a drain or a stop ends one that
// still waits, unstarted.
#include <algorithm>
#include <deque>
#include <vector>

#include "core/protocol/codec.h"
#include "worker/worker_loop.h"

namespace drover {

using protocol::Command;

void Worker::Loop::HandleOneDispatch(wire::Dispatch& d) {
  const uint64_t id = d.attempt_id();
  if (running_.count(id) || waiting_ids_.count(id)) return;  // a duplicate
  if (unacked_.count(id)) {
    Send(unacked_[id]);  // already done: the result went astray
    return;
  }
  // Beyond the backend's slots (prefetch): it waits for one to free. One
  // that needs more slots than the backend has starts when it runs alone.
  if (auto b = backlog_.find(d.backend()); b != backlog_.end() && !draining_) {
    Backlog& q = b->second;
    const uint32_t need = std::max<uint32_t>(1, d.slots());
    if (!q.waiting.empty() || (q.used > 0 && q.used + need > q.capacity)) {
      waiting_ids_.insert(id);
      q.waiting.push_back(std::move(d));
      return;
    }
  }
  StartDispatch(d);
}

void Worker::Loop::StartWaiting() {
  std::vector<wire::Dispatch> starting = TakeStartable();
  if (starting.empty()) return;
  ReportStarts();
  for (wire::Dispatch& d : starting) StartDispatch(d);
}

std::vector<wire::Dispatch> Worker::Loop::TakeStartable() {
  std::vector<wire::Dispatch> starting;
  if (waiting_ids_.empty()) return starting;
  for (auto& [backend, q] : backlog_) {
    // What fits, in dispatch order: the slots are taken by StartDispatch,
    // so they are counted here.
    uint32_t used = q.used;
    while (!q.waiting.empty()) {
      const uint32_t need = std::max<uint32_t>(1, q.waiting.front().slots());
      if (used > 0 && used + need > q.capacity) break;
      used += need;
      starting.push_back(std::move(q.waiting.front()));
      q.waiting.pop_front();
      waiting_ids_.erase(starting.back().attempt_id());
    }
  }
  // The coordinator hears of the starts before they happen (Hello.
  // reports_starts): if this worker dies, the attempts it had not started
  // cost their tasks no retry. Unregistered, they go after the WELCOME.
  for (const wire::Dispatch& d : starting) starts_unreported_.push_back(d.attempt_id());
  return starting;
}

void Worker::Loop::ReportStarts() {
  if (!registered_ || starts_unreported_.empty()) return;
  wire::Heartbeat hb;
  for (uint64_t id : starts_unreported_) hb.add_started(id);
  starts_unreported_.clear();
  Send(protocol::Make(Command::kHeartbeat, hb));
}

void Worker::Loop::EndWaiting(FailureReason reason, const std::string& message) {
  if (waiting_ids_.empty()) return;
  for (auto& [backend, q] : backlog_) {
    std::deque<wire::Dispatch> waiting = std::move(q.waiting);
    q.waiting.clear();
    for (const wire::Dispatch& d : waiting) {
      waiting_ids_.erase(d.attempt_id());
      AttemptOutcome o;
      o.reason = reason;
      o.message = message;
      o.not_started = true;  // handed back: it does not spend a retry
      metrics_->AttemptStarted(backend);
      running_[d.attempt_id()] = Running{backend, {}, {}};
      Complete(d.attempt_id(), std::move(o));
    }
  }
}

bool Worker::Loop::EndOneWaiting(uint64_t id, std::optional<AttemptOutcome> outcome) {
  if (!waiting_ids_.erase(id)) return false;
  for (auto& [backend, q] : backlog_) {
    auto it = std::find_if(q.waiting.begin(), q.waiting.end(),
                           [&](const wire::Dispatch& d) { return d.attempt_id() == id; });
    if (it == q.waiting.end()) continue;
    q.waiting.erase(it);
    if (outcome) {
      metrics_->AttemptStarted(backend);
      running_[id] = Running{backend, {}, {}};
      Complete(id, std::move(*outcome));
    }
    return true;
  }
  return true;
}

}  // namespace drover

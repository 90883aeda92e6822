// Coordinator::Loop::MetricsText: the gauges of a `/metrics` scrape,
// computed from the loop's state on the loop's thread, rendered with the
// counters of metrics_ (metrics.h).
#include "core/coordinator/loop.h"

namespace drover {
namespace {

// "spawn", "spawn on zone=b", "spawn, 2 slots", "cluster with service db".
std::string DescribeClass(const Placement& p) {
  std::string out = p.backend;
  if (!p.on.empty()) {
    out += " on ";
    for (size_t i = 0; i < p.on.size(); ++i) {
      if (i) out += ',';
      out += p.on[i].first + "=" + p.on[i].second;
    }
  }
  if (p.slots > 1) out += ", " + std::to_string(p.slots) + " slots";
  for (const auto& s : p.worker_services) out += ", service " + s;
  if (!p.worker_pool.empty()) out += ", pool " + p.worker_pool;
  return out;
}

// `drover gc` runs in a process of its own and removes blobs this loop
// does not see go: a scrape counts the store again when its count is older.
constexpr auto kBlobRecount = std::chrono::minutes(1);

}  // namespace

std::string Coordinator::Loop::MetricsText() {
  MetricsGauges g;
  g.jobs_running = order_.size();
  for (const Job* job : order_) {
    const dag::Plan& plan = *job->plan;
    for (uint32_t t = 0; t < plan.size(); ++t) {
      const dag::TaskState s = plan.state(t);
      ++g.tasks[{std::string(dag::TaskStateName(s)), job->spec.tasks.Shared(t).backend}];
      if (s == dag::TaskState::kReady) {
        const Placement& p = job->queues[plan.queue(t)];
        ++g.ready[{p.backend, DescribeClass(p)}];
      }
    }
  }
  const SteadyTime now = clock_.Now();
  for (const char* state : {"ready", "draining", "drained", "lost"}) g.workers[state] = 0;
  for (const auto& [rid, w] : workers_) {
    ++g.workers[w.draining ? "draining" : "ready"];
    if (!w.draining) {
      for (const auto& [backend, n] : w.slots) {
        auto& s = g.slots[backend];
        s.first += n;
        auto used = w.used.find(backend);
        s.second += used == w.used.end() ? 0 : used->second;
      }
    }
    const auto silent = now - w.last_seen;
    g.heartbeats_missed[w.name] = w.heartbeat.count() > 0 && silent > w.heartbeat
                                      ? static_cast<uint64_t>(silent / w.heartbeat)
                                      : 0;
  }
  for (const Departed& d : departed_) ++g.workers[d.info.state()];
  for (const auto& [rid, q] : peer_queues_) g.bytes_queued += q.Queued();
  g.peers_dropped = stats_.peers_dropped.load(std::memory_order_relaxed);
  g.rejected["malformed"] = stats_.malformed.load(std::memory_order_relaxed);
  g.rejected["unauthorized"] = stats_.unauthorized.load(std::memory_order_relaxed);
  g.rejected["dropped_peer"] = stats_.ignored.load(std::memory_order_relaxed);
  g.rejected["stale_result"] = stats_.stale_results.load(std::memory_order_relaxed);
  g.log_lines_suppressed = stats_.log_lines_suppressed.load(std::memory_order_relaxed);
  if (blobs_) {
    if (now - blob_counted_ >= kBlobRecount) {
      blob_usage_ = blobs_->Scan();
      blob_counted_ = now;
    }
    g.artifact_blobs = blob_usage_.blobs;
    g.artifact_bytes = blob_usage_.bytes;
  }
  return RenderPrometheus(metrics_, g);
}

}  // namespace drover

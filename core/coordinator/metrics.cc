#include "core/coordinator/metrics.h"

namespace drover {

std::vector<double> CommitLatencyBounds() {
  return {0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5};
}

void CoordinatorMetrics::RecordDispatch(const std::string& backend) {
  ++dispatches[backend];
}

void CoordinatorMetrics::RecordResult(const std::string& backend,
                                      const std::string& reason, double seconds) {
  ++results[{backend, reason}];
  auto it = attempt_seconds.find(backend);
  if (it == attempt_seconds.end()) {
    it = attempt_seconds.emplace(backend, Histogram(AttemptDurationBounds())).first;
  }
  it->second.Observe(seconds);
}

std::string RenderPrometheus(const CoordinatorMetrics& m, const MetricsGauges& g) {
  PrometheusText w;
  w.Family("drover_jobs_running", "gauge", "Jobs the coordinator is running.");
  w.Sample("drover_jobs_running", {}, static_cast<double>(g.jobs_running));

  w.Family("drover_tasks", "gauge",
           "Task instances of running jobs by state and backend.");
  for (const auto& [key, n] : g.tasks) {
    w.Sample("drover_tasks", {{"state", key.first}, {"backend", key.second}},
             static_cast<double>(n));
  }

  w.Family("drover_ready_queue_depth", "gauge",
           "Ready tasks waiting for a worker, by placement class.");
  for (const auto& [key, n] : g.ready) {
    w.Sample("drover_ready_queue_depth", {{"backend", key.first}, {"class", key.second}},
             static_cast<double>(n));
  }

  w.Family("drover_dispatches_total", "counter", "Attempts dispatched to workers.");
  for (const auto& [backend, n] : m.dispatches) {
    w.Sample("drover_dispatches_total", {{"backend", backend}}, static_cast<double>(n));
  }

  w.Family("drover_cache_lookups_total", "counter",
           "Cache lookups of tasks with cache: true, by result (hit: not run).");
  for (const char* result : {"hit", "miss"}) {
    auto it = m.cache_lookups.find(result);
    w.Sample("drover_cache_lookups_total", {{"result", result}},
             static_cast<double>(it == m.cache_lookups.end() ? 0 : it->second));
  }

  w.Family("drover_results_total", "counter",
           "Attempt outcomes recorded, by backend and reason (ok, exit, signal, timeout, "
           "...).");
  for (const auto& [key, n] : m.results) {
    w.Sample("drover_results_total", {{"backend", key.first}, {"reason", key.second}},
             static_cast<double>(n));
  }

  w.Family("drover_attempt_duration_seconds", "histogram",
           "Wall time of finished attempts, as their workers measured it, by backend.");
  for (const auto& [backend, h] : m.attempt_seconds) {
    w.Histo("drover_attempt_duration_seconds", {{"backend", backend}}, h);
  }

  w.Family("drover_store_commit_duration_seconds", "histogram",
           "Time of one loop turn's state store commit.");
  w.Histo("drover_store_commit_duration_seconds", {}, m.commit_seconds);
  w.Family("drover_store_commit_failures_total", "counter",
           "Store commits that failed (their turn was not acknowledged).");
  w.Sample("drover_store_commit_failures_total", {},
           static_cast<double>(m.commit_failures));
  w.Family("drover_loop_turns_held_total", "counter",
           "Loop turns held after a message woke them, to gather more results while "
           "every worker holding attempts had more waiting for its slots.");
  w.Sample("drover_loop_turns_held_total", {}, static_cast<double>(m.turns_held));
  w.Family("drover_loop_turn_hold_seconds_total", "counter",
           "Time those turns were held, in all.");
  w.Sample("drover_loop_turn_hold_seconds_total", {}, m.turn_hold_seconds);

  w.Family(
      "drover_workers", "gauge",
      "Workers by state: registered (ready, draining) and left in the last 5 minutes "
      "(drained, lost).");
  for (const auto& [state, n] : g.workers) {
    w.Sample("drover_workers", {{"state", state}}, static_cast<double>(n));
  }
  w.Family("drover_worker_slots", "gauge",
           "Slots of registered workers that take work, by backend (total).");
  for (const auto& [backend, s] : g.slots) {
    w.Sample("drover_worker_slots", {{"backend", backend}}, static_cast<double>(s.first));
  }
  w.Family("drover_worker_slots_used", "gauge",
           "Slots held by running attempts, by backend.");
  for (const auto& [backend, s] : g.slots) {
    w.Sample("drover_worker_slots_used", {{"backend", backend}},
             static_cast<double>(s.second));
  }
  w.Family("drover_worker_heartbeats_missed", "gauge",
           "Whole heartbeat intervals since a registered worker was last heard from.");
  for (const auto& [name, n] : g.heartbeats_missed) {
    w.Sample("drover_worker_heartbeats_missed", {{"worker", name}},
             static_cast<double>(n));
  }
  w.Family(
      "drover_workers_lost_total", "counter",
      "Workers declared lost, by cause: heartbeat (silent past liveness), unread (over "
      "its send budget).");
  for (const char* cause : {"heartbeat", "unread"}) {
    auto it = m.workers_lost.find(cause);
    w.Sample("drover_workers_lost_total", {{"cause", cause}},
             static_cast<double>(it == m.workers_lost.end() ? 0 : it->second));
  }

  w.Family("drover_messages_rejected_total", "counter",
           "Messages dropped or ignored, by reason: malformed, unauthorized (outside the "
           "key's role), dropped_peer (from a peer over its budget), stale_result.");
  for (const auto& [reason, n] : g.rejected) {
    w.Sample("drover_messages_rejected_total", {{"reason", reason}},
             static_cast<double>(n));
  }
  w.Family("drover_log_lines_suppressed_total", "counter",
           "Log lines about peers not written by the per-peer rate limit.");
  w.Sample("drover_log_lines_suppressed_total", {},
           static_cast<double>(g.log_lines_suppressed));

  w.Family("drover_artifact_store_bytes", "gauge",
           "Bytes of the blobs in the coordinator's artifact store.");
  w.Sample("drover_artifact_store_bytes", {}, static_cast<double>(g.artifact_bytes));
  w.Family("drover_artifact_store_blobs", "gauge",
           "Blobs (distinct contents) in the coordinator's artifact store.");
  w.Sample("drover_artifact_store_blobs", {}, static_cast<double>(g.artifact_blobs));

  w.Family("drover_peer_queued_bytes", "gauge",
           "Bytes queued to peers in ZeroMQ that they have not read yet.");
  w.Sample("drover_peer_queued_bytes", {}, static_cast<double>(g.bytes_queued));
  w.Family("drover_peers_dropped_total", "counter",
           "Peers dropped for passing their send budget.");
  w.Sample("drover_peers_dropped_total", {}, static_cast<double>(g.peers_dropped));
  return w.Take();
}

}  // namespace drover

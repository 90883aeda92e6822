// CoordinatorMetrics: what the coordinator counts for `/metrics`
// (docs/operations.md, "Watching drover"), as plain data.
//
// The loop owns one instance and updates it on its own thread (a dispatch,
// a result, a commit); nothing here is thread-safe and nothing needs to
// be: the HTTP front end reads the metrics as text, rendered by the loop
// in answer to a STATUS with `metrics` (docs/protocol.md), so no state is
// shared across threads. Gauges (tasks by state, queue depths, workers)
// are not kept up to date turn by turn: the loop computes a MetricsGauges
// when it is asked, which costs O(tasks of running jobs + workers).
//
// RenderPrometheus writes the text exposition format 0.0.4
// (core/base/prometheus.h) with names and
// labels after the Prometheus conventions: the `drover_` prefix, `_total`
// on counters, base units in the name (`_seconds`, `_bytes`).
#ifndef DROVER_CORE_COORDINATOR_METRICS_H_
#define DROVER_CORE_COORDINATOR_METRICS_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/base/prometheus.h"

namespace drover {

// A store commit takes from tens of microseconds to seconds on a full disk.
std::vector<double> CommitLatencyBounds();

// Counters the loop increments. Labels are kept as strings because they
// only leave as text; their sets are small (backends, reasons).
struct CoordinatorMetrics {
  std::map<std::string, uint64_t> dispatches;  // by backend
  // Attempts whose outcome was recorded, by (backend, reason name).
  std::map<std::pair<std::string, std::string>, uint64_t> results;
  std::map<std::string, Histogram> attempt_seconds;  // by backend
  Histogram commit_seconds{CommitLatencyBounds()};
  uint64_t commit_failures = 0;
  // Turns held to gather more results (turn_hold.h), and their time.
  uint64_t turns_held = 0;
  double turn_hold_seconds = 0;
  // Workers declared lost, by cause: "heartbeat" (silent past liveness) or
  // "unread" (over its send budget).
  std::map<std::string, uint64_t> workers_lost;
  // Cache lookups of `cache: true` tasks, by result: "hit" or "miss".
  std::map<std::string, uint64_t> cache_lookups;

  void RecordDispatch(const std::string& backend);
  void RecordResult(const std::string& backend, const std::string& reason,
                    double seconds);
};

// What the loop computes at a snapshot, plus its CoordinatorStats read at
// that moment (the rejected-message counters live there already).
struct MetricsGauges {
  // Tasks of the jobs in memory (running jobs), by (state, backend).
  std::map<std::pair<std::string, std::string>, uint64_t> tasks;
  // Ready tasks by placement class, the class written as its backend and a
  // readable description ("spawn", "spawn on zone=b, 2 slots").
  std::map<std::pair<std::string, std::string>, uint64_t> ready;
  std::map<std::string, uint64_t> workers;  // by state: ready, draining, lost, drained
  // Slots of registered, non-draining workers by backend: (total, used).
  std::map<std::string, std::pair<uint64_t, uint64_t>> slots;
  // Per registered worker: whole heartbeat intervals since it was last
  // heard from (0 for a worker that is on time).
  std::map<std::string, uint64_t> heartbeats_missed;
  uint64_t jobs_running = 0;
  int64_t bytes_queued = 0;  // to all peers, in ZeroMQ's queues
  uint64_t peers_dropped = 0;
  // Messages rejected, by reason: malformed, unauthorized, dropped-peer,
  // stale-result.
  std::map<std::string, uint64_t> rejected;
  uint64_t log_lines_suppressed = 0;
  // The artifact store (STATE/artifacts): blobs and their bytes.
  uint64_t artifact_blobs = 0;
  uint64_t artifact_bytes = 0;
};

// The text exposition of `m` and `g`, every family with HELP and TYPE.
std::string RenderPrometheus(const CoordinatorMetrics& m, const MetricsGauges& g);

}  // namespace drover

#endif  // DROVER_CORE_COORDINATOR_METRICS_H_

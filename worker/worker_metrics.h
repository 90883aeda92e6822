// WorkerMetrics: what a worker counts for `drover worker --metrics ADDR`
// (docs/operations.md, "Watching drover"): its slots and how many are
// busy, attempts run by outcome, their durations, whether it is
// registered with a coordinator, and the size of its spool.
//
// Thread-safe: the worker's loop records attempts on its thread, an HTTP
// request thread renders the text; one mutex guards the counters. The
// spool is measured at each render, by walking it (O(files in the spool)),
// on the rendering thread.
#ifndef DROVER_WORKER_WORKER_METRICS_H_
#define DROVER_WORKER_WORKER_METRICS_H_

#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "core/base/clock.h"
#include "core/base/prometheus.h"

namespace drover {

class WorkerMetrics {
 public:
  // `slots`: per backend, as the worker offers them (WorkerOptions::slots).
  // `spool`: the worker's spool directory; its artifact cache is
  // SPOOL/cache (worker/artifact_transfers.h).
  WorkerMetrics(std::map<std::string, int> slots, std::filesystem::path spool);

  // An attempt was dispatched to this worker: it holds a slot of `backend`
  // until AttemptEnded.
  void AttemptStarted(const std::string& backend);
  // It ended with `reason` (ReasonName: "ok", "exit", ...) after `wall`.
  void AttemptEnded(const std::string& backend, std::string_view reason, Duration wall);
  // Registered with a coordinator (WELCOME) or not (lost, reconnecting).
  void SetRegistered(bool registered);

  // The text exposition of every family, with HELP and TYPE.
  std::string Render() const;

 private:
  const std::map<std::string, int> slots_;
  const std::filesystem::path spool_;
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> busy_;  // by backend; GUARDED_BY(mu_)
  // Attempts ended, by (backend, reason); GUARDED_BY(mu_).
  std::map<std::pair<std::string, std::string>, uint64_t> attempts_;
  std::map<std::string, Histogram> seconds_;  // by backend; GUARDED_BY(mu_)
  bool registered_ = false;                   // GUARDED_BY(mu_)
};

}  // namespace drover

#endif  // DROVER_WORKER_WORKER_METRICS_H_

#include "worker/worker_metrics.h"

#include "core/artifacts/blob_store.h"

namespace drover {

WorkerMetrics::WorkerMetrics(std::map<std::string, int> slots,
                             std::filesystem::path spool)
    : slots_(std::move(slots)), spool_(std::move(spool)) {}

void WorkerMetrics::AttemptStarted(const std::string& backend) {
  std::lock_guard<std::mutex> lock(mu_);
  ++busy_[backend];
}

void WorkerMetrics::AttemptEnded(const std::string& backend, std::string_view reason,
                                 Duration wall) {
  std::lock_guard<std::mutex> lock(mu_);
  auto busy = busy_.find(backend);
  if (busy != busy_.end() && busy->second > 0) --busy->second;
  ++attempts_[{backend, std::string(reason)}];
  auto it = seconds_.find(backend);
  if (it == seconds_.end()) {
    it = seconds_.emplace(backend, Histogram(AttemptDurationBounds())).first;
  }
  it->second.Observe(std::chrono::duration<double>(wall).count());
}

void WorkerMetrics::SetRegistered(bool registered) {
  std::lock_guard<std::mutex> lock(mu_);
  registered_ = registered;
}

std::string WorkerMetrics::Render() const {
  // The walks first, outside the lock: the loop may record meanwhile.
  const artifacts::BlobStore::Usage spool = artifacts::BlobStore::CountFiles(spool_);
  const artifacts::BlobStore::Usage cache =
      artifacts::BlobStore::CountFiles(spool_ / "cache" / "sha256");

  std::lock_guard<std::mutex> lock(mu_);
  PrometheusText w;
  w.Family(
      "drover_worker_registered", "gauge",
      "1 while the worker is registered with a coordinator, 0 while it (re)connects.");
  w.Sample("drover_worker_registered", {}, registered_ ? 1 : 0);

  w.Family("drover_worker_slots", "gauge", "Slots this worker offers, by backend.");
  for (const auto& [backend, n] : slots_) {
    w.Sample("drover_worker_slots", {{"backend", backend}}, n);
  }
  w.Family("drover_worker_slots_used", "gauge",
           "Slots held by attempts dispatched to this worker and not yet ended, by "
           "backend.");
  for (const auto& [backend, n] : slots_) {
    auto it = busy_.find(backend);
    w.Sample("drover_worker_slots_used", {{"backend", backend}},
             static_cast<double>(it == busy_.end() ? 0 : it->second));
  }

  w.Family("drover_worker_attempts_total", "counter",
           "Attempts this worker ran to an end, by backend and reason (ok, exit, signal, "
           "timeout, ...).");
  for (const auto& [key, n] : attempts_) {
    w.Sample("drover_worker_attempts_total",
             {{"backend", key.first}, {"reason", key.second}}, static_cast<double>(n));
  }
  w.Family("drover_worker_attempt_duration_seconds", "histogram",
           "Wall time of the attempts this worker ran, by backend.");
  for (const auto& [backend, h] : seconds_) {
    w.Histo("drover_worker_attempt_duration_seconds", {{"backend", backend}}, h);
  }

  w.Family("drover_worker_spool_bytes", "gauge",
           "Bytes of the files in the worker's spool directory (captured output, staged "
           "inputs, the artifact cache).");
  w.Sample("drover_worker_spool_bytes", {}, static_cast<double>(spool.bytes));
  w.Family("drover_worker_artifact_cache_bytes", "gauge",
           "Bytes of the blobs in the worker's artifact cache (SPOOL/cache).");
  w.Sample("drover_worker_artifact_cache_bytes", {}, static_cast<double>(cache.bytes));
  w.Family("drover_worker_artifact_cache_blobs", "gauge",
           "Blobs in the worker's artifact cache (SPOOL/cache).");
  w.Sample("drover_worker_artifact_cache_blobs", {}, static_cast<double>(cache.blobs));
  return w.Take();
}

}  // namespace drover

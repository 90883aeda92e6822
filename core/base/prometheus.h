// The Prometheus text exposition format 0.0.4, shared by the coordinator's
// /metrics (core/coordinator/metrics.h) and the worker's (`drover worker
// --metrics`, worker/worker_metrics.h): a histogram and a writer that
// emits families with HELP and TYPE and escapes label values.
//
// Plain data; not thread-safe (each owner guards its own).
#ifndef DROVER_CORE_BASE_PROMETHEUS_H_
#define DROVER_CORE_BASE_PROMETHEUS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace drover {

// A cumulative histogram over fixed upper bounds (seconds), as Prometheus
// exports it: a count per bucket, +Inf implied, a sum and a count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  // Adds one observation; a negative or NaN value counts as 0.
  void Observe(double value);
  const std::vector<double>& bounds() const { return bounds_; }
  // Observations <= bounds()[i] (cumulative), for i < bounds().size().
  uint64_t CumulativeCount(size_t i) const;
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> bounds_;    // ascending
  std::vector<uint64_t> counts_;  // per bucket, not cumulative
  uint64_t count_ = 0;
  double sum_ = 0;
};

// Attempts last from milliseconds (threads) to hours (spawn). The
// coordinator and the worker use the same buckets, so their histograms
// can be compared.
std::vector<double> AttemptDurationBounds();

// Builds an exposition. Call Family once per metric name, then its Samples.
class PrometheusText {
 public:
  using Labels = std::vector<std::pair<const char*, std::string>>;

  // `type`: counter, gauge or histogram. `help` is one line.
  void Family(const char* name, const char* type, const char* help);
  // One sample; label values are escaped (\ " and newline).
  void Sample(const std::string& name, const Labels& labels, double value);
  // A histogram's _bucket (with `le`), _sum and _count samples.
  void Histo(const std::string& name, Labels labels, const Histogram& h);
  // The text so far; the writer is empty afterwards.
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace drover

#endif  // DROVER_CORE_BASE_PROMETHEUS_H_

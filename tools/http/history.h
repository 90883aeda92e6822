// History: the last minutes of the coordinator's throughput and queue
// depth, for the dashboard's charts. The HTTP front end samples the
// coordinator's metrics text every few seconds and keeps the samples here;
// plain data, not thread-safe (the server guards it with its mutex).
#ifndef DROVER_TOOLS_HTTP_HISTORY_H_
#define DROVER_TOOLS_HTTP_HISTORY_H_

#include <cstdint>
#include <deque>
#include <nlohmann/json.hpp>
#include <string_view>

namespace drover::http {

// The sum of every sample of metric family `name` in a Prometheus text
// exposition (all label sets), 0 when absent; `state` non-empty keeps only
// samples with the label state="<state>".
double SumMetric(std::string_view text, std::string_view name,
                 std::string_view state = {});

struct Sample {
  int64_t unix_ms = 0;
  double results_total = 0;     // drover_results_total
  double dispatches_total = 0;  // drover_dispatches_total
  double ready = 0;             // drover_ready_queue_depth
  double running = 0;           // drover_tasks{state="running"}
  double workers = 0;           // drover_workers{state="ready"}
};
Sample SampleOf(std::string_view metrics_text, int64_t unix_ms);

class History {
 public:
  explicit History(size_t capacity) : capacity_(capacity) {}
  void Add(const Sample& s);
  // [{t, results_per_s, dispatches_per_s, ready, running, workers}], oldest
  // first; rates between consecutive samples (0 for the first, and after a
  // counter went down: the coordinator restarted).
  nlohmann::json Json() const;
  // The newest point alone, as Json() writes it; null when empty.
  nlohmann::json LastJson() const;

 private:
  nlohmann::json Point(size_t i) const;
  size_t capacity_;
  std::deque<Sample> samples_;
};

}  // namespace drover::http

#endif  // DROVER_TOOLS_HTTP_HISTORY_H_

#include "tools/http/history.h"

#include <cstdlib>
#include <string>

namespace drover::http {

double SumMetric(std::string_view text, std::string_view name, std::string_view state) {
  double sum = 0;
  const std::string state_label =
      state.empty() ? "" : "state=\"" + std::string(state) + "\"";
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty() || line.front() == '#' || line.substr(0, name.size()) != name)
      continue;
    const std::string_view rest = line.substr(name.size());
    if (rest.empty() || (rest.front() != '{' && rest.front() != ' ')) continue;
    if (!state_label.empty() && rest.find(state_label) == std::string_view::npos)
      continue;
    const size_t space = line.rfind(' ');
    if (space == std::string_view::npos) continue;
    sum += std::strtod(std::string(line.substr(space + 1)).c_str(), nullptr);
  }
  return sum;
}

Sample SampleOf(std::string_view text, int64_t unix_ms) {
  Sample s;
  s.unix_ms = unix_ms;
  s.results_total = SumMetric(text, "drover_results_total");
  s.dispatches_total = SumMetric(text, "drover_dispatches_total");
  s.ready = SumMetric(text, "drover_ready_queue_depth");
  s.running = SumMetric(text, "drover_tasks", "running");
  s.workers = SumMetric(text, "drover_workers", "ready");
  return s;
}

void History::Add(const Sample& s) {
  samples_.push_back(s);
  while (samples_.size() > capacity_) samples_.pop_front();
}

nlohmann::json History::Point(size_t i) const {
  const Sample& s = samples_[i];
  double results = 0;
  double dispatches = 0;
  if (i > 0) {
    const Sample& p = samples_[i - 1];
    const double seconds = static_cast<double>(s.unix_ms - p.unix_ms) / 1000.0;
    if (seconds > 0 && s.results_total >= p.results_total &&
        s.dispatches_total >= p.dispatches_total) {
      results = (s.results_total - p.results_total) / seconds;
      dispatches = (s.dispatches_total - p.dispatches_total) / seconds;
    }
  }
  return {
      {"t", s.unix_ms},   {"results_per_s", results}, {"dispatches_per_s", dispatches},
      {"ready", s.ready}, {"running", s.running},     {"workers", s.workers}};
}

nlohmann::json History::Json() const {
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < samples_.size(); ++i) out.push_back(Point(i));
  return out;
}

nlohmann::json History::LastJson() const {
  return samples_.empty() ? nlohmann::json() : Point(samples_.size() - 1);
}

}  // namespace drover::http

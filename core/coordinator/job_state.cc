#include "core/coordinator/job_state.h"

namespace drover {

std::vector<uint32_t> InitJobState(
    JobState& job, const std::unordered_map<std::string, store::TaskRecord>& old_rows,
    uint64_t jitter_seed) {
  const uint32_t n = static_cast<uint32_t>(job.spec.tasks.size());
  std::vector<dag::PlanTask> plan_tasks(n);
  job.rows.resize(n);
  job.current.assign(n, 0);
  job.attempt_base.assign(n, 0);
  std::vector<uint32_t> carried;
  for (uint32_t i = 0; i < n; ++i) {
    const spec::TaskSpec& ts = job.spec.tasks[i];
    plan_tasks[i].needs = ts.needs;
    plan_tasks[i].retries = ts.retries;
    plan_tasks[i].backoff = ts.retry_backoff;
    plan_tasks[i].backoff_max = ts.retry_backoff_max;
    store::TaskRecord& row = job.rows[i];
    const uint64_t fp = ts.Fingerprint();
    auto old = old_rows.find(ts.name);
    if (old != old_rows.end()) job.attempt_base[i] = old->second.attempts;
    if (old != old_rows.end() && old->second.state == "succeeded" &&
        old->second.fingerprint == fp) {
      row = old->second;  // carried over: its result, attempts and logs stay
      carried.push_back(i);
    } else {
      row.state = "waiting";
      row.attempts = job.attempt_base[i];
    }
    row.job_id = job.record.id;
    row.index = i;
    row.name = ts.name;
    row.fingerprint = fp;
  }
  dag::PlanOptions plan_options;
  plan_options.fail_fast = job.spec.fail_fast;
  plan_options.jitter_seed = jitter_seed;
  job.plan = std::make_unique<dag::Plan>(std::move(plan_tasks), plan_options);
  for (uint32_t i : carried) job.plan->MarkSucceeded(i);
  return carried;
}

}  // namespace drover

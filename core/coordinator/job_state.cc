#include "core/coordinator/job_state.h"

#include <algorithm>
#include <optional>
#include <string_view>

#include "core/coordinator/fanout.h"
#include "core/coordinator/job_views.h"
#include "core/spec/dynamic_matrix.h"

namespace drover {
namespace {

// The plan's tasks of job.spec, with each task's queue: tasks with equal
// backend, labels, slots and worker services share one. Fills job.queues.
std::vector<dag::PlanTask> PlanTasks(JobState& job) {
  const uint32_t n = static_cast<uint32_t>(job.spec.tasks.size());
  std::vector<dag::PlanTask> plan_tasks(n);
  std::unordered_map<std::string, uint32_t> queue_of;
  job.queues.clear();
  std::string key;
  // Once per task as written: its instances share all of this.
  job.spec.tasks.ForEachShared([&](const spec::TaskSpec& ts, spec::TaskList::Span span) {
    // NUL separates the parts: names and labels never contain one.
    key.assign(ts.backend);
    key += '\0';
    key += std::to_string(ts.slots);
    for (const auto& [k, v] : ts.on) {
      key += '\0';
      key += k;
      key += '=';
      key += v;
    }
    // '\1' starts the worker services: no label holds one either.
    std::vector<std::string> worker_services = job.spec.WorkerServices(ts);
    for (const std::string& name : worker_services) {
      key += '\1';
      key += name;
    }
    // '\2' the pool of the workers' configuration, when the job does not
    // declare the task's pool.
    std::string worker_pool = ts.worker_pool;
    if (!worker_pool.empty()) {
      key += '\2';
      key += worker_pool;
    }
    auto [it, added] = queue_of.emplace(key, static_cast<uint32_t>(job.queues.size()));
    if (added) {
      job.queues.push_back(Placement{ts.backend, ts.on, std::max(1u, ts.slots),
                                     std::move(worker_services), std::move(worker_pool)});
    }
    for (uint32_t i = span.first; i < span.first + span.count; ++i) {
      plan_tasks[i].needs = ts.needs;
      plan_tasks[i].retries = ts.retries;
      plan_tasks[i].backoff = ts.retry_backoff;
      plan_tasks[i].backoff_max = ts.retry_backoff_max;
      plan_tasks[i].queue = it->second;
    }
  });
  if (job.queues.empty()) job.queues.push_back(Placement{"spawn", {}, 1});
  return plan_tasks;
}

void MakePlan(JobState& job, std::vector<dag::PlanTask> plan_tasks, uint64_t jitter_seed) {
  dag::PlanOptions plan_options;
  plan_options.fail_fast = job.spec.fail_fast;
  plan_options.jitter_seed = jitter_seed;
  job.plan = std::make_unique<dag::Plan>(std::move(plan_tasks), plan_options);
}

}  // namespace

std::vector<uint32_t> InitJobState(
    JobState& job, const std::unordered_map<std::string, store::TaskRecord>& old_rows,
    uint64_t jitter_seed) {
  const uint32_t n = static_cast<uint32_t>(job.spec.tasks.size());
  job.rows.resize(n);
  job.current.assign(n, 0);
  job.attempt_base.assign(n, 0);
  std::vector<uint32_t> carried;
  for (uint32_t i = 0; i < n; ++i) {
    store::TaskRecord& row = job.rows[i];
    std::string name = job.spec.tasks.Name(i);  // without making the instance
    auto old = old_rows.empty() ? old_rows.end() : old_rows.find(name);
    if (old != old_rows.end()) job.attempt_base[i] = old->second.attempts;
    const std::optional<dag::TaskState> old_state =
        old != old_rows.end() ? dag::ParseTaskState(old->second.state) : std::nullopt;
    if (old_state && dag::IsSuccess(*old_state) &&
        old->second.fingerprint == job.spec.tasks.Fingerprint(i)) {
      row = old->second;  // carried over: its result, attempts, logs and fingerprint stay
      carried.push_back(i);
    } else {
      row = store::TaskRecord();
      row.state = dag::TaskStateName(dag::TaskState::kWaiting);
      row.attempts = job.attempt_base[i];
      row.attempt_base = job.attempt_base[i];  // so a restart knows this run's
      // 0 until the task is dispatched (or cached): a matrix instance is
      // made then, not for every instance at submit (docs/state.md).
      row.fingerprint = 0;
    }
    row.job_id = job.record.id;
    row.index = i;
    row.name = std::move(name);
  }
  job.fanouts = FanoutPlaceholders(job.spec);
  job.fanout_old.clear();
  for (uint32_t p : job.fanouts) {
    job.rows[p].pending_reason = spec::FanoutWaitReason(job.spec.tasks[p]);
    for (const auto& [name, old] : old_rows) {
      if (name != job.spec.tasks[p].name &&
          GroupOfInstance(name) == job.spec.tasks[p].base_name) {
        job.fanout_old.emplace(name, old);
      }
    }
  }
  MakePlan(job, PlanTasks(job), jitter_seed);
  job.cache_looked_up.assign(n, false);
  for (uint32_t i : carried) {
    if (dag::ParseTaskState(job.rows[i].state) == dag::TaskState::kCached) {
      job.plan->MarkCached(i);
    } else {
      job.plan->MarkSucceeded(i);
    }
  }
  return carried;
}

Result<std::vector<uint32_t>> RestoreJobState(JobState& job,
                                              std::vector<store::TaskRecord> rows,
                                              uint64_t jitter_seed, SteadyTime now) {
  DROVER_RETURN_IF_ERROR(ReplayFanouts(job.spec, rows));
  job.fanouts = FanoutPlaceholders(job.spec);
  const uint32_t n = static_cast<uint32_t>(job.spec.tasks.size());
  if (rows.size() != n) {
    return FailedPrecondition("job " + job.record.id + " has " +
                              std::to_string(rows.size()) + " task rows, its spec " +
                              std::to_string(n) + " tasks");
  }
  for (uint32_t i = 0; i < n; ++i) {
    if (std::string name = job.spec.tasks.Name(i); rows[i].name != name) {
      return FailedPrecondition("job " + job.record.id + ": task row " +
                                std::to_string(i) + " is '" + rows[i].name +
                                "', the spec says '" + name + "'");
    }
  }
  job.rows = std::move(rows);
  job.current.assign(n, 0);
  // Row attempts count every attempt of the task in this job id, earlier
  // resumed runs included; only this run's count against retries.
  job.attempt_base.assign(n, 0);
  for (uint32_t i = 0; i < n; ++i) {
    job.attempt_base[i] = std::min(job.rows[i].attempt_base, job.rows[i].attempts);
  }
  auto this_run = [&](uint32_t i) {
    return static_cast<int>(job.rows[i].attempts - job.attempt_base[i]);
  };
  MakePlan(job, PlanTasks(job), jitter_seed);
  job.cache_looked_up.assign(n, false);
  dag::Plan& plan = *job.plan;

  // In an order that keeps every transition legal: successes release their
  // dependents, so that running and failed tasks are ready to be started.
  // The stored states, read once (a name this drover does not know matches
  // none of them: the task is planned afresh).
  std::vector<std::optional<dag::TaskState>> stored(n);
  for (uint32_t i = 0; i < n; ++i) stored[i] = dag::ParseTaskState(job.rows[i].state);
  auto is = [&](uint32_t i, dag::TaskState s) { return stored[i] == s; };
  bool skipped = false;
  for (uint32_t i = 0; i < n; ++i) {
    if (is(i, dag::TaskState::kSucceeded)) plan.MarkSucceeded(i);
    if (is(i, dag::TaskState::kCached)) plan.MarkCached(i);
    skipped = skipped || is(i, dag::TaskState::kSkipped);
  }
  std::vector<uint32_t> running;
  for (uint32_t i = 0; i < n; ++i) {
    if (!is(i, dag::TaskState::kRunning)) continue;
    if (plan.state(i) != dag::TaskState::kReady) continue;
    plan.Start(i);
    plan.RestoreAttempts(i, this_run(i));
    running.push_back(i);
  }
  bool failed = false;
  for (uint32_t i = 0; i < n; ++i) {
    const bool cancelled = is(i, dag::TaskState::kCancelled);
    if (!cancelled && !is(i, dag::TaskState::kFailed)) continue;
    if (plan.state(i) != dag::TaskState::kReady) continue;
    plan.Start(i);
    plan.RestoreAttempts(i, this_run(i));
    if (cancelled) {
      plan.OnCancelled(i);
    } else {
      plan.OnFailed(i, now, /*retryable=*/false);
      failed = true;
    }
  }
  for (uint32_t i = 0; i < n; ++i) {
    // Tasks waiting for a retry, or ready: attempts made still count.
    if (!dag::IsTerminal(plan.state(i)) && plan.state(i) != dag::TaskState::kRunning) {
      plan.RestoreAttempts(i, this_run(i));
    }
  }
  if (skipped && !(failed && job.spec.fail_fast)) {
    job.cancelling = true;
    plan.CancelPending();
  }
  return running;
}

bool JobRunning(const JobState& job) {
  return dag::ParseJobState(job.record.state) == dag::JobState::kRunning;
}

dag::PlanCounts CountRows(const std::vector<store::TaskRecord>& rows) {
  dag::PlanCounts c;
  for (const auto& r : rows) {
    CountState(c, dag::ParseTaskState(r.state).value_or(dag::TaskState::kWaiting));
  }
  return c;
}

}  // namespace drover

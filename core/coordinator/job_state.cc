#include "core/coordinator/job_state.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

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

store::TaskRecord& JobState::Row(uint32_t t, const std::string* name) {
  if (t >= held.size()) GrowRows();
  std::unique_ptr<store::TaskRecord>& row = held.at(t);
  if (!row) {
    if (RowEnded(t)) {
      // The store has its record; a row made up here would overwrite it.
      std::fprintf(stderr, "drover: internal error: task %u of job %s has ended\n", t,
                   record.id.c_str());
      std::abort();
    }
    if (spare_rows.empty()) {
      row = std::make_unique<store::TaskRecord>();
    } else {
      row = std::move(spare_rows.back());
      spare_rows.pop_back();
      row->Clear();
    }
    FillFirstRow(t, name, row.get());
  }
  return *row;
}

store::TaskRecord JobState::FirstRow(uint32_t t) const {
  store::TaskRecord row;
  FillFirstRow(t, nullptr, &row);
  return row;
}

void JobState::FillFirstRow(uint32_t t, const std::string* name,
                            store::TaskRecord* row) const {
  // Every field not set here is its default (a new or Clear()ed record).
  row->job_id = record.id;
  row->index = t;
  if (name) {
    row->name = *name;
  } else {
    row->name = spec.tasks.Name(t);
  }
  row->state = dag::TaskStateName(dag::TaskState::kWaiting);
  row->attempts = t < attempt_base.size() ? attempt_base[t] : 0;
  row->attempt_base = row->attempts;  // so a restart knows this run's
  // 0 until the task is dispatched (or cached): a matrix instance is made
  // then, not for every instance at submit (docs/state.md).
  row->fingerprint = 0;
}

void JobState::EndRow(uint32_t t) {
  if (t >= held.size()) GrowRows();
  if (held[t]) {
    KeepOutputs(t, std::move(held[t]->outputs_json));
    if (spare_rows.size() < kSpareRows) {
      spare_rows.push_back(std::move(held[t]));
    } else {
      held[t].reset();
    }
  }
  ended[t] = true;
  spec.tasks.Release(t);  // a matrix instance made for it goes too
}

void JobState::KeepOutputs(uint32_t t, std::string outputs_json) {
  // A threads task's outputs hold its result ({"result":"null"}): kept for
  // every task, a million-instance job would hold a million of them.
  if (outputs_json.empty() || !plan || !plan->HasDependents(t)) {
    ended_outputs.erase(t);
    return;
  }
  ended_outputs[t] = std::move(outputs_json);
}

std::string_view JobState::OutputsJson(uint32_t t) const {
  if (const store::TaskRecord* row = HeldRow(t)) return row->outputs_json;
  auto it = ended_outputs.find(t);
  return it == ended_outputs.end() ? std::string_view() : std::string_view(it->second);
}

void JobState::GrowRows() {
  const uint32_t n = size();
  held.resize(n);
  ended.resize(n, false);
  current.resize(n, 0);
  attempt_base.resize(n, 0);
  cache_looked_up.resize(n, false);
}

std::vector<uint32_t> InitJobState(
    JobState& job, const std::unordered_map<std::string, store::TaskRecord>& old_rows,
    uint64_t jitter_seed) {
  const uint32_t n = job.size();
  job.held.clear();
  job.held.resize(n);
  job.ended.assign(n, false);
  job.ended_outputs.clear();
  job.current.assign(n, 0);
  job.attempt_base.assign(n, 0);
  std::vector<uint32_t> carried;
  if (!old_rows.empty()) {
    for (uint32_t i = 0; i < n; ++i) {
      auto old = old_rows.find(job.spec.tasks.Name(i));  // without making the instance
      if (old == old_rows.end()) continue;
      job.attempt_base[i] = old->second.attempts;
      const std::optional<dag::TaskState> old_state =
          dag::ParseTaskState(old->second.state);
      if (old_state && dag::IsSuccess(*old_state) &&
          old->second.fingerprint == job.spec.tasks.Fingerprint(i)) {
        // Carried over: its result, attempts, logs and fingerprint stay.
        job.held[i] = std::make_unique<store::TaskRecord>(old->second);
        job.held[i]->job_id = job.record.id;
        job.held[i]->index = i;
        carried.push_back(i);
      } else if (job.attempt_base[i] != 0) {
        job.Row(i);  // its first state counts the earlier attempts
      }
    }
  }
  job.fanouts = FanoutPlaceholders(job.spec);
  job.fanout_old.clear();
  for (uint32_t p : job.fanouts) {
    job.Row(p).pending_reason = spec::FanoutWaitReason(job.spec.tasks[p]);
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
    if (dag::ParseTaskState(job.held[i]->state) == dag::TaskState::kCached) {
      job.plan->MarkCached(i);
    } else {
      job.plan->MarkSucceeded(i);
    }
  }
  return carried;
}

std::unique_ptr<JobState> BuildJobState(spec::JobSpec spec, std::string id,
                                        std::vector<store::TaskRecord> previous,
                                        uint64_t jitter_seed, size_t* carried) {
  auto job = std::make_unique<JobState>();
  job->spec = std::move(spec);
  job->record.id = std::move(id);
  std::unordered_map<std::string, store::TaskRecord> old_rows;
  old_rows.reserve(previous.size());
  for (auto& r : previous) old_rows.emplace(r.name, std::move(r));
  previous = {};
  *carried = InitJobState(*job, old_rows, jitter_seed).size();
  return job;
}

Result<std::vector<uint32_t>> RestoreJobState(JobState& job,
                                              std::vector<store::TaskRecord> rows,
                                              uint64_t jitter_seed, SteadyTime now) {
  rows = DenseRows(std::move(rows), job.record.tasks, job.record.id);
  DROVER_RETURN_IF_ERROR(ReplayFanouts(job.spec, rows));
  job.fanouts = FanoutPlaceholders(job.spec);
  const uint32_t n = job.size();
  if (rows.size() != n) {
    return FailedPrecondition("job " + job.record.id + " has " +
                              std::to_string(rows.size()) +
                              " tasks in the store, its spec " + std::to_string(n));
  }
  for (uint32_t i = 0; i < n; ++i) {
    std::string name = job.spec.tasks.Name(i);
    if (rows[i].name.empty()) {
      rows[i].name = std::move(name);  // no row: its first state
    } else if (rows[i].name != name) {
      return FailedPrecondition("job " + job.record.id + ": task row " +
                                std::to_string(i) + " is '" + rows[i].name +
                                "', the spec says '" + name + "'");
    }
  }
  job.current.assign(n, 0);
  // Row attempts count every attempt of the task in this job id, earlier
  // resumed runs included; only this run's count against retries.
  job.attempt_base.assign(n, 0);
  for (uint32_t i = 0; i < n; ++i) {
    job.attempt_base[i] = std::min(rows[i].attempt_base, rows[i].attempts);
  }
  auto this_run = [&](uint32_t i) {
    return static_cast<int>(rows[i].attempts - job.attempt_base[i]);
  };
  MakePlan(job, PlanTasks(job), jitter_seed);
  job.cache_looked_up.assign(n, false);
  dag::Plan& plan = *job.plan;

  // In an order that keeps every transition legal: successes release their
  // dependents, so that running and failed tasks are ready to be started.
  // The stored states, read once (a name this drover does not know matches
  // none of them: the task is planned afresh).
  std::vector<std::optional<dag::TaskState>> stored(n);
  for (uint32_t i = 0; i < n; ++i) stored[i] = dag::ParseTaskState(rows[i].state);
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
  // Held: the rows of tasks that have left their first state and not
  // ended. Ended: those the store has in an ended state.
  job.held.clear();
  job.held.resize(n);
  job.ended.assign(n, false);
  job.ended_outputs.clear();
  for (uint32_t i = 0; i < n; ++i) {
    store::TaskRecord& row = rows[i];
    if (stored[i] && dag::IsTerminal(*stored[i])) {
      job.ended[i] = true;
      job.KeepOutputs(i, std::move(row.outputs_json));
      continue;
    }
    const bool first_state = stored[i] == dag::TaskState::kWaiting &&
                             row.attempts == job.attempt_base[i] &&
                             row.pending_reason.empty() && row.reason.empty();
    if (!first_state) job.held[i] = std::make_unique<store::TaskRecord>(std::move(row));
  }
  return running;
}

bool JobRunning(const JobState& job) {
  return dag::ParseJobState(job.record.state) == dag::JobState::kRunning;
}

dag::PlanCounts CountRows(const std::vector<store::TaskRecord>& rows, uint32_t total) {
  dag::PlanCounts c;
  for (const auto& r : rows) {
    CountState(c, dag::ParseTaskState(r.state).value_or(dag::TaskState::kWaiting));
  }
  for (size_t i = rows.size(); i < total; ++i) CountState(c, dag::TaskState::kWaiting);
  return c;
}

dag::PlanCounts CountStates(const std::vector<std::pair<std::string, uint64_t>>& counts) {
  dag::PlanCounts c;
  for (const auto& [state, n] : counts) {
    CountState(c, dag::ParseTaskState(state).value_or(dag::TaskState::kWaiting),
               static_cast<uint32_t>(std::min<uint64_t>(n, UINT32_MAX)));
  }
  return c;
}

std::vector<store::TaskRecord> DenseRows(std::vector<store::TaskRecord> rows,
                                         uint32_t total, const std::string& job_id) {
  size_t n = total;
  for (const store::TaskRecord& r : rows) n = std::max<size_t>(n, size_t{r.index} + 1);
  std::vector<store::TaskRecord> dense(n);
  std::vector<bool> seen(n, false);
  for (store::TaskRecord& r : rows) {
    if (seen[r.index]) continue;
    seen[r.index] = true;
    dense[r.index] = std::move(r);
  }
  for (size_t i = 0; i < n; ++i) {
    if (seen[i]) continue;
    dense[i].job_id = job_id;
    dense[i].index = static_cast<uint32_t>(i);
    dense[i].state = dag::TaskStateName(dag::TaskState::kWaiting);
  }
  return dense;
}

}  // namespace drover

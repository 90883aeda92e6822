// Coordinator::Loop, recovery: what Open() does with the jobs a previous
// coordinator left running in the store (docs/protocol.md, "Coordinator
// restart").
//
// Recover() keeps them running. Each job's Plan is rebuilt from its spec
// text and task rows (RestoreJobState). The attempts that were running stay
// placed on the worker that ran them, by name, as *orphans*: they hold no
// connection and no slot until that worker registers again. A worker whose
// HELLO lists an orphan claims it (its RESULT, resent, is then recorded as
// usual); one that registers without it loses it; and every orphan still
// unclaimed heartbeat_interval * liveness after Open() fails as
// worker-lost, counted against the task's retries, and is re-queued.
#include <algorithm>

#include "core/coordinator/loop.h"

namespace drover {

void Coordinator::Loop::Recover() {
  auto running =
      store_->JobsInState(std::string(dag::JobStateName(dag::JobState::kRunning)));
  if (!running.ok()) {
    Check(running.status(), "list running jobs");
    return;
  }
  auto unfinished = store_->UnfinishedAttempts();
  if (!unfinished.ok()) {
    Check(unfinished.status(), "list unfinished attempts");
    return;
  }
  if (running->empty() && unfinished->empty()) return;
  Check(store_->Begin(), "begin");
  const SteadyTime now = clock_.Now();
  const int64_t now_ms = WallMillis(clock_);
  // The latest unfinished attempt of each (job, task); every other
  // unfinished attempt is not current and is closed below.
  std::map<std::pair<std::string, std::string>, const store::AttemptRecord*> latest;
  for (const auto& a : *unfinished) {
    auto& slot = latest[{a.job_id, a.task}];
    if (!slot || slot->id < a.id) slot = &a;
  }
  std::set<uint64_t> placed;

  for (const auto& record : *running) {
    auto job = std::make_unique<Job>();
    job->record = record;
    auto loaded = spec::LoadString(record.spec_text, record.spec_file, options_.spec_options);
    Result<std::vector<uint32_t>> restored =
        FailedPrecondition("its spec no longer loads");
    if (loaded.ok()) {
      job->spec = std::move(*loaded.spec);
      auto rows = store_->Tasks(record.id);
      restored = rows.ok() ? RestoreJobState(*job, std::move(*rows),
                                             options_.jitter_seed ? options_.jitter_seed
                                                                  : rng_(),
                                             now)
                           : Result<std::vector<uint32_t>>(rows.status());
    } else {
      restored = FailedPrecondition("its spec no longer loads: " +
                                    loaded.errors.front().ToString());
    }
    if (!restored.ok()) {
      spdlog::error("coordinator: cannot recover job {}: {}; marked interrupted", record.id,
                    restored.status().ToString());
      Check(store_->SetJobState(
                record.id, std::string(dag::JobStateName(dag::JobState::kInterrupted)),
                now_ms),
            "interrupt job");
      if (loaded.ok() && job->spec.DeclaresServices()) recovered_done_.push_back(record.id);
      continue;
    }
    Job& j = *job;
    LoadJobCache(j);
    for (uint32_t t : *restored) {
      store::TaskRecord& row = j.Row(t);  // running: held
      auto it = latest.find({record.id, row.name});
      if (it == latest.end()) {
        // Its attempt was never committed (the coordinator died between
        // deciding and committing): plan it again.
        j.plan->Unstart(t);
        row.state = std::string(dag::TaskStateName(j.plan->state(t)));
        Check(store_->UpdateTask(row), "update task");
        continue;
      }
      const store::AttemptRecord& a = *it->second;
      const Placement& p = j.queues[j.plan->queue(t)];
      attempts_[a.id] = AttemptRef{&j, t, a.number, "", p.backend, p.slots, a.worker};
      orphans_[a.worker].insert(a.id);
      j.current[t] = a.id;
      placed.insert(a.id);
    }
    stats_.recovered_jobs.fetch_add(1, std::memory_order_relaxed);
    spdlog::info(
        "coordinator: recovered job {} ({}): {} of {} tasks running, waiting for "
        "their workers",
        record.id, record.name, restored->size(), j.size());
    Job* raw = job.get();
    jobs_.emplace(record.id, std::move(job));
    order_.push_back(raw);
  }
  OrderJobs();

  AttemptOutcome lost;
  lost.reason = FailureReason::kWorkerLost;
  lost.message = "not current after a coordinator restart";
  for (const auto& a : *unfinished) {
    if (placed.count(a.id)) continue;
    Check(store_->FinishAttempt(a.id, a.worker, lost, now_ms).status(),
          "close a stale attempt");
  }
  // Jobs whose every task had ended (the coordinator died before it noted
  // the job's end) end now.
  // No worker is registered yet to be told: the ones with services of their
  // own are told as they register (SendRecoveredJobDone).
  for (Job* job : std::vector<Job*>(order_)) {
    MaybeFinishJob(*job);
    if (!JobRunning(*job) && job->spec.DeclaresServices()) {
      recovered_done_.push_back(job->record.id);
    }
  }
  Check(store_->Commit(), "commit");
  orphan_deadline_ = now + options_.heartbeat_interval * options_.liveness;
}

void Coordinator::Loop::ExpireOrphans(SteadyTime now) {
  if (now >= orphan_deadline_) recovered_done_.clear();
  if (orphans_.empty() || now < orphan_deadline_) return;
  std::vector<std::pair<uint64_t, std::string>> expired;
  for (const auto& [name, ids] : orphans_) {
    for (uint64_t id : ids) expired.emplace_back(id, name);
  }
  orphans_.clear();
  spdlog::warn("coordinator: {} recovered attempts were not claimed by their workers in "
               "time; they are lost",
               expired.size());
  for (const auto& [id, name] : expired) {
    AttemptOutcome lost;
    lost.reason = FailureReason::kWorkerLost;
    lost.message = "worker " + name + " did not register again after a coordinator restart";
    Finish(id, lost, name, nullptr);
  }
}

void Coordinator::Loop::Interrupt() {
  auto running =
      store_->JobsInState(std::string(dag::JobStateName(dag::JobState::kRunning)));
  if (!running.ok()) {
    Check(running.status(), "list running jobs");
    return;
  }
  if (running->empty()) return;
  Check(store_->Begin(), "begin");
  auto unfinished = store_->UnfinishedAttempts();
  // The rows first: a task is running while its attempt is unfinished
  // (Store::Tasks), so the attempts are closed after.
  for (const auto& job : *running) {
    auto tasks = store_->Tasks(job.id);
    if (!tasks.ok()) continue;
    for (auto row : *tasks) {
      if (dag::ParseTaskState(row.state) == dag::TaskState::kRunning) {
        row.state = dag::TaskStateName(dag::TaskState::kFailed);
        row.reason = std::string(ReasonName(FailureReason::kWorkerLost));
        row.detail = "worker-lost: interrupted";
        Check(store_->UpdateTask(row), "update interrupted task");
      }
    }
    Check(store_->SetJobState(job.id,
                              std::string(dag::JobStateName(dag::JobState::kInterrupted)),
                              WallMillis(clock_)),
          "interrupt job");
    spdlog::warn("job {} was left running by an earlier coordinator; marked interrupted "
                 "(drover run --resume re-runs what did not finish)", job.id);
  }
  if (unfinished.ok()) {
    AttemptOutcome lost;
    lost.reason = FailureReason::kWorkerLost;
    lost.message = "interrupted: the coordinator stopped before the attempt ended";
    for (const auto& a : *unfinished) {
      Check(store_->FinishAttempt(a.id, a.worker, lost, WallMillis(clock_)).status(),
            "finish interrupted attempt");
    }
  }
  Check(store_->Commit(), "commit");
}

}  // namespace drover

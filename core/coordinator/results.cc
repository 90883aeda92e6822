// Coordinator::Loop, results: RESULT (recorded once, ACKed after commit),
// OUTPUT forwarding, the outcome of an attempt applied to its task and
// job, and the events watching clients get.
#include "core/base/outputs.h"
#include "core/coordinator/dispatch_wire.h"
#include "core/coordinator/loop.h"
#include "core/coordinator/stored_status.h"
#include "core/protocol/convert.h"

namespace drover {
namespace {

// The TASK-EVENTs a message to watcher `rid` of `job` may carry.
uint32_t BatchOf(const JobState& job, const std::string& rid) {
  if (job.batch_watchers.empty()) return 1;
  auto it = job.batch_watchers.find(rid);
  return it == job.batch_watchers.end() ? 1 : it->second;
}

}  // namespace

bool Coordinator::Loop::HandleResult(WorkerConn& w, Message& m) {
  // The batch lives on an arena that starts on the stack: its strings and
  // entries cost no allocation of their own (a few dozen a task otherwise).
  alignas(16) char block[8192];
  google::protobuf::Arena arena(ArenaOn(block, sizeof block));
  auto* result = google::protobuf::Arena::CreateMessage<wire::Result>(&arena);
  if (!result->ParseFromString(m.body)) {
    stats_.malformed.fetch_add(1, std::memory_order_relaxed);
    Note(w.rid, "bad bodies", spdlog::level::warn,
         "worker " + w.name + ": malformed RESULT body");
    return false;
  }
  if (m.payloads.size() != 2) {
    stats_.malformed.fetch_add(1, std::memory_order_relaxed);
    Note(w.rid, "unexpected", spdlog::level::warn,
         "worker " + w.name + ": RESULT with " + std::to_string(m.payloads.size()) +
             " payload frames (2 expected), dropped");
    return false;
  }
  // A batch (docs/protocol.md, "Batches"): the head's output is in the
  // payload frames, each entry of `more` carries its own.
  HandleOneResult(w, *result, {std::move(m.payloads[0]), std::move(m.payloads[1])});
  for (wire::Result& entry : *result->mutable_more()) {
    if (entry.more_size() > 0) {
      stats_.malformed.fetch_add(1, std::memory_order_relaxed);
      Note(w.rid, "unexpected", spdlog::level::warn,
           "worker " + w.name + ": a RESULT entry with results of its own (attempt " +
               std::to_string(entry.attempt_id()) + "), dropped");
      continue;
    }
    std::vector<std::string> payloads{std::move(*entry.mutable_stdout_data()),
                                      std::move(*entry.mutable_stderr_data())};
    HandleOneResult(w, entry, std::move(payloads));
  }
  // Starts the worker reports on its RESULT (Welcome.takes_result_starts),
  // after the results whose slots they take, as a HEARTBEAT sent after
  // this RESULT would have them.
  NoteStarts(w, result->started());
  return true;
}

void Coordinator::Loop::HandleOneResult(WorkerConn& w, const wire::Result& result,
                                        std::vector<std::string> payloads) {
  const uint64_t id = result.attempt_id();
  acks_[w.rid].push_back(id);  // committed below, or stale: ACK either way
  AttemptOutcome outcome = protocol::OutcomeFromWire(result);
  // A worker keeps its outputs to the caps and names (docs/protocol.md,
  // RESULT field 14); from one that does not, an attempt it says ended
  // well ends as bad-outputs here, so that no peer stores more than that.
  if (outcome.ok() && !outcome.outputs.empty()) {
    std::string over = CheckOutputCaps(outcome.outputs);
    for (const auto& [key, value] : outcome.outputs) {
      if (!over.empty()) break;
      if (!ValidOutputKey(key))
        over = "an output name that is not 1 to 128 of A-Z a-z 0-9 _ -";
    }
    if (!over.empty()) {
      outcome.reason = FailureReason::kBadOutputs;
      outcome.message = over + " (refused by the coordinator)";
      outcome.outputs.clear();
    }
  }
  auto current = attempts_.find(id);
  if (current == attempts_.end()) {
    // Not current: re-queued meanwhile, or from before a restart. Record it
    // if the store still waits for it, never apply it to the task.
    stats_.stale_results.fetch_add(1, std::memory_order_relaxed);
    auto recorded = store_->FinishAttempt(id, w.name, outcome, WallMillis(clock_));
    Note(w.rid, "stale results", spdlog::level::info,
         "ignored the result of attempt " + std::to_string(id) + " from " + w.name +
             ": it is no longer current" +
             (recorded.ok() && *recorded ? " (recorded in history)" : ""));
    return;
  }
  if (current->second.worker_rid != w.rid) {
    // Only the worker holding an attempt may finish it; anything else would
    // free a slot that is still busy.
    stats_.stale_results.fetch_add(1, std::memory_order_relaxed);
    Note(w.rid, "results not held", spdlog::level::warn,
         "worker " + w.name + " sent a result for attempt " + std::to_string(id) +
             ", which it does not hold; ignored");
    return;
  }
  ++ended_this_turn_;  // the turn's budget (Run); stale ones do not count
  Finish(id, outcome, w.name, &payloads);
}

bool Coordinator::Loop::HandleOutput(WorkerConn& w, const Message& m) {
  auto out = protocol::Parse<wire::Output>(m);
  if (!out.ok() || m.payloads.size() != 1) {
    stats_.malformed.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  stats_.outputs.fetch_add(1, std::memory_order_relaxed);
  auto a = attempts_.find(out->attempt_id());
  // Output of an attempt that is not current, or not this worker's, is
  // dropped like its RESULT would be.
  if (a == attempts_.end() || a->second.worker_rid != w.rid) return true;
  Job& job = *a->second.job;
  std::set<std::string> to = job.output_watchers;
  if (auto f = job.log_followers.find(a->second.task); f != job.log_followers.end()) {
    to.insert(f->second.begin(), f->second.end());
  }
  if (to.empty()) return true;
  wire::Output fwd = *out;
  fwd.set_job_id(job.record.id);
  fwd.set_task(job.spec.tasks.Name(a->second.task));
  for (const auto& rid : to) Reply(rid, Command::kOutput, fwd, {m.payloads[0]});
  return true;
}

void Coordinator::Loop::Finish(uint64_t id, const AttemptOutcome& reported,
                               const std::string& worker,
                               const std::vector<std::string>* payloads) {
  auto it = attempts_.find(id);
  if (it == attempts_.end()) return;
  const AttemptRef ref = it->second;
  attempts_.erase(it);
  if (auto w = workers_.find(ref.worker_rid); w != workers_.end()) {
    w->second.attempts.erase(id);
    if (ref.recalled && w->second.recalling > 0) --w->second.recalling;
    WorkerConn& conn = w->second;
    auto& used = conn.used[ref.backend];
    used = used > ref.slots ? used - ref.slots : 0;
    // How long it ran moves how much of the worker's prefetch is used; an
    // attempt handed back unstarted did not run.
    if (!reported.not_started) {
      if (auto g = conn.grants.find(ref.backend);
          g != conn.grants.end() && g->second.Observe(reported.wall)) {
        conn.prefetch[ref.backend] = g->second.granted();
      }
    }
    Refile(conn);
  }
  if (auto o = orphans_.find(ref.owner); o != orphans_.end()) {
    o->second.erase(id);
    if (o->second.empty()) orphans_.erase(o);
  }
  Job& job = *ref.job;
  const uint32_t t = ref.task;
  job.current[t] = 0;
  stats_.results.fetch_add(1, std::memory_order_relaxed);

  // A task whose cancel was asked for ends cancelled, whatever killing it
  // looked like to the worker (a signal, an exit code); a success stands.
  AttemptOutcome outcome = reported;
  if (job.cancel_requested.erase(t) && !outcome.ok() &&
      outcome.reason != FailureReason::kCancelled) {
    outcome.message = "cancelled (" + outcome.Describe() + ")";
    outcome.reason = FailureReason::kCancelled;
  }
  metrics_.RecordResult(ref.backend, std::string(ReasonName(outcome.reason)),
                        std::chrono::duration<double>(outcome.wall).count());

  // Captured output: the RESULT's two payload frames, stdout then stderr.
  // Output that cannot be kept fails the attempt: a success whose output
  // is gone would be taken for one whose output was empty.
  if (payloads) {
    if (Status kept = KeepLogs(job.record.id, job.Row(t).name, ref.number, *payloads);
        !kept.ok()) {
      if (outcome.ok()) {
        outcome.reason = FailureReason::kInternal;
        outcome.message = kept.message();
      } else {
        outcome.message += (outcome.message.empty() ? "" : "; ") + kept.message();
      }
    }
  }

  // Made once: the attempt's row and (on success) the task's row both keep it.
  const std::string outputs_json = OutputsToJson(outcome.outputs);

  dag::Plan& plan = *job.plan;
  const uint32_t silent_before = plan.counts().blocked + plan.counts().skipped;
  bool failed_for_good = false;
  if (outcome.ok()) {
    plan.OnSucceeded(t);
  } else if (outcome.reason == FailureReason::kCancelled || job.cancelling) {
    plan.OnCancelled(t);
    failed_for_good = true;
  } else if (outcome.not_started) {
    // Handed back before it began (a prefetching worker drains or stops):
    // placed again with its retries untouched. The attempt stays in the
    // history and the next one takes the next number, so this run counts
    // one attempt fewer than it has rows (attempt_base, also for a restart).
    ++job.attempt_base[t];
    ++job.Row(t).attempt_base;
    plan.Unstart(t);
  } else {
    const auto retry_at = plan.OnFailed(t, clock_.Now(), IsRetryable(outcome.reason));
    failed_for_good = !retry_at.has_value();
  }

  store::TaskRecord& row = job.Row(t);
  row.state = std::string(dag::TaskStateName(plan.state(t)));
  row.reason = std::string(ReasonName(outcome.reason));
  row.exit_code = outcome.exit_code;
  row.signal = outcome.signal;
  row.detail = outcome.Describe();
  row.wall_us = std::chrono::duration_cast<std::chrono::microseconds>(outcome.wall).count();
  row.result_json = outcome.result_json;
  // Only a success hands outputs on (a failed attempt's would be a half).
  row.outputs_json = outcome.ok() ? outputs_json : std::string();
  row.worker = worker;
  row.finished_ms = WallMillis(clock_);
  // The attempt's row and the task's, in one write when the attempt says
  // all the task's row would (Store::EndAttempt).
  Check(store_->EndAttempt(id, ref.number, worker, outcome, outputs_json, row).status(),
        "record result");
  if (outcome.ok()) RecordCacheEntry(job, t, id, ref.number, outcome);
  EmitTask(job, t, &outcome);

  // `drover logs -f` of this task: the attempt is over.
  if (auto f = job.log_followers.find(t); f != job.log_followers.end()) {
    const std::set<std::string> followers = std::move(f->second);
    job.log_followers.erase(f);
    const std::vector<std::string> none{std::string(), std::string()};
    for (const auto& rid : followers) {
      SendLogs(rid, job.record, row.name, ref.number, /*done=*/true, row.state,
               payloads ? payloads : &none);
    }
  }

  // The task's row and its matrix instance are not needed any more.
  if (dag::IsTerminal(plan.state(t))) job.EndRow(t);

  if (failed_for_good) {
    if (job.spec.fail_fast && !job.cancelling) {
      CancelRunning(job, plan.CancelPending());
    }
    // Dependents were blocked (and, with fail_fast, the rest skipped): their
    // rows follow. A failure that moved nothing (the common case in a big
    // matrix) skips the O(tasks) scan.
    if (plan.counts().blocked + plan.counts().skipped != silent_before) SyncRows(job);
  }
  MaybeFinishJob(job);
}

void Coordinator::Loop::SendLogs(const std::string& rid, const store::JobRecord& record,
                                 const std::string& task, uint32_t number, bool done,
                                 const std::string& state,
                                 const std::vector<std::string>* payloads) {
  wire::Logs logs;
  logs.set_job_id(record.id);
  logs.set_task(task);
  logs.set_attempt(number);
  logs.set_done(done);
  logs.set_state(state);
  std::vector<std::string> frames;
  if (payloads && payloads->size() == 2) {
    frames = *payloads;
  } else if (number > 0) {
    frames.push_back(ReadLog(store_->LogPath(record.id, task, number, false)));
    frames.push_back(ReadLog(store_->LogPath(record.id, task, number, true)));
  } else {
    frames = {std::string(), std::string()};
  }
  Reply(rid, Command::kLogs, logs, std::move(frames));
}

void Coordinator::Loop::CancelRunning(Job& job, const std::vector<uint32_t>& tasks) {
  std::map<std::string, wire::Cancel> by_worker;
  for (uint32_t t : tasks) {
    const uint64_t id = job.current[t];
    if (!id) continue;
    auto a = attempts_.find(id);
    if (a == attempts_.end()) continue;
    // An orphan has no connection yet: it gets its CANCEL when a worker
    // claims it (HandleHello).
    if (a->second.worker_rid.empty()) continue;
    by_worker[a->second.worker_rid].add_attempt_ids(id);
  }
  for (auto& [rid, cancel] : by_worker) Reply(rid, Command::kCancel, cancel);
}

void Coordinator::Loop::SyncRows(Job& job) {
  for (uint32_t t = 0; t < job.size(); ++t) {
    const dag::TaskState s = job.plan->state(t);
    if (s != dag::TaskState::kBlocked && s != dag::TaskState::kSkipped &&
        s != dag::TaskState::kCancelled) {
      continue;
    }
    if (job.RowEnded(t)) continue;  // its row says so already
    store::TaskRecord& row = job.Row(t);
    row.state = dag::TaskStateName(s);
    row.pending_reason.clear();
    Check(store_->UpdateTask(row), "update task");
    EmitTask(job, t, nullptr);
    job.EndRow(t);
  }
}

void Coordinator::Loop::EmitTask(Job& job, uint32_t t, const AttemptOutcome* outcome) {
  if (job.watchers.empty()) return;
  const dag::TaskState task_state = job.plan->state(t);
  const bool problem = task_state == dag::TaskState::kFailed ||
                       task_state == dag::TaskState::kCancelled ||
                       task_state == dag::TaskState::kRetryWait;
  // Watch.problems_only: not built at all when every watcher asked so.
  if (!problem && job.quiet_watchers.size() == job.watchers.size()) return;
  // The loop's one event, every field set anew (an empty string or a 0 is
  // not sent, as if cleared): its strings and counts keep their buffers
  // from task to task, so an event allocates only the bytes it sends.
  // Clear() would free the counts.
  wire::TaskEvent& ev = task_event_;
  ev.set_job_id(job.record.id);
  const store::TaskRecord* row = job.HeldRow(t);
  if (row) {
    ev.set_task(row->name);
  } else {
    ev.set_task(job.spec.tasks.Name(t));
  }
  const std::string_view state = dag::TaskStateName(job.plan->state(t));
  ev.set_state(state.data(), state.size());
  ev.set_attempt(job.attempt_base[t] + static_cast<uint32_t>(job.plan->attempts(t)));
  const std::string_view reason = outcome ? ReasonName(outcome->reason) : "";
  ev.set_reason(reason.data(), reason.size());
  if (outcome) {
    ev.set_detail(outcome->Describe());
  } else if (job.plan->state(t) == dag::TaskState::kCached && row) {
    ev.set_detail(row->detail);  // from which job and attempt
  } else {
    ev.clear_detail();
  }
  ev.set_wall_us(
      outcome ? static_cast<uint64_t>(
                    std::chrono::duration_cast<std::chrono::microseconds>(outcome->wall)
                        .count())
              : 0);
  if (outcome && row) {
    ev.set_worker(row->worker);
  } else {
    ev.clear_worker();
  }
  CountsToWire(job.plan->counts(), ev.mutable_counts());
  ev.SerializeToString(&task_event_body_);
  for (const auto& rid : job.watchers) {
    if (!problem && job.quiet_watchers.count(rid)) continue;
    SendTaskEvent(rid, BatchOf(job, rid), task_event_body_);
  }
}

void Coordinator::Loop::EmitStarted(Job& job, uint32_t t, const std::string& worker) {
  if (job.output_watchers.empty()) return;
  wire::TaskEvent ev;
  ev.set_job_id(job.record.id);
  ev.set_task(job.spec.tasks.Name(t));
  ev.set_state(std::string(dag::TaskStateName(job.plan->state(t))));
  ev.set_attempt(job.attempt_base[t] + static_cast<uint32_t>(job.plan->attempts(t)));
  ev.set_worker(worker);
  *ev.mutable_counts() = CountsToWire(job.plan->counts());
  const std::string body = ev.SerializeAsString();
  for (const auto& rid : job.output_watchers) SendTaskEvent(rid, BatchOf(job, rid), body);
}

void Coordinator::Loop::MaybeFinishJob(Job& job) {
  if (!job.plan->Finished() || !JobRunning(job)) return;
  job.record.state = dag::JobStateName(job.cancelling          ? dag::JobState::kCancelled
                                       : job.plan->Succeeded() ? dag::JobState::kSucceeded
                                                               : dag::JobState::kFailed);
  job.record.finished_ms = WallMillis(clock_);
  Check(store_->SetJobState(job.record.id, job.record.state, job.record.finished_ms),
        "finish job");
  spdlog::info("coordinator: job {} {}", job.record.id, job.record.state);
  wire::JobEvent ev;
  ev.set_job_id(job.record.id);
  ev.set_state(job.record.state);
  *ev.mutable_counts() = CountsToWire(job.plan->counts());
  for (const auto& rid : job.watchers) Reply(rid, Command::kJobEvent, ev);
  SendJobDone(job);
  // Followers of tasks that will never run again.
  for (auto& [t, rids] : job.log_followers) {
    const std::string name = job.spec.tasks.Name(t);
    const uint32_t attempts =
        job.attempt_base[t] + static_cast<uint32_t>(job.plan->attempts(t));
    const std::string state(dag::TaskStateName(job.plan->state(t)));
    for (const auto& rid : rids) {
      SendLogs(rid, job.record, name, attempts, /*done=*/true, state, nullptr);
    }
  }
  job.log_followers.clear();
}

}  // namespace drover

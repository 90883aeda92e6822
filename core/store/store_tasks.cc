// The Store's tasks, attempts and artifacts (store.cc holds the rest):
// the coordinator's per-task writes, journaled for a commit that finds
// the disk full, and the reads of recovery and of the CLI.
#include <sqlite3.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/store/log_path.h"
#include "core/store/store.h"
#include "core/store/store_impl.h"

namespace drover::store {

using internal::Context;

Status Store::UpdateTask(const TaskRecord& task) {
  Status s = UpdateTaskNow(task);
  if (impl_->Journals(s)) {
    const size_t i = impl_->task_slots.Keep(task);
    impl_->journal.emplace_back(
        [this, i] { return UpdateTaskNow(impl_->task_slots.records[i]); });
  }
  return s;
}

Status Store::UpdateTaskNow(const TaskRecord& task) {
  DROVER_RETURN_IF_ERROR(impl_->CheckBatch());
  Result<int64_t> seq = impl_->JobSeq(task.job_id);
  if (!seq.ok()) return Context(seq.status(), "task", task.name);
  // Its first write inserts the row (a task has one only once it leaves
  // its first state); later ones update it.
  Statement::Use u(impl_->update_task);
  BindTask(u, 0, *seq, task.job_id, task);
  DROVER_RETURN_IF_ERROR(Context(u.Run(), "task", task.name));
  impl_->NoteRow(*seq, task.index);
  return Status::Ok();
}

Result<std::vector<TaskRecord>> Store::Tasks(const std::string& job_id) {
  DROVER_RETURN_IF_ERROR(impl_->WriteForRead());
  std::vector<TaskRecord> out;
  Result<int64_t> seq = impl_->JobSeq(job_id);
  if (!seq.ok()) {
    if (seq.status().code() == StatusCode::kNotFound) return out;
    return seq.status();
  }
  Result<Impl::JobTasks> job = impl_->TasksOfJob(job_id);
  if (!job.ok()) return job.status();
  const bool running = job->running;  // only a running job has unfinished attempts
  // Room for every task at once: a job's rows are read whole (a finished
  // job of 100,000 tasks spent a fifth of its `drover status` growing this
  // vector). Bounded, whatever the file says.
  out.reserve(static_cast<size_t>(std::min<uint64_t>(job->count, uint64_t{1} << 21)));
  {
    Statement::Use u(impl_->tasks);
    u.Bind(1, *seq);
    for (;;) {
      Result<bool> row = u.Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      out.push_back(ReadTask(u));
    }
  }
  // The rows attempts stand for, merged in by index.
  {
    const size_t rowed = out.size();
    Statement::Use u(impl_->standing_rows);
    u.Bind(1, job_id).Bind(2, *seq);
    for (;;) {
      Result<bool> row = u.Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      out.push_back(ReadStandingTask(u, job_id));
    }
    const auto by_index = [](const TaskRecord& a, const TaskRecord& b) {
      return a.index < b.index;
    };
    if (!std::is_sorted(out.begin() + static_cast<ptrdiff_t>(rowed), out.end(),
                        by_index)) {
      // Small keys sorted, then the records moved along each cycle of
      // the permutation, in place: a record is hundreds of bytes, and a
      // second vector of 100,000 of them cost more in page faults than the
      // sort itself.
      const size_t n = out.size() - rowed;
      std::vector<std::pair<uint32_t, size_t>> order;  // (index, where it is now)
      order.reserve(n);
      for (size_t k = 0; k < n; ++k) order.emplace_back(out[rowed + k].index, k);
      std::sort(order.begin(), order.end());
      std::vector<bool> placed(n, false);
      for (size_t k = 0; k < n; ++k) {
        if (placed[k] || order[k].second == k) continue;
        TaskRecord held = std::move(out[rowed + k]);
        size_t to = k;
        for (;;) {
          placed[to] = true;
          const size_t from = order[to].second;
          if (from == k) {
            out[rowed + to] = std::move(held);
            break;
          }
          out[rowed + to] = std::move(out[rowed + from]);
          to = from;
        }
      }
    }
    const auto standing = out.begin() + static_cast<ptrdiff_t>(rowed);
    if (out.size() > rowed)
      std::inplace_merge(out.begin(), standing, out.end(), by_index);
  }
  // Dispatch logs the attempt and writes no row of the task's (docs/state.md,
  // "tasks"): a task whose newest attempt is unfinished and newer than its
  // row is running, on that attempt's worker.
  if (!running) return out;
  Statement::Use u(impl_->running_of_job);
  u.Bind(1, job_id);
  std::unordered_map<std::string_view, TaskRecord*> by_name;
  std::deque<TaskRecord> unrowed;  // stable addresses for by_name
  for (;;) {
    Result<bool> row = u.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    if (by_name.empty()) {
      by_name.reserve(out.size());
      for (TaskRecord& t : out) by_name.emplace(t.name, &t);
    }
    std::string name = u.Text(0);
    auto it = by_name.find(name);
    const int64_t number = u.Int(1);
    if (it == by_name.end()) {
      // Its first attempt runs and its first row is not written yet.
      const int64_t idx = u.Int(4);
      if (idx < 0 || idx >= (int64_t{1} << 32)) continue;  // no index to place it at
      TaskRecord t;
      t.job_id = job_id;
      t.index = static_cast<uint32_t>(idx);
      t.name = std::move(name);
      t.state = "waiting";
      unrowed.push_back(std::move(t));
      it = by_name.emplace(unrowed.back().name, &unrowed.back()).first;
    }
    if (number <= int64_t{it->second->attempts}) continue;
    TaskRecord& t = *it->second;
    t.state = "running";
    t.attempts = static_cast<uint32_t>(number);
    t.worker = u.Text(2);
    if (t.started_ms == 0) t.started_ms = u.Int(3);
    t.pending_reason.clear();
  }
  if (!unrowed.empty()) {
    const size_t rowed = out.size();
    for (TaskRecord& t : unrowed) out.push_back(std::move(t));
    std::inplace_merge(
        out.begin(), out.begin() + static_cast<ptrdiff_t>(rowed), out.end(),
        [](const TaskRecord& a, const TaskRecord& b) { return a.index < b.index; });
  }
  return out;
}

Result<std::vector<std::pair<std::string, uint64_t>>> Store::TaskStateCounts(
    const std::string& job_id) {
  DROVER_RETURN_IF_ERROR(impl_->WriteForRead());
  std::map<std::string, uint64_t> counts;
  Result<int64_t> seq = impl_->JobSeq(job_id);
  if (!seq.ok()) {
    if (seq.status().code() == StatusCode::kNotFound) {
      return std::vector<std::pair<std::string, uint64_t>>();
    }
    return seq.status();
  }
  {
    Statement::Use u(impl_->task_state_counts);
    u.Bind(1, *seq);
    for (;;) {
      Result<bool> row = u.Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      counts[u.Text(0)] = static_cast<uint64_t>(u.Int(1));
    }
  }
  // The tasks whose attempt stands for their row succeeded.
  {
    Statement::Use u(impl_->standing_count);
    u.Bind(1, job_id).Bind(2, *seq);
    Result<bool> row = u.Step();
    if (!row.ok()) return row.status();
    if (*row && u.Int(0) > 0) counts["succeeded"] += static_cast<uint64_t>(u.Int(0));
  }
  Result<Impl::JobTasks> job = impl_->TasksOfJob(job_id);
  if (!job.ok()) return job.status();
  const bool running = job->running;  // only a running job has unfinished attempts
  const uint64_t tasks = job->count;
  // The rows of running tasks still show their state before the dispatch
  // (Tasks): each counts as running instead.
  if (running) {
    Statement::Use u(impl_->running_rows_of_job);
    u.Bind(1, job_id).Bind(2, *seq);
    for (;;) {
      Result<bool> row = u.Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      auto it = counts.find(u.Text(1));
      if (it == counts.end() || it->second == 0) continue;
      if (--it->second == 0) counts.erase(it);
      ++counts["running"];
    }
  }
  // Tasks that run before their first row is written have none; those
  // with neither an attempt nor a row are waiting (JobRecord::tasks).
  uint64_t counted = 0;
  for (const auto& [state, n] : counts) counted += n;
  if (running) {
    Statement::Use r(impl_->running_without_row);
    r.Bind(1, job_id).Bind(2, *seq);
    Result<bool> row = r.Step();
    if (!row.ok()) return row.status();
    if (*row && r.Int(0) > 0) {
      counts["running"] += static_cast<uint64_t>(r.Int(0));
      counted += static_cast<uint64_t>(r.Int(0));
    }
  }
  if (tasks > counted) counts["waiting"] += tasks - counted;
  return std::vector<std::pair<std::string, uint64_t>>(counts.begin(), counts.end());
}

Result<std::vector<TaskRecord>> Store::UnsuccessfulTasks(const std::string& job_id,
                                                         uint32_t limit) {
  std::vector<TaskRecord> out;
  Result<int64_t> seq = impl_->JobSeq(job_id);
  if (!seq.ok()) {
    if (seq.status().code() == StatusCode::kNotFound) return out;
    return seq.status();
  }
  Statement::Use u(impl_->unsuccessful_tasks);
  u.Bind(1, *seq).Bind(2, int64_t{limit});
  for (;;) {
    Result<bool> row = u.Step();
    if (!row.ok()) return row.status();
    if (!*row) return out;
    out.push_back(ReadTask(u));
  }
}

Result<std::optional<TaskRecord>> Store::TaskAt(const std::string& job_id, uint32_t idx,
                                                const std::string& name) {
  DROVER_RETURN_IF_ERROR(impl_->WriteForRead());
  Result<int64_t> seq = impl_->JobSeq(job_id);
  if (!seq.ok()) {
    if (seq.status().code() == StatusCode::kNotFound) return std::optional<TaskRecord>();
    return seq.status();
  }
  // Most ended tasks of a big job have no row of their own (their attempt
  // stands for it): the store's memory of which do saves a query each.
  Result<bool> has_row = impl_->HasTaskRow(*seq, idx);
  if (!has_row.ok()) return has_row.status();
  if (*has_row) {
    Statement::Use u(impl_->task_at);
    u.Bind(1, *seq).Bind(2, int64_t{idx});
    Result<bool> row = u.Step();
    if (!row.ok()) return row.status();
    if (*row) return std::optional<TaskRecord>(ReadTask(u));
  }
  Statement::Use u(impl_->standing_row_at);
  u.Bind(1, job_id).Bind(2, *seq).Bind(3, name).Bind(4, int64_t{idx});
  Result<bool> row = u.Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<TaskRecord>();
  return std::optional<TaskRecord>(ReadStandingTask(u, job_id));
}

Status Store::InsertAttempt(const AttemptRecord& a) {
  if (a.id > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return InvalidArgument("store: attempt id " + std::to_string(a.id) + " out of range");
  }
  // A started attempt goes to the dispatch log (dispatch_log.cc), which
  // the batch's commit writes; outside a batch, it is written now. What
  // the attempts row's keys refused is refused here.
  if (impl_->Loggable(a)) {
    Result<int64_t> seq = impl_->JobSeq(a.job_id);
    if (!seq.ok()) return Context(seq.status(), "attempt", a.id);
    Result<bool> used = impl_->AttemptIdUsed(a.id);
    if (!used.ok()) return used.status();
    if (*used) {
      return AlreadyExists("insert into attempts: attempt id " + std::to_string(a.id) +
                           " is already used");
    }
    impl_->Dispatch(a);
    return impl_->in_batch ? Status::Ok() : impl_->WriteDispatches();
  }
  Status s = InsertAttemptNow(a);
  if (s.ok()) impl_->highest_id = std::max(impl_->highest_id, a.id);
  if (impl_->Journals(s)) {
    const size_t i = impl_->attempt_slots.Keep(a);
    impl_->journal.emplace_back(
        [this, i] { return InsertAttemptNow(impl_->attempt_slots.records[i]); });
  }
  return s;
}

Status Store::InsertAttemptNow(const AttemptRecord& a) {
  DROVER_RETURN_IF_ERROR(impl_->CheckBatch());
  if (!a.finished && a.finished_ms == 0 && IsUnset(a.outcome)) {
    Statement::Use u(impl_->insert_started_attempt);
    u.Bind(1, AsStored(a.id))
        .Bind(2, a.job_id)
        .Bind(3, a.task)
        .Bind(4, int64_t{a.number});
    u.Bind(5, a.worker).Bind(6, a.started_ms).Bind(7, a.task_index);
    return Context(u.Run(), "attempt", a.id);
  }
  Statement::Use u(impl_->insert_attempt);
  u.Bind(1, AsStored(a.id)).Bind(2, a.job_id).Bind(3, a.task).Bind(4, int64_t{a.number});
  u.Bind(5, a.worker).Bind(6, int64_t{a.finished ? 1 : 0}).Bind(7, a.started_ms);
  u.Bind(8, a.finished_ms);
  const std::string outputs = OutputsToJson(a.outcome.outputs);
  BindOutcome(u, a.outcome, a.finished, outputs);
  u.Bind(23, a.task_index);
  return Context(u.Run(), "attempt", a.id);
}

Result<bool> Store::FinishAttempt(uint64_t id, const std::string& worker,
                                  const AttemptOutcome& outcome, int64_t finished_ms,
                                  const std::string* outputs_json) {
  if (outputs_json) {
    return FinishAttemptJournaled(id, worker, outcome, finished_ms, *outputs_json,
                                  std::nullopt);
  }
  return FinishAttemptJournaled(id, worker, outcome, finished_ms,
                                OutputsToJson(outcome.outputs), std::nullopt);
}

Result<bool> Store::FinishAttemptJournaled(uint64_t id, const std::string& worker,
                                           const AttemptOutcome& outcome,
                                           int64_t finished_ms,
                                           const std::string& outputs,
                                           std::optional<uint64_t> stands) {
  if (id > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
  // An attempt of the dispatch log gets its row now, whole; one with a
  // row (an older drover's) has it updated.
  if (std::optional<Result<bool>> logged =
          impl_->EndLogged(id, worker, outcome, finished_ms, outputs, stands)) {
    return *logged;
  }
  Result<bool> done = FinishAttemptNow(outputs, id, worker, outcome, finished_ms, stands);
  if (impl_->Journals(done.status())) {
    const size_t i = impl_->finish_slots.Next();
    auto* slot = &impl_->finish_slots.records[i];
    slot->outputs_json = outputs;
    slot->id = id;
    slot->worker = worker;
    slot->outcome = outcome;
    slot->finished_ms = finished_ms;
    slot->stands = stands;
    impl_->journal.emplace_back([this, i] {
      const Impl::FinishRecord& f = impl_->finish_slots.records[i];
      return FinishAttemptNow(f.outputs_json, f.id, f.worker, f.outcome, f.finished_ms,
                              f.stands)
          .status();
    });
  }
  return done;
}

Result<bool> Store::FinishAttemptNow(const std::string& outputs_json, uint64_t id,
                                     const std::string& worker,
                                     const AttemptOutcome& outcome, int64_t finished_ms,
                                     std::optional<uint64_t> stands) {
  DROVER_RETURN_IF_ERROR(impl_->CheckBatch());
  DROVER_RETURN_IF_ERROR(impl_->WriteForRead());
  Statement::Use u(stands ? impl_->finish_standing_attempt : impl_->finish_attempt);
  u.Bind(1, AsStored(id)).Bind(5, worker).Bind(8, finished_ms);
  BindOutcome(u, outcome, /*finished=*/true, outputs_json);
  if (stands) u.Bind(23, AsStored(*stands));
  DROVER_RETURN_IF_ERROR(Context(u.Run(), "attempt", id));
  return u.Changes() == 1;
}

Result<Store::Impl::JobTasks> Store::Impl::TasksOfJob(const std::string& job_id) {
  Statement::Use t(job_tasks);
  t.Bind(1, job_id);
  Result<bool> row = t.Step();
  if (!row.ok()) return row.status();
  JobTasks out;
  if (!*row) return out;
  if (t.Int(0) > 0) out.count = static_cast<uint64_t>(t.Int(0));
  out.running = t.Int(1) != 0;
  return out;
}

Result<bool> Store::Impl::HasTaskRow(int64_t job, uint32_t idx) {
  auto it = rows.find(job);
  if (it == rows.end()) {
    KnownRows known;
    Statement::Use u(task_row_indexes);
    u.Bind(1, job);
    for (;;) {
      Result<bool> row = u.Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      const int64_t i = u.Int(0);
      if (i < 0 || i >= KnownRows::kMaxIndex) {
        known.all = true;  // not an index drover writes: assume every row
        break;
      }
      if (static_cast<size_t>(i) >= known.has.size())
        known.has.resize(static_cast<size_t>(i) + 1);
      known.has[static_cast<size_t>(i)] = true;
    }
    it = rows.emplace(job, std::move(known)).first;
  }
  const KnownRows& known = it->second;
  return known.all || (idx < known.has.size() && known.has[idx]);
}

Result<bool> Store::EndAttempt(uint64_t id, uint32_t number, const std::string& worker,
                               const AttemptOutcome& outcome,
                               const std::string& outputs_json, const TaskRecord& task) {
  std::optional<uint64_t> stands;  // the task's fingerprint, when it does
  if (!worker.empty() && task.worker == worker && task.outputs_json == outputs_json &&
      AttemptCanStandFor(task, outcome, number)) {
    Result<int64_t> seq = impl_->JobSeq(task.job_id);
    if (!seq.ok()) return seq.status();
    Result<bool> has_row = impl_->HasTaskRow(*seq, task.index);
    if (!has_row.ok()) return has_row.status();
    if (!*has_row) stands = task.fingerprint;
  }
  Result<bool> done =
      FinishAttemptJournaled(id, worker, outcome, task.finished_ms, outputs_json, stands);
  if (!done.ok()) return done;
  // An attempt that was not recorded stands for nothing: the row is written.
  if (stands && *done) return true;
  DROVER_RETURN_IF_ERROR(UpdateTask(task));
  return done;
}

Result<std::vector<AttemptRecord>> Store::Attempts(const std::string& job_id,
                                                   const std::string& task,
                                                   std::optional<uint32_t> index) {
  DROVER_RETURN_IF_ERROR(impl_->WriteForRead());
  // attempts_by_task finds a task's attempts by its index: the caller's,
  // its row's, or (neither known) an attempt's. Attempts whose index is
  // not known (-1: docs/state.md, "attempts") are read by name.
  int64_t from_row = -1;
  if (Result<int64_t> seq = impl_->JobSeq(job_id); seq.ok()) {
    Statement::Use r(impl_->task_row_idx);
    r.Bind(1, *seq).Bind(2, task);
    Result<bool> row = r.Step();
    if (!row.ok()) return row.status();
    if (*row) from_row = r.Int(0);
  } else if (seq.status().code() != StatusCode::kNotFound) {
    return seq.status();
  }
  int64_t given = index ? int64_t{*index} : -1;
  if (given < 0 && from_row < 0) {
    Statement::Use a(impl_->attempt_task_idx);
    a.Bind(1, job_id).Bind(2, task);
    Result<bool> row = a.Step();
    if (!row.ok()) return row.status();
    if (*row) given = a.Int(0);
  }
  Statement::Use u(impl_->attempts);
  u.Bind(1, job_id).Bind(2, task).Bind(3, given).Bind(4, from_row);
  std::vector<AttemptRecord> out;
  for (;;) {
    Result<bool> row = u.Step();
    if (!row.ok()) return row.status();
    if (!*row) return out;
    out.push_back(ReadAttempt(u));
  }
}

Result<std::vector<AttemptRecord>> Store::UnfinishedAttempts() {
  DROVER_RETURN_IF_ERROR(impl_->WriteForRead());
  Statement::Use u(impl_->unfinished_attempts);
  std::vector<AttemptRecord> out;
  for (;;) {
    Result<bool> row = u.Step();
    if (!row.ok()) return row.status();
    if (!*row) return out;
    out.push_back(ReadAttempt(u));
  }
}

Result<uint64_t> Store::MaxAttemptId() {
  DROVER_RETURN_IF_ERROR(impl_->WriteForRead());
  Statement::Use u(impl_->max_attempt_id);
  Result<bool> row = u.Step();
  if (!row.ok()) return row.status();
  return *row ? FromStored(u.Int(0)) : uint64_t{0};
}

Status Store::InsertArtifact(const ArtifactRecord& a) {
  return impl_->Journal(InsertArtifactNow(a),
                        [this, a = a] { return InsertArtifactNow(a); });
}

Status Store::InsertArtifactNow(const ArtifactRecord& a) {
  DROVER_RETURN_IF_ERROR(impl_->CheckBatch());
  Statement st;
  DROVER_RETURN_IF_ERROR(st.Prepare(impl_->db.get(),
                                    "INSERT OR REPLACE INTO artifacts (attempt_id, "
                                    "job_id, task, path, sha256, size, mode, "
                                    "created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                                    "insert into artifacts"));
  Statement::Use u(st);
  u.Bind(1, AsStored(a.attempt_id)).Bind(2, a.job_id).Bind(3, a.task).Bind(4, a.path);
  u.Bind(5, a.sha256).Bind(6, static_cast<int64_t>(a.size)).Bind(7, int64_t{a.mode});
  u.Bind(8, a.created_ms);
  return Context(u.Run(), "artifact", a.path);
}

Result<std::vector<ArtifactRecord>> Store::Artifacts(const std::string& job_id,
                                                     const std::string& task) {
  DROVER_RETURN_IF_ERROR(impl_->WriteForRead());
  // The succeeded attempt of a task is its last one with reason 'ok':
  // a task succeeds once per run; after a resume, the newest wins. A cache
  // hit's id comes from the same sequence, so the newer of a hit and a
  // success wins the same way.
  Statement st;
  DROVER_RETURN_IF_ERROR(st.Prepare(
      impl_->db.get(),
      "SELECT a.attempt_id, a.job_id, a.task, a.path, a.sha256, a.size, a.mode, "
      "a.created_ms "
      "FROM artifacts a WHERE a.job_id = ?1 AND (?2 = '' OR a.task = ?2) AND "
      "a.attempt_id = "
      "max((SELECT COALESCE(max(t.id), 0) FROM attempts t WHERE t.job_id = a.job_id "
      "AND t.task_idx IN (-1, (SELECT x.task_idx FROM attempts x WHERE x.id = "
      "a.attempt_id), (SELECT r.idx FROM task_rows r JOIN jobs j ON r.job = j.seq WHERE "
      "j.id = a.job_id AND r.name = a.task)) "
      "AND t.task = a.task AND t.finished = 1 AND t.reason = 'ok'), "
      "(SELECT COALESCE(max(c.hit_id), 0) FROM cache_decisions c WHERE c.job_id = "
      "a.job_id "
      "AND c.task = a.task AND c.cached = 1)) ORDER BY a.task, a.path",
      "select artifacts"));
  Statement::Use u(st);
  u.Bind(1, job_id).Bind(2, task);
  std::vector<ArtifactRecord> out;
  for (;;) {
    Result<bool> row = u.Step();
    if (!row.ok()) return row.status();
    if (!*row) return out;
    ArtifactRecord& r = out.emplace_back();
    r.attempt_id = FromStored(u.Int(0));
    r.job_id = u.Text(1);
    r.task = u.Text(2);
    r.path = u.Text(3);
    r.sha256 = u.Text(4);
    r.size = static_cast<uint64_t>(u.Int(5));
    r.mode = static_cast<uint32_t>(u.Int(6));
    r.created_ms = u.Int(7);
  }
}

Result<std::vector<std::string>> Store::ReferencedBlobs() {
  Statement st;
  DROVER_RETURN_IF_ERROR(st.Prepare(
      impl_->db.get(), "SELECT DISTINCT sha256 FROM artifacts", "select artifact blobs"));
  Statement::Use u(st);
  std::vector<std::string> out;
  for (;;) {
    Result<bool> row = u.Step();
    if (!row.ok()) return row.status();
    if (!*row) return out;
    out.push_back(u.Text(0));
  }
}

Result<int64_t> Store::ForgetArtifacts(int64_t keep_last, int64_t before_ms) {
  DROVER_RETURN_IF_ERROR(impl_->CheckBatch());
  Statement st;
  DROVER_RETURN_IF_ERROR(st.Prepare(
      impl_->db.get(),
      "DELETE FROM artifacts WHERE job_id IN (SELECT id FROM jobs WHERE "
      "(?1 >= 0 AND id NOT IN (SELECT id FROM jobs ORDER BY created_ms DESC, id DESC "
      "LIMIT ?1)) OR (?2 > 0 AND created_ms < ?2))",
      "forget artifacts"));
  Statement::Use u(st);
  u.Bind(1, keep_last).Bind(2, before_ms);
  DROVER_RETURN_IF_ERROR(u.Run());
  const int64_t forgotten = static_cast<int64_t>(u.Changes());
  // The cache entries of the same jobs go too: gc may then remove their
  // blobs, and a hit needs every blob of its entry.
  Statement entries;
  DROVER_RETURN_IF_ERROR(entries.Prepare(
      impl_->db.get(),
      "DELETE FROM cache_entries WHERE job_id NOT IN (SELECT id FROM jobs) OR job_id IN "
      "(SELECT id FROM jobs WHERE (?1 >= 0 AND id NOT IN (SELECT id FROM jobs ORDER BY "
      "created_ms DESC, id DESC LIMIT ?1)) OR (?2 > 0 AND created_ms < ?2))",
      "forget cache entries"));
  Statement::Use e(entries);
  e.Bind(1, keep_last).Bind(2, before_ms);
  DROVER_RETURN_IF_ERROR(e.Run());
  return forgotten;
}

sqlite3* Store::Db() const { return impl_->db.get(); }

Status Store::CheckBatch() const { return impl_->CheckBatch(); }

Status Store::Journal(Status s, std::function<Status()> redo) {
  return impl_->Journal(std::move(s), std::move(redo));
}

std::filesystem::path Store::LogPath(const std::string& job_id, const std::string& task,
                                     uint32_t number, bool stderr_stream) const {
  return impl_->dir / "logs" / EncodePathComponent(job_id) / EncodePathComponent(task) /
         (std::to_string(number) + (stderr_stream ? ".err" : ".out"));
}

}  // namespace drover::store

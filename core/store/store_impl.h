// Store::Impl, the state behind a Store: the connection, the prepared
// statements, the batch and its journal. Internal to core/store: shared by
// store.cc (opening, batches, jobs) and store_tasks.cc (tasks, attempts,
// artifacts).
#ifndef DROVER_CORE_STORE_STORE_IMPL_H_
#define DROVER_CORE_STORE_STORE_IMPL_H_

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/store/rows.h"
#include "core/store/sqlite_util.h"
#include "core/store/store.h"
#include "core/store/wal_checkpointer.h"

namespace drover::store {
namespace internal {

// Names the row in a failed status. Builds no string when `s` is ok: these
// calls sit on the coordinator's per-task hot path.
template <typename Name>
Status Context(Status s, std::string_view what, const Name& name) {
  if (s.ok()) return s;
  std::string context(what);
  context += ' ';
  if constexpr (std::is_integral_v<Name>) {
    context += std::to_string(name);
  } else {
    context += name;
  }
  return s.WithContext(context);
}

}  // namespace internal

class Store::Impl {
 public:
  struct Closer {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
  };

  // Declared first so it is destroyed last, after every statement below has
  // been finalized; sqlite3_close then really closes.
  std::unique_ptr<sqlite3, Closer> db;
  // db's checkpoints, off the caller's thread: stopped before db closes.
  std::unique_ptr<WalCheckpointer> checkpointer;
  std::filesystem::path dir;
  int version = 0;
  bool in_batch = false;

  // The writes of the open batch, in order, to redo them when SQLite rolled
  // the batch back for want of space (see Commit). `pending`: such a batch
  // waits to be redone by the next Begin().
  std::vector<std::function<Status()>> journal;
  bool replaying = false;
  // The records of the hot writes (a task's three) in the journal: slots
  // reused from batch to batch, so that journaling one copies into buffers
  // that are already there, and its redo is a closure of two words, which
  // std::function holds without an allocation.
  struct FinishRecord {
    std::string outputs_json;
    uint64_t id = 0;
    std::string worker;
    AttemptOutcome outcome;
    int64_t finished_ms = 0;
    // The task's fingerprint when the attempt stands for its row.
    std::optional<uint64_t> stands;
  };
  template <typename Record>
  struct Slots {
    // Slots kept past a batch that used more: a batch of a large turn (a
    // few thousand dispatches) does not pin its records for good.
    static constexpr size_t kKept = 1024;
    std::vector<Record> records;
    size_t used = 0;
    // The index of the slot the next record goes to, kept with its buffers.
    size_t Next() {
      if (used == records.size()) records.emplace_back();
      return used++;
    }
    // Keeps a copy of `r` in the next slot; its index.
    size_t Keep(const Record& r) {
      const size_t i = Next();
      records[i] = r;
      return i;
    }
    void Clear() {
      used = 0;
      if (records.size() > kKept) {
        records.resize(kKept);
        records.shrink_to_fit();
      }
    }
  };
  // An attempt of the dispatch log written whole at its end: the attempt
  // as dispatched, with its outcome, worker and finished_ms filled in.
  struct EndedRecord {
    AttemptRecord attempt;
    std::string outputs_json;
    std::optional<uint64_t> stands;
  };
  Slots<TaskRecord> task_slots;
  Slots<AttemptRecord> attempt_slots;
  Slots<FinishRecord> finish_slots;
  Slots<EndedRecord> ended_slots;
  void ClearJournal() {
    journal.clear();
    task_slots.Clear();
    attempt_slots.Clear();
    finish_slots.Clear();
    ended_slots.Clear();
    ended_order.clear();
    ended_listed = 0;
    ended_written = 0;
  }
  // Whether a write that returned `s` belongs to the journal (Journal).
  bool Journals(const Status& s) const {
    return in_batch && !replaying && (s.ok() || s.code() == StatusCode::kUnavailable);
  }
  bool pending = false;
  // KeepReserve: the reserve's size (0: none) and whether a commit used it.
  uint64_t reserve_bytes = 0;
  bool space_low = false;

  Statement begin, commit, rollback, savepoint, release, rollback_to;
  Statement insert_job, set_job_state, replace_job, get_job, latest_job, latest_job_named,
      latest_job_id, latest_job_id_named, job_state, jobs_in_state, recent_jobs,
      find_jobs, task_state_counts;
  Statement job_seq, job_tasks, set_job_tasks, running_without_row, unsuccessful_tasks,
      task_at, attempt_task_idx, task_row_idx, renumber_attempts;
  Statement insert_task, insert_tasks, upsert_task, upsert_tasks, update_task,
      delete_task, delete_job_tasks, tasks, running_of_job, running_rows_of_job;

  // Each job's number (jobs.seq), the first half of its task rows' key,
  // read once per job (job_seq). Forgotten whenever a transaction or
  // savepoint is rolled back, since the number of a job whose row was
  // rolled back goes to the next job inserted; the task rows' foreign key
  // on (job, job_id) would refuse a stale one anyway.
  std::unordered_map<std::string, int64_t> seqs;
  // The job's number; kNotFound when there is no such job.
  Result<int64_t> JobSeq(const std::string& job_id);
  Statement insert_attempt, insert_started_attempt, finish_attempt, attempts,
      unfinished_attempts, max_attempt_id;
  // Attempts that stand for their task's row (docs/state.md, "tasks").
  Statement finish_standing_attempt, standing_rows, standing_count, standing_row_at,
      clear_standing;
  // A job's task count (JobRecord::tasks) and whether it is in state
  // `running`; zero and false for no such job.
  struct JobTasks {
    uint64_t count = 0;
    bool running = false;
  };
  Result<JobTasks> TasksOfJob(const std::string& job_id);
  // Whether task idx of the job numbered `job` has a row. Answered from
  // `rows`, which reads a job's row indexes once (task_row_indexes) and
  // is told of every row written since (NoteRow): EndAttempt asks it for
  // each attempt that ends, and a SELECT each was 3% of the coordinator's
  // loop (docs/benchmarks.md, session 25).
  Result<bool> HasTaskRow(int64_t job, uint32_t idx);
  void NoteRow(int64_t job, uint32_t idx) {
    auto it = rows.find(job);
    if (it == rows.end()) return;  // not read yet: the read will see it
    KnownRows& known = it->second;
    if (known.all) return;
    if (idx >= KnownRows::kMaxIndex) {
      known.all = true;
      return;
    }
    if (idx >= known.has.size()) known.has.resize(static_cast<size_t>(idx) + 1);
    known.has[idx] = true;
  }
  // Of each job read by HasTaskRow (by number), whether each task index
  // has a row. Only ever errs towards "has a row": a row rolled back or
  // deleted stays marked, and the write EndAttempt then makes (an upsert)
  // is merely not needed. Only this connection writes task rows (one
  // coordinator holds the state directory). Forgotten with `seqs` and
  // when a job's state is set, so a job that ended holds no memory.
  struct KnownRows {
    // Beyond any instance cap: an index past it (a file not written by
    // drover) makes every task count as having a row, not a huge vector.
    static constexpr int64_t kMaxIndex = int64_t{1} << 24;
    std::vector<bool> has;  // by task index
    bool all = false;
  };
  std::unordered_map<int64_t, KnownRows> rows;
  Statement task_row_indexes;
  // Forgets the job numbers (and their rows) read so far.
  void ForgetJobs() {
    seqs.clear();
    rows.clear();
  }

  ~Impl() {
    // An open batch is dropped, never half-kept: roll it back explicitly
    // rather than leave it to sqlite3_close.
    if (db != nullptr && sqlite3_get_autocommit(db.get()) == 0) {
      Statement::Use u(rollback);
      (void)u.Run();
    }
  }

  Status PrepareStatements();

  // The dispatch log (dispatch_log.cc; docs/state.md, "dispatches"). A
  // dispatched attempt has no `attempts` row until it ends: the open
  // batch's dispatches are one row of `dispatches`, written by its commit
  // (WriteDispatches), and the attempt's row is inserted whole, finished,
  // when it ends. The writer keeps what the log holds in memory: each
  // attempt not ended (in_flight, with the log row it is in: 0 while its
  // row is not written yet), how many attempts of each log row are not
  // ended, and the rows to delete.
  struct InFlight {
    AttemptRecord attempt;
    int64_t dispatch = 0;
  };
  std::unordered_map<uint64_t, InFlight> in_flight;
  std::vector<uint64_t> undispatched;  // in the open batch, in order
  std::unordered_map<int64_t, uint32_t> dispatch_open;
  std::vector<int64_t> dispatch_done;
  std::string dispatch_json;  // kept for its buffer
  Statement insert_dispatch, delete_dispatch, load_in_flight, finished_dispatches,
      insert_ended_attempt, insert_ended_rows, attempt_id_used;
  // The attempts of the open batch that ended: their rows are written
  // together, in the order of their ids, kEndedRows to a statement
  // (WriteEnded), at the commit or before a read of the batch's rows,
  // where an INSERT a row cost about a third more (docs/benchmarks.md,
  // "dispatch", session 34). ended_slots[ended_listed, used) are not in
  // ended_order yet; ended_order[ended_written, end) are not written.
  std::vector<uint32_t> ended_order;
  size_t ended_listed = 0;
  size_t ended_written = 0;
  Status WriteEnded();
  // Writes the ended attempts ended_order[pos, pos + n), n 1 or kEndedRows.
  Status InsertEndedRows(size_t pos, size_t n);
  // Binds ended attempt `e` as the row whose first parameter is k + 1.
  static void BindEnded(Statement::Use& u, const EndedRecord& e, int k);
  Status PrepareDispatchLog();
  // Writes the open batch's log row and deletes the rows whose attempts all
  // ended: journaled writes, so a batch redone after a full disk redoes
  // them. Called before a commit and before a read of what runs.
  Status WriteDispatches();
  // Before a read of attempts or of what runs, inside a batch: the batch's
  // ended attempts and dispatches are in the state file (a read outside
  // one sees them written already). Also before a write that reads or
  // changes attempts rows (Atomically, an UPDATE of one).
  Status WriteForRead() {
    if (!in_batch || replaying) return Status::Ok();
    if (ended_listed < ended_slots.used) DROVER_RETURN_IF_ERROR(WriteEnded());
    if (undispatched.empty() && dispatch_done.empty()) return Status::Ok();
    return WriteDispatches();
  }
  // Fills the memory above from the log (a writer's Open, and after a
  // batch was rolled back).
  Status LoadInFlight();
  // kFailedPrecondition naming the first row of `dispatches` that is not
  // what drover writes.
  Status CheckDispatchLog();
  void ForgetInFlight() {
    in_flight.clear();
    undispatched.clear();
    dispatch_open.clear();
    dispatch_done.clear();
  }
  Status InsertDispatchNow(int64_t first, int64_t last, const std::string& json);
  Status DeleteDispatchNow(int64_t row);
  // An attempt's row as it starts (unfinished), and one written whole at
  // its end.
  Status InsertStartedNow(const AttemptRecord& a);
  Status InsertEndedNow(const EndedRecord& e);
  // Whether `a` is a started attempt (unfinished, outcome unset), which
  // the log takes (Dispatch); any other is written as it is.
  bool Loggable(const AttemptRecord& a) const;
  // Whether attempt id `id` is in the log or has a row. Ids above the
  // highest this store has seen are asked of neither.
  Result<bool> AttemptIdUsed(uint64_t id);
  uint64_t highest_id = 0;
  void Dispatch(const AttemptRecord& a);
  // Ends attempt `id` of the log: its row written whole (journaled), and
  // true; nullopt when the log does not hold it (a row of an older drover,
  // or an attempt already ended).
  std::optional<Result<bool>> EndLogged(uint64_t id, const std::string& worker,
                                        const AttemptOutcome& outcome,
                                        int64_t finished_ms,
                                        const std::string& outputs_json,
                                        std::optional<uint64_t> stands);
  // The log row `dispatch` has one attempt fewer not ended.
  void Ended(int64_t dispatch) {
    if (dispatch == 0) return;
    auto it = dispatch_open.find(dispatch);
    if (it == dispatch_open.end() || --it->second > 0) return;
    dispatch_open.erase(it);
    dispatch_done.push_back(dispatch);
  }

  // Every write first checks that a batch it belongs to still exists:
  // SQLite rolls a transaction back by itself after some errors (disk
  // full, I/O error), and the later writes must not silently autocommit.
  // kUnavailable, like the full disk that usually causes it, so that the
  // write is journaled and redone with its batch (Journal).
  Status CheckBatch() const {
    if (in_batch && sqlite3_get_autocommit(db.get()) != 0) {
      return Unavailable(
          "store: the open batch was rolled back by SQLite after an earlier error");
    }
    return Status::Ok();
  }

  // Keeps `redo` in the batch's journal when the write belongs to the
  // batch: it succeeded, or failed only for want of room (kUnavailable:
  // a full disk, or a batch SQLite abandoned). Returns `s`.
  //
  // Callers capture the records they redo with an init-capture (`task =
  // task`): a plain capture of a const reference makes a const member,
  // which the move into std::function copies a second time (for a job's
  // task rows, hundreds of bytes a task).
  Status Journal(Status s, std::function<Status()> redo) {
    if (Journals(s)) journal.push_back(std::move(redo));
    return s;
  }

  void RollbackIfOpen() {
    ForgetJobs();
    if (sqlite3_get_autocommit(db.get()) == 0) {
      Statement::Use u(rollback);
      (void)u.Run();
    }
  }

  // COMMIT of the open batch; in_batch follows SQLite's view afterwards.
  Status CommitOpen() {
    if (sqlite3_get_autocommit(db.get()) != 0) {
      in_batch = false;
      ForgetJobs();
      return Unavailable(
          "store: Commit: the batch was rolled back by SQLite after an earlier error");
    }
    Statement::Use u(commit);
    Status s = u.Run();
    // A failed COMMIT may leave the transaction open (busy: retry Commit or
    // Rollback) or may have ended it; follow SQLite's view.
    in_batch = sqlite3_get_autocommit(db.get()) == 0;
    if (!s.ok()) ForgetJobs();
    return s;
  }

  // Opens a transaction and redoes the journal in it. On failure the
  // transaction is rolled back and the journal kept.
  Status Redo() {
    {
      Statement::Use u(begin);
      DROVER_RETURN_IF_ERROR(u.Run());
    }
    in_batch = true;
    replaying = true;
    Status s;
    for (auto& write : journal) {
      s = write();
      // A write that fails for another reason failed the first time too
      // (it was journaled for want of room) and undid itself: go on.
      if (s.code() == StatusCode::kUnavailable) break;
      s = Status::Ok();
    }
    replaying = false;
    if (!s.ok()) {
      RollbackIfOpen();
      in_batch = false;
    }
    return s;
  }

  std::filesystem::path ReservePath() const { return dir / "reserve"; }
  Status AllocateReserve();

  // Runs `fn` atomically: in its own IMMEDIATE transaction outside a
  // batch, under a savepoint inside one (so a failure undoes only `fn`).
  template <typename Fn>
  Status Atomically(Fn&& fn) {
    DROVER_RETURN_IF_ERROR(CheckBatch());
    DROVER_RETURN_IF_ERROR(WriteForRead());
    const bool own = sqlite3_get_autocommit(db.get()) != 0;
    {
      Statement::Use u(own ? begin : savepoint);
      DROVER_RETURN_IF_ERROR(u.Run());
    }
    Status s = fn();
    if (s.ok()) {
      Statement::Use u(own ? commit : release);
      s = u.Run();
      if (s.ok()) return s;
    }
    ForgetJobs();
    if (own) {
      if (sqlite3_get_autocommit(db.get()) == 0) {
        Statement::Use u(rollback);
        (void)u.Run();
      }
    } else {
      Statement::Use undo(rollback_to);
      (void)undo.Run();
      Statement::Use u(release);
      (void)u.Run();
    }
    return s;
  }

  // Writes `tasks` under job.id, kTaskChunk rows per `chunk` statement and
  // the rest with `one` (insert_tasks/insert_task or the upserts).
  Status InsertTaskRows(Statement& one, Statement& chunk, const JobRecord& job,
                        const std::vector<TaskRecord>& tasks);
};

}  // namespace drover::store

#endif  // DROVER_CORE_STORE_STORE_IMPL_H_

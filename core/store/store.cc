// The Store over the sqlite3 C API. The schema and its migrations live in
// schema.cc, the statement helpers in sqlite_util.cc, the mapping between
// records and columns in rows.cc; this file holds the statements of every
// operation, prepared once at Open and reused, and the transaction
// discipline (batches, and atomic multi-row operations).
#include "core/store/store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "core/store/log_path.h"
#include "core/store/rows.h"
#include "core/store/schema.h"
#include "core/store/sqlite_util.h"
#include "core/store/wal_checkpointer.h"

namespace drover::store {
namespace {

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

}  // namespace

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
  Slots<TaskRecord> task_slots;
  Slots<AttemptRecord> attempt_slots;
  Slots<FinishRecord> finish_slots;
  void ClearJournal() {
    journal.clear();
    task_slots.Clear();
    attempt_slots.Clear();
    finish_slots.Clear();
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
      jobs_in_state, recent_jobs, find_jobs, task_state_counts;
  Statement job_seq, job_tasks, set_job_tasks, running_without_row, unsuccessful_tasks,
      task_at;
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
  Statement finish_standing_attempt, task_row_exists, standing_rows, standing_count,
      standing_row_at, clear_standing;
  // Whether task idx of the job numbered `job` has a row.
  Result<bool> HasTaskRow(int64_t job, uint32_t idx);

  ~Impl() {
    // An open batch is dropped, never half-kept: roll it back explicitly
    // rather than leave it to sqlite3_close.
    if (db != nullptr && sqlite3_get_autocommit(db.get()) == 0) {
      Statement::Use u(rollback);
      (void)u.Run();
    }
  }

  Status PrepareStatements();

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
    seqs.clear();
    if (sqlite3_get_autocommit(db.get()) == 0) {
      Statement::Use u(rollback);
      (void)u.Run();
    }
  }

  // COMMIT of the open batch; in_batch follows SQLite's view afterwards.
  Status CommitOpen() {
    if (sqlite3_get_autocommit(db.get()) != 0) {
      in_batch = false;
      seqs.clear();
      return Unavailable(
          "store: Commit: the batch was rolled back by SQLite after an earlier error");
    }
    Statement::Use u(commit);
    Status s = u.Run();
    // A failed COMMIT may leave the transaction open (busy: retry Commit or
    // Rollback) or may have ended it; follow SQLite's view.
    in_batch = sqlite3_get_autocommit(db.get()) == 0;
    if (!s.ok()) seqs.clear();
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
    seqs.clear();
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

Status Store::Impl::PrepareStatements() {
  struct Def {
    Statement Impl::*member;
    std::string sql;
    const char* op;
  };
  const Def defs[] = {
      {&Impl::begin, "BEGIN IMMEDIATE", "begin"},
      {&Impl::commit, "COMMIT", "commit"},
      {&Impl::rollback, "ROLLBACK", "rollback"},
      {&Impl::savepoint, "SAVEPOINT store_op", "savepoint"},
      {&Impl::release, "RELEASE store_op", "release savepoint"},
      {&Impl::rollback_to, "ROLLBACK TO store_op", "rollback to savepoint"},
      // Numbered one past the highest number (jobs_by_seq).
      {&Impl::insert_job,
       Sql({"INSERT INTO jobs (", kJobCols,
            ", seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
            "(SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs))"}),
       "insert into jobs"},
      {&Impl::job_seq, "SELECT seq FROM jobs WHERE id = ?1", "select a job's number"},
      {&Impl::set_job_state, "UPDATE jobs SET state = ?2, finished_ms = ?3 WHERE id = ?1",
       "update jobs (state)"},
      {&Impl::replace_job,
       "UPDATE jobs SET spec_text = ?2, state = ?3, finished_ms = ?4, submitter_key = "
       "?5, submitter_name = ?6, tasks = ?7 WHERE id = ?1",
       "update jobs (spec)"},
      {&Impl::get_job, Sql({"SELECT ", kJobCols, " FROM jobs WHERE id = ?1"}),
       "select from jobs by id"},
      {&Impl::latest_job,
       Sql({"SELECT ", kJobCols, " FROM jobs ORDER BY created_ms DESC, id DESC LIMIT 1"}),
       "select latest job"},
      {&Impl::latest_job_named,
       Sql({"SELECT ", kJobCols,
            " FROM jobs WHERE name = ?1 ORDER BY created_ms DESC, id DESC LIMIT 1"}),
       "select latest job by name"},
      {&Impl::jobs_in_state,
       Sql({"SELECT ", kJobCols, " FROM jobs WHERE state = ?1 ORDER BY created_ms, id"}),
       "select jobs by state"},
      {&Impl::recent_jobs,
       Sql({"SELECT ", kJobCols,
            " FROM jobs ORDER BY created_ms DESC, id DESC LIMIT ?1"}),
       "select recent jobs"},
      {&Impl::find_jobs,
       Sql({"SELECT ", kJobCols,
            " FROM jobs WHERE (?1 = '' OR state = ?1) AND (?2 = '' OR name = ?2) AND "
            "created_ms >= ?3 ORDER BY created_ms DESC, id DESC LIMIT ?4"}),
       "select jobs (query)"},
      {&Impl::task_state_counts,
       "SELECT state, COUNT(*) FROM task_rows WHERE job = ?1 GROUP BY state ORDER BY "
       "state",
       "count tasks by state"},
      {&Impl::insert_task, InsertTasksSql(1, false), "insert into tasks"},
      {&Impl::insert_tasks, InsertTasksSql(kTaskChunk, false), "insert into tasks"},
      {&Impl::upsert_task, InsertTasksSql(1, true), "upsert into tasks"},
      {&Impl::upsert_tasks, InsertTasksSql(kTaskChunk, true), "upsert into tasks"},
      // A task's first write inserts its row; a later one updates it, all
      // but its idx. The same row is (job, idx) and (job, name): a row at
      // the task's idx with another name is a conflict of the key, an error.
      {&Impl::update_task,
       Sql({InsertTasksSql(1, false), " ON CONFLICT (job, name) DO UPDATE SET ",
            kTaskProgressSet}),
       "upsert into tasks"},
      {&Impl::job_tasks, "SELECT tasks FROM jobs WHERE id = ?1", "select the task count"},
      {&Impl::set_job_tasks, "UPDATE jobs SET tasks = ?2 WHERE id = ?1",
       "update jobs (tasks)"},
      // `+job_id`: through the small partial index of unfinished attempts,
      // not every attempt of the job by attempts_by_task (0.05 against 18 ms
      // for a job of 100,000 finished attempts).
      {&Impl::running_of_job,
       "SELECT task, number, worker, started_ms, task_idx FROM attempts WHERE finished = "
       "0 "
       "AND +job_id = ?1 ORDER BY id",
       "select unfinished attempts of a job"},
      // ?1 the job's id, ?2 its number.
      {&Impl::running_rows_of_job,
       "SELECT DISTINCT t.name, t.state FROM attempts a JOIN task_rows t ON t.job = ?2 "
       "AND "
       "t.name = a.task WHERE a.finished = 0 AND +a.job_id = ?1 AND a.number > "
       "t.attempts",
       "select the rows of running tasks"},
      {&Impl::running_without_row,
       "SELECT COUNT(DISTINCT a.task) FROM attempts a WHERE a.finished = 0 AND +a.job_id "
       "= ?1 AND NOT EXISTS (SELECT 1 FROM task_rows t WHERE t.job = ?2 AND t.name = "
       "a.task)",
       "count the running tasks without a row"},
      {&Impl::delete_task, "DELETE FROM task_rows WHERE job = ?1 AND name = ?2",
       "delete from tasks"},
      {&Impl::delete_job_tasks, "DELETE FROM task_rows WHERE job = ?1",
       "delete a job's tasks"},
      {&Impl::tasks,
       Sql({"SELECT ", kTaskCols, " FROM task_rows WHERE job = ?1 ORDER BY idx"}),
       "select tasks"},
      {&Impl::task_at,
       Sql({"SELECT ", kTaskCols, " FROM task_rows WHERE job = ?1 AND idx = ?2"}),
       "select a task by index"},
      {&Impl::unsuccessful_tasks,
       Sql({"SELECT ", kTaskCols,
            " FROM task_rows WHERE job = ?1 AND state NOT IN ('succeeded', 'cached') "
            "ORDER BY idx LIMIT ?2"}),
       "select the tasks that did not succeed"},
      {&Impl::insert_attempt,
       Sql({"INSERT INTO attempts (", kAttemptCols, ") VALUES (", kAttemptValues, ")"}),
       "insert into attempts"},
      // An attempt as it starts: its outcome columns take their defaults,
      // which are an unset AttemptOutcome's (docs/state.md). A sixth of
      // the binds of the statement above, for the write every dispatch makes.
      {&Impl::insert_started_attempt,
       "INSERT INTO attempts (id, job_id, task, number, worker, started_ms, task_idx) "
       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
       "insert into attempts"},
      {&Impl::finish_attempt,
       Sql({"UPDATE attempts SET finished = 1, worker = COALESCE(NULLIF(?5, ''), "
            "worker), "
            "finished_ms = ?8, ",
            kOutcomeSet, " WHERE id = ?1 AND finished = 0"}),
       "update attempts (finish)"},
      // As finish_attempt, and the attempt stands for its task's row, with
      // the task's fingerprint (?23).
      {&Impl::finish_standing_attempt,
       Sql({"UPDATE attempts SET finished = 1, worker = COALESCE(NULLIF(?5, ''), "
            "worker), finished_ms = ?8, ",
            kOutcomeSet,
            ", task_row = 1, fingerprint = ?23 WHERE id = ?1 AND finished = 0"}),
       "update attempts (finish, standing for the task's row)"},
      {&Impl::task_row_exists, "SELECT 1 FROM task_rows WHERE job = ?1 AND idx = ?2",
       "select a task row"},
      // ?1 the job's id, ?2 its number: its attempts that stand for a row
      // the task does not have (one written since wins).
      {&Impl::standing_rows,
       Sql({"SELECT ", kStandingCols,
            " FROM attempts a WHERE a.job_id = ?1 AND a.task_row = 1 AND NOT EXISTS "
            "(SELECT 1 FROM task_rows t WHERE t.job = ?2 AND t.name = a.task) ORDER BY "
            "a.task_idx"}),
       "select the attempts that stand for task rows"},
      {&Impl::standing_count,
       "SELECT COUNT(*) FROM attempts a WHERE a.job_id = ?1 AND a.task_row = 1 AND NOT "
       "EXISTS (SELECT 1 FROM task_rows t WHERE t.job = ?2 AND t.name = a.task)",
       "count the attempts that stand for task rows"},
      {&Impl::standing_row_at,
       Sql({"SELECT ", kStandingCols,
            " FROM attempts a WHERE a.job_id = ?1 AND a.task = ?3 AND a.task_idx = ?4 "
            "AND "
            "a.task_row = 1 AND NOT EXISTS (SELECT 1 FROM task_rows t WHERE t.job = ?2 "
            "AND t.name = a.task) ORDER BY a.number DESC LIMIT 1"}),
       "select the attempt that stands for a task row"},
      {&Impl::clear_standing,
       "UPDATE attempts SET task_row = 0 WHERE job_id = ?1 AND task_row = 1",
       "update attempts (no longer standing for rows)"},
      {&Impl::attempts,
       Sql({"SELECT ", kAttemptCols,
            " FROM attempts WHERE job_id = ?1 AND task = ?2 ORDER BY number, id"}),
       "select attempts"},
      {&Impl::unfinished_attempts,
       Sql({"SELECT ", kAttemptCols, " FROM attempts WHERE finished = 0 ORDER BY id"}),
       "select unfinished attempts"},
      {&Impl::max_attempt_id,
       // A cache hit's id outlives its decision row in the artifacts rows
       // it indexed: both count.
       "SELECT max((SELECT COALESCE(MAX(id), 0) FROM attempts), "
       "(SELECT COALESCE(MAX(hit_id), 0) FROM cache_decisions), "
       "(SELECT COALESCE(MAX(attempt_id), 0) FROM artifacts))",
       "select max attempt id"},
  };
  for (const Def& d : defs) {
    DROVER_RETURN_IF_ERROR((this->*d.member).Prepare(db.get(), d.sql.c_str(), d.op));
  }
  return Status::Ok();
}

Result<int64_t> Store::Impl::JobSeq(const std::string& job_id) {
  if (auto it = seqs.find(job_id); it != seqs.end()) return it->second;
  Statement::Use u(job_seq);
  u.Bind(1, job_id);
  Result<bool> row = u.Step();
  if (!row.ok()) return row.status();
  if (!*row) return NotFound("store: no job " + job_id);
  const int64_t seq = u.Int(0);
  seqs.emplace(job_id, seq);
  return seq;
}

Status Store::Impl::InsertTaskRows(Statement& one, Statement& chunk, const JobRecord& job,
                                   const std::vector<TaskRecord>& tasks) {
  for (const TaskRecord& t : tasks) {
    if (!t.job_id.empty() && t.job_id != job.id) {
      return InvalidArgument("store: task " + t.name + " belongs to job " + t.job_id +
                             ", not " + job.id);
    }
  }
  if (tasks.empty()) return Status::Ok();
  Result<int64_t> seq = JobSeq(job.id);
  if (!seq.ok()) return seq.status();
  size_t i = 0;
  for (; i + kTaskChunk <= tasks.size(); i += kTaskChunk) {
    Statement::Use u(chunk);
    for (size_t k = 0; k < kTaskChunk; ++k) {
      BindTask(u, static_cast<int>(k) * kTaskParams, *seq, job.id, tasks[i + k]);
    }
    Status s = u.Run();
    if (!s.ok()) {
      return s.WithContext("tasks " + tasks[i].name + " .. " +
                           tasks[i + kTaskChunk - 1].name);
    }
  }
  for (; i < tasks.size(); ++i) {
    Statement::Use u(one);
    BindTask(u, 0, *seq, job.id, tasks[i]);
    DROVER_RETURN_IF_ERROR(Context(u.Run(), "task", tasks[i].name));
  }
  return Status::Ok();
}

Status Store::Impl::AllocateReserve() {
  const std::string path = ReservePath().string();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("create " + path, errno);
  // Allocated, not sparse: its blocks are what a full disk gives back.
  const int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(reserve_bytes));
  ::close(fd);
  if (rc != 0) {
    ::unlink(path.c_str());
    return ErrnoError("allocate " + std::to_string(reserve_bytes) + " bytes for " + path,
                      rc);
  }
  return Status::Ok();
}

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::Open(const std::filesystem::path& state_dir) {
  auto impl = std::make_unique<Impl>();
  std::error_code ec;
  impl->dir = std::filesystem::absolute(state_dir, ec);
  if (ec) return IoError("state directory " + state_dir.string() + ": " + ec.message());
  std::filesystem::create_directories(impl->dir / "logs", ec);
  if (ec) {
    return IoError("cannot create state directory " + (impl->dir / "logs").string() +
                   ": " + ec.message());
  }
  const std::string db_path = (impl->dir / "state.db").string();
  ConfigureSqliteOnce();
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(
      db_path.c_str(), &raw,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  impl->db.reset(raw);  // sqlite3 allocates a handle even when open fails
  if (rc != SQLITE_OK) return SqliteError(raw, rc, "open " + db_path);

  Result<int> version = PrepareDatabase(raw, db_path);
  if (!version.ok()) return version.status();
  impl->version = *version;
  DROVER_RETURN_IF_ERROR(impl->PrepareStatements().WithContext(db_path));
  auto checkpointer = WalCheckpointer::Start(raw, db_path, {});
  if (!checkpointer.ok()) return checkpointer.status();
  impl->checkpointer = std::move(checkpointer).value();
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

const std::filesystem::path& Store::dir() const { return impl_->dir; }
int Store::SchemaVersion() const { return impl_->version; }

Status Store::Begin() {
  if (impl_->in_batch) return FailedPrecondition("store: Begin: a batch is already open");
  if (impl_->pending) {
    // The batch whose commit found no room comes first, whole.
    DROVER_RETURN_IF_ERROR(impl_->Redo());
    impl_->pending = false;
    return Status::Ok();
  }
  impl_->ClearJournal();
  Statement::Use u(impl_->begin);
  DROVER_RETURN_IF_ERROR(u.Run());
  impl_->in_batch = true;
  return Status::Ok();
}

Status Store::Commit() {
  if (!impl_->in_batch) return FailedPrecondition("store: Commit: no batch is open");
  Status s = impl_->CommitOpen();
  if (s.ok()) {
    impl_->ClearJournal();
    return s;
  }
  if (impl_->in_batch) return s;  // still open (busy): Commit again or Rollback
  if (s.code() != StatusCode::kUnavailable) {
    impl_->ClearJournal();  // another failure: the batch is lost
    return s;
  }
  // No room (or SQLite gave the batch up after a write found none): SQLite
  // rolled it back. Free the reserve and redo it once; if that does not
  // fit either, it waits for the next Begin().
  impl_->RollbackIfOpen();
  impl_->in_batch = false;
  if (impl_->reserve_bytes > 0 && !impl_->space_low) {
    impl_->space_low = true;
    ::unlink(impl_->ReservePath().c_str());
    Status redone = impl_->Redo();
    if (redone.ok()) redone = impl_->CommitOpen();
    if (redone.ok()) {
      impl_->ClearJournal();
      return redone;
    }
    impl_->RollbackIfOpen();
    impl_->in_batch = false;
    if (redone.code() == StatusCode::kUnavailable) s = redone;
  }
  impl_->pending = true;
  return s;
}

Status Store::Rollback() {
  if (!impl_->in_batch) return FailedPrecondition("store: Rollback: no batch is open");
  sqlite3* db = impl_->db.get();
  Status s;
  impl_->seqs.clear();
  if (sqlite3_get_autocommit(db) == 0) {
    Statement::Use u(impl_->rollback);
    s = u.Run();
  }
  impl_->in_batch = sqlite3_get_autocommit(db) == 0;
  if (!impl_->in_batch) impl_->ClearJournal();
  return s;
}

bool Store::InBatch() const { return impl_->in_batch; }
bool Store::Pending() const { return impl_->pending; }

Status Store::KeepReserve(uint64_t bytes) {
  impl_->reserve_bytes = bytes;
  impl_->space_low = false;
  if (bytes == 0) {
    ::unlink(impl_->ReservePath().c_str());
    return Status::Ok();
  }
  Status s = impl_->AllocateReserve();
  if (!s.ok()) impl_->space_low = true;
  return s;
}

bool Store::SpaceLow() const { return impl_->space_low; }

Status Store::RestoreReserve() {
  if (!impl_->space_low || impl_->reserve_bytes == 0) return Status::Ok();
  // Back only when the disk has room for the reserve twice over: a reserve
  // that took the last free blocks would leave the next commit none.
  struct statvfs fs {};
  if (::statvfs(impl_->dir.c_str(), &fs) != 0) {
    return ErrnoError("statvfs " + impl_->dir.string(), errno);
  }
  const uint64_t free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  if (free_bytes < 2 * impl_->reserve_bytes) {
    return Unavailable(std::string(kDiskFull) + std::to_string(free_bytes) +
                       " bytes free in " + impl_->dir.string() + ", " +
                       std::to_string(2 * impl_->reserve_bytes) + " wanted");
  }
  DROVER_RETURN_IF_ERROR(impl_->AllocateReserve());
  impl_->space_low = false;
  return Status::Ok();
}

Status Store::InsertJob(const JobRecord& job, const std::vector<TaskRecord>& tasks) {
  return impl_->Journal(InsertJobNow(job, tasks), [this, job = job, tasks = tasks] {
    return InsertJobNow(job, tasks);
  });
}

Status Store::InsertJobNow(const JobRecord& job, const std::vector<TaskRecord>& tasks) {
  return impl_->Atomically([&]() -> Status {
    {
      Statement::Use u(impl_->insert_job);
      BindJob(u, job);
      DROVER_RETURN_IF_ERROR(Context(u.Run(), "job", job.id));
    }
    // Plain INSERT, not the upsert: a duplicate name in `tasks` is an error.
    return impl_->InsertTaskRows(impl_->insert_task, impl_->insert_tasks, job, tasks);
  });
}

Status Store::SetJobState(const std::string& job_id, const std::string& state,
                          int64_t finished_ms) {
  return impl_->Journal(SetJobStateNow(job_id, state, finished_ms),
                        [this, job_id, state, finished_ms] {
                          return SetJobStateNow(job_id, state, finished_ms);
                        });
}

Status Store::SetJobStateNow(const std::string& job_id, const std::string& state,
                             int64_t finished_ms) {
  DROVER_RETURN_IF_ERROR(impl_->CheckBatch());
  Statement::Use u(impl_->set_job_state);
  u.Bind(1, job_id).Bind(2, state).Bind(3, finished_ms);
  DROVER_RETURN_IF_ERROR(u.Run());
  if (u.Changes() == 0) return NotFound("store: no job " + job_id);
  return Status::Ok();
}

Status Store::ReplaceTasks(const JobRecord& job, const std::vector<TaskRecord>& tasks) {
  return impl_->Journal(ReplaceTasksNow(job, tasks), [this, job = job, tasks = tasks] {
    return ReplaceTasksNow(job, tasks);
  });
}

Status Store::ReplaceTasksNow(const JobRecord& job,
                              const std::vector<TaskRecord>& tasks) {
  return impl_->Atomically([&]() -> Status {
    {
      Statement::Use u(impl_->replace_job);
      u.Bind(1, job.id)
          .Bind(2, job.spec_text)
          .Bind(3, job.state)
          .Bind(4, job.finished_ms)
          .Bind(5, job.submitter_key)
          .Bind(6, job.submitter_name)
          .Bind(7, int64_t{job.tasks});
      DROVER_RETURN_IF_ERROR(u.Run());
      if (u.Changes() == 0) return NotFound("store: no job " + job.id);
    }
    std::unordered_set<std::string_view> names;
    names.reserve(tasks.size());
    for (const TaskRecord& t : tasks) {
      if (!names.insert(t.name).second) {
        return AlreadyExists("store: task " + t.name + " appears twice");
      }
    }
    // The job's rows become `tasks`: the old ones go, whatever their idx,
    // and the new ones are inserted (a task's idx may change with the spec,
    // and a row moved onto another's idx would conflict on the key).
    Result<int64_t> seq = impl_->JobSeq(job.id);
    if (!seq.ok()) return seq.status();
    {
      Statement::Use u(impl_->delete_job_tasks);
      u.Bind(1, *seq);
      DROVER_RETURN_IF_ERROR(u.Run());
    }
    // Nor does an attempt of an earlier run stand for a row any more: the
    // rows carried over are among `tasks`, and the rest are to run again.
    {
      Statement::Use u(impl_->clear_standing);
      u.Bind(1, job.id);
      DROVER_RETURN_IF_ERROR(u.Run());
    }
    return impl_->InsertTaskRows(impl_->insert_task, impl_->insert_tasks, job, tasks);
  });
}

Status Store::ExpandTask(const JobRecord& job, const std::string& placeholder,
                         const std::vector<TaskRecord>& rows) {
  return impl_->Journal(ExpandTaskNow(job, placeholder, rows),
                        [this, job = job, placeholder = placeholder, rows = rows] {
                          return ExpandTaskNow(job, placeholder, rows);
                        });
}

Status Store::ExpandTaskNow(const JobRecord& job, const std::string& placeholder,
                            const std::vector<TaskRecord>& rows) {
  return impl_->Atomically([&]() -> Status {
    {
      Statement::Use u(impl_->set_job_tasks);
      u.Bind(1, job.id).Bind(2, int64_t{job.tasks});
      DROVER_RETURN_IF_ERROR(u.Run());
      if (u.Changes() == 0) return NotFound("store: no job " + job.id);
    }
    Result<int64_t> seq = impl_->JobSeq(job.id);
    if (!seq.ok()) return seq.status();
    {
      Statement::Use u(impl_->delete_task);
      u.Bind(1, *seq).Bind(2, placeholder);
      DROVER_RETURN_IF_ERROR(Context(u.Run(), "task", placeholder));
    }
    return impl_->InsertTaskRows(impl_->upsert_task, impl_->upsert_tasks, job, rows);
  });
}

Result<std::optional<JobRecord>> Store::GetJob(const std::string& job_id) {
  Statement::Use u(impl_->get_job);
  u.Bind(1, job_id);
  Result<bool> row = u.Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<JobRecord>();
  return std::optional<JobRecord>(ReadJob(u));
}

Result<std::optional<JobRecord>> Store::LatestJob(const std::string& name) {
  Statement::Use u(name.empty() ? impl_->latest_job : impl_->latest_job_named);
  if (!name.empty()) u.Bind(1, name);
  Result<bool> row = u.Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<JobRecord>();
  return std::optional<JobRecord>(ReadJob(u));
}

Result<std::vector<JobRecord>> Store::JobsInState(const std::string& state) {
  Statement::Use u(impl_->jobs_in_state);
  u.Bind(1, state);
  std::vector<JobRecord> out;
  for (;;) {
    Result<bool> row = u.Step();
    if (!row.ok()) return row.status();
    if (!*row) return out;
    out.push_back(ReadJob(u));
  }
}

Result<std::vector<JobRecord>> Store::RecentJobs(uint32_t limit) {
  Statement::Use u(impl_->recent_jobs);
  u.Bind(1, int64_t{limit});
  std::vector<JobRecord> out;
  for (;;) {
    Result<bool> row = u.Step();
    if (!row.ok()) return row.status();
    if (!*row) return out;
    out.push_back(ReadJob(u));
  }
}

Result<std::vector<JobRecord>> Store::FindJobs(const JobQuery& query) {
  Statement::Use u(impl_->find_jobs);
  u.Bind(1, query.state).Bind(2, query.name).Bind(3, query.since_ms);
  u.Bind(4, int64_t{query.limit});
  std::vector<JobRecord> out;
  for (;;) {
    Result<bool> row = u.Step();
    if (!row.ok()) return row.status();
    if (!*row) return out;
    out.push_back(ReadJob(u));
  }
}

Result<std::vector<std::pair<std::string, uint64_t>>> Store::TaskStateCounts(
    const std::string& job_id) {
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
  // The rows of running tasks still show their state before the dispatch
  // (Tasks): each counts as running instead.
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
  // Tasks that run before their first row is written have none; those
  // with neither an attempt nor a row are waiting (JobRecord::tasks).
  uint64_t counted = 0;
  for (const auto& [state, n] : counts) counted += n;
  {
    Statement::Use r(impl_->running_without_row);
    r.Bind(1, job_id).Bind(2, *seq);
    Result<bool> row = r.Step();
    if (!row.ok()) return row.status();
    if (*row && r.Int(0) > 0) {
      counts["running"] += static_cast<uint64_t>(r.Int(0));
      counted += static_cast<uint64_t>(r.Int(0));
    }
  }
  {
    Statement::Use t(impl_->job_tasks);
    t.Bind(1, job_id);
    Result<bool> row = t.Step();
    if (!row.ok()) return row.status();
    if (*row && t.Int(0) > 0 && static_cast<uint64_t>(t.Int(0)) > counted) {
      counts["waiting"] += static_cast<uint64_t>(t.Int(0)) - counted;
    }
  }
  return std::vector<std::pair<std::string, uint64_t>>(counts.begin(), counts.end());
}

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
  return Context(u.Run(), "task", task.name);
}

Result<std::vector<TaskRecord>> Store::Tasks(const std::string& job_id) {
  std::vector<TaskRecord> out;
  Result<int64_t> seq = impl_->JobSeq(job_id);
  if (!seq.ok()) {
    if (seq.status().code() == StatusCode::kNotFound) return out;
    return seq.status();
  }
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
    if (out.size() > rowed) {
      std::inplace_merge(
          out.begin(), out.begin() + static_cast<ptrdiff_t>(rowed), out.end(),
          [](const TaskRecord& a, const TaskRecord& b) { return a.index < b.index; });
    }
  }
  // Dispatch writes the attempt's row, not the task's (docs/state.md,
  // "tasks"): a task whose newest attempt is unfinished and newer than its
  // row is running, on that attempt's worker.
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
  Result<int64_t> seq = impl_->JobSeq(job_id);
  if (!seq.ok()) {
    if (seq.status().code() == StatusCode::kNotFound) return std::optional<TaskRecord>();
    return seq.status();
  }
  {
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
  Status s = InsertAttemptNow(a);
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
  Statement::Use u(stands ? impl_->finish_standing_attempt : impl_->finish_attempt);
  u.Bind(1, AsStored(id)).Bind(5, worker).Bind(8, finished_ms);
  BindOutcome(u, outcome, /*finished=*/true, outputs_json);
  if (stands) u.Bind(23, AsStored(*stands));
  DROVER_RETURN_IF_ERROR(Context(u.Run(), "attempt", id));
  return u.Changes() == 1;
}

Result<bool> Store::Impl::HasTaskRow(int64_t job, uint32_t idx) {
  Statement::Use u(task_row_exists);
  u.Bind(1, job).Bind(2, int64_t{idx});
  return u.Step();
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
                                                   const std::string& task) {
  Statement::Use u(impl_->attempts);
  u.Bind(1, job_id).Bind(2, task);
  std::vector<AttemptRecord> out;
  for (;;) {
    Result<bool> row = u.Step();
    if (!row.ok()) return row.status();
    if (!*row) return out;
    out.push_back(ReadAttempt(u));
  }
}

Result<std::vector<AttemptRecord>> Store::UnfinishedAttempts() {
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

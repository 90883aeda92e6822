// The Store over the sqlite3 C API. The schema and its migrations live in
// schema.cc, the statement helpers in sqlite_util.cc, the mapping between
// records and columns in rows.cc, the state behind a Store in
// store_impl.h. This file opens the store, prepares every operation's
// statements once, and holds the transaction discipline (batches, the
// disk-full journal, atomic multi-row operations) and the jobs' rows;
// store_tasks.cc holds the tasks', attempts' and artifacts' (with the
// counts of a job's tasks by state), dispatch_log.cc the attempts that run.
#include "core/store/store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/store/schema.h"
#include "core/store/store_impl.h"

namespace drover::store {

using internal::Context;

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
      {&Impl::latest_job_id,
       "SELECT id FROM jobs ORDER BY created_ms DESC, id DESC LIMIT 1",
       "select the latest job's id"},
      {&Impl::job_state, "SELECT state FROM jobs WHERE id = ?1", "select a job's state"},
      {&Impl::latest_job_id_named,
       "SELECT id FROM jobs WHERE name = ?1 ORDER BY created_ms DESC, id DESC LIMIT 1",
       "select the latest job's id by name"},
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
      {&Impl::job_tasks, "SELECT tasks, state = 'running' FROM jobs WHERE id = ?1",
       "select the task count"},
      {&Impl::set_job_tasks, "UPDATE jobs SET tasks = ?2 WHERE id = ?1",
       "update jobs (tasks)"},
      // A running job's unfinished attempts: in the dispatch log
      // (running_attempts), and rows an older drover left unfinished. The
      // rows are found through every attempt of the job (attempts_by_task):
      // about 18 ms for 100,000. Only a running job has any (Tasks,
      // TaskStateCounts).
      {&Impl::running_of_job,
       Sql({"SELECT task, number, worker, started_ms, task_idx, id FROM attempts ",
            "WHERE job_id = ?1 AND finished = 0 UNION ALL ",
            "SELECT task, number, worker, started_ms, task_idx, id FROM "
            "running_attempts ",
            "WHERE job_id = ?1 ORDER BY 6"}),
       "select unfinished attempts of a job"},
      // ?1 the job's id, ?2 its number.
      {&Impl::running_rows_of_job,
       Sql({kRunningOfJob,
            "SELECT DISTINCT t.name, t.state FROM r JOIN task_rows t ON t.job = ?2 AND "
            "t.name = r.task WHERE r.number > t.attempts"}),
       "select the rows of running tasks"},
      {&Impl::running_without_row,
       Sql({kRunningOfJob,
            "SELECT COUNT(DISTINCT r.task) FROM r WHERE NOT EXISTS (SELECT 1 FROM "
            "task_rows t WHERE t.job = ?2 AND t.name = r.task)"}),
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
      {&Impl::task_row_indexes, "SELECT idx FROM task_rows WHERE job = ?1",
       "select a job's task row indexes"},
      // ?1 the job's id, ?2 its number: its attempts that stand for a row
      // the task does not have (one written since wins). In no order: the
      // caller sorts them by index (SQLite sorted the whole rows in a temporary
      // B-tree, 80 ms of a 100,000-task job's 120).
      {&Impl::standing_rows,
       Sql({"SELECT ", kStandingCols,
            " FROM attempts a WHERE a.job_id = ?1 AND a.task_row = 1 AND NOT EXISTS "
            "(SELECT 1 FROM task_rows t WHERE t.job = ?2 AND t.name = a.task)"}),
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
      // A task's attempts, ?1 its job, ?2 its name: those with its index,
      // ?3 or ?4 (-1 for none), and those whose index is not known (-1).
      {&Impl::attempts,
       Sql({"SELECT ", kAttemptCols,
            " FROM attempts WHERE job_id = ?1 AND task_idx IN (-1, ?3, ?4) AND task = "
            "?2 ",
            "UNION ALL SELECT ", kRunningAttemptCols,
            " FROM running_attempts WHERE job_id = ?1 AND task = ?2 ORDER BY 4, 1"}),
       "select attempts"},
      // The index of a task without a row, from an attempt of it (?1 its
      // job, ?2 its name): read through every attempt of the job.
      {&Impl::attempt_task_idx,
       "SELECT task_idx FROM attempts WHERE job_id = ?1 AND task = ?2 AND task_idx >= 0 "
       "LIMIT 1",
       "select a task's index from its attempts"},
      {&Impl::task_row_idx, "SELECT idx FROM task_rows WHERE job = ?1 AND name = ?2",
       "select a task's index"},
      // After a job's rows were replaced (?1 its id, ?2 its number): each
      // ended attempt's task_idx its task's row's, or -1 without one
      // (standing for nothing any more: clear_standing ran first).
      {&Impl::renumber_attempts,
       "UPDATE attempts SET task_idx = COALESCE((SELECT r.idx FROM task_rows r WHERE "
       "r.job = ?2 AND r.name = attempts.task), -1) WHERE job_id = ?1 AND finished = 1 "
       "AND task_idx IS NOT COALESCE((SELECT r.idx FROM task_rows r WHERE r.job = ?2 AND "
       "r.name = attempts.task), -1)",
       "update attempts (task indexes)"},
      // The dispatch log's, and the rows an older drover left unfinished: a
      // job ends after its attempts, so only running jobs have such rows,
      // found through attempts_by_task job by job.
      {&Impl::unfinished_attempts,
       Sql({"SELECT ", kAttemptCols,
            " FROM attempts WHERE job_id IN (SELECT id FROM jobs WHERE state = "
            "'running') AND finished = 0 UNION ALL SELECT ",
            kRunningAttemptCols, " FROM running_attempts ORDER BY 1"}),
       "select unfinished attempts"},
      {&Impl::max_attempt_id,
       // A cache hit's id outlives its decision row in the artifacts rows
       // it indexed: both count.
       "SELECT max((SELECT COALESCE(MAX(id), 0) FROM attempts), "
       "(SELECT COALESCE(MAX(last_id), 0) FROM dispatches), "
       "(SELECT COALESCE(MAX(hit_id), 0) FROM cache_decisions), "
       "(SELECT COALESCE(MAX(attempt_id), 0) FROM artifacts))",
       "select max attempt id"},
  };
  for (const Def& d : defs) {
    DROVER_RETURN_IF_ERROR((this->*d.member).Prepare(db.get(), d.sql.c_str(), d.op));
  }
  return PrepareDispatchLog();
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
  for (const TaskRecord& t : tasks) NoteRow(*seq, t.index);
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
  DROVER_RETURN_IF_ERROR(impl->LoadInFlight().WithContext(db_path));
  auto checkpointer = WalCheckpointer::Start(raw, db_path, {});
  if (!checkpointer.ok()) return checkpointer.status();
  impl->checkpointer = std::move(checkpointer).value();
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Result<std::unique_ptr<Store>> Store::OpenReader(const std::filesystem::path& state_dir) {
  auto impl = std::make_unique<Impl>();
  std::error_code ec;
  impl->dir = std::filesystem::absolute(state_dir, ec);
  if (ec) return IoError("state directory " + state_dir.string() + ": " + ec.message());
  const std::string db_path = (impl->dir / "state.db").string();
  ConfigureSqliteOnce();
  sqlite3* raw = nullptr;
  // Read-write without create: a WAL reader needs the -shm file it shares
  // with the writer; query_only (PrepareReader) keeps it from writing.
  int rc = sqlite3_open_v2(db_path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  impl->db.reset(raw);
  if (rc != SQLITE_OK) return SqliteError(raw, rc, "open " + db_path);
  DROVER_RETURN_IF_ERROR(PrepareReader(raw, db_path));
  impl->version = kSchemaVersion;
  DROVER_RETURN_IF_ERROR(impl->PrepareStatements().WithContext(db_path));
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
  // The batch's ended attempts and its row of the dispatch log (journaled:
  // a full disk fails the commit below, which redoes them). Another
  // failure loses the batch, as a failed COMMIT does.
  Status ended = impl_->WriteEnded();
  if (!ended.ok() && ended.code() != StatusCode::kUnavailable) {
    (void)Rollback();
    return ended;
  }
  Status logged = impl_->WriteDispatches();
  if (!logged.ok() && logged.code() != StatusCode::kUnavailable) return logged;
  Status s = impl_->CommitOpen();
  if (s.ok()) {
    impl_->ClearJournal();
    return s;
  }
  if (impl_->in_batch) return s;  // still open (busy): Commit again or Rollback
  if (s.code() != StatusCode::kUnavailable) {
    impl_->ClearJournal();  // another failure: the batch is lost
    (void)impl_->LoadInFlight();  // what the log holds without it
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
  impl_->ForgetJobs();
  if (sqlite3_get_autocommit(db) == 0) {
    Statement::Use u(impl_->rollback);
    s = u.Run();
  }
  impl_->in_batch = sqlite3_get_autocommit(db) == 0;
  if (!impl_->in_batch) {
    impl_->ClearJournal();
    // The batch's dispatches and ends are undone: what runs is the log's.
    Status loaded = impl_->LoadInFlight();
    if (s.ok()) s = loaded;
  }
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
  // A job's state is set when it starts and when it ends: the rows
  // HasTaskRow read of it are read again if they are asked for.
  if (auto seq = impl_->seqs.find(job_id); seq != impl_->seqs.end()) {
    impl_->rows.erase(seq->second);
  }
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
    DROVER_RETURN_IF_ERROR(
        impl_->InsertTaskRows(impl_->insert_task, impl_->insert_tasks, job, tasks));
    // A task's index may have changed with the spec: its attempts follow
    // it (attempts_by_task is by index), those of a task without a row
    // become -1.
    Statement::Use u(impl_->renumber_attempts);
    u.Bind(1, job.id).Bind(2, *seq);
    return u.Run();
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

Result<std::optional<std::string>> Store::LatestJobId(const std::string& name) {
  Statement::Use u(name.empty() ? impl_->latest_job_id : impl_->latest_job_id_named);
  if (!name.empty()) u.Bind(1, name);
  Result<bool> row = u.Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<std::string>();
  return std::optional<std::string>(u.Text(0));
}

Result<std::optional<std::string>> Store::JobStateOf(const std::string& job_id) {
  Statement::Use u(impl_->job_state);
  u.Bind(1, job_id);
  Result<bool> row = u.Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<std::string>();
  return std::optional<std::string>(u.Text(0));
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

}  // namespace drover::store

#include "core/store/schema.h"

#include <array>
#include <cstdio>
#include <string_view>

#include "core/store/sqlite_util.h"

namespace drover::store {
namespace {

struct Migration {
  int version;  // user_version after this migration
  const char* sql;
};

// Append only. A released migration is never edited: a database that ran it
// must end up with the same schema as one created afresh (docs/state.md).
// Versions may skip a number while branches land (6 is another change's);
// the last one is kSchemaVersion.
constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE jobs (
  id          TEXT PRIMARY KEY NOT NULL,
  name        TEXT NOT NULL,
  spec_file   TEXT NOT NULL DEFAULT '',
  spec_text   TEXT NOT NULL DEFAULT '',
  cwd         TEXT NOT NULL DEFAULT '',
  state       TEXT NOT NULL,
  priority    INTEGER NOT NULL DEFAULT 0,
  created_ms  INTEGER NOT NULL,
  finished_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_by_created ON jobs (created_ms, id);
CREATE INDEX jobs_by_name ON jobs (name, created_ms, id);
CREATE INDEX jobs_by_state ON jobs (state, created_ms);

CREATE TABLE tasks (
  job_id         TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  name           TEXT NOT NULL,
  idx            INTEGER NOT NULL,
  fingerprint    INTEGER NOT NULL,
  state          TEXT NOT NULL,
  attempts       INTEGER NOT NULL DEFAULT 0,
  reason         TEXT NOT NULL DEFAULT '',
  exit_code      INTEGER NOT NULL DEFAULT -1,
  signal         INTEGER NOT NULL DEFAULT 0,
  detail         TEXT NOT NULL DEFAULT '',
  wall_us        INTEGER NOT NULL DEFAULT 0,
  result_json    TEXT NOT NULL DEFAULT '',
  worker         TEXT NOT NULL DEFAULT '',
  started_ms     INTEGER NOT NULL DEFAULT 0,
  finished_ms    INTEGER NOT NULL DEFAULT 0,
  pending_reason TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (job_id, name)
);
CREATE INDEX tasks_by_index ON tasks (job_id, idx);

CREATE TABLE attempts (
  id             INTEGER PRIMARY KEY NOT NULL,
  job_id         TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  task           TEXT NOT NULL,
  number         INTEGER NOT NULL,
  worker         TEXT NOT NULL DEFAULT '',
  finished       INTEGER NOT NULL DEFAULT 0,
  started_ms     INTEGER NOT NULL DEFAULT 0,
  finished_ms    INTEGER NOT NULL DEFAULT 0,
  reason         TEXT NOT NULL DEFAULT '',
  exit_code      INTEGER NOT NULL DEFAULT -1,
  signal         INTEGER NOT NULL DEFAULT 0,
  message        TEXT NOT NULL DEFAULT '',
  wall_us        INTEGER NOT NULL DEFAULT 0,
  cpu_user_us    INTEGER NOT NULL DEFAULT 0,
  cpu_sys_us     INTEGER NOT NULL DEFAULT 0,
  max_rss_kb     INTEGER NOT NULL DEFAULT 0,
  stdout_bytes   INTEGER NOT NULL DEFAULT 0,
  stdout_dropped INTEGER NOT NULL DEFAULT 0,
  stderr_bytes   INTEGER NOT NULL DEFAULT 0,
  stderr_dropped INTEGER NOT NULL DEFAULT 0,
  result_json    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX attempts_by_task ON attempts (job_id, task, number);
CREATE INDEX attempts_unfinished ON attempts (id) WHERE finished = 0;
)sql"},
    // Attempts made by earlier runs of a resumed job, so that a restarted
    // coordinator counts only this run's attempts against retries.
    {2, R"sql(
ALTER TABLE tasks ADD COLUMN attempt_base INTEGER NOT NULL DEFAULT 0;
)sql"},
    // The key that submitted each job (docs/security.md); '' for jobs of
    // clients without a key, and for every job before this version.
    {3, R"sql(
ALTER TABLE jobs ADD COLUMN submitter_key TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN submitter_name TEXT NOT NULL DEFAULT '';
)sql"},
    // Task outputs (docs/spec.md, "Outputs"): a JSON object of strings per
    // attempt, and the last finished attempt's on its task; '' for none.
    {4, R"sql(
ALTER TABLE attempts ADD COLUMN outputs_json TEXT NOT NULL DEFAULT '';
ALTER TABLE tasks ADD COLUMN outputs_json TEXT NOT NULL DEFAULT '';
)sql"},
    // The artifact index (docs/state.md, "Artifacts"): one row per file an
    // attempt uploaded; the bytes are the blob STATE/artifacts/sha256/..
    // named by the row's sha256. No foreign key to attempts: the row is
    // written when the upload ends, in the same batch as nothing else.
    {5, R"sql(
CREATE TABLE artifacts (
  attempt_id INTEGER NOT NULL,
  job_id     TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  task       TEXT NOT NULL,
  path       TEXT NOT NULL,
  sha256     TEXT NOT NULL,
  size       INTEGER NOT NULL,
  mode       INTEGER NOT NULL DEFAULT 420,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (attempt_id, path)
);
CREATE INDEX artifacts_by_task ON artifacts (job_id, task);
CREATE INDEX artifacts_by_sha ON artifacts (sha256);
)sql"},
    // Task caching (docs/state.md, "Cache"). cache_entries: one row per
    // successful attempt of a `cache: true` task, with its key, the parts
    // the key was made of, and what a hit reuses (result, outputs,
    // artifacts), so that a hit needs no row of the job it came from.
    // cache_decisions: per task of a job, why it last ran or was cached
    // (`drover explain`); hit_id names a hit in the attempt id space (its
    // artifacts rows carry it). job_inputs: what the client sent with the
    // job (--no-cache, the hashes of `inputs`), for a restarted coordinator.
    {6, R"sql(
CREATE TABLE cache_entries (
  attempt_id     INTEGER PRIMARY KEY NOT NULL,
  key            TEXT NOT NULL,
  job_id         TEXT NOT NULL,
  job_name       TEXT NOT NULL,
  task           TEXT NOT NULL,
  attempt        INTEGER NOT NULL,
  parts_json     TEXT NOT NULL,
  result_json    TEXT NOT NULL DEFAULT '',
  outputs_json   TEXT NOT NULL DEFAULT '',
  artifacts_json TEXT NOT NULL DEFAULT '',
  created_ms     INTEGER NOT NULL
);
CREATE INDEX cache_entries_by_key ON cache_entries (key, attempt_id);
CREATE INDEX cache_entries_by_task ON cache_entries (job_name, task, attempt_id);
CREATE INDEX cache_entries_by_job ON cache_entries (job_id);

CREATE TABLE cache_decisions (
  job_id        TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  task          TEXT NOT NULL,
  key           TEXT NOT NULL,
  parts_json    TEXT NOT NULL,
  cached        INTEGER NOT NULL DEFAULT 0,
  hit_id        INTEGER NOT NULL DEFAULT 0,
  source_job    TEXT NOT NULL DEFAULT '',
  source_task   TEXT NOT NULL DEFAULT '',
  source_attempt INTEGER NOT NULL DEFAULT 0,
  explanation   TEXT NOT NULL,
  decided_ms    INTEGER NOT NULL,
  PRIMARY KEY (job_id, task)
);

CREATE TABLE job_inputs (
  job_id      TEXT PRIMARY KEY NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  no_cache    INTEGER NOT NULL DEFAULT 0,
  inputs_json TEXT NOT NULL DEFAULT ''
);
)sql"},
    // Scheduled pipelines (docs/state.md, "Pipeline runs"): one row per
    // fire time the coordinator handled (started, queued or skipped) and
    // per manual run, so that a restarted coordinator knows each
    // pipeline's last run (catchup) and what waits. No foreign key to
    // jobs: a skipped or queued run has none.
    {7, R"sql(
CREATE TABLE pipeline_runs (
  id         INTEGER PRIMARY KEY NOT NULL,
  pipeline   TEXT NOT NULL,
  due_ms     INTEGER NOT NULL,
  trigger    TEXT NOT NULL,
  outcome    TEXT NOT NULL,
  job_id     TEXT NOT NULL DEFAULT '',
  started_ms INTEGER NOT NULL DEFAULT 0,
  detail     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX pipeline_runs_by_name ON pipeline_runs (pipeline, id);
)sql"},
    // Task rows made as tasks leave their first state (docs/state.md,
    // "tasks"): a job's task count, since its rows no longer say it, and
    // each attempt's task index, so that a running task without a row is
    // still placed (-1 for the attempts of earlier versions, whose tasks
    // all have rows).
    {8, R"sql(
ALTER TABLE jobs ADD COLUMN tasks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN task_idx INTEGER NOT NULL DEFAULT -1;
)sql"},
    // Task rows keyed by (job, idx), the job's number and the task's
    // position (docs/state.md, "tasks"): one B-tree that a job's rows are
    // appended to, where the rowid table, its (job_id, name) key and
    // tasks_by_index were three, the two of them keyed on text; names stay
    // unique by tasks_by_name. jobs.seq numbers the jobs (the rowid for
    // those stored before); the foreign key holds (job, job_id) together,
    // so a row never names one job by number and another by id.
    //
    // And a task that succeeds on its first attempt gets no row: the
    // attempt stands for it (attempts.task_row = 1, with the task's
    // fingerprint). The table is task_rows; `tasks` is the view of both,
    // what the table was, for readers of the file.
    {9, R"sql(
ALTER TABLE jobs ADD COLUMN seq INTEGER;
UPDATE jobs SET seq = rowid;
CREATE UNIQUE INDEX jobs_by_seq ON jobs (seq);
CREATE UNIQUE INDEX jobs_by_seq_id ON jobs (seq, id);
CREATE TABLE task_rows (
  job            INTEGER NOT NULL,
  idx            INTEGER NOT NULL,
  job_id         TEXT NOT NULL,
  name           TEXT NOT NULL,
  fingerprint    INTEGER NOT NULL,
  state          TEXT NOT NULL,
  attempts       INTEGER NOT NULL DEFAULT 0,
  reason         TEXT NOT NULL DEFAULT '',
  exit_code      INTEGER NOT NULL DEFAULT -1,
  signal         INTEGER NOT NULL DEFAULT 0,
  detail         TEXT NOT NULL DEFAULT '',
  wall_us        INTEGER NOT NULL DEFAULT 0,
  result_json    TEXT NOT NULL DEFAULT '',
  worker         TEXT NOT NULL DEFAULT '',
  started_ms     INTEGER NOT NULL DEFAULT 0,
  finished_ms    INTEGER NOT NULL DEFAULT 0,
  pending_reason TEXT NOT NULL DEFAULT '',
  attempt_base   INTEGER NOT NULL DEFAULT 0,
  outputs_json   TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (job, idx),
  FOREIGN KEY (job, job_id) REFERENCES jobs (seq, id) ON DELETE CASCADE
) WITHOUT ROWID;
INSERT INTO task_rows (job, idx, job_id, name, fingerprint, state, attempts, reason,
    exit_code, signal, detail, wall_us, result_json, worker, started_ms, finished_ms,
    pending_reason, attempt_base, outputs_json)
  SELECT j.seq, t.idx, t.job_id, t.name, t.fingerprint, t.state, t.attempts, t.reason,
    t.exit_code, t.signal, t.detail, t.wall_us, t.result_json, t.worker, t.started_ms,
    t.finished_ms, t.pending_reason, t.attempt_base, t.outputs_json
  FROM tasks t JOIN jobs j ON j.id = t.job_id;
DROP TABLE tasks;
CREATE UNIQUE INDEX tasks_by_name ON task_rows (job, name);
ALTER TABLE attempts ADD COLUMN task_row INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN fingerprint INTEGER NOT NULL DEFAULT 0;
CREATE VIEW tasks AS
SELECT job, idx, job_id, name, fingerprint, state, attempts, reason, exit_code, signal,
       detail, wall_us, result_json, worker, started_ms, finished_ms, pending_reason,
       attempt_base, outputs_json
  FROM task_rows
UNION ALL
SELECT j.seq, a.task_idx, a.job_id, a.task, a.fingerprint, 'succeeded', a.number,
       a.reason, a.exit_code, a.signal,
       CASE WHEN a.exit_code >= 0 THEN 'exit 0' ELSE 'ok' END, a.wall_us,
       a.result_json, a.worker, a.started_ms, a.finished_ms, '', 0, a.outputs_json
  FROM attempts a JOIN jobs j ON j.id = a.job_id
 WHERE a.task_row = 1
   AND NOT EXISTS (SELECT 1 FROM task_rows r WHERE r.job = j.seq AND r.name = a.task);
)sql"},
    // No partial index of unfinished attempts (docs/state.md, "attempts"):
    // every attempt entered it at its dispatch and left it at its result,
    // two B-tree writes a task and one more B-tree each commit writes, for
    // reads that attempts_by_task serves by job (a restarted coordinator's,
    // of its running jobs) (docs/benchmarks.md, session 28).
    {10, R"sql(
DROP INDEX IF EXISTS attempts_unfinished;
)sql"},
    // The dispatch log (docs/state.md, "dispatches"): the attempts a
    // commit dispatched, one row a commit, each attempt a JSON array
    // [id, job_id, task, number, worker, started_ms, task_idx]; an
    // attempt's `attempts` row is written whole when it ends, and a row of
    // the log is deleted once every attempt in it has one. running_attempts
    // lists what runs: the attempts of the log without a row.
    {11, R"sql(
CREATE TABLE dispatches (
  id       INTEGER PRIMARY KEY NOT NULL,
  last_id  INTEGER NOT NULL,
  attempts TEXT NOT NULL
);
CREATE VIEW running_attempts AS
SELECT json_extract(e.value, '$[0]') AS id,
       json_extract(e.value, '$[1]') AS job_id,
       json_extract(e.value, '$[2]') AS task,
       json_extract(e.value, '$[3]') AS number,
       json_extract(e.value, '$[4]') AS worker,
       json_extract(e.value, '$[5]') AS started_ms,
       json_extract(e.value, '$[6]') AS task_idx,
       d.id AS dispatch
  FROM dispatches d, json_each(d.attempts) e
 WHERE NOT EXISTS (SELECT 1 FROM attempts a WHERE a.id = json_extract(e.value, '$[0]'));
)sql"},
    // attempts_by_task on (job_id, task_idx, number) where it was (job_id,
    // task, number) (docs/state.md, "attempts"): a matrix's attempts end in
    // about the order of their indexes, so its entries go in at the end of
    // the B-tree, where the text of the names put them all over it. A
    // task's attempts are found by its index (and name); an attempt's
    // task_idx becomes its task's row's idx, or -1 (not known: found by
    // name) for the ended attempts of a task without a row that do not
    // stand for one (a task of an earlier run, run again or gone from the
    // spec). An older drover's unfinished rows keep theirs: they run.
    {12, R"sql(
UPDATE attempts SET task_idx = COALESCE(
    (SELECT r.idx FROM task_rows r JOIN jobs j ON r.job = j.seq
      WHERE j.id = attempts.job_id AND r.name = attempts.task),
    CASE WHEN task_row = 1 OR finished = 0 THEN task_idx ELSE -1 END)
 WHERE task_idx IS NOT COALESCE(
    (SELECT r.idx FROM task_rows r JOIN jobs j ON r.job = j.seq
      WHERE j.id = attempts.job_id AND r.name = attempts.task),
    CASE WHEN task_row = 1 OR finished = 0 THEN task_idx ELSE -1 END);
DROP INDEX attempts_by_task;
CREATE INDEX attempts_by_task ON attempts (job_id, task_idx, number);
)sql"},
};
static_assert(std::size(kMigrations) > 0 &&
              kMigrations[std::size(kMigrations) - 1].version == kSchemaVersion);

Result<int64_t> ReadInt(sqlite3* db, const char* sql, std::string_view op) {
  Statement s;
  DROVER_RETURN_IF_ERROR(s.Prepare(db, sql, std::string(op)));
  Statement::Use use(s);
  Result<bool> row = use.Step();
  if (!row.ok()) return row.status();
  if (!*row) return Internal(std::string(op) + ": no row");
  return use.Int(0);
}

struct Header {
  int64_t application_id = 0;
  int64_t user_version = 0;
  int64_t objects = 0;  // tables, indexes, views, triggers
};

Result<Header> ReadHeader(sqlite3* db, const std::string& db_path) {
  Header h;
  // The first read of page 1: a file that is not SQLite fails here, before
  // anything has been written to it.
  Result<int64_t> app = ReadInt(db, "PRAGMA application_id", "read application_id");
  if (!app.ok() && app.status().code() == StatusCode::kFailedPrecondition) {
    return FailedPrecondition(db_path + ": not a drover state database (" +
                              app.status().message() +
                              "); move it away or choose another state directory");
  }
  if (!app.ok()) return app.status().WithContext(db_path);
  h.application_id = *app;
  Result<int64_t> version = ReadInt(db, "PRAGMA user_version", "read user_version");
  if (!version.ok()) return version.status().WithContext(db_path);
  h.user_version = *version;
  Result<int64_t> objects =
      ReadInt(db, "SELECT count(*) FROM sqlite_schema", "count schema objects");
  if (!objects.ok()) return objects.status().WithContext(db_path);
  h.objects = *objects;
  return h;
}

// Whether the file may be used: ours and not from a newer drover, or an
// empty SQLite file that is ours to initialise.
Status CheckHeader(const Header& h, const std::string& db_path) {
  bool empty = h.application_id == 0 && h.user_version == 0 && h.objects == 0;
  if (h.application_id != kApplicationId && !empty) {
    char id[16];
    std::snprintf(
        id, sizeof id, "0x%08llx",
        static_cast<unsigned long long>(static_cast<uint32_t>(h.application_id)));
    return FailedPrecondition(
        db_path + ": a SQLite database of another application (application_id " + id +
        ", drover's is 0x44525652), not a drover state database; move it away or "
        "choose another state directory");
  }
  if (h.user_version > kSchemaVersion) {
    return FailedPrecondition(
        db_path + ": schema version " + std::to_string(h.user_version) +
        " was written by a newer drover; this drover knows versions up to " +
        std::to_string(kSchemaVersion) +
        ". Use a newer drover or another state directory");
  }
  return Status::Ok();
}

Status Migrate(sqlite3* db, const std::string& db_path) {
  // IMMEDIATE takes the write lock first, so the header read below is the
  // one the migrations apply to even if another process raced us here.
  DROVER_RETURN_IF_ERROR(
      ExecSql(db, "BEGIN IMMEDIATE", "begin migration").WithContext(db_path));
  auto fail = [&](const Status& s) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    return s;
  };
  Result<Header> h = ReadHeader(db, db_path);
  if (!h.ok()) return fail(h.status());
  Status checked = CheckHeader(*h, db_path);
  if (!checked.ok()) return fail(checked);
  for (const Migration& m : kMigrations) {
    if (m.version <= h->user_version) continue;
    Status s =
        ExecSql(db, m.sql, "migration to schema version " + std::to_string(m.version));
    if (!s.ok()) return fail(s.WithContext(db_path));
  }
  std::string stamp = "PRAGMA application_id = " + std::to_string(kApplicationId) +
                      "; PRAGMA user_version = " + std::to_string(kSchemaVersion);
  Status s = ExecSql(db, stamp.c_str(), "set schema version");
  if (!s.ok()) return fail(s.WithContext(db_path));
  s = ExecSql(db, "COMMIT", "commit migration");
  if (!s.ok()) return fail(s.WithContext(db_path));
  return Status::Ok();
}

}  // namespace

Result<int> PrepareDatabase(sqlite3* db, const std::string& db_path) {
  int rc = sqlite3_busy_timeout(db, 5000);
  if (rc != SQLITE_OK) return SqliteError(db, rc, db_path + ": set busy timeout");

  Result<Header> h = ReadHeader(db, db_path);
  if (!h.ok()) return h.status();
  DROVER_RETURN_IF_ERROR(CheckHeader(*h, db_path));

  // journal_mode answers with the mode in force; anything but "wal" means
  // the file system cannot do WAL (no shared memory), which the concurrent
  // reader/writer design relies on.
  {
    Statement s;
    DROVER_RETURN_IF_ERROR(s.Prepare(db, "PRAGMA journal_mode = WAL", "set journal_mode")
                               .WithContext(db_path));
    Statement::Use use(s);
    Result<bool> row = use.Step();
    if (!row.ok()) return row.status().WithContext(db_path);
    std::string mode = *row ? use.Text(0) : std::string();
    if (mode != "wal") {
      return IoError(db_path + ": cannot use WAL journal mode (got \"" + mode +
                     "\"); put the state directory on a local file system");
    }
  }
  DROVER_RETURN_IF_ERROR(
      ExecSql(db, "PRAGMA synchronous = NORMAL", "set synchronous").WithContext(db_path));
  DROVER_RETURN_IF_ERROR(
      ExecSql(db, "PRAGMA foreign_keys = ON", "set foreign_keys").WithContext(db_path));

  if (h->application_id != kApplicationId || h->user_version < kSchemaVersion) {
    DROVER_RETURN_IF_ERROR(Migrate(db, db_path));
  }
  return kSchemaVersion;
}

Status PrepareReader(sqlite3* db, const std::string& db_path) {
  int rc = sqlite3_busy_timeout(db, 5000);
  if (rc != SQLITE_OK) return SqliteError(db, rc, db_path + ": set busy timeout");
  Result<Header> h = ReadHeader(db, db_path);
  if (!h.ok()) return h.status();
  DROVER_RETURN_IF_ERROR(CheckHeader(*h, db_path));
  if (h->application_id != kApplicationId || h->user_version != kSchemaVersion) {
    return FailedPrecondition(db_path + ": schema version " +
                              std::to_string(h->user_version) + ", not " +
                              std::to_string(kSchemaVersion) +
                              " yet; a reader opens a database its writer has made");
  }
  return ExecSql(db, "PRAGMA query_only = ON", "set query_only").WithContext(db_path);
}

}  // namespace drover::store

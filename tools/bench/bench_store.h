// What tools/bench's programs that write drover's state file share
// (dispatch_floor, store_rows): a state directory made by drover's own
// store with one running job, the connection opened as the store opens it,
// the two statements a task costs, and SQLite calls that stop the program
// with the program's name and SQLite's message on any error.
#ifndef DROVER_TOOLS_BENCH_BENCH_STORE_H_
#define DROVER_TOOLS_BENCH_BENCH_STORE_H_

#include <errno.h>  // program_invocation_short_name
#include <sqlite3.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/store/store.h"

namespace drover::bench {

[[noreturn]] inline void Fail(const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", program_invocation_short_name, what.c_str());
  std::exit(1);
}

inline void Exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    Fail(sql + ": " + (err ? err : "?"));
  }
}

inline sqlite3_stmt* Prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr) !=
      SQLITE_OK) {
    Fail(std::string("prepare ") + sql + ": " + sqlite3_errmsg(db));
  }
  return st;
}

// Runs a statement that returns no row, and resets it.
inline void Step(sqlite3* db, sqlite3_stmt* st) {
  if (sqlite3_step(st) != SQLITE_DONE) Fail(std::string("step: ") + sqlite3_errmsg(db));
  sqlite3_reset(st);
}

// A state directory as drover's store makes it (its schema, indexes and
// pragmas) with one running job of `tasks` tasks: the directory's first
// job, so its number (jobs.seq, the first half of a task row's key) is 1.
inline void MakeStateDir(const std::filesystem::path& dir, const std::string& job_id,
                         const std::string& name, uint64_t tasks, int64_t created_ms) {
  auto store = store::Store::Open(dir);
  if (!store.ok()) Fail(store.status().message());
  store::JobRecord job;
  job.id = job_id;
  job.name = name;
  job.state = "running";
  job.created_ms = created_ms;
  job.tasks = static_cast<uint32_t>(tasks);
  if (auto s = (*store)->InsertJob(job, {}); !s.ok()) Fail(s.message());
}

// The directory's state.db as drover's store opens it: one thread uses the
// connection (NOMUTEX), WAL, synchronous = NORMAL, foreign keys on
// (Store::Open has configured SQLite's process-wide settings).
inline sqlite3* OpenStateDb(const std::filesystem::path& dir) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2((dir / "state.db").c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    Fail("open " + (dir / "state.db").string());
  }
  Exec(
      db,
      "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON");
  return db;
}

// A task's two writes, as drover's coordinator made them up to schema 10
// for a task that succeeds on its first attempt: the attempt's row at its
// dispatch (?1 id, ?2 job, ?3 task, ?4 worker, ?5 started_ms, ?6 task
// index), and at its result the row finished, standing for the task's
// (?1 id, ?2 finished_ms, ?3 result_json).
constexpr const char* kInsertAttempt =
    "INSERT INTO attempts (id, job_id, task, number, worker, started_ms, task_idx) "
    "VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6)";
constexpr const char* kFinishAttempt =
    "UPDATE attempts SET finished = 1, finished_ms = ?2, reason = 'ok', exit_code = 0, "
    "result_json = ?3, task_row = 1, fingerprint = 7 WHERE id = ?1 AND finished = 0";

// The same task as drover writes it since schema 11 (the dispatch log,
// docs/state.md): its entry in the turn's row of `dispatches` at its
// dispatch (?1 the row's first attempt id, ?2 its last, ?3 the JSON of
// its entries), the row deleted once its attempts have ended (?1), and the
// attempt's row inserted whole at its result (?1 to ?6 as kInsertAttempt,
// ?7 finished_ms, ?8 result_json).
constexpr const char* kInsertDispatch =
    "INSERT INTO dispatches (id, last_id, attempts) VALUES (?1, ?2, ?3)";
constexpr const char* kDeleteDispatch = "DELETE FROM dispatches WHERE id = ?1";
constexpr const char* kInsertFinishedAttempt =
    "INSERT INTO attempts (id, job_id, task, number, worker, started_ms, task_idx, "
    "finished, finished_ms, reason, exit_code, result_json, task_row, fingerprint) "
    "VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, 1, ?7, 'ok', 0, ?8, 1, 7)";
// kInsertFinishedAttempt for `rows` attempts at once, the parameters of
// row r numbered from 8r + 1 (drover's since schema 12 writes a batch's
// ended attempts 16 to a statement).
inline std::string InsertFinishedAttempts(int rows) {
  std::string sql =
      "INSERT INTO attempts (id, job_id, task, number, worker, started_ms, task_idx, "
      "finished, finished_ms, reason, exit_code, result_json, task_row, fingerprint) "
      "VALUES ";
  for (int r = 0; r < rows; ++r) {
    auto p = [r](int k) { return "?" + std::to_string(8 * r + k); };
    sql += (r > 0 ? ", (" : "(") + p(1) + ", " + p(2) + ", " + p(3) + ", 1, " + p(4) +
           ", " + p(5) + ", " + p(6) + ", 1, " + p(7) + ", 'ok', 0, " + p(8) + ", 1, 7)";
  }
  return sql;
}
// Schema 9's partial index, which schema 10 dropped.
constexpr const char* kAttemptsUnfinished =
    "CREATE INDEX attempts_unfinished ON attempts (id) WHERE finished = 0";

}  // namespace drover::bench

#endif  // DROVER_TOOLS_BENCH_BENCH_STORE_H_

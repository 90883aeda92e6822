// store_rows: what a task's writes cost in drover's store, by the shape of
// those writes and by the indexes of `attempts` (docs/benchmarks.md,
// sessions 25, 28 and 34).
//
//   store_rows [--tasks 100000] [--batch 64] [--runs 5] [--dir DIR]
//
// Each variant gets a fresh state directory made by store::Store::Open
// (drover's schema, indexes and pragmas) with one job, then its SQL is run
// (an index dropped or made). N tasks, BATCH to a transaction; each
// transaction dispatches a batch and takes the results of the batch before
// it, as the coordinator's turns do (a result comes a turn or more after the
// commit its dispatch waited for). A task's writes take one of three
// shapes, each with the statements of tools/bench/bench_store.h: drover's
// since schema 11 (the batch's dispatches one row of the dispatch log, the
// attempt's row inserted whole at its result, standing for the task's row,
// and the log row deleted once its attempts have ended; since schema 12 the
// rows 16 to an INSERT, and attempts_by_task by index); drover's up to
// schema 10 (the attempt's row inserted at its dispatch and finished at its
// result); and the attempt's row inserted whole at the result and nothing
// at the dispatch (what no design that records a dispatch before it is
// sent can reach). Runs are interleaved; printed are the medians of µs a
// task and of the WAL frames the commits wrote (a WAL hook; checkpoints are
// off so that every variant writes into one WAL), and each variant's time
// over the first's. Asserts nothing.
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "tools/bench/bench_store.h"

namespace {

namespace fs = std::filesystem;

using drover::bench::Exec;
using drover::bench::Fail;
using drover::bench::Prepare;
using drover::bench::Step;

enum class Writes {
  kLogThenInsertRows,  // drover's since schema 12: the inserts 16 to a statement
  kLogThenInsert,      // drover's in schema 11
  kInsertThenUpdate,   // drover's up to schema 10
  kInsertAtResult,     // the attempt's row whole at the result, only
};

struct Variant {
  const char* name;
  const char* sql;  // run after the schema is made
  Writes writes;
};

struct Figures {
  double us_per_task = 0;
  int frames = 0;
};

int g_frames = 0;  // frames in the WAL after the last commit (the WAL hook)

// Binds a task's attempt as dispatched: ?1 id, ?2 job, ?3 task, ?4 worker,
// ?5 started_ms, ?6 task index.
void BindDispatch(sqlite3_stmt* st, uint64_t i, const std::string& job_id,
                  const std::string& name) {
  sqlite3_bind_int64(st, 1, static_cast<int64_t>(i + 1));
  sqlite3_bind_text(st, 2, job_id.c_str(), -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, name.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 4, "w1", -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 5, 1'780'000'000'000 + static_cast<int64_t>(i));
  sqlite3_bind_int64(st, 6, static_cast<int64_t>(i));
}

// Binds task i's attempt as ended (kInsertFinishedAttempt's ?1 to ?8), its
// parameters numbered from k + 1. `name` must outlive the statement's step.
void BindFinished(sqlite3_stmt* st, int k, uint64_t i, const std::string& job_id,
                  const std::string& name) {
  sqlite3_bind_int64(st, k + 1, static_cast<int64_t>(i + 1));
  sqlite3_bind_text(st, k + 2, job_id.c_str(), -1, SQLITE_STATIC);
  sqlite3_bind_text(st, k + 3, name.c_str(), -1, SQLITE_STATIC);
  sqlite3_bind_text(st, k + 4, "w1", -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, k + 5, 1'780'000'000'000 + static_cast<int64_t>(i));
  sqlite3_bind_int64(st, k + 6, static_cast<int64_t>(i));
  sqlite3_bind_int64(st, k + 7, 1'780'000'000'100 + static_cast<int64_t>(i));
  sqlite3_bind_text(st, k + 8, "", -1, SQLITE_STATIC);
}

constexpr uint64_t kRows = 16;  // drover's (core/store/dispatch_log.cc)
std::string names[kRows];       // the names a multi-row statement binds

Figures RunOnce(const Variant& v, uint64_t tasks, uint32_t batch, const fs::path& dir) {
  fs::remove_all(dir);
  const std::string job_id = "20261206-000000-f100";
  drover::bench::MakeStateDir(dir, job_id, "rows", tasks, 0);
  sqlite3* db = drover::bench::OpenStateDb(dir);
  Exec(db, "PRAGMA wal_autocheckpoint = 0");
  Exec(db, v.sql);
  Exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");  // the WAL starts empty
  g_frames = 0;
  sqlite3_wal_hook(
      db,
      [](void*, sqlite3*, const char*, int frames) {
        return g_frames = frames, SQLITE_OK;
      },
      nullptr);
  sqlite3_stmt* begin = Prepare(db, "BEGIN");
  sqlite3_stmt* commit = Prepare(db, "COMMIT");
  sqlite3_stmt* insert = Prepare(db, drover::bench::kInsertAttempt);
  sqlite3_stmt* finish = Prepare(db, drover::bench::kFinishAttempt);
  sqlite3_stmt* whole = Prepare(db, drover::bench::kInsertFinishedAttempt);
  sqlite3_stmt* rows = Prepare(db, drover::bench::InsertFinishedAttempts(kRows).c_str());
  sqlite3_stmt* insert_log = Prepare(db, drover::bench::kInsertDispatch);
  sqlite3_stmt* delete_log = Prepare(db, drover::bench::kDeleteDispatch);
  std::string name;
  std::string log;
  const auto start = std::chrono::steady_clock::now();
  for (uint64_t first = 0; first < tasks + batch; first += batch) {
    const uint64_t end = std::min<uint64_t>(tasks, first + batch);
    Step(db, begin);
    // The results of the batch before.
    const uint64_t results = first < batch ? tasks : first - batch;
    uint64_t i = results;
    if (v.writes == Writes::kLogThenInsertRows) {
      // In the order of their ids (these are), kRows to a statement.
      for (; i + kRows <= std::min(first, tasks); i += kRows) {
        for (uint64_t r = 0; r < kRows; ++r) {
          names[r] = "noop[i=" + std::to_string(i + r) + "]";
          BindFinished(rows, static_cast<int>(r) * 8, i + r, job_id, names[r]);
        }
        Step(db, rows);
      }
    }
    for (; i < std::min(first, tasks); ++i) {
      name = "noop[i=" + std::to_string(i) + "]";
      const int64_t finished_ms = 1'780'000'000'100 + static_cast<int64_t>(i);
      if (v.writes == Writes::kInsertThenUpdate) {
        sqlite3_bind_int64(finish, 1, static_cast<int64_t>(i + 1));
        sqlite3_bind_int64(finish, 2, finished_ms);
        sqlite3_bind_text(finish, 3, "", -1, SQLITE_STATIC);
        Step(db, finish);
        if (sqlite3_changes(db) != 1) Fail("an attempt was not finished");
        continue;
      }
      BindFinished(whole, 0, i, job_id, name);
      Step(db, whole);
    }
    if (v.writes != Writes::kInsertThenUpdate && v.writes != Writes::kInsertAtResult &&
        results < tasks) {
      // Every attempt of the batch before has ended: its log row goes.
      sqlite3_bind_int64(delete_log, 1, static_cast<int64_t>(results + 1));
      Step(db, delete_log);
    }
    // This batch's dispatches.
    if (v.writes == Writes::kInsertThenUpdate) {
      for (uint64_t i = first; i < end; ++i) {
        name = "noop[i=" + std::to_string(i) + "]";
        BindDispatch(insert, i, job_id, name);
        Step(db, insert);
      }
    } else if (v.writes != Writes::kInsertAtResult && first < end) {
      log.assign("[");
      for (uint64_t i = first; i < end; ++i) {
        if (log.size() > 1) log += ',';
        log += "[" + std::to_string(i + 1) + ",\"" + job_id +
               "\",\"noop[i=" + std::to_string(i) + "]\",1,\"w1\"," +
               std::to_string(1'780'000'000'000 + i) + "," + std::to_string(i) + "]";
      }
      log += ']';
      sqlite3_bind_int64(insert_log, 1, static_cast<int64_t>(first + 1));
      sqlite3_bind_int64(insert_log, 2, static_cast<int64_t>(end));
      sqlite3_bind_text(insert_log, 3, log.c_str(), -1, SQLITE_TRANSIENT);
      Step(db, insert_log);
    }
    Step(db, commit);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (sqlite3_stmt* st :
       {begin, commit, insert, finish, whole, rows, insert_log, delete_log}) {
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  fs::remove_all(dir);
  return {seconds * 1e6 / static_cast<double>(tasks), g_frames};
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t tasks = 100000;
  uint32_t batch = 64;
  int runs = 5;
  fs::path dir = fs::temp_directory_path() / ("store_rows_" + std::to_string(::getpid()));
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc)
      Fail("usage: store_rows [--tasks N] [--batch B] [--runs R] [--dir DIR]");
    const std::string value = argv[++i];
    if (a == "--tasks") {
      tasks = std::strtoull(value.c_str(), nullptr, 10);
    } else if (a == "--batch") {
      batch = static_cast<uint32_t>(std::strtoul(value.c_str(), nullptr, 10));
    } else if (a == "--runs") {
      runs = std::atoi(value.c_str());
    } else if (a == "--dir") {
      dir = value;
    } else {
      Fail("unknown option " + a);
    }
  }
  if (tasks == 0 || batch == 0 || runs <= 0)
    Fail("--tasks, --batch and --runs must be > 0");
  // attempts_by_task as it was up to schema 11, by name.
  const std::string by_name =
      "DROP INDEX attempts_by_task; CREATE INDEX attempts_by_task ON attempts (job_id, "
      "task, number)";
  const std::string by_name_unfinished =
      by_name + "; " + drover::bench::kAttemptsUnfinished;
  const Variant variants[] = {
      {"drover's writes, schema 12", "SELECT 1", Writes::kLogThenInsertRows},
      {"schema 12's index, a row an INSERT", "SELECT 1", Writes::kLogThenInsert},
      {"schema 11's index, 16 rows an INSERT", by_name.c_str(),
       Writes::kLogThenInsertRows},
      {"drover's writes, schema 11 (the log)", by_name.c_str(), Writes::kLogThenInsert},
      {"drover's writes, schema 10", by_name.c_str(), Writes::kInsertThenUpdate},
      {"drover's writes, schema 9", by_name_unfinished.c_str(),
       Writes::kInsertThenUpdate},
      {"the log, w/o attempts_by_task", "DROP INDEX attempts_by_task",
       Writes::kLogThenInsert},
      {"one insert at the result", by_name.c_str(), Writes::kInsertAtResult},
      {"one insert, w/o attempts_by_task", "DROP INDEX attempts_by_task",
       Writes::kInsertAtResult},
      // Would a smaller index do? One in insertion order, by job: of text
      // (job_id), and of a small integer (task_row, standing for a job's
      // number).
      {"the log, an index by (job_id, id)",
       "DROP INDEX attempts_by_task; CREATE INDEX by_job ON attempts (job_id, id)",
       Writes::kLogThenInsert},
      {"the log, an index by (integer, id)",
       "DROP INDEX attempts_by_task; CREATE INDEX by_job ON attempts (task_row, id)",
       Writes::kLogThenInsert},
  };
  std::vector<std::vector<double>> us(std::size(variants)), frames(std::size(variants));
  for (int r = 0; r < runs; ++r) {
    for (size_t v = 0; v < std::size(variants); ++v) {
      const Figures f = RunOnce(variants[v], tasks, batch, dir);
      us[v].push_back(f.us_per_task);
      frames[v].push_back(f.frames);
    }
  }
  std::printf(
      "store_rows: %llu tasks, %u a transaction, %d runs each, interleaved; medians\n",
      static_cast<unsigned long long>(tasks), batch, runs);
  const double base = Median(us[0]);
  for (size_t v = 0; v < std::size(variants); ++v) {
    std::printf("  %-38s %6.2f us a task  %7.0f WAL frames  %.2fx the first's time\n",
                variants[v].name, Median(us[v]), Median(frames[v]), Median(us[v]) / base);
  }
  return 0;
}

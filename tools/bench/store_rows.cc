// store_rows: what a task's writes cost in drover's store, by the shape of
// those writes and by the indexes of `attempts` (docs/benchmarks.md,
// sessions 25 and 28).
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
// and the log row deleted once its attempts have ended); drover's up to
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
  kLogThenInsert,     // drover's since schema 11
  kInsertThenUpdate,  // drover's up to schema 10
  kInsertAtResult,    // the attempt's row whole at the result, only
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
    for (uint64_t i = results; i < std::min(first, tasks); ++i) {
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
      BindDispatch(whole, i, job_id, name);
      sqlite3_bind_int64(whole, 7, finished_ms);
      sqlite3_bind_text(whole, 8, "", -1, SQLITE_STATIC);
      Step(db, whole);
    }
    if (v.writes == Writes::kLogThenInsert && results < tasks) {
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
    } else if (v.writes == Writes::kLogThenInsert && first < end) {
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
       {begin, commit, insert, finish, whole, insert_log, delete_log}) {
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
  const Variant variants[] = {
      {"drover's writes, schema 11 (the log)", "SELECT 1", Writes::kLogThenInsert},
      {"drover's writes, schema 10", "SELECT 1", Writes::kInsertThenUpdate},
      {"drover's writes, schema 9", drover::bench::kAttemptsUnfinished,
       Writes::kInsertThenUpdate},
      {"the log, w/o attempts_by_task", "DROP INDEX attempts_by_task",
       Writes::kLogThenInsert},
      {"one insert at the result", "SELECT 1", Writes::kInsertAtResult},
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

// store_rows: what a task's two writes cost in drover's store, and what
// each index of `attempts` adds to them (docs/benchmarks.md, session 25).
//
//   store_rows [--tasks 100000] [--batch 64] [--runs 5] [--dir DIR]
//
// Each variant gets a fresh state directory made by store::Store::Open
// (drover's schema, indexes and pragmas) with one job, then the index it
// leaves out is dropped. N tasks, BATCH to a transaction: each task's
// attempt is inserted as at its dispatch and finished as at its result
// (standing for its row), with the statements tools/bench/dispatch_floor
// uses (tools/bench/bench_store.h). Variants: the schema as it is; without
// `attempts_by_task`; without `attempts_unfinished`; without both. Runs are interleaved;
// printed are the medians of µs a task and of the WAL frames the commits wrote (a WAL
// hook; checkpoints are off so that every variant writes into one WAL),
// and each variant's time over the schema's. Asserts nothing.
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

struct Variant {
  const char* name;
  const char* drop;  // SQL run after the schema is made
};

struct Figures {
  double us_per_task = 0;
  int frames = 0;
};

int g_frames = 0;  // frames in the WAL after the last commit (the WAL hook)

Figures RunOnce(const Variant& v, uint64_t tasks, uint32_t batch, const fs::path& dir) {
  fs::remove_all(dir);
  const std::string job_id = "20261206-000000-f100";
  drover::bench::MakeStateDir(dir, job_id, "rows", tasks, 0);
  sqlite3* db = drover::bench::OpenStateDb(dir);
  Exec(db, "PRAGMA wal_autocheckpoint = 0");
  Exec(db, v.drop);
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
  std::string name;
  const auto start = std::chrono::steady_clock::now();
  for (uint64_t first = 0; first < tasks; first += batch) {
    const uint64_t end = std::min<uint64_t>(tasks, first + batch);
    Step(db, begin);
    for (uint64_t i = first; i < end; ++i) {
      name = "noop[i=" + std::to_string(i) + "]";
      sqlite3_bind_int64(insert, 1, static_cast<int64_t>(i + 1));
      sqlite3_bind_text(insert, 2, job_id.c_str(), -1, SQLITE_STATIC);
      sqlite3_bind_text(insert, 3, name.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(insert, 4, "w1", -1, SQLITE_STATIC);
      sqlite3_bind_int64(insert, 5, 1'780'000'000'000 + static_cast<int64_t>(i));
      sqlite3_bind_int64(insert, 6, static_cast<int64_t>(i));
      Step(db, insert);
    }
    for (uint64_t i = first; i < end; ++i) {
      sqlite3_bind_int64(finish, 1, static_cast<int64_t>(i + 1));
      sqlite3_bind_int64(finish, 2, 1'780'000'000'100 + static_cast<int64_t>(i));
      sqlite3_bind_text(finish, 3, "", -1, SQLITE_STATIC);
      Step(db, finish);
      if (sqlite3_changes(db) != 1) Fail("an attempt was not finished");
    }
    Step(db, commit);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (sqlite3_stmt* st : {begin, commit, insert, finish}) sqlite3_finalize(st);
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
      {"the schema as it is", "SELECT 1"},
      {"without attempts_by_task", "DROP INDEX attempts_by_task"},
      {"without attempts_unfinished", "DROP INDEX attempts_unfinished"},
      {"without both", "DROP INDEX attempts_by_task; DROP INDEX attempts_unfinished"},
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
    std::printf("  %-30s %6.2f us a task  %7.0f WAL frames  %.2fx the schema's time\n",
                variants[v].name, Median(us[v]), Median(frames[v]), Median(us[v]) / base);
  }
  return 0;
}

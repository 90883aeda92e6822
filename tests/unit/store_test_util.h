// Shared by the state store's unit tests (store_test.cc, store_open_test.cc):
// record builders, tuple views for comparisons, and the fixture that gives
// each test a fresh temporary state directory with a real SQLite file.
#ifndef DROVER_TESTS_UNIT_STORE_TEST_UTIL_H_
#define DROVER_TESTS_UNIT_STORE_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "core/store/store.h"

namespace drover::store::test_util {

namespace fs = std::filesystem;
using std::chrono::microseconds;

inline auto Tie(const JobRecord& j) {
  return std::make_tuple(j.id, j.name, j.spec_file, j.spec_text, j.cwd, j.state,
                         j.priority, j.created_ms, j.finished_ms);
}

inline auto Tie(const TaskRecord& t) {
  return std::make_tuple(t.job_id, t.index, t.name, t.fingerprint, t.state, t.attempts,
                         t.reason, t.exit_code, t.signal, t.detail, t.wall_us,
                         t.result_json, t.worker, t.started_ms, t.finished_ms,
                         t.pending_reason, t.attempt_base);
}

inline auto Tie(const AttemptOutcome& o) {
  return std::make_tuple(static_cast<int>(o.reason), o.exit_code, o.signal, o.message,
                         o.wall.count(), o.cpu_user.count(), o.cpu_sys.count(),
                         o.max_rss_kb, o.out.bytes, o.out.dropped, o.err.bytes,
                         o.err.dropped, o.result_json);
}

inline auto Tie(const AttemptRecord& a) {
  return std::tuple_cat(std::make_tuple(a.id, a.job_id, a.task, a.number, a.worker,
                                        a.finished, a.started_ms, a.finished_ms),
                        Tie(a.outcome));
}

inline JobRecord MakeJob(const std::string& id, const std::string& name, int64_t created_ms) {
  JobRecord j;
  j.id = id;
  j.name = name;
  j.spec_file = "jobs/" + name + ".yaml";
  j.spec_text = "version: 1\nname: " + name + "\n";
  j.cwd = "/home/user/project";
  j.state = "running";
  j.priority = 3;
  j.created_ms = created_ms;
  return j;
}

inline TaskRecord MakeTask(const std::string& job_id, uint32_t index, const std::string& name) {
  TaskRecord t;
  t.job_id = job_id;
  t.index = index;
  t.name = name;
  t.fingerprint =
      0x9E3779B97F4A7C15ull + index;  // high bit set: checks the uint64 mapping
  t.state = "waiting";
  return t;
}

inline AttemptRecord MakeAttempt(uint64_t id, const std::string& job_id, const std::string& task,
                          uint32_t number) {
  AttemptRecord a;
  a.id = id;
  a.job_id = job_id;
  a.task = task;
  a.number = number;
  a.worker = "worker-1";
  a.started_ms = 1'780'000'000'000 + static_cast<int64_t>(id);
  return a;
}

// Every field set to a value other than its default.
inline AttemptOutcome FullOutcome() {
  AttemptOutcome o;
  o.reason = FailureReason::kTimeout;
  o.exit_code = 143;
  o.signal = 15;
  o.message = "timed out after 30s";
  o.wall = microseconds(30'000'123);
  o.cpu_user = microseconds(1'234'567);
  o.cpu_sys = microseconds(89'012);
  o.max_rss_kb = 204'800;
  o.out = {.bytes = (uint64_t{1} << 40) + 7, .dropped = 0xFFFF'FFFF'FFFF'0000ull};
  o.err = {.bytes = 1'048'576, .dropped = 3};
  o.result_json = R"({"sorted":[1,2,3],"note":"ü"})";
  return o;
}

// The ids of the attempts Store::Attempts lists for task `task` of job
// `job_id`, in its order, space-separated; the error if it fails.
inline std::string AttemptIds(Store& store, const std::string& job_id,
                              const std::string& task) {
  auto attempts = store.Attempts(job_id, task);
  if (!attempts.ok()) return attempts.status().ToString();
  std::string ids;
  for (const auto& a : *attempts) ids += (ids.empty() ? "" : " ") + std::to_string(a.id);
  return ids;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "drover-store-test.XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    dir_ = root_ / "state";
  }

  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  // nullptr (with a test failure) when the store does not open.
  std::unique_ptr<Store> Open() {
    Result<std::unique_ptr<Store>> s = Store::Open(dir_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
  }

  fs::path DbPath() const { return dir_ / "state.db"; }

  // Runs SQL on the database file directly, bypassing the Store; returns
  // the first column of the last row as text ("" when none).
  std::string RawSql(const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
    std::string out;
    char* err = nullptr;
    int rc = sqlite3_exec(
        db, sql.c_str(),
        [](void* arg, int n, char** values, char**) {
          if (n > 0 && values[0] != nullptr) *static_cast<std::string*>(arg) = values[0];
          return 0;
        },
        &out, &err);
    EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
    return out;
  }

  std::string ReadFile(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  fs::path root_;
  fs::path dir_;
};

}  // namespace drover::store::test_util

#endif  // DROVER_TESTS_UNIT_STORE_TEST_UTIL_H_

// Unit tests of the SQLite state store: opening and creating a state
// directory, and refusing what is not a drover state file, on real files in
// a fresh temporary directory per test.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "core/store/schema.h"
#include "core/store/store.h"
#include "tests/unit/store_test_util.h"

namespace drover::store {
namespace {

namespace fs = std::filesystem;
using test_util::StoreTest;

// Given a state directory that does not exist, Open should create it with
// logs/ and a WAL database stamped with drover's application id and schema.
TEST_F(StoreTest, OpenCreatesDirectoryAndSchema) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->SchemaVersion(), kSchemaVersion);
  EXPECT_EQ(store->dir(), fs::absolute(dir_));
  EXPECT_TRUE(fs::is_directory(dir_ / "logs"));
  EXPECT_TRUE(fs::is_regular_file(DbPath()));
  Result<uint64_t> max_id = store->MaxAttemptId();
  ASSERT_TRUE(max_id.ok());
  EXPECT_EQ(*max_id, 0u);
  store.reset();

  EXPECT_EQ(RawSql("PRAGMA application_id"), std::to_string(0x44525652));
  EXPECT_EQ(RawSql("PRAGMA user_version"), std::to_string(kSchemaVersion));
  EXPECT_EQ(RawSql("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(RawSql("SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_schema "
                   "WHERE type = 'table' ORDER BY name)"),
            "artifacts,attempts,cache_decisions,cache_entries,dispatches,job_inputs,jobs,"
            "pipeline_runs,task_rows");
  EXPECT_EQ(RawSql("SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_schema "
                   "WHERE type = 'view' ORDER BY name)"),
            "running_attempts,tasks");
  EXPECT_EQ(
      RawSql("SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name IN "
             "('tasks_by_name', 'jobs_by_seq', 'jobs_by_seq_id', 'attempts_by_task')"),
      "4");
  // Unfinished attempts are found job by job (schema 10).
  EXPECT_EQ(
      RawSql("SELECT count(*) FROM sqlite_schema WHERE name = 'attempts_unfinished'"),
      "0");
  // One B-tree a task row, keyed by (job, idx).
  EXPECT_EQ(
      RawSql("SELECT group_concat(name, ',') FROM pragma_index_info('tasks_by_name')"),
      "job,name");
  EXPECT_EQ(RawSql("SELECT sql LIKE '%WITHOUT ROWID%' FROM sqlite_schema WHERE name = "
                   "'task_rows'"),
            "1");
}

// Given a state.db that is not a SQLite file, Open should refuse it with a
// message naming the path, and leave the file untouched.
TEST_F(StoreTest, RefusesNonDatabaseFile) {
  fs::create_directories(dir_);
  const std::string text = "this is a text file someone put here, not a database\n";
  std::ofstream(DbPath()) << text;
  Result<std::unique_ptr<Store>> s = Store::Open(dir_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find(fs::absolute(DbPath()).string()), std::string::npos)
      << s.status().message();
  EXPECT_NE(s.status().message().find("not a drover state database"), std::string::npos)
      << s.status().message();
  EXPECT_EQ(ReadFile(DbPath()), text);
}

// Given a SQLite database of another application (no application id, or a
// different one), Open should refuse it and leave it in its journal mode.
TEST_F(StoreTest, RefusesForeignSqliteDatabase) {
  fs::create_directories(dir_);
  RawSql("CREATE TABLE photos (id INTEGER PRIMARY KEY)");
  Result<std::unique_ptr<Store>> s = Store::Open(dir_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find(fs::absolute(DbPath()).string()), std::string::npos)
      << s.status().message();
  EXPECT_NE(s.status().message().find("another application"), std::string::npos)
      << s.status().message();
  EXPECT_EQ(RawSql("PRAGMA journal_mode"), "delete");

  fs::remove(DbPath());
  RawSql("PRAGMA application_id = 1234");  // an empty file, but someone else's
  s = Store::Open(dir_);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("0x000004d2"), std::string::npos)
      << s.status().message();
}

// Given a database whose user_version is newer than this drover's schema,
// Open should refuse it with a clear message and not touch the version.
TEST_F(StoreTest, RefusesNewerSchemaVersion) {
  ASSERT_NE(Open(), nullptr);
  RawSql("PRAGMA user_version = " + std::to_string(kSchemaVersion + 1));
  Result<std::unique_ptr<Store>> s = Store::Open(dir_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find(fs::absolute(DbPath()).string()), std::string::npos)
      << s.status().message();
  EXPECT_NE(s.status().message().find("newer drover"), std::string::npos)
      << s.status().message();
  EXPECT_EQ(RawSql("PRAGMA user_version"), std::to_string(kSchemaVersion + 1));
}

// Given an empty state.db (zero bytes), Open should initialise it.
TEST_F(StoreTest, InitialisesEmptyFile) {
  fs::create_directories(dir_);
  std::ofstream(DbPath()).close();
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->SchemaVersion(), kSchemaVersion);
}

// Given a state directory path that is a regular file, Open should fail with
// an io-error naming it.
TEST_F(StoreTest, RefusesStateDirThatIsAFile) {
  std::ofstream(dir_) << "x";
  Result<std::unique_ptr<Store>> s = Store::Open(dir_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kIoError);
  EXPECT_NE(s.status().message().find(dir_.string()), std::string::npos)
      << s.status().message();
}

}  // namespace
}  // namespace drover::store

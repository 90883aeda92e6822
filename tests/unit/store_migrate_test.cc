// Unit tests of the SQLite state store's migrations: a state directory of
// every older schema version, made by turning a current one back, opened
// and migrated in place with its rows kept; and a reader, which opens only
// a database its writer has made. On real files in a fresh temporary
// directory per test.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "core/store/schema.h"
#include "core/store/store.h"
#include "tests/unit/store_test_util.h"

namespace drover::store {
namespace {

namespace fs = std::filesystem;
using test_util::AttemptIds;
using test_util::MakeAttempt;
using test_util::MakeJob;
using test_util::MakeTask;
using test_util::StoreTest;

// Turns a database of the current schema back into schema 8's tables (the
// tasks table as it was, keyed by (job_id, name), in place of task_rows and
// the view; jobs without seq; attempts without task_row and fingerprint),
// keeping the rows: the start of every older database a test builds.
//
// What schema 12 changed: attempts_by_task by name.
const std::string kBackToSchema11 =
    "DROP INDEX attempts_by_task; CREATE INDEX attempts_by_task ON attempts (job_id, "
    "task, number); ";
// What schema 11 made.
const std::string kBackToSchema10 =
    kBackToSchema11 + "DROP VIEW running_attempts; DROP TABLE dispatches; ";
// What schema 10 dropped.
const std::string kBackToSchema9 =
    kBackToSchema10 +
    "CREATE INDEX attempts_unfinished ON attempts (id) WHERE finished = 0; ";
const std::string kBackToSchema8 =
    kBackToSchema9 +
    "DROP VIEW tasks; CREATE TABLE tasks_8 (job_id TEXT NOT NULL REFERENCES jobs (id) ON "
    "DELETE CASCADE, "
    "name TEXT NOT NULL, idx INTEGER NOT NULL, fingerprint INTEGER NOT NULL, state TEXT "
    "NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, reason TEXT NOT NULL DEFAULT '', "
    "exit_code INTEGER NOT NULL DEFAULT -1, signal INTEGER NOT NULL DEFAULT 0, detail "
    "TEXT NOT NULL DEFAULT '', wall_us INTEGER NOT NULL DEFAULT 0, result_json TEXT NOT "
    "NULL DEFAULT '', worker TEXT NOT NULL DEFAULT '', started_ms INTEGER NOT NULL "
    "DEFAULT 0, finished_ms INTEGER NOT NULL DEFAULT 0, pending_reason TEXT NOT NULL "
    "DEFAULT '', attempt_base INTEGER NOT NULL DEFAULT 0, outputs_json TEXT NOT NULL "
    "DEFAULT '', PRIMARY KEY (job_id, name)); "
    "INSERT INTO tasks_8 SELECT job_id, name, idx, fingerprint, state, attempts, reason, "
    "exit_code, signal, detail, wall_us, result_json, worker, started_ms, finished_ms, "
    "pending_reason, attempt_base, outputs_json FROM task_rows; "
    "DROP TABLE task_rows; ALTER TABLE tasks_8 RENAME TO tasks; "
    "ALTER TABLE attempts DROP COLUMN task_row; ALTER TABLE attempts DROP COLUMN "
    "fingerprint; "
    "CREATE INDEX tasks_by_index ON tasks (job_id, idx); "
    "DROP INDEX jobs_by_seq; DROP INDEX jobs_by_seq_id; ALTER TABLE jobs DROP COLUMN "
    "seq; ";

// Attempt 7 of the tests' job j1: task b's second, running on worker-1, as
// drover wrote a dispatch up to schema 10 (an unfinished row).
const std::string kStartedRowOfB =
    "INSERT INTO attempts (id, job_id, task, number, worker, started_ms, task_idx) "
    "VALUES (7, 'j1', 'b', 2, 'worker-1', 1780000000007, 1); ";

// Given a state directory of schema version 1 (before tasks.attempt_base)
// holding a job, Open should migrate it to the current version in place:
// the column exists with 0 for the old rows, and the rows are kept.
TEST_F(StoreTest, MigratesSchemaVersion1) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(
        store->InsertJob(MakeJob("j1", "old", 1000), {MakeTask("j1", 0, "a")}).ok());
  }
  // What a version-1 drover left: the table without the column.
  RawSql(std::string(kBackToSchema8) +
         "ALTER TABLE tasks DROP COLUMN attempt_base; ALTER TABLE jobs DROP COLUMN "
         "submitter_key; ALTER TABLE jobs DROP COLUMN submitter_name; ALTER TABLE tasks "
         "DROP "
         "COLUMN outputs_json; ALTER TABLE attempts DROP COLUMN outputs_json; DROP TABLE "
         "artifacts; DROP TABLE cache_entries; DROP TABLE cache_decisions; "
         "ALTER TABLE jobs DROP COLUMN tasks; ALTER TABLE attempts DROP COLUMN task_idx; "
         "DROP TABLE job_inputs; DROP TABLE pipeline_runs; PRAGMA user_version = 1");
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(RawSql("PRAGMA user_version"), std::to_string(kSchemaVersion));
  auto tasks = store->Tasks("j1");
  ASSERT_TRUE(tasks.ok()) << tasks.status().ToString();
  ASSERT_EQ(tasks->size(), 1u);
  EXPECT_EQ((*tasks)[0].name, "a");
  EXPECT_EQ((*tasks)[0].attempt_base, 0u);
  // Schema 8's task count is 0 for the old job, whose every task has a row.
  auto job = store->GetJob("j1");
  ASSERT_TRUE(job.ok() && *job);
  EXPECT_EQ((*job)->tasks, 0u);
  auto counts = store->TaskStateCounts("j1");
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(*counts, (std::vector<std::pair<std::string, uint64_t>>{{"waiting", 1}}));
}

// Given a state directory of schema version 8 (tasks keyed by (job_id,
// name) in a rowid table) with two jobs, a finished task and a running one,
// Open should rebuild the tasks table keyed by (job, idx) and keep every
// row: each job's tasks read back as before, a new job takes the next
// number, and a row cannot name one job by number and another by id.
TEST_F(StoreTest, MigratesSchemaVersion8KeysTasksByJobAndIndex) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->InsertJob(MakeJob("j1", "one", 1000), {}).ok());
    ASSERT_TRUE(store->InsertJob(MakeJob("j2", "two", 2000), {}).ok());
    TaskRecord a = MakeTask("j1", 0, "a");
    a.state = "succeeded";
    a.attempts = 1;
    a.outputs_json = R"({"v":"1"})";
    ASSERT_TRUE(store->UpdateTask(a).ok());
    TaskRecord b = MakeTask("j1", 1, "b");
    b.state = "retry-wait";
    b.attempts = 1;
    ASSERT_TRUE(store->UpdateTask(b).ok());
    ASSERT_TRUE(store->UpdateTask(MakeTask("j2", 0, "c")).ok());
  }
  // Attempt 2 of b runs: an unfinished row, as drover wrote it up to
  // schema 10.
  RawSql(kStartedRowOfB + kBackToSchema8 + "PRAGMA user_version = 8");
  ASSERT_EQ(RawSql("SELECT count(*) FROM pragma_table_info('tasks') WHERE name = 'job'"),
            "0");
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(RawSql("PRAGMA user_version"), std::to_string(kSchemaVersion));
  EXPECT_EQ(RawSql("SELECT group_concat(id || '=' || seq, ',') FROM (SELECT id, seq FROM "
                   "jobs ORDER BY id)"),
            "j1=1,j2=2");
  auto one = store->Tasks("j1");
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  ASSERT_EQ(one->size(), 2u);
  EXPECT_EQ((*one)[0].name, "a");
  EXPECT_EQ((*one)[0].state, "succeeded");
  EXPECT_EQ((*one)[0].outputs_json, R"({"v":"1"})");
  EXPECT_EQ((*one)[0].fingerprint, MakeTask("j1", 0, "a").fingerprint);
  EXPECT_EQ((*one)[1].name, "b");
  EXPECT_EQ((*one)[1].state, "running");  // its unfinished attempt 2
  EXPECT_EQ((*one)[1].attempts, 2u);
  auto two = store->Tasks("j2");
  ASSERT_TRUE(two.ok());
  ASSERT_EQ(two->size(), 1u);
  EXPECT_EQ((*two)[0].name, "c");
  auto counts = store->TaskStateCounts("j1");
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(*counts, (std::vector<std::pair<std::string, uint64_t>>{{"running", 1},
                                                                    {"succeeded", 1}}));

  ASSERT_TRUE(
      store->InsertJob(MakeJob("j3", "three", 3000), {MakeTask("j3", 0, "d")}).ok());
  EXPECT_EQ(RawSql("SELECT seq FROM jobs WHERE id = 'j3'"), "3");
  TaskRecord d = MakeTask("j3", 0, "d");
  d.state = "failed";
  ASSERT_TRUE(store->UpdateTask(d).ok());
  auto at = store->TaskAt("j3", 0, "d");
  ASSERT_TRUE(at.ok() && at->has_value());
  EXPECT_EQ((*at)->state, "failed");

  // The foreign key holds the job's number and id together.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA foreign_keys = ON", nullptr, nullptr, nullptr),
            SQLITE_OK);
  EXPECT_EQ(
      sqlite3_exec(db,
                   "INSERT INTO task_rows (job, idx, job_id, name, fingerprint, state) "
                   "VALUES (1, 5, 'j2', 'x', 0, 'waiting')",
                   nullptr, nullptr, nullptr),
      SQLITE_CONSTRAINT);
  sqlite3_close(db);
}

// Given a state directory of schema version 9 (with the partial index of
// unfinished attempts) holding a running job with an attempt running and
// one finished, and an ended job, Open should drop the index, and the
// running attempt should still be found: by recovery (UnfinishedAttempts,
// of running jobs), by Tasks and by TaskStateCounts; the ended job's tasks
// read without it.
TEST_F(StoreTest, MigratesSchemaVersion9FindsUnfinishedAttemptsByJob) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    JobRecord one = MakeJob("j1", "one", 1000);
    one.tasks = 2;
    ASSERT_TRUE(store->InsertJob(one, {}).ok());
    JobRecord two = MakeJob("j2", "two", 2000);
    two.tasks = 1;
    ASSERT_TRUE(store->InsertJob(two, {}).ok());
    AttemptRecord done = MakeAttempt(1, "j1", "a", 1);
    done.task_index = 0;
    ASSERT_TRUE(store->InsertAttempt(done).ok());
    AttemptOutcome ok;
    ok.reason = FailureReason::kNone;
    ASSERT_TRUE(store->FinishAttempt(1, "w1", ok, 1500).ok());
    TaskRecord c = MakeTask("j2", 0, "c");
    c.state = "failed";
    c.attempts = 1;
    ASSERT_TRUE(store->UpdateTask(c).ok());
    ASSERT_TRUE(store->SetJobState("j2", "failed", 2500).ok());
  }
  RawSql(
      "INSERT INTO attempts (id, job_id, task, number, worker, started_ms, task_idx) "
      "VALUES (2, 'j1', 'b', 1, 'worker-1', 1000, 1); " +
      kBackToSchema9 + "PRAGMA user_version = 9");
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(RawSql("PRAGMA user_version"), std::to_string(kSchemaVersion));
  EXPECT_EQ(
      RawSql("SELECT count(*) FROM sqlite_schema WHERE name = 'attempts_unfinished'"),
      "0");
  auto unfinished = store->UnfinishedAttempts();
  ASSERT_TRUE(unfinished.ok()) << unfinished.status().ToString();
  ASSERT_EQ(unfinished->size(), 1u);
  EXPECT_EQ((*unfinished)[0].id, 2u);
  EXPECT_EQ((*unfinished)[0].task, "b");
  auto tasks = store->Tasks("j1");
  ASSERT_TRUE(tasks.ok()) << tasks.status().ToString();
  ASSERT_EQ(tasks->size(), 1u);  // a's attempt did not stand for a row
  EXPECT_EQ((*tasks)[0].name, "b");
  EXPECT_EQ((*tasks)[0].state, "running");
  auto counts = store->TaskStateCounts("j1");
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(*counts, (std::vector<std::pair<std::string, uint64_t>>{{"running", 1},
                                                                    {"waiting", 1}}));
  auto ended = store->TaskStateCounts("j2");
  ASSERT_TRUE(ended.ok());
  EXPECT_EQ(*ended, (std::vector<std::pair<std::string, uint64_t>>{{"failed", 1}}));
}

// Given a state directory of schema version 11 (attempts_by_task by name)
// whose attempts carry an index of -1 (stored before schema 8), an index a
// resume changed since (task b moved from 1 to 2), the index of a task
// without a row any more (c, run again), and a standing attempt's (d), Open
// should key attempts_by_task by index, give each attempt its task's row's
// index or -1 (the standing one keeps its own), and find every attempt of
// a task by its name.
TEST_F(StoreTest, MigratesSchemaVersion11FindsAttemptsByTaskIndex) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    JobRecord job = MakeJob("j1", "renumbered", 1000);
    job.tasks = 4;
    ASSERT_TRUE(store->InsertJob(job, {}).ok());
    for (const auto& [name, idx] :
         std::vector<std::pair<std::string, uint32_t>>{{"a", 0}, {"b", 2}}) {
      TaskRecord row = MakeTask("j1", idx, name);
      row.state = "succeeded";
      ASSERT_TRUE(store->UpdateTask(row).ok());
    }
  }
  RawSql(
      "INSERT INTO attempts (id, job_id, task, number, finished, reason, task_idx, "
      "task_row) VALUES (1, 'j1', 'a', 1, 1, 'exit', -1, 0), (2, 'j1', 'a', 2, 1, 'ok', "
      "-1, 0), (3, 'j1', 'b', 1, 1, 'ok', 1, 0), (4, 'j1', 'c', 1, 1, 'exit', 3, 0), "
      "(5, 'j1', 'd', 1, 1, 'ok', 3, 1); " +
      kBackToSchema11 + "PRAGMA user_version = 11");
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(RawSql("PRAGMA user_version"), std::to_string(kSchemaVersion));
  EXPECT_EQ(RawSql("SELECT group_concat(name, ',') FROM pragma_index_info("
                   "'attempts_by_task')"),
            "job_id,task_idx,number");
  EXPECT_EQ(RawSql("SELECT group_concat(id || ':' || task_idx, ' ') FROM (SELECT id, "
                   "task_idx FROM attempts ORDER BY id)"),
            "1:0 2:0 3:2 4:-1 5:3");
  EXPECT_EQ(AttemptIds(*store, "j1", "a"), "1 2");
  EXPECT_EQ(AttemptIds(*store, "j1", "b"), "3");
  EXPECT_EQ(AttemptIds(*store, "j1", "c"), "4");
  EXPECT_EQ(AttemptIds(*store, "j1", "d"), "5");
}

// Given a state directory of schema version 2 (before jobs.submitter_key
// and jobs.submitter_name) holding a job, Open should migrate it to version
// 3 in place: the old job reads back with no submitter, and a new job
// records its submitter.
TEST_F(StoreTest, MigratesSchemaVersion2AddsJobSubmitter) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(
        store->InsertJob(MakeJob("j1", "old", 1000), {MakeTask("j1", 0, "a")}).ok());
  }
  // What a version-2 drover left: jobs without the two columns.
  RawSql(
      std::string(kBackToSchema8) +
      "ALTER TABLE jobs DROP COLUMN submitter_key; ALTER TABLE jobs DROP COLUMN "
      "submitter_name; ALTER TABLE tasks DROP COLUMN outputs_json; ALTER TABLE attempts "
      "DROP COLUMN outputs_json; DROP TABLE artifacts; "
      "DROP TABLE cache_entries; DROP TABLE cache_decisions; "
      "ALTER TABLE jobs DROP COLUMN tasks; ALTER TABLE attempts DROP COLUMN task_idx; "
      "DROP TABLE job_inputs; DROP TABLE pipeline_runs; PRAGMA user_version = 2");
  ASSERT_EQ(RawSql("SELECT count(*) FROM pragma_table_info('jobs') WHERE name LIKE "
                   "'submitter%'"),
            "0");
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(RawSql("PRAGMA user_version"), std::to_string(kSchemaVersion));
  auto old = store->GetJob("j1");
  ASSERT_TRUE(old.ok() && *old) << old.status().ToString();
  EXPECT_EQ((*old)->name, "old");
  EXPECT_EQ((*old)->submitter_key, "");
  EXPECT_EQ((*old)->submitter_name, "");
  auto tasks = store->Tasks("j1");
  ASSERT_TRUE(tasks.ok() && tasks->size() == 1u);

  JobRecord job = MakeJob("j2", "new", 2000);
  job.submitter_key = std::string(40, 'k');
  job.submitter_name = "ci runner";
  ASSERT_TRUE(store->InsertJob(job, {MakeTask("j2", 0, "a")}).ok());
  auto fresh = store->GetJob("j2");
  ASSERT_TRUE(fresh.ok() && *fresh);
  EXPECT_EQ((*fresh)->submitter_key, std::string(40, 'k'));
  EXPECT_EQ((*fresh)->submitter_name, "ci runner");
}

// Given a state directory of schema version 3 (before outputs) holding a
// finished attempt, Open should migrate it to the current version in place: the old
// task and attempt read back with no outputs, and new ones keep theirs.
TEST_F(StoreTest, MigratesSchemaVersion3AddsOutputs) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(
        store->InsertJob(MakeJob("j1", "old", 1000), {MakeTask("j1", 0, "a")}).ok());
    AttemptRecord a;
    a.id = 1;
    a.job_id = "j1";
    a.task = "a";
    a.number = 1;
    ASSERT_TRUE(store->InsertAttempt(a).ok());
    AttemptOutcome done;
    done.exit_code = 0;
    ASSERT_TRUE(store->FinishAttempt(1, "w1", done, 2000).ok());
  }
  // What a version-3 drover left: attempts and tasks without outputs_json.
  RawSql(std::string(kBackToSchema8) +
         "ALTER TABLE tasks DROP COLUMN outputs_json; ALTER TABLE attempts DROP COLUMN "
         "outputs_json; DROP TABLE artifacts; DROP TABLE cache_entries; "
         "DROP TABLE cache_decisions; DROP TABLE job_inputs; DROP TABLE pipeline_runs; "
         "ALTER TABLE jobs DROP COLUMN tasks; ALTER TABLE attempts DROP COLUMN task_idx; "
         "PRAGMA user_version = 3");
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(RawSql("PRAGMA user_version"), std::to_string(kSchemaVersion));
  auto tasks = store->Tasks("j1");
  ASSERT_TRUE(tasks.ok() && tasks->size() == 1u) << tasks.status().ToString();
  EXPECT_EQ((*tasks)[0].outputs_json, "");
  auto attempts = store->Attempts("j1", "a");
  ASSERT_TRUE(attempts.ok() && attempts->size() == 1u);
  EXPECT_TRUE((*attempts)[0].outcome.outputs.empty());

  TaskRecord row = (*tasks)[0];
  row.outputs_json = OutputsToJson({{"version", "1.2"}});
  ASSERT_TRUE(store->UpdateTask(row).ok());
  AttemptRecord b;
  b.id = 2;
  b.job_id = "j1";
  b.task = "a";
  b.number = 2;
  ASSERT_TRUE(store->InsertAttempt(b).ok());
  AttemptOutcome done;
  done.exit_code = 0;
  done.outputs = {{"version", "1.2"}, {"notes", "two\nlines"}};
  ASSERT_TRUE(store->FinishAttempt(2, "w1", done, 3000).ok());
  store.reset();
  store = Open();
  ASSERT_NE(store, nullptr);
  tasks = store->Tasks("j1");
  ASSERT_TRUE(tasks.ok() && tasks->size() == 1u);
  EXPECT_EQ((*tasks)[0].outputs_json, R"({"version":"1.2"})");
  attempts = store->Attempts("j1", "a");
  ASSERT_TRUE(attempts.ok() && attempts->size() == 2u);
  EXPECT_EQ((*attempts)[1].outcome.outputs, done.outputs);
}

// Given a state directory a Store opened: a reader should see what the
// writer commits (each read as of its start), fail every write it is asked
// for and leave the file as it was; with no database, or one of an older
// schema, it should refuse, naming the file, and create nothing.
TEST_F(StoreTest, AReaderSeesCommitsAndWritesNothing) {
  {
    auto missing = Store::OpenReader(dir_);
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.status().message().find(DbPath().string()), std::string::npos)
        << missing.status().message();
    EXPECT_FALSE(fs::exists(DbPath())) << "a reader creates nothing";
  }
  auto writer = Open();
  ASSERT_NE(writer, nullptr);
  auto reader = Store::OpenReader(dir_);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->SchemaVersion(), kSchemaVersion);
  auto none = (*reader)->GetJob("j1");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(*none);

  ASSERT_TRUE(
      writer->InsertJob(MakeJob("j1", "one", 1000), {MakeTask("j1", 0, "a")}).ok());
  auto seen = (*reader)->GetJob("j1");
  ASSERT_TRUE(seen.ok());
  ASSERT_TRUE(*seen) << "the writer's commit is seen";
  auto tasks = (*reader)->Tasks("j1");
  ASSERT_TRUE(tasks.ok());
  ASSERT_EQ(tasks->size(), 1u);

  Status refused = (*reader)->InsertJob(MakeJob("j2", "two", 2000), {});
  EXPECT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find("readonly"), std::string::npos) << refused.message();
  auto j2 = writer->GetJob("j2");
  ASSERT_TRUE(j2.ok());
  EXPECT_FALSE(*j2) << "nothing the reader was asked to write was written";

  // A database of schema 8 is the writer's to migrate, not a reader's.
  writer.reset();
  reader->reset();
  RawSql(std::string(kBackToSchema8) + "PRAGMA user_version = 8");
  auto old = Store::OpenReader(dir_);
  ASSERT_FALSE(old.ok());
  EXPECT_EQ(old.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(old.status().message().find("schema version 8"), std::string::npos)
      << old.status().message();
}

// Given a state directory of schema version 4 (before the artifact index)
// holding a job, Open should migrate it to version 6 (5, then 6): the job is kept and
// an artifact of one of its attempts can be indexed and listed once the
// attempt succeeded.
TEST_F(StoreTest, MigratesSchemaVersion4AddsArtifacts) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(
        store->InsertJob(MakeJob("j1", "old", 1000), {MakeTask("j1", 0, "a")}).ok());
  }
  RawSql(std::string(kBackToSchema8) +
         "DROP TABLE artifacts; DROP TABLE cache_entries; DROP TABLE cache_decisions; "
         "ALTER TABLE jobs DROP COLUMN tasks; ALTER TABLE attempts DROP COLUMN task_idx; "
         "DROP TABLE job_inputs; DROP TABLE pipeline_runs; PRAGMA user_version = 4");
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(RawSql("PRAGMA user_version"), std::to_string(kSchemaVersion));
  AttemptRecord attempt;
  attempt.id = 7;
  attempt.job_id = "j1";
  attempt.task = "a";
  attempt.number = 1;
  ASSERT_TRUE(store->InsertAttempt(attempt).ok());
  ArtifactRecord art;
  art.attempt_id = 7;
  art.job_id = "j1";
  art.task = "a";
  art.path = "out/x.bin";
  art.sha256 = std::string(64, 'a');
  art.size = 12;
  ASSERT_TRUE(store->InsertArtifact(art).ok());
  // Not listed until its attempt succeeded.
  auto listed = store->Artifacts("j1");
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_TRUE(listed->empty());
  AttemptOutcome ok;
  ok.exit_code = 0;
  ASSERT_TRUE(store->FinishAttempt(7, "w1", ok, 2000).ok());
  listed = store->Artifacts("j1", "a");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].path, "out/x.bin");
  EXPECT_EQ((*listed)[0].size, 12u);
  auto blobs = store->ReferencedBlobs();
  ASSERT_TRUE(blobs.ok());
  EXPECT_EQ(blobs->size(), 1u);
  auto forgotten = store->ForgetArtifacts(0, 0);
  ASSERT_TRUE(forgotten.ok());
  EXPECT_EQ(*forgotten, 1);
  EXPECT_TRUE(store->Artifacts("j1")->empty());
}

// Given a state directory of schema version 5 (before the cache and
// pipeline runs), Open should migrate it to version 8; then pipeline runs
// are recorded and read back as a restarted coordinator reads them: the last started run,
// a queued run until it starts, the skipped count and the last fire time (manual runs
// aside).
TEST_F(StoreTest, MigratesSchemaVersion5AddsPipelineRuns) {
  ASSERT_NE(Open(), nullptr);
  RawSql(
      std::string(kBackToSchema8) +
      "DROP TABLE pipeline_runs; DROP TABLE cache_entries; DROP TABLE cache_decisions; "
      "ALTER TABLE jobs DROP COLUMN tasks; ALTER TABLE attempts DROP COLUMN task_idx; "
      "DROP TABLE job_inputs; PRAGMA user_version = 5");
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(RawSql("PRAGMA user_version"), std::to_string(kSchemaVersion));
  ASSERT_EQ(*store->MaxPipelineRunId(), 0);
  auto empty = store->PipelineHistoryOf("nightly");
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_FALSE(empty->last_started);
  EXPECT_EQ(empty->last_due_ms, 0);

  auto run = [](int64_t id, int64_t due, const char* trigger, const char* outcome,
                const char* job) {
    PipelineRunRecord r;
    r.id = id;
    r.pipeline = "nightly";
    r.due_ms = due;
    r.trigger = trigger;
    r.outcome = outcome;
    r.job_id = job;
    r.started_ms = *job ? due + 5 : 0;
    return r;
  };
  ASSERT_TRUE(store->InsertPipelineRun(run(1, 1000, "schedule", "started", "j1")).ok());
  ASSERT_TRUE(store->InsertPipelineRun(run(2, 2000, "schedule", "skipped", "")).ok());
  ASSERT_TRUE(store->InsertPipelineRun(run(3, 3000, "schedule", "queued", "")).ok());
  ASSERT_TRUE(store->InsertPipelineRun(run(4, 3500, "manual", "skipped", "")).ok());
  EXPECT_EQ(store->InsertPipelineRun(run(4, 1, "manual", "started", "jx")).code(),
            StatusCode::kAlreadyExists);
  auto h = store->PipelineHistoryOf("nightly");
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  ASSERT_TRUE(h->last_started);
  EXPECT_EQ(h->last_started->job_id, "j1");
  ASSERT_TRUE(h->queued);
  EXPECT_EQ(h->queued->id, 3);
  EXPECT_EQ(h->skipped, 2u);
  EXPECT_EQ(h->last_due_ms, 3000);  // the manual run's time is no fire time

  ASSERT_TRUE(store->StartQueuedPipelineRun(3, "j3", 9000).ok());
  EXPECT_EQ(store->StartQueuedPipelineRun(99, "j9", 9000).code(), StatusCode::kNotFound);
  h = store->PipelineHistoryOf("nightly");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->last_started->job_id, "j3");
  EXPECT_EQ(h->last_started->due_ms, 3000);
  EXPECT_EQ(h->last_started->started_ms, 9000);
  EXPECT_FALSE(h->queued);
  EXPECT_EQ(*store->MaxPipelineRunId(), 4);
  EXPECT_FALSE(store->PipelineHistoryOf("other")->last_started);
}

// Given a state directory of schema version 5 (before caching) holding a
// job with an indexed artifact, Open should migrate it to version 8: the
// job and its artifact are kept, and cache entries, decisions and job
// inputs can be written and read.
TEST_F(StoreTest, MigratesSchemaVersion5AddsCache) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(
        store->InsertJob(MakeJob("j1", "old", 1000), {MakeTask("j1", 0, "a")}).ok());
    AttemptRecord attempt;
    attempt.id = 3;
    attempt.job_id = "j1";
    attempt.task = "a";
    attempt.number = 1;
    ASSERT_TRUE(store->InsertAttempt(attempt).ok());
    ASSERT_TRUE(store->FinishAttempt(3, "w1", AttemptOutcome(), 2000).ok());
    ASSERT_TRUE(
        store
            ->InsertArtifact({3, "j1", "a", "x.bin", std::string(64, 'a'), 1, 0644, 2000})
            .ok());
  }
  RawSql(std::string(kBackToSchema8) +
         "DROP TABLE cache_entries; DROP TABLE cache_decisions; DROP TABLE job_inputs; "
         "ALTER TABLE jobs DROP COLUMN tasks; ALTER TABLE attempts DROP COLUMN task_idx; "
         "DROP TABLE pipeline_runs; PRAGMA user_version = 5");
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(RawSql("PRAGMA user_version"), std::to_string(kSchemaVersion));
  auto listed = store->Artifacts("j1", "a");
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 1u);
  auto max_id = store->MaxAttemptId();
  ASSERT_TRUE(max_id.ok());
  EXPECT_EQ(*max_id, 3u);
  CacheEntryRecord e;
  e.attempt_id = 3;
  e.key = std::string(64, 'k');
  e.job_id = "j1";
  e.job_name = "old";
  e.task = "a";
  e.parts_json = "[]";
  ASSERT_TRUE(store->InsertCacheEntry(e).ok());
  auto entries = store->CacheEntries(e.key, 1);
  ASSERT_TRUE(entries.ok() && entries->size() == 1u);
  CacheDecisionRecord d;
  d.job_id = "j1";
  d.task = "a";
  d.explanation = "ran: no earlier successful attempt";
  ASSERT_TRUE(store->PutCacheDecision(d).ok());
  ASSERT_TRUE(store->PutJobInputs({"j1", false, "{}"}).ok());
  auto read = store->CacheDecision("j1", "a");
  ASSERT_TRUE(read.ok() && read->has_value());
  EXPECT_EQ((*read)->explanation, d.explanation);
}

}  // namespace
}  // namespace drover::store

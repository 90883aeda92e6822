// Unit tests of the SQLite state store, on real database files in a fresh
// temporary directory per test: records, attempts and tasks. Batches are in
// store_batch_test.cc, the queries of jobs in store_jobs_test.cc, opening,
// creating and refusing state files in store_open_test.cc.
#include "core/store/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "tests/unit/store_test_util.h"

namespace drover::store {
namespace {

namespace fs = std::filesystem;
using std::chrono::microseconds;
using test_util::FullOutcome;
using test_util::MakeAttempt;
using test_util::MakeJob;
using test_util::MakeTask;
using test_util::StoreTest;
using test_util::Tie;

// Given a job with tasks and attempts, some running, should read everything
// back identical after the Store is destroyed and the directory reopened.
TEST_F(StoreTest, ReopenRecoversJobsTasksAndAttempts) {
  JobRecord job = MakeJob("20261126-083342-7f3a", "seed-tour", 1000);
  std::vector<TaskRecord> tasks = {MakeTask(job.id, 0, "build"),
                                   MakeTask(job.id, 1, "test"),
                                   MakeTask(job.id, 2, "shards[shard=0]")};
  AttemptRecord done = MakeAttempt(1, job.id, "build", 1);
  AttemptRecord running_a = MakeAttempt(2, job.id, "test", 1);
  AttemptRecord running_b = MakeAttempt(5, job.id, "shards[shard=0]", 1);
  AttemptRecord retried = MakeAttempt(7, job.id, "build", 2);
  retried.finished = true;
  retried.finished_ms = retried.started_ms + 40;
  retried.outcome.reason = FailureReason::kNone;
  retried.outcome.exit_code = 0;
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->InsertJob(job, tasks).ok());
    ASSERT_TRUE(store->Begin().ok());
    for (const AttemptRecord* a : {&done, &running_a, &running_b, &retried}) {
      ASSERT_TRUE(store->InsertAttempt(*a).ok()) << a->id;
    }
    done.finished = true;
    done.finished_ms = done.started_ms + 20;
    done.outcome = FullOutcome();
    Result<bool> finished =
        store->FinishAttempt(done.id, done.worker, done.outcome, done.finished_ms);
    ASSERT_TRUE(finished.ok() && *finished);
    tasks[0].state = "succeeded";
    tasks[0].attempts = 2;
    tasks[0].attempt_base = 1;  // one of them by an earlier run
    tasks[0].reason = "ok";
    tasks[0].exit_code = 0;
    tasks[0].detail = "exit 0";
    tasks[0].worker = "worker-1";
    tasks[0].started_ms = done.started_ms;
    tasks[0].finished_ms = retried.finished_ms;
    ASSERT_TRUE(store->UpdateTask(tasks[0]).ok());
    ASSERT_TRUE(store->Commit().ok());
  }

  auto store = Open();
  ASSERT_NE(store, nullptr);
  Result<std::optional<JobRecord>> got = store->GetJob(job.id);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(Tie(**got), Tie(job));
  // The two tasks with an unfinished attempt read as running on it (their
  // rows were not written at dispatch).
  for (const AttemptRecord* a : {&running_a, &running_b}) {
    TaskRecord& t = a == &running_a ? tasks[1] : tasks[2];
    t.state = "running";
    t.attempts = a->number;
    t.worker = a->worker;
    t.started_ms = a->started_ms;
  }
  Result<std::vector<TaskRecord>> got_tasks = store->Tasks(job.id);
  ASSERT_TRUE(got_tasks.ok());
  ASSERT_EQ(got_tasks->size(), tasks.size());
  for (size_t i = 0; i < tasks.size(); ++i)
    EXPECT_EQ(Tie((*got_tasks)[i]), Tie(tasks[i]));

  Result<std::vector<AttemptRecord>> build = store->Attempts(job.id, "build");
  ASSERT_TRUE(build.ok());
  ASSERT_EQ(build->size(), 2u);
  EXPECT_EQ(Tie((*build)[0]), Tie(done));
  EXPECT_EQ(Tie((*build)[1]), Tie(retried));

  Result<std::vector<AttemptRecord>> unfinished = store->UnfinishedAttempts();
  ASSERT_TRUE(unfinished.ok());
  ASSERT_EQ(unfinished->size(), 2u);
  EXPECT_EQ(Tie((*unfinished)[0]), Tie(running_a));
  EXPECT_EQ(Tie((*unfinished)[1]), Tie(running_b));

  Result<uint64_t> max_id = store->MaxAttemptId();
  ASSERT_TRUE(max_id.ok());
  EXPECT_EQ(*max_id, 7u);
}

// Given a running attempt, FinishAttempt should record the first outcome and
// refuse (false, nothing changed) a second one.
TEST_F(StoreTest, FinishAttemptRecordsExactlyOnce) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->InsertJob(MakeJob("j1", "job", 1), {MakeTask("j1", 0, "t")}).ok());
  ASSERT_TRUE(store->InsertAttempt(MakeAttempt(1, "j1", "t", 1)).ok());

  AttemptOutcome first;
  first.reason = FailureReason::kExit;
  first.exit_code = 3;
  Result<bool> r = store->FinishAttempt(1, "worker-1", first, 500);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(*r);

  AttemptOutcome second = FullOutcome();
  r = store->FinishAttempt(1, "worker-2", second, 900);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);

  Result<std::vector<AttemptRecord>> attempts = store->Attempts("j1", "t");
  ASSERT_TRUE(attempts.ok());
  ASSERT_EQ(attempts->size(), 1u);
  const AttemptRecord& a = (*attempts)[0];
  EXPECT_TRUE(a.finished);
  EXPECT_EQ(a.worker, "worker-1");
  EXPECT_EQ(a.finished_ms, 500);
  EXPECT_EQ(Tie(a.outcome), Tie(first));
}

// Given no attempt with that id, FinishAttempt should return false.
TEST_F(StoreTest, FinishAttemptOfUnknownIdReturnsFalse) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  Result<bool> r = store->FinishAttempt(42, "worker-1", AttemptOutcome{}, 1);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
}

// Given an outcome reported without a worker name, FinishAttempt should keep
// the worker the attempt was dispatched to.
TEST_F(StoreTest, FinishAttemptWithoutWorkerKeepsDispatchWorker) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->InsertJob(MakeJob("j1", "job", 1), {MakeTask("j1", 0, "t")}).ok());
  ASSERT_TRUE(store->InsertAttempt(MakeAttempt(1, "j1", "t", 1)).ok());
  AttemptOutcome lost;
  lost.reason = FailureReason::kWorkerLost;
  ASSERT_TRUE(store->FinishAttempt(1, "", lost, 10).ok());
  Result<std::vector<AttemptRecord>> attempts = store->Attempts("j1", "t");
  ASSERT_TRUE(attempts.ok() && attempts->size() == 1);
  EXPECT_EQ((*attempts)[0].worker, "worker-1");
  EXPECT_EQ((*attempts)[0].outcome.reason, FailureReason::kWorkerLost);
}

// Given every field of an AttemptOutcome set, and every failure reason,
// should read the same values back (durations at microsecond precision).
TEST_F(StoreTest, AttemptOutcomeRoundTripsEveryField) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->InsertJob(MakeJob("j1", "job", 1), {MakeTask("j1", 0, "t")}).ok());

  AttemptOutcome full = FullOutcome();
  ASSERT_TRUE(store->InsertAttempt(MakeAttempt(1, "j1", "t", 1)).ok());
  ASSERT_TRUE(store->FinishAttempt(1, "worker-9", full, 77).ok());
  AttemptRecord inserted = MakeAttempt(2, "j1", "t", 2);
  inserted.finished = true;
  inserted.finished_ms = 88;
  inserted.outcome = full;
  inserted.outcome.reason = FailureReason::kLaunchFailed;
  ASSERT_TRUE(store->InsertAttempt(inserted).ok());

  const FailureReason reasons[] = {
      FailureReason::kNone,         FailureReason::kExit,
      FailureReason::kSignal,       FailureReason::kTimeout,
      FailureReason::kCancelled,    FailureReason::kWorkerLost,
      FailureReason::kLaunchFailed, FailureReason::kProcessCrashed,
      FailureReason::kInternal};
  uint64_t id = 10;
  for (FailureReason reason : reasons) {
    ASSERT_TRUE(
        store->InsertAttempt(MakeAttempt(id, "j1", "t", static_cast<uint32_t>(id))).ok());
    AttemptOutcome o;
    o.reason = reason;
    ASSERT_TRUE(store->FinishAttempt(id, "w", o, 1).ok());
    ++id;
  }

  Result<std::vector<AttemptRecord>> attempts = store->Attempts("j1", "t");
  ASSERT_TRUE(attempts.ok());
  ASSERT_EQ(attempts->size(), 2u + std::size(reasons));
  EXPECT_EQ((*attempts)[0].worker, "worker-9");
  EXPECT_EQ((*attempts)[0].finished_ms, 77);
  EXPECT_EQ(Tie((*attempts)[0].outcome), Tie(full));
  EXPECT_EQ(Tie((*attempts)[1]), Tie(inserted));
  for (size_t i = 0; i < std::size(reasons); ++i) {
    EXPECT_EQ((*attempts)[2 + i].outcome.reason, reasons[i]) << ReasonName(reasons[i]);
  }
}

// Given a task record with every field set, Clear() should leave one equal
// to a new record (the coordinator reuses records for later tasks' rows).
TEST_F(StoreTest, AClearedTaskRecordIsANewOne) {
  TaskRecord t = MakeTask("j1", 7, "t[7]");
  t.fingerprint = 99;
  t.state = "succeeded";
  t.attempts = 3;
  t.attempt_base = 1;
  t.reason = "exit";
  t.exit_code = 2;
  t.signal = 9;
  t.detail = "exit 2";
  t.wall_us = 12;
  t.result_json = "[1]";
  t.outputs_json = R"({"a":"b"})";
  t.worker = "w";
  t.started_ms = 5;
  t.finished_ms = 6;
  t.pending_reason = "no worker";
  t.Clear();
  EXPECT_EQ(Tie(t), Tie(TaskRecord{}));
  EXPECT_EQ(t.outputs_json, "");
}

// Given unfinished attempts, one with an outcome not yet set (the write
// every dispatch makes, a statement of its own) and one for each outcome
// field set alone, should read back each one as it was inserted: a set
// field is never lost to the short statement.
TEST_F(StoreTest, AnUnfinishedAttemptKeepsEachOutcomeFieldItWasInsertedWith) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->InsertJob(MakeJob("j1", "job", 1), {MakeTask("j1", 0, "t")}).ok());
  const AttemptOutcome full = FullOutcome();
  const std::vector<std::pair<std::string, std::function<void(AttemptOutcome&)>>> fields =
      {
          {"none", [](AttemptOutcome&) {}},
          {"exit_code", [&](AttemptOutcome& o) { o.exit_code = full.exit_code; }},
          {"signal", [&](AttemptOutcome& o) { o.signal = full.signal; }},
          {"message", [&](AttemptOutcome& o) { o.message = full.message; }},
          {"wall", [&](AttemptOutcome& o) { o.wall = full.wall; }},
          {"cpu_user", [&](AttemptOutcome& o) { o.cpu_user = full.cpu_user; }},
          {"cpu_sys", [&](AttemptOutcome& o) { o.cpu_sys = full.cpu_sys; }},
          {"max_rss_kb", [&](AttemptOutcome& o) { o.max_rss_kb = full.max_rss_kb; }},
          {"out.bytes", [&](AttemptOutcome& o) { o.out.bytes = full.out.bytes; }},
          {"out.dropped", [&](AttemptOutcome& o) { o.out.dropped = full.out.dropped; }},
          {"err.bytes", [&](AttemptOutcome& o) { o.err.bytes = full.err.bytes; }},
          {"err.dropped", [&](AttemptOutcome& o) { o.err.dropped = full.err.dropped; }},
          {"result_json", [&](AttemptOutcome& o) { o.result_json = full.result_json; }},
          {"outputs",
           [](AttemptOutcome& o) {
             o.outputs = {{"key", "value"}};
           }},
      };
  std::vector<AttemptRecord> inserted;
  for (size_t i = 0; i < fields.size(); ++i) {
    AttemptRecord a = MakeAttempt(i + 1, "j1", "t", static_cast<uint32_t>(i + 1));
    a.task_index = 0;
    fields[i].second(a.outcome);
    ASSERT_TRUE(store->InsertAttempt(a).ok()) << fields[i].first;
    inserted.push_back(a);
  }
  Result<std::vector<AttemptRecord>> attempts = store->Attempts("j1", "t");
  ASSERT_TRUE(attempts.ok()) << attempts.status().ToString();
  ASSERT_EQ(attempts->size(), fields.size());
  for (size_t i = 0; i < fields.size(); ++i) {
    const AttemptRecord& got = (*attempts)[i];
    EXPECT_EQ(Tie(got), Tie(inserted[i])) << fields[i].first;
    EXPECT_EQ(got.outcome.outputs, inserted[i].outcome.outputs) << fields[i].first;
    EXPECT_EQ(got.task_index, 0) << fields[i].first;
    EXPECT_FALSE(got.finished) << fields[i].first;
  }
}

// Given a job of 200 tasks resumed with 150 (50 dropped, 100 kept and
// changed, 50 new), ReplaceTasks should leave exactly the new 150 rows.
TEST_F(StoreTest, ReplaceTasksOfALargeJob) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  std::vector<TaskRecord> before;
  for (uint32_t i = 0; i < 200; ++i)
    before.push_back(MakeTask("j1", i, "t" + std::to_string(i)));
  JobRecord job = MakeJob("j1", "job", 1);
  ASSERT_TRUE(store->InsertJob(job, before).ok());

  std::vector<TaskRecord> after;
  for (uint32_t i = 0; i < 150; ++i) {
    TaskRecord t = MakeTask("j1", i, "t" + std::to_string(i + 100));  // t100..t249
    t.state = i % 2 == 0 ? "succeeded" : "waiting";
    t.fingerprint = i;
    after.push_back(t);
  }
  ASSERT_TRUE(store->ReplaceTasks(job, after).ok());
  Result<std::vector<TaskRecord>> rows = store->Tasks("j1");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), after.size());
  for (size_t i = 0; i < after.size(); ++i)
    EXPECT_EQ(Tie((*rows)[i]), Tie(after[i])) << i;
}

// Given an attempt for a job that does not exist, or an attempt id already
// used, InsertAttempt should refuse it.
TEST_F(StoreTest, InsertAttemptRefusesUnknownJobAndDuplicateId) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->InsertAttempt(MakeAttempt(1, "nope", "t", 1)).code(),
            StatusCode::kNotFound);
  ASSERT_TRUE(store->InsertJob(MakeJob("j1", "job", 1), {MakeTask("j1", 0, "t")}).ok());
  ASSERT_TRUE(store->InsertAttempt(MakeAttempt(1, "j1", "t", 1)).ok());
  Status dup = store->InsertAttempt(MakeAttempt(1, "j1", "t", 2));
  EXPECT_EQ(dup.code(), StatusCode::kAlreadyExists);
  EXPECT_NE(dup.message().find("insert into attempts"), std::string::npos)
      << dup.message();
}

// Given a task row, UpdateTask should store every progress field and the
// fingerprint (written at first dispatch, docs/state.md) but keep the
// index (the spec's); given a task without a row, its row; given a task of no
// job, an error.
TEST_F(StoreTest, UpdateTaskStoresProgressAndMakesAMissingRow) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  TaskRecord t = MakeTask("j1", 0, "t");
  t.fingerprint = 0xFEDCBA9876543210ull;
  ASSERT_TRUE(store->InsertJob(MakeJob("j1", "job", 1), {t}).ok());
  t.state = "failed";
  t.attempts = 3;
  t.reason = "signal";
  t.exit_code = -1;
  t.signal = 9;
  t.detail = "signal SIGKILL";
  t.wall_us = 12'345'678;
  t.result_json = "[1,2]";
  t.worker = "host-b/1";
  t.started_ms = 11;
  t.finished_ms = 22;
  t.pending_reason = "no worker with label gpu";
  t.fingerprint = 1;
  TaskRecord update = t;
  update.index = 4;
  ASSERT_TRUE(store->UpdateTask(update).ok());
  Result<std::vector<TaskRecord>> tasks = store->Tasks("j1");
  ASSERT_TRUE(tasks.ok() && tasks->size() == 1);
  EXPECT_EQ(Tie((*tasks)[0]), Tie(t));

  // A task's first write makes its row (a task has none until it leaves
  // its first state); a task of no job is refused.
  TaskRecord other = MakeTask("j1", 1, "other");
  other.state = "running";
  ASSERT_TRUE(store->UpdateTask(other).ok());
  tasks = store->Tasks("j1");
  ASSERT_TRUE(tasks.ok() && tasks->size() == 2);
  EXPECT_EQ(Tie((*tasks)[1]), Tie(other));
  EXPECT_FALSE(store->UpdateTask(MakeTask("j9", 0, "t")).ok());
  tasks = store->Tasks("j9");
  ASSERT_TRUE(tasks.ok());
  EXPECT_TRUE(tasks->empty());
}

// Dispatch writes only the attempt's row. Given a task whose row says
// retry-wait after attempt 1 and an unfinished attempt 2 on w2, Tasks and
// TaskStateCounts should show it running (attempt 2, on w2, its first start
// kept, no pending reason) and every other column as the row has it; once
// attempt 2 is finished and the row written, the row as written. An
// unfinished attempt no newer than the row (a row a drover before this one
// wrote at dispatch) changes nothing.
TEST_F(StoreTest, TasksShowATaskWithAnUnfinishedNewerAttemptRunning) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  TaskRecord t = MakeTask("j1", 0, "t");
  t.state = "retry-wait";
  t.attempts = 1;
  t.reason = "exit";
  t.exit_code = 3;
  t.detail = "exit 3";
  t.worker = "w1";
  t.started_ms = 5;
  t.finished_ms = 6;
  t.pending_reason = "waiting for 1 free spawn slot";
  TaskRecord old = MakeTask("j1", 1, "old");
  old.state = "running";
  old.attempts = 1;
  old.worker = "w1";
  TaskRecord idle = MakeTask("j1", 2, "idle");
  ASSERT_TRUE(store->InsertJob(MakeJob("j1", "job", 1), {t, old, idle}).ok());
  AttemptRecord second = MakeAttempt(11, "j1", "t", 2);
  second.worker = "w2";
  second.started_ms = 9;
  ASSERT_TRUE(store->InsertAttempt(second).ok());
  AttemptRecord old_first = MakeAttempt(12, "j1", "old", 1);
  old_first.worker = "w1";
  ASSERT_TRUE(store->InsertAttempt(old_first).ok());

  Result<std::vector<TaskRecord>> tasks = store->Tasks("j1");
  ASSERT_TRUE(tasks.ok() && tasks->size() == 3);
  TaskRecord running = t;
  running.state = "running";
  running.attempts = 2;
  running.worker = "w2";
  running.pending_reason.clear();
  EXPECT_EQ(Tie((*tasks)[0]), Tie(running));
  EXPECT_EQ(Tie((*tasks)[1]), Tie(old));
  EXPECT_EQ(Tie((*tasks)[2]), Tie(idle));
  auto counts = store->TaskStateCounts("j1");
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(*counts, (std::vector<std::pair<std::string, uint64_t>>{{"running", 2},
                                                                    {"waiting", 1}}));

  AttemptOutcome failed;
  failed.reason = FailureReason::kExit;
  failed.exit_code = 4;
  Result<bool> finished = store->FinishAttempt(11, "w2", failed, 20);
  ASSERT_TRUE(finished.ok() && *finished);
  TaskRecord done = running;
  done.state = "failed";
  done.exit_code = 4;
  done.detail = "exit 4";
  done.finished_ms = 20;
  ASSERT_TRUE(store->UpdateTask(done).ok());
  tasks = store->Tasks("j1");
  ASSERT_TRUE(tasks.ok() && tasks->size() == 3);
  EXPECT_EQ(Tie((*tasks)[0]), Tie(done));
}

// A task has no row until it leaves its first state (docs/state.md,
// "tasks"). Given a job of 3 tasks stored without rows and the unfinished
// first attempt of task 1, Tasks should return that task alone, running on
// its attempt's worker at its index, and TaskStateCounts 1 running and 2
// waiting; once the attempt ends and the task's first write makes its row,
// the row as written, with the counts following.
TEST_F(StoreTest, TasksShowARunningTaskThatHasNoRowYet) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  JobRecord job = MakeJob("j1", "job", 1);
  job.tasks = 3;
  ASSERT_TRUE(store->InsertJob(job, {}).ok());
  auto stored = store->GetJob("j1");
  ASSERT_TRUE(stored.ok() && *stored);
  EXPECT_EQ((*stored)->tasks, 3u);
  auto counts = store->TaskStateCounts("j1");
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(*counts, (std::vector<std::pair<std::string, uint64_t>>{{"waiting", 3}}));

  AttemptRecord first = MakeAttempt(21, "j1", "b", 1);
  first.worker = "w2";
  first.task_index = 1;
  ASSERT_TRUE(store->InsertAttempt(first).ok());
  Result<std::vector<TaskRecord>> tasks = store->Tasks("j1");
  ASSERT_TRUE(tasks.ok() && tasks->size() == 1);
  const TaskRecord& running = (*tasks)[0];
  EXPECT_EQ(running.job_id, "j1");
  EXPECT_EQ(running.name, "b");
  EXPECT_EQ(running.index, 1u);
  EXPECT_EQ(running.state, "running");
  EXPECT_EQ(running.attempts, 1u);
  EXPECT_EQ(running.worker, "w2");
  EXPECT_EQ(running.started_ms, first.started_ms);
  counts = store->TaskStateCounts("j1");
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(*counts, (std::vector<std::pair<std::string, uint64_t>>{{"running", 1},
                                                                    {"waiting", 2}}));

  Result<bool> finished = store->FinishAttempt(21, "w2", AttemptOutcome(), 30);
  ASSERT_TRUE(finished.ok() && *finished);
  TaskRecord done = MakeTask("j1", 1, "b");
  done.state = "succeeded";
  done.attempts = 1;
  done.worker = "w2";
  done.finished_ms = 30;
  ASSERT_TRUE(store->UpdateTask(done).ok());
  tasks = store->Tasks("j1");
  ASSERT_TRUE(tasks.ok() && tasks->size() == 1);
  EXPECT_EQ(Tie((*tasks)[0]), Tie(done));
  done.detail = "written again, by the row's rowid";
  ASSERT_TRUE(store->UpdateTask(done).ok());
  tasks = store->Tasks("j1");
  ASSERT_TRUE(tasks.ok() && tasks->size() == 1);
  EXPECT_EQ(Tie((*tasks)[0]), Tie(done));
  counts = store->TaskStateCounts("j1");
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(*counts, (std::vector<std::pair<std::string, uint64_t>>{{"succeeded", 1},
                                                                    {"waiting", 2}}));
  auto unsuccessful = store->UnsuccessfulTasks("j1", 10);
  ASSERT_TRUE(unsuccessful.ok());
  EXPECT_TRUE(unsuccessful->empty());
  auto at = store->TaskAt("j1", 1, "b");
  ASSERT_TRUE(at.ok() && *at);
  EXPECT_EQ(Tie(**at), Tie(done));
  at = store->TaskAt("j1", 0, "a");  // no row
  ASSERT_TRUE(at.ok());
  EXPECT_FALSE(*at);
}

// Given a job whose placeholder "fan" (index 1 of 2) expands to 3
// instances, ExpandTask should drop the placeholder's row, write the
// instances' rows and the new task count, and leave the other rows be.
TEST_F(StoreTest, ExpandTaskSwapsThePlaceholderRowForTheInstances) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  JobRecord job = MakeJob("j1", "job", 1);
  job.tasks = 2;
  TaskRecord plan = MakeTask("j1", 0, "plan");
  plan.state = "succeeded";
  TaskRecord fan = MakeTask("j1", 1, "fan");
  fan.pending_reason = "fan-out waits for plan's output shards";
  ASSERT_TRUE(store->InsertJob(job, {plan, fan}).ok());
  job.tasks = 4;
  ASSERT_TRUE(store
                  ->ExpandTask(job, "fan",
                               {MakeTask("j1", 1, "fan[s=a]"), MakeTask("j1", 2, "fan[s=b]"),
                                MakeTask("j1", 3, "fan[s=c]")})
                  .ok());
  auto tasks = store->Tasks("j1");
  ASSERT_TRUE(tasks.ok());
  std::vector<std::string> names;
  for (const TaskRecord& t : *tasks) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"plan", "fan[s=a]", "fan[s=b]", "fan[s=c]"}));
  auto stored = store->GetJob("j1");
  ASSERT_TRUE(stored.ok() && *stored);
  EXPECT_EQ((*stored)->tasks, 4u);
  EXPECT_EQ(store->ExpandTask(MakeJob("j9", "none", 1), "fan", {}).code(),
            StatusCode::kNotFound);
}

// UpdateTask looks a row up by a rowid it remembers per job. Given rows
// that another Store on the same file deleted and inserted again (new
// rowids, names at other positions) after this Store remembered them, each
// write should still land on the row of its own name, never on the row now
// at the remembered rowid.
TEST_F(StoreTest, TaskWritesFindTheirRowAfterAnotherStoreMovedIt) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  const JobRecord job = MakeJob("j1", "job", 1);
  ASSERT_TRUE(store
                  ->InsertJob(job, {MakeTask("j1", 0, "a"), MakeTask("j1", 1, "b"),
                                    MakeTask("j1", 2, "c")})
                  .ok());
  TaskRecord a = MakeTask("j1", 0, "a");
  a.state = "running";
  ASSERT_TRUE(store->UpdateTask(a).ok());  // remembers a, b and c's rowids

  {
    auto other = Open();
    ASSERT_NE(other, nullptr);
    // c and b come back at each other's positions (and rowids).
    ASSERT_TRUE(other->ReplaceTasks(job, {MakeTask("j1", 0, "a")}).ok());
    ASSERT_TRUE(other
                    ->ReplaceTasks(job, {MakeTask("j1", 0, "a"), MakeTask("j1", 1, "c"),
                                         MakeTask("j1", 2, "b")})
                    .ok());
  }
  TaskRecord b = MakeTask("j1", 1, "b");  // index as this Store last knew it
  b.state = "succeeded";
  b.attempts = 1;
  ASSERT_TRUE(store->UpdateTask(b).ok());
  TaskRecord c = MakeTask("j1", 2, "c");
  c.state = "failed";
  c.attempts = 1;
  c.worker = "w1";
  ASSERT_TRUE(store->UpdateTask(c).ok());

  Result<std::vector<TaskRecord>> tasks = store->Tasks("j1");
  ASSERT_TRUE(tasks.ok());
  ASSERT_EQ(tasks->size(), 3u);
  EXPECT_EQ((*tasks)[0].name, "a");
  EXPECT_EQ((*tasks)[0].state, MakeTask("j1", 0, "a").state);  // rewritten by `other`
  EXPECT_EQ((*tasks)[1].name, "c");
  EXPECT_EQ((*tasks)[1].state, "failed");
  EXPECT_EQ((*tasks)[1].worker, "w1");
  EXPECT_EQ((*tasks)[2].name, "b");
  EXPECT_EQ((*tasks)[2].state, "succeeded");
  EXPECT_EQ((*tasks)[2].index, 2u);  // UpdateTask keeps idx
}

// Given a resumed job whose spec dropped, kept and added tasks, ReplaceTasks
// should update the job and leave exactly the new task rows, keeping attempts.
TEST_F(StoreTest, ReplaceTasksAddsRemovesAndUpdates) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  JobRecord job = MakeJob("j1", "job", 1);
  ASSERT_TRUE(store
                  ->InsertJob(job, {MakeTask("j1", 0, "a"), MakeTask("j1", 1, "b"),
                                    MakeTask("j1", 2, "c")})
                  .ok());
  ASSERT_TRUE(store->InsertAttempt(MakeAttempt(1, "j1", "c", 1)).ok());
  ASSERT_TRUE(store->SetJobState("j1", "failed", 99).ok());

  JobRecord resumed = job;
  resumed.spec_text = "version: 1\nname: job\n# fixed\n";
  resumed.state = "running";
  resumed.finished_ms = 0;
  TaskRecord b = MakeTask("", 0, "b");  // an empty job_id means job.id
  b.state = "succeeded";
  b.attempts = 1;
  b.fingerprint = 77;
  TaskRecord d = MakeTask("j1", 1, "d");
  d.attempts = 3;
  d.attempt_base = 3;  // made by the run before this resume
  ASSERT_TRUE(store->ReplaceTasks(resumed, {b, d}).ok());

  Result<std::optional<JobRecord>> got = store->GetJob("j1");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(Tie(**got), Tie(resumed));
  Result<std::vector<TaskRecord>> tasks = store->Tasks("j1");
  ASSERT_TRUE(tasks.ok());
  ASSERT_EQ(tasks->size(), 2u);
  b.job_id = "j1";
  EXPECT_EQ(Tie((*tasks)[0]), Tie(b));
  EXPECT_EQ(Tie((*tasks)[1]), Tie(d));
  Result<std::vector<AttemptRecord>> c_attempts = store->Attempts("j1", "c");
  ASSERT_TRUE(c_attempts.ok());
  EXPECT_EQ(c_attempts->size(), 1u);

  EXPECT_EQ(store->ReplaceTasks(MakeJob("j9", "job", 1), {}).code(),
            StatusCode::kNotFound);
  TaskRecord foreign = MakeTask("j2", 0, "x");
  EXPECT_EQ(store->ReplaceTasks(resumed, {foreign}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->ReplaceTasks(resumed, {b, d, b}).code(), StatusCode::kAlreadyExists);
  tasks = store->Tasks("j1");
  ASSERT_TRUE(tasks.ok());
  EXPECT_EQ(tasks->size(), 2u);  // the failed replaces changed nothing
}

}  // namespace
}  // namespace drover::store

// Unit tests of the attempts that stand for their task's row (schema 9,
// docs/state.md "tasks"): a task that succeeds on its first attempt gets no
// row of its own, and every reader sees the row it would have had. On real
// files in a fresh temporary directory per test.
#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/base/outputs.h"
#include "core/store/store.h"
#include "tests/unit/store_test_util.h"

namespace drover::store {
namespace {

using std::chrono::microseconds;
using test_util::MakeAttempt;
using test_util::MakeJob;
using test_util::MakeTask;
using test_util::StoreTest;
using test_util::Tie;

using Counts = std::vector<std::pair<std::string, uint64_t>>;

// Every column of the `tasks` view but the job's, for the task named
// `name`: what a reader of the file sees of the task.
constexpr const char* kViewRow =
    "SELECT idx || '|' || name || '|' || fingerprint || '|' || state || '|' || "
    "attempts || '|' || reason || '|' || exit_code || '|' || signal || '|' || detail || "
    "'|' || wall_us || '|' || result_json || '|' || worker || '|' || started_ms || '|' "
    "|| finished_ms || '|' || pending_reason || '|' || attempt_base || '|' || "
    "outputs_json FROM tasks WHERE job_id = '";

class StandingTest : public StoreTest {
 protected:
  // Job `job` of 3 tasks without rows, and attempt `id` of its task "b"
  // (index 1) dispatched to w1 as its `number`th.
  void StartJob(const std::string& job, uint64_t id, uint32_t number = 1) {
    JobRecord rec = MakeJob(job, "standing", 1000);
    rec.tasks = 3;
    ASSERT_TRUE(store_->InsertJob(rec, {}).ok());
    AttemptRecord a = MakeAttempt(id, job, "b", number);
    a.worker = "w1";
    a.task_index = 1;
    a.started_ms = 1'780'000'000'000;  // the same in every job
    started_ms_ = a.started_ms;
    ASSERT_TRUE(store_->InsertAttempt(a).ok());
  }

  // A process's success, with outputs.
  static AttemptOutcome Success() {
    AttemptOutcome ok;
    ok.exit_code = 0;
    ok.wall = microseconds(1500);
    ok.result_json = R"({"n":3})";
    ok.outputs = {{"version", "1.2"}};
    return ok;
  }

  // Task b's row after attempt `number` ended with `o`, as the coordinator
  // makes it (core/coordinator/results.cc).
  TaskRecord RowAfter(const std::string& job, const AttemptOutcome& o, uint32_t number,
                      const std::string& state) const {
    TaskRecord row = MakeTask(job, 1, "b");
    row.state = state;
    row.attempts = number;
    row.reason = std::string(ReasonName(o.reason));
    row.exit_code = o.exit_code;
    row.signal = o.signal;
    row.detail = o.Describe();
    row.wall_us = std::chrono::duration_cast<microseconds>(o.wall).count();
    row.result_json = o.result_json;
    row.outputs_json = o.ok() ? OutputsToJson(o.outputs) : std::string();
    row.worker = "w1";
    row.started_ms = started_ms_;
    row.finished_ms = 40;
    return row;
  }

  // StartJob(job, id), then the attempt's success, for which it stands:
  // *row is task b's row after it.
  void StandFor(const std::string& job, uint64_t id, TaskRecord* row) {
    ASSERT_NO_FATAL_FAILURE(StartJob(job, id));
    const AttemptOutcome ok = Success();
    *row = RowAfter(job, ok, 1, "succeeded");
    ASSERT_TRUE(store_->EndAttempt(id, 1, "w1", ok, row->outputs_json, *row).ok());
  }

  std::string ViewRow(const std::string& job) {
    return RawSql(std::string(kViewRow) + job + "' AND name = 'b'");
  }

  void SetUp() override {
    StoreTest::SetUp();
    store_ = Open();
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    store_.reset();
    StoreTest::TearDown();
  }

  std::unique_ptr<Store> store_;
  int64_t started_ms_ = 0;
};

// Given a task that succeeds on its first attempt and has no row,
// EndAttempt should write no row (the attempt stands for it), and Tasks,
// TaskAt, TaskStateCounts and the `tasks` view should each show what they
// show for the same task whose row was written (job j2, by UpdateTask).
TEST_F(StandingTest, AnAttemptStandsForTheRowOfATaskThatSucceededOnIt) {
  StartJob("j1", 11);
  const AttemptOutcome ok = Success();
  const TaskRecord row = RowAfter("j1", ok, 1, "succeeded");
  Result<bool> ended = store_->EndAttempt(11, 1, "w1", ok, row.outputs_json, row);
  ASSERT_TRUE(ended.ok() && *ended) << ended.status().ToString();
  EXPECT_EQ(RawSql("SELECT count(*) FROM task_rows"), "0");
  EXPECT_EQ(RawSql("SELECT task_row || ' ' || fingerprint FROM attempts WHERE id = 11"),
            "1 " + std::to_string(static_cast<int64_t>(row.fingerprint)));

  // The same task, its row written.
  StartJob("j2", 21);
  TaskRecord written = RowAfter("j2", ok, 1, "succeeded");
  ASSERT_TRUE(store_->FinishAttempt(21, "w1", ok, 40).ok());
  ASSERT_TRUE(store_->UpdateTask(written).ok());
  EXPECT_EQ(RawSql("SELECT count(*) FROM task_rows"), "1");

  for (const char* job : {"j1", "j2"}) {
    SCOPED_TRACE(job);
    const TaskRecord want = RowAfter(job, ok, 1, "succeeded");
    auto tasks = store_->Tasks(job);
    ASSERT_TRUE(tasks.ok()) << tasks.status().ToString();
    ASSERT_EQ(tasks->size(), 1u);
    EXPECT_EQ(Tie((*tasks)[0]), Tie(want));
    EXPECT_EQ((*tasks)[0].outputs_json, want.outputs_json);
    auto at = store_->TaskAt(job, 1, "b");
    ASSERT_TRUE(at.ok() && at->has_value());
    EXPECT_EQ(Tie(**at), Tie(want));
    EXPECT_EQ((**at).outputs_json, want.outputs_json);
    auto counts = store_->TaskStateCounts(job);
    ASSERT_TRUE(counts.ok());
    EXPECT_EQ(*counts, (Counts{{"succeeded", 1}, {"waiting", 2}}));
    auto unsuccessful = store_->UnsuccessfulTasks(job, 10);
    ASSERT_TRUE(unsuccessful.ok());
    EXPECT_TRUE(unsuccessful->empty());
  }
  EXPECT_EQ(ViewRow("j1"), ViewRow("j2"));
  EXPECT_NE(ViewRow("j1"), "");
  EXPECT_EQ(RawSql("SELECT count(*) FROM tasks"), "2");
  // A process that exited 0 (a function has no exit code: "ok").
  EXPECT_EQ(RawSql("SELECT detail FROM tasks WHERE job_id = 'j1'"), "exit 0");
}

// Given a task whose first attempt failed (its row written, retry-wait)
// and whose second succeeds, EndAttempt should update the row, and no
// attempt should stand for it; a failure writes its row too.
TEST_F(StandingTest, ATaskWithARowKeepsWritingIt) {
  StartJob("j1", 11);
  AttemptOutcome failed;
  failed.reason = FailureReason::kExit;
  failed.exit_code = 3;
  const TaskRecord waiting = RowAfter("j1", failed, 1, "retry-wait");
  ASSERT_TRUE(store_->EndAttempt(11, 1, "w1", failed, "", waiting).ok());
  EXPECT_EQ(RawSql("SELECT state FROM task_rows"), "retry-wait");

  AttemptRecord second = MakeAttempt(12, "j1", "b", 2);
  second.worker = "w1";
  second.task_index = 1;
  ASSERT_TRUE(store_->InsertAttempt(second).ok());
  const AttemptOutcome ok = Success();
  TaskRecord done = RowAfter("j1", ok, 2, "succeeded");
  Result<bool> ended = store_->EndAttempt(12, 2, "w1", ok, done.outputs_json, done);
  ASSERT_TRUE(ended.ok() && *ended);
  EXPECT_EQ(RawSql("SELECT state || ' ' || attempts FROM task_rows"), "succeeded 2");
  EXPECT_EQ(RawSql("SELECT count(*) FROM attempts WHERE task_row = 1"), "0");
  auto tasks = store_->Tasks("j1");
  ASSERT_TRUE(tasks.ok() && tasks->size() == 1u);
  EXPECT_EQ(Tie((*tasks)[0]), Tie(done));
  EXPECT_EQ(RawSql("SELECT count(*) FROM tasks"), "1");
}

// Given a job whose task rows the store has already read (an attempt of
// task b stood for its row), a row then written for task c (UpdateTask) and
// one for task a (ExpandTask, as a fan-out does) should be known: c's and
// a's first attempts that succeed update those rows and stand for nothing.
// (The store answers "has a row" from memory after its first read of the
// job; a write it did not note would leave c's row "waiting" for good.)
TEST_F(StandingTest, RowsWrittenAfterTheJobsRowsWereReadAreUpdated) {
  TaskRecord b_row;
  ASSERT_NO_FATAL_FAILURE(StandFor("j1", 11, &b_row));
  EXPECT_EQ(RawSql("SELECT count(*) FROM task_rows"), "0");

  TaskRecord c_waiting = MakeTask("j1", 2, "c");
  c_waiting.pending_reason = "held by the test";
  ASSERT_TRUE(store_->UpdateTask(c_waiting).ok());
  auto job = store_->GetJob("j1");
  ASSERT_TRUE(job.ok() && job->has_value());
  TaskRecord a_waiting = MakeTask("j1", 0, "a");
  a_waiting.pending_reason = "fanned out by the test";
  ASSERT_TRUE(store_->ExpandTask(**job, "fan", {a_waiting}).ok());
  EXPECT_EQ(RawSql("SELECT count(*) FROM task_rows"), "2");

  const AttemptOutcome ok = Success();
  uint64_t id = 12;
  for (const auto& [idx, name] : {std::pair<uint32_t, const char*>{2, "c"}, {0, "a"}}) {
    SCOPED_TRACE(name);
    AttemptRecord first = MakeAttempt(id, "j1", name, 1);
    first.worker = "w1";
    first.task_index = idx;
    first.started_ms = started_ms_;
    ASSERT_TRUE(store_->InsertAttempt(first).ok());
    TaskRecord done = RowAfter("j1", ok, 1, "succeeded");
    done.index = idx;
    done.name = name;
    done.fingerprint = MakeTask("j1", idx, name).fingerprint;
    Result<bool> ended = store_->EndAttempt(id, 1, "w1", ok, done.outputs_json, done);
    ASSERT_TRUE(ended.ok() && *ended) << ended.status().ToString();
    EXPECT_EQ(RawSql(std::string("SELECT state || ' ' || pending_reason FROM task_rows "
                                 "WHERE name = '") +
                     name + "'"),
              "succeeded ");
    EXPECT_EQ(RawSql("SELECT task_row FROM attempts WHERE id = " + std::to_string(id)),
              "0");
    ++id;
  }
  EXPECT_EQ(RawSql("SELECT count(*) FROM attempts WHERE task_row = 1"), "1");  // b's
  auto counts = store_->TaskStateCounts("j1");
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(*counts, (Counts{{"succeeded", 3}}));
}

// Given a success that is not the task's first attempt (attempt_base: one
// handed back unstarted; or its number), or of an attempt the store does
// not know, EndAttempt should write the task's row.
TEST_F(StandingTest, WhatAnAttemptCannotSayIsWrittenInTheRow) {
  StartJob("j1", 11);
  const AttemptOutcome ok = Success();
  TaskRecord row = RowAfter("j1", ok, 1, "succeeded");
  row.attempt_base = 1;
  ASSERT_TRUE(store_->EndAttempt(11, 1, "w1", ok, row.outputs_json, row).ok());
  EXPECT_EQ(RawSql("SELECT count(*) FROM task_rows"), "1");
  EXPECT_EQ(RawSql("SELECT count(*) FROM attempts WHERE task_row = 1"), "0");

  StartJob("j2", 21);
  const TaskRecord other = RowAfter("j2", ok, 1, "succeeded");
  Result<bool> ended = store_->EndAttempt(99, 1, "w1", ok, other.outputs_json, other);
  ASSERT_TRUE(ended.ok());
  EXPECT_FALSE(*ended);  // no attempt 99
  auto tasks = store_->Tasks("j2");
  ASSERT_TRUE(tasks.ok() && tasks->size() == 1u);
  EXPECT_EQ(Tie((*tasks)[0]), Tie(other));
  EXPECT_EQ(RawSql("SELECT count(*) FROM task_rows"), "2");

  // A second attempt, even of a task without a row: its row's start is the
  // first attempt's, which the second does not know.
  ASSERT_NO_FATAL_FAILURE(StartJob("j3", 31, 2));
  const TaskRecord again = RowAfter("j3", ok, 2, "succeeded");
  ASSERT_TRUE(store_->EndAttempt(31, 2, "w1", ok, again.outputs_json, again).ok());
  EXPECT_EQ(RawSql("SELECT count(*) FROM task_rows"), "3");
  EXPECT_EQ(RawSql("SELECT count(*) FROM attempts WHERE task_row = 1"), "0");
}

// Given a task an attempt stands for, a row written for it later should
// be what every reader sees, once.
TEST_F(StandingTest, ARowWrittenLaterWins) {
  TaskRecord row;
  ASSERT_NO_FATAL_FAILURE(StandFor("j1", 11, &row));
  TaskRecord later = row;
  later.state = "cancelled";
  later.detail = "written after";
  ASSERT_TRUE(store_->UpdateTask(later).ok());
  auto tasks = store_->Tasks("j1");
  ASSERT_TRUE(tasks.ok() && tasks->size() == 1u);
  EXPECT_EQ(Tie((*tasks)[0]), Tie(later));
  auto at = store_->TaskAt("j1", 1, "b");
  ASSERT_TRUE(at.ok() && at->has_value());
  EXPECT_EQ((**at).state, "cancelled");
  auto counts = store_->TaskStateCounts("j1");
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(*counts, (Counts{{"cancelled", 1}, {"waiting", 2}}));
  EXPECT_EQ(RawSql("SELECT group_concat(state) FROM tasks"), "cancelled");
}

// Given a job whose task an attempt stands for, ReplaceTasks (a resume)
// should leave the task as the new rows say: without a row, it waits to
// run again.
TEST_F(StandingTest, ReplaceTasksEndsWhatAttemptsStoodFor) {
  TaskRecord row;
  ASSERT_NO_FATAL_FAILURE(StandFor("j1", 11, &row));
  JobRecord rec = MakeJob("j1", "standing", 1000);
  rec.tasks = 3;
  ASSERT_TRUE(store_->ReplaceTasks(rec, {MakeTask("j1", 0, "a")}).ok());
  auto tasks = store_->Tasks("j1");
  ASSERT_TRUE(tasks.ok());
  ASSERT_EQ(tasks->size(), 1u);
  EXPECT_EQ((*tasks)[0].name, "a");
  auto at = store_->TaskAt("j1", 1, "b");
  ASSERT_TRUE(at.ok());
  EXPECT_FALSE(at->has_value());
  auto counts = store_->TaskStateCounts("j1");
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(*counts, (Counts{{"waiting", 3}}));
  EXPECT_EQ(RawSql("SELECT count(*) FROM tasks WHERE job_id = 'j1'"), "1");
  // The attempt itself is history, kept.
  auto attempts = store_->Attempts("j1", "b");
  ASSERT_TRUE(attempts.ok());
  EXPECT_EQ(attempts->size(), 1u);
}

// Given an attempt that came to stand for its task's row in a batch, and
// the job's tasks replaced later in the same batch (a resume), the
// attempt should stand for nothing once the batch is committed.
TEST_F(StandingTest, ReplaceTasksInTheBatchOfTheEndEndsWhatItStoodFor) {
  StartJob("j1", 11);
  const AttemptOutcome ok = Success();
  const TaskRecord row = RowAfter("j1", ok, 1, "succeeded");
  ASSERT_TRUE(store_->Begin().ok());
  ASSERT_TRUE(store_->EndAttempt(11, 1, "w1", ok, row.outputs_json, row).ok());
  JobRecord rec = MakeJob("j1", "standing", 1000);
  rec.tasks = 3;
  ASSERT_TRUE(store_->ReplaceTasks(rec, {MakeTask("j1", 0, "a")}).ok());
  ASSERT_TRUE(store_->Commit().ok());
  EXPECT_EQ(RawSql("SELECT finished || ' ' || task_row FROM attempts WHERE id = 11"),
            "1 0");
  auto tasks = store_->Tasks("j1");
  ASSERT_TRUE(tasks.ok());
  ASSERT_EQ(tasks->size(), 1u);
  EXPECT_EQ((*tasks)[0].name, "a");
}

// Given a job whose task b (index 1) failed once and whose task c (index
// 2) failed, resumed with a spec that moved b to index 2 and carried only
// its row (c runs again), b's attempts should move with it and c's become
// of no known index; each task's attempts should still be found by name,
// and b's artifacts should be those of its newest successful attempt.
TEST_F(StandingTest, AResumeThatMovesATaskMovesItsAttempts) {
  JobRecord rec = MakeJob("j1", "moved", 1000);
  rec.tasks = 3;
  ASSERT_TRUE(store_->InsertJob(rec, {}).ok());
  AttemptOutcome failed;
  failed.reason = FailureReason::kExit;
  failed.exit_code = 1;
  for (const auto& [id, name, idx] :
       std::vector<std::tuple<uint64_t, std::string, uint32_t>>{{1, "b", 1},
                                                                {2, "c", 2}}) {
    AttemptRecord a = MakeAttempt(id, "j1", name, 1);
    a.task_index = idx;
    ASSERT_TRUE(store_->InsertAttempt(a).ok());
    ASSERT_TRUE(*store_->FinishAttempt(id, "w1", failed, 100));
    TaskRecord row = MakeTask("j1", idx, name);
    row.state = "failed";
    row.attempts = 1;
    ASSERT_TRUE(store_->UpdateTask(row).ok());
  }
  ArtifactRecord art{1, "j1", "b", "out/first", std::string(64, 'a'), 1, 0644, 100};
  ASSERT_TRUE(store_->InsertArtifact(art).ok());

  TaskRecord b = MakeTask("j1", 2, "b");
  b.state = "waiting";
  b.attempts = 1;
  b.attempt_base = 1;
  ASSERT_TRUE(store_->ReplaceTasks(rec, {b}).ok());
  EXPECT_EQ(RawSql("SELECT group_concat(id || ':' || task_idx, ' ') FROM (SELECT id, "
                   "task_idx FROM attempts ORDER BY id)"),
            "1:2 2:-1");

  AttemptRecord again = MakeAttempt(3, "j1", "b", 2);
  again.task_index = 2;
  ASSERT_TRUE(store_->InsertAttempt(again).ok());
  ASSERT_TRUE(*store_->FinishAttempt(3, "w1", Success(), 200));
  art.attempt_id = 3;
  art.path = "out/second";
  ASSERT_TRUE(store_->InsertArtifact(art).ok());

  EXPECT_EQ(test_util::AttemptIds(*store_, "j1", "b"), "1 3");
  EXPECT_EQ(test_util::AttemptIds(*store_, "j1", "c"), "2");
  auto artifacts = store_->Artifacts("j1", "b");
  ASSERT_TRUE(artifacts.ok()) << artifacts.status().ToString();
  ASSERT_EQ(artifacts->size(), 1u);
  EXPECT_EQ((*artifacts)[0].path, "out/second");
}

// Given the standing attempt in a batch that is rolled back, neither the
// attempt's end nor the task's success should remain.
TEST_F(StandingTest, ARolledBackBatchTakesTheStandingAttemptWithIt) {
  StartJob("j1", 11);
  const AttemptOutcome ok = Success();
  const TaskRecord row = RowAfter("j1", ok, 1, "succeeded");
  ASSERT_TRUE(store_->Begin().ok());
  ASSERT_TRUE(store_->EndAttempt(11, 1, "w1", ok, row.outputs_json, row).ok());
  ASSERT_TRUE(store_->Rollback().ok());
  auto tasks = store_->Tasks("j1");
  ASSERT_TRUE(tasks.ok() && tasks->size() == 1u);
  EXPECT_EQ((*tasks)[0].state, "running");  // attempt 11 is unfinished again
  EXPECT_EQ(RawSql("SELECT count(*) FROM attempts WHERE task_row = 1"), "0");
}

// Given a job whose tasks' names sort the other way round from their
// indexes, most of them standing for their rows (in no order the query
// gives) and one with a row of its own, Tasks should return one row a task,
// by index, each with its own name and state.
TEST_F(StandingTest, TasksComeByIndexWhateverOrderTheirNamesSortIn) {
  JobRecord rec = MakeJob("j1", "order", 1000);
  rec.tasks = 7;
  ASSERT_TRUE(store_->InsertJob(rec, {}).ok());
  started_ms_ = 1'780'000'000'000;
  const AttemptOutcome ok = Success();
  AttemptOutcome failed;
  failed.reason = FailureReason::kExit;
  failed.exit_code = 1;
  const std::vector<std::string> names = {"g", "f", "e", "d", "c", "b", "a"};
  // Ended in an order of their own; index 3 fails and gets its row.
  for (uint32_t idx : {5u, 0u, 6u, 3u, 2u, 4u, 1u}) {
    const uint64_t id = 100 + idx;
    AttemptRecord a = MakeAttempt(id, "j1", names[idx], 1);
    a.worker = "w1";
    a.task_index = idx;
    a.started_ms = started_ms_;
    ASSERT_TRUE(store_->InsertAttempt(a).ok());
    const AttemptOutcome& o = idx == 3 ? failed : ok;
    TaskRecord row = RowAfter("j1", o, 1, idx == 3 ? "failed" : "succeeded");
    row.index = idx;
    row.name = names[idx];
    row.fingerprint = MakeTask("j1", idx, names[idx]).fingerprint;
    ASSERT_TRUE(store_->EndAttempt(id, 1, "w1", o, row.outputs_json, row).ok());
  }
  EXPECT_EQ(RawSql("SELECT count(*) FROM attempts WHERE task_row = 1"), "6");
  EXPECT_EQ(RawSql("SELECT count(*) FROM task_rows"), "1");
  auto tasks = store_->Tasks("j1");
  ASSERT_TRUE(tasks.ok()) << tasks.status().ToString();
  ASSERT_EQ(tasks->size(), 7u);
  for (uint32_t idx = 0; idx < 7; ++idx) {
    SCOPED_TRACE(idx);
    EXPECT_EQ((*tasks)[idx].index, idx);
    EXPECT_EQ((*tasks)[idx].name, names[idx]);
    EXPECT_EQ((*tasks)[idx].state, idx == 3 ? "failed" : "succeeded");
  }
}

}  // namespace
}  // namespace drover::store

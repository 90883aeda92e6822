// Unit tests of core/coordinator/job_state: which task rows a running job
// holds (docs/state.md, "tasks"), without a coordinator, sockets or store.
#include "core/coordinator/job_state.h"

#include <gtest/gtest.h>

#include <string>
#include <unordered_map>
#include <vector>

#include "tests/unit/spec_test_util.h"

namespace drover {
namespace {

JobState Loaded(const std::string& yaml) {
  JobState job;
  auto loaded = spec::test_util::Load(yaml);
  EXPECT_TRUE(loaded.ok());
  if (loaded.ok()) job.spec = std::move(*loaded.spec);
  job.record.id = "j1";
  return job;
}

constexpr char kMatrix[] = R"(
version: 1
name: m
tasks:
  plan: {run: echo}
  work:
    needs: [plan]
    matrix: {i: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}
    run: echo ${matrix.i}
  solo: {run: echo}
)";

// Given a new job, InitJobState should hold no row (every task is in its
// first state); Row should make a task's row from the spec (name, job,
// index, waiting) and hold it until EndRow, after which the task has ended.
TEST(JobStateTest, ANewJobHoldsNoRowUntilATaskLeavesItsFirstState) {
  JobState job = Loaded(kMatrix);
  ASSERT_EQ(job.size(), 12u);
  EXPECT_TRUE(InitJobState(job, {}, 1).empty());
  for (uint32_t t = 0; t < job.size(); ++t) EXPECT_EQ(job.HeldRow(t), nullptr) << t;

  store::TaskRecord& row = job.Row(4);
  EXPECT_EQ(row.name, "work[i=3]");
  EXPECT_EQ(row.job_id, "j1");
  EXPECT_EQ(row.index, 4u);
  EXPECT_EQ(row.state, "waiting");
  EXPECT_EQ(row.attempts, 0u);
  EXPECT_EQ(job.HeldRow(4), &row);
  row.state = "running";
  EXPECT_EQ(job.Row(4).state, "running");  // the same row, held
  job.EndRow(4);
  EXPECT_EQ(job.HeldRow(4), nullptr);
  EXPECT_TRUE(job.RowEnded(4));
  EXPECT_FALSE(job.RowEnded(5));
}

// Outputs can only be read by a task that needs their task (docs/spec.md,
// "Outputs"). Given ended tasks with outputs, the job should keep those of
// a task others need and drop those of one nobody needs (every threads
// task has outputs: its result).
TEST(JobStateTest, EndedTasksKeepOnlyTheOutputsATaskThatNeedsThemReads) {
  JobState job = Loaded(kMatrix);
  InitJobState(job, {}, 1);
  job.Row(0).outputs_json = R"({"v":"1"})";
  job.EndRow(0);
  job.Row(11).outputs_json = R"({"result":"null"})";
  job.EndRow(11);
  job.Row(1).outputs_json = R"({"result":"7"})";
  EXPECT_EQ(job.OutputsJson(1), R"({"result":"7"})");  // held: its row's
  job.EndRow(1);
  EXPECT_EQ(job.OutputsJson(0), R"({"v":"1"})");
  EXPECT_EQ(job.OutputsJson(11), "");
  EXPECT_EQ(job.OutputsJson(1), "");
  EXPECT_EQ(job.ended_outputs.size(), 1u);
}

// Given the rows of the run being resumed, InitJobState should carry the
// success with the same fingerprint over (held until the caller stores
// and ends it), hold the row of a task with earlier attempts (its first
// state counts them), and hold nothing else.
TEST(JobStateTest, AResumeHoldsTheCarriedAndThoseWithEarlierAttempts) {
  JobState job = Loaded(kMatrix);
  std::unordered_map<std::string, store::TaskRecord> old;
  store::TaskRecord plan;
  plan.name = "plan";
  plan.state = "succeeded";
  plan.attempts = 1;
  plan.fingerprint = job.spec.tasks.Fingerprint(0);
  plan.outputs_json = R"({"v":"1"})";
  old.emplace(plan.name, plan);
  store::TaskRecord failed;
  failed.name = "work[i=2]";
  failed.state = "failed";
  failed.attempts = 2;
  old.emplace(failed.name, failed);
  EXPECT_EQ(InitJobState(job, old, 1), std::vector<uint32_t>{0});
  ASSERT_NE(job.HeldRow(0), nullptr);
  EXPECT_EQ(job.HeldRow(0)->job_id, "j1");
  EXPECT_EQ(job.HeldRow(0)->outputs_json, R"({"v":"1"})");
  ASSERT_NE(job.HeldRow(3), nullptr);
  EXPECT_EQ(job.HeldRow(3)->state, "waiting");
  EXPECT_EQ(job.HeldRow(3)->attempts, 2u);
  EXPECT_EQ(job.HeldRow(3)->attempt_base, 2u);
  for (uint32_t t : {1u, 2u, 4u, 11u}) EXPECT_EQ(job.HeldRow(t), nullptr) << t;
  EXPECT_EQ(job.FirstRow(3).attempts, 2u);
}

// Given stored rows for some tasks, DenseRows should give one row per
// index up to the job's task count, a nameless waiting row for each gap,
// and drop a second row for an index.
TEST(JobStateTest, DenseRowsFillsTheTasksWithoutARow) {
  std::vector<store::TaskRecord> rows(3);
  rows[0].index = 0;
  rows[0].name = "a";
  rows[0].state = "succeeded";
  rows[1].index = 2;
  rows[1].name = "c";
  rows[1].state = "failed";
  rows[2].index = 2;
  rows[2].name = "c-again";
  const std::vector<store::TaskRecord> dense = DenseRows(rows, 4, "j1");
  ASSERT_EQ(dense.size(), 4u);
  EXPECT_EQ(dense[0].name, "a");
  EXPECT_EQ(dense[1].name, "");
  EXPECT_EQ(dense[1].state, "waiting");
  EXPECT_EQ(dense[1].index, 1u);
  EXPECT_EQ(dense[1].job_id, "j1");
  EXPECT_EQ(dense[2].name, "c");
  EXPECT_EQ(dense[3].state, "waiting");
  // Rows past the count (a state file from before schema 8 has none).
  EXPECT_EQ(DenseRows(rows, 0, "j1").size(), 3u);
}

}  // namespace
}  // namespace drover

// Unit tests of the state store's batches (one transaction a coordinator's
// loop turn): what a batch's readers see before and after its commit, a
// rollback, a store destroyed with a batch open, misuse, and the atomicity
// of a job's insertion. Real database files in a fresh directory per test.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/store/store.h"
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

// Given a second connection opened on the same directory while a batch is
// open (`drover status` during a run), the batch's writes should be
// invisible to it until Commit and visible after.
TEST_F(StoreTest, BatchIsVisibleOnlyAfterCommit) {
  auto writer = Open();
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->Begin().ok());
  EXPECT_TRUE(writer->InBatch());
  ASSERT_TRUE(writer->InsertJob(MakeJob("j1", "job", 1), {MakeTask("j1", 0, "t")}).ok());
  ASSERT_TRUE(writer->InsertAttempt(MakeAttempt(1, "j1", "t", 1)).ok());
  auto reader = Open();
  ASSERT_NE(reader, nullptr);
  // The writer sees its own batch; the reader does not.
  Result<std::optional<JobRecord>> mine = writer->GetJob("j1");
  ASSERT_TRUE(mine.ok());
  EXPECT_TRUE(mine->has_value());
  Result<std::optional<JobRecord>> theirs = reader->GetJob("j1");
  ASSERT_TRUE(theirs.ok());
  EXPECT_FALSE(theirs->has_value());

  ASSERT_TRUE(writer->Commit().ok());
  EXPECT_FALSE(writer->InBatch());
  theirs = reader->GetJob("j1");
  ASSERT_TRUE(theirs.ok());
  EXPECT_TRUE(theirs->has_value());
  Result<std::vector<AttemptRecord>> unfinished = reader->UnfinishedAttempts();
  ASSERT_TRUE(unfinished.ok());
  EXPECT_EQ(unfinished->size(), 1u);
}

// Given committed rows and a batch that is rolled back, should keep the
// committed rows and nothing of the batch.
TEST_F(StoreTest, RollbackDropsOnlyTheBatch) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  TaskRecord task = MakeTask("j1", 0, "t");
  ASSERT_TRUE(store->InsertJob(MakeJob("j1", "job", 1), {task}).ok());

  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(store->InsertJob(MakeJob("j2", "job", 2), {MakeTask("j2", 0, "t")}).ok());
  TaskRecord changed = task;
  changed.state = "running";
  ASSERT_TRUE(store->UpdateTask(changed).ok());
  ASSERT_TRUE(store->Rollback().ok());
  EXPECT_FALSE(store->InBatch());

  Result<std::optional<JobRecord>> j2 = store->GetJob("j2");
  ASSERT_TRUE(j2.ok());
  EXPECT_FALSE(j2->has_value());
  Result<std::vector<TaskRecord>> tasks = store->Tasks("j1");
  ASSERT_TRUE(tasks.ok() && tasks->size() == 1);
  EXPECT_EQ((*tasks)[0].state, "waiting");
}

// Given a store destroyed while a batch is open (a crash between Begin and
// Commit), should lose that batch and keep every earlier commit.
TEST_F(StoreTest, DestroyedWithOpenBatchKeepsEarlierCommits) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Begin().ok());
    ASSERT_TRUE(store->InsertJob(MakeJob("j1", "job", 1), {MakeTask("j1", 0, "t")}).ok());
    ASSERT_TRUE(store->InsertAttempt(MakeAttempt(1, "j1", "t", 1)).ok());
    ASSERT_TRUE(store->Commit().ok());
    ASSERT_TRUE(store->Begin().ok());
    ASSERT_TRUE(store->InsertJob(MakeJob("j2", "job", 2), {}).ok());
    ASSERT_TRUE(store->FinishAttempt(1, "worker-1", FullOutcome(), 5).ok());
    ASSERT_TRUE(store->InsertAttempt(MakeAttempt(2, "j1", "t", 2)).ok());
  }
  auto store = Open();
  ASSERT_NE(store, nullptr);
  Result<std::optional<JobRecord>> j1 = store->GetJob("j1");
  Result<std::optional<JobRecord>> j2 = store->GetJob("j2");
  ASSERT_TRUE(j1.ok() && j2.ok());
  EXPECT_TRUE(j1->has_value());
  EXPECT_FALSE(j2->has_value());
  Result<std::vector<AttemptRecord>> unfinished = store->UnfinishedAttempts();
  ASSERT_TRUE(unfinished.ok());
  ASSERT_EQ(unfinished->size(), 1u);
  EXPECT_EQ((*unfinished)[0].id, 1u);
  Result<uint64_t> max_id = store->MaxAttemptId();
  ASSERT_TRUE(max_id.ok());
  EXPECT_EQ(*max_id, 1u);
}

// Given Commit or Rollback without a batch, or Begin inside one, should fail
// with failed-precondition and leave an open batch usable.
TEST_F(StoreTest, BatchMisuseIsAnError) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Commit().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store->Rollback().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store->Begin().ok());
  EXPECT_EQ(store->Begin().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store->InBatch());
  ASSERT_TRUE(store->InsertJob(MakeJob("j1", "job", 1), {}).ok());
  ASSERT_TRUE(store->Commit().ok());
  Result<std::optional<JobRecord>> j1 = store->GetJob("j1");
  ASSERT_TRUE(j1.ok());
  EXPECT_TRUE(j1->has_value());
}

// Given a task list with a duplicate name, InsertJob should fail and leave no
// trace of the job, without disturbing the open batch around it.
TEST_F(StoreTest, FailedInsertJobIsAtomic) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  std::vector<TaskRecord> dup = {MakeTask("j1", 0, "t"), MakeTask("j1", 1, "t")};
  EXPECT_EQ(store->InsertJob(MakeJob("j1", "job", 1), dup).code(),
            StatusCode::kAlreadyExists);
  Result<std::optional<JobRecord>> j1 = store->GetJob("j1");
  ASSERT_TRUE(j1.ok());
  EXPECT_FALSE(j1->has_value());

  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(store->InsertJob(MakeJob("j0", "job", 1), {MakeTask("j0", 0, "t")}).ok());
  EXPECT_FALSE(store->InsertJob(MakeJob("j1", "job", 2), dup).ok());
  EXPECT_EQ(store->InsertJob(MakeJob("j0", "job", 3), {}).code(),
            StatusCode::kAlreadyExists);
  ASSERT_TRUE(store->Commit().ok());
  Result<std::optional<JobRecord>> j0 = store->GetJob("j0");
  j1 = store->GetJob("j1");
  ASSERT_TRUE(j0.ok() && j1.ok());
  EXPECT_TRUE(j0->has_value());
  EXPECT_FALSE(j1->has_value());
  Result<std::vector<TaskRecord>> tasks = store->Tasks("j1");
  ASSERT_TRUE(tasks.ok());
  EXPECT_TRUE(tasks->empty());
}

// Given a 100-task list with a duplicate name inside the first 62 (the rows
// written by one multi-row statement), InsertJob should fail atomically.
TEST_F(StoreTest, DuplicateInsideAChunkFailsInsertJob) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  std::vector<TaskRecord> tasks;
  for (uint32_t i = 0; i < 100; ++i)
    tasks.push_back(MakeTask("j1", i, "t" + std::to_string(i)));
  tasks[40].name = "t3";
  Status s = store->InsertJob(MakeJob("j1", "job", 1), tasks);
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists) << s.ToString();
  Result<std::optional<JobRecord>> j1 = store->GetJob("j1");
  ASSERT_TRUE(j1.ok());
  EXPECT_FALSE(j1->has_value());
  Result<std::vector<TaskRecord>> rows = store->Tasks("j1");
  ASSERT_TRUE(rows.ok());
  EXPECT_TRUE(rows->empty());
}

}  // namespace
}  // namespace drover::store

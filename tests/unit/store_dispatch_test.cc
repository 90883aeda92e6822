// Unit tests of the dispatch log (schema 11, docs/state.md "dispatches"):
// a dispatched attempt is a JSON entry in one row a commit, its `attempts`
// row is written whole when it ends, and whatever reads the file (a
// restarted coordinator, a reader, SQL of its own) sees what runs. On real
// files in a fresh temporary directory per test.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "core/base/outputs.h"
#include "core/store/store.h"
#include "tests/unit/store_test_util.h"

namespace drover::store {
namespace {

using test_util::FullOutcome;
using test_util::MakeAttempt;
using test_util::MakeJob;
using test_util::StoreTest;

using Counts = std::vector<std::pair<std::string, uint64_t>>;

class DispatchLogTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    store_ = Open();
    ASSERT_NE(store_, nullptr);
    JobRecord job = MakeJob("j1", "logged", 1000);
    job.tasks = 4;
    ASSERT_TRUE(store_->InsertJob(job, {}).ok());
  }

  // Attempt `id` of task t<idx> (index idx), its first, on w1.
  static AttemptRecord Started(uint64_t id, uint32_t idx) {
    AttemptRecord a = MakeAttempt(id, "j1", "t" + std::to_string(idx), 1);
    a.worker = "w1";
    a.task_index = idx;
    return a;
  }

  std::vector<uint64_t> UnfinishedIds() {
    auto unfinished = store_->UnfinishedAttempts();
    EXPECT_TRUE(unfinished.ok()) << unfinished.status().ToString();
    std::vector<uint64_t> ids;
    if (unfinished.ok())
      for (const auto& a : *unfinished) ids.push_back(a.id);
    return ids;
  }

  std::unique_ptr<Store> store_;
};

// Given three attempts dispatched in one batch, the commit should write one
// row of the log and no attempts row, and every reader should see the three
// running; as each ends, its row should be written whole (everything the
// dispatch said, and the outcome), the log row should go with the last, and
// an end reported twice should change nothing.
TEST_F(DispatchLogTest, AttemptsAreLoggedAtDispatchAndWrittenWholeAtTheirEnd) {
  ASSERT_TRUE(store_->Begin().ok());
  for (uint32_t i = 0; i < 3; ++i)
    ASSERT_TRUE(store_->InsertAttempt(Started(11 + i, i)).ok());
  ASSERT_TRUE(store_->Commit().ok());

  EXPECT_EQ(RawSql("SELECT count(*) FROM attempts"), "0");
  EXPECT_EQ(
      RawSql("SELECT count(*) || ' ' || min(id) || ' ' || max(last_id) FROM dispatches"),
      "1 11 13");
  EXPECT_EQ(RawSql("SELECT group_concat(id || ':' || task || ':' || worker || ':' || "
                   "task_idx, ' ') FROM running_attempts"),
            "11:t0:w1:0 12:t1:w1:1 13:t2:w1:2");
  EXPECT_EQ(UnfinishedIds(), (std::vector<uint64_t>{11, 12, 13}));
  auto tasks = store_->Tasks("j1");
  ASSERT_TRUE(tasks.ok()) << tasks.status().ToString();
  ASSERT_EQ(tasks->size(), 3u);
  EXPECT_EQ((*tasks)[1].name, "t1");
  EXPECT_EQ((*tasks)[1].state, "running");
  EXPECT_EQ((*tasks)[1].worker, "w1");
  auto counts = store_->TaskStateCounts("j1");
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(*counts, (Counts{{"running", 3}, {"waiting", 1}}));
  auto listed = store_->Attempts("j1", "t1");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_FALSE((*listed)[0].finished);
  EXPECT_EQ((*listed)[0].started_ms, Started(12, 1).started_ms);

  const AttemptOutcome outcome = test_util::FullOutcome();
  ASSERT_TRUE(store_->Begin().ok());
  auto ended = store_->FinishAttempt(12, "w2", outcome, 5000);
  ASSERT_TRUE(ended.ok() && *ended);
  ASSERT_TRUE(store_->Commit().ok());
  EXPECT_EQ(RawSql("SELECT count(*) FROM dispatches"), "1");
  EXPECT_EQ(UnfinishedIds(), (std::vector<uint64_t>{11, 13}));
  listed = store_->Attempts("j1", "t1");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  const AttemptRecord& row = (*listed)[0];
  EXPECT_TRUE(row.finished);
  EXPECT_EQ(row.id, 12u);
  EXPECT_EQ(row.number, 1u);
  EXPECT_EQ(row.worker, "w2");
  EXPECT_EQ(row.started_ms, Started(12, 1).started_ms);
  EXPECT_EQ(row.finished_ms, 5000);
  EXPECT_EQ(row.task_index, 1);
  EXPECT_EQ(row.outcome.reason, outcome.reason);
  EXPECT_EQ(row.outcome.message, outcome.message);
  EXPECT_EQ(row.outcome.result_json, outcome.result_json);
  EXPECT_EQ(row.outcome.out.dropped, outcome.out.dropped);

  // An empty worker keeps the dispatch's.
  ASSERT_TRUE(store_->Begin().ok());
  ASSERT_TRUE(*store_->FinishAttempt(11, "", outcome, 6000));
  ASSERT_TRUE(*store_->FinishAttempt(13, "", outcome, 6000));
  auto again = store_->FinishAttempt(12, "w2", outcome, 7000);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  ASSERT_TRUE(store_->Commit().ok());
  EXPECT_EQ(RawSql("SELECT count(*) FROM dispatches"), "0");
  EXPECT_EQ(
      RawSql("SELECT group_concat(worker || ':' || finished_ms, ' ') FROM attempts"),
      "w1:6000 w2:5000 w1:6000");
  EXPECT_TRUE(UnfinishedIds().empty());
}

// Given attempts dispatched and committed by a store that is then closed,
// a store opened on the file should know them as running (a restarted
// coordinator's view), number past them, and write the row of each as it
// ends; an id already used is refused.
TEST_F(DispatchLogTest, AStoreOpenedAgainKnowsWhatRuns) {
  ASSERT_TRUE(store_->Begin().ok());
  ASSERT_TRUE(store_->InsertAttempt(Started(40, 0)).ok());
  ASSERT_TRUE(store_->InsertAttempt(Started(41, 1)).ok());
  ASSERT_TRUE(store_->Commit().ok());
  store_.reset();

  store_ = Open();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(UnfinishedIds(), (std::vector<uint64_t>{40, 41}));
  auto max_id = store_->MaxAttemptId();
  ASSERT_TRUE(max_id.ok());
  EXPECT_EQ(*max_id, 41u);
  Status dup = store_->InsertAttempt(Started(41, 2));
  EXPECT_EQ(dup.code(), StatusCode::kAlreadyExists) << dup.ToString();

  AttemptOutcome lost;
  lost.reason = FailureReason::kWorkerLost;
  lost.message = "not current after a coordinator restart";
  ASSERT_TRUE(store_->Begin().ok());
  ASSERT_TRUE(*store_->FinishAttempt(40, "w1", lost, 9000));
  ASSERT_TRUE(store_->Commit().ok());
  EXPECT_EQ(RawSql("SELECT reason FROM attempts WHERE id = 40"), "worker-lost");
  EXPECT_EQ(UnfinishedIds(), (std::vector<uint64_t>{41}));
  // Outside a batch, an end writes its row and the emptied log row goes.
  ASSERT_TRUE(*store_->FinishAttempt(41, "w1", lost, 9001));
  EXPECT_EQ(RawSql("SELECT count(*) FROM dispatches"), "0");
  EXPECT_EQ(RawSql("SELECT count(*) FROM attempts"), "2");
}

// Given an attempt that ends in the batch of its dispatch (a dispatch that
// fails at once), the commit should write its row and no log row; given a
// batch rolled back, its dispatches should be gone and its ends undone.
TEST_F(DispatchLogTest, ABatchWritesOnlyWhatStillRunsAndARollbackUndoesIt) {
  AttemptOutcome failed;
  failed.reason = FailureReason::kLaunchFailed;
  failed.message = "no such command";
  ASSERT_TRUE(store_->Begin().ok());
  ASSERT_TRUE(store_->InsertAttempt(Started(1, 0)).ok());
  ASSERT_TRUE(*store_->FinishAttempt(1, "", failed, 100));
  ASSERT_TRUE(store_->InsertAttempt(Started(2, 1)).ok());
  ASSERT_TRUE(store_->Commit().ok());
  EXPECT_EQ(RawSql("SELECT count(*) FROM attempts"), "1");
  EXPECT_EQ(RawSql("SELECT id || ' ' || attempts FROM dispatches"),
            R"(2 [[2,"j1","t1",1,"w1",1780000000002,1]])");

  ASSERT_TRUE(store_->Begin().ok());
  ASSERT_TRUE(*store_->FinishAttempt(2, "", failed, 200));
  ASSERT_TRUE(store_->InsertAttempt(Started(3, 2)).ok());
  ASSERT_TRUE(store_->Rollback().ok());
  EXPECT_EQ(UnfinishedIds(), (std::vector<uint64_t>{2}));
  ASSERT_TRUE(store_->Begin().ok());
  auto ended = store_->FinishAttempt(2, "", failed, 300);
  ASSERT_TRUE(ended.ok() && *ended);
  ASSERT_TRUE(store_->Commit().ok());
  EXPECT_EQ(RawSql("SELECT finished_ms FROM attempts WHERE id = 2"), "300");
  EXPECT_EQ(RawSql("SELECT count(*) FROM dispatches"), "0");
}

// Given 40 attempts of a job dispatched and then ended in one batch in no
// order of their ids (each with values of its own in every column), the
// batch's reads should see each ended before the commit, the commit should
// write every row whole (written 16 to an INSERT, in the order of their
// ids, the rest one by one), and a second batch's ends should add theirs.
TEST_F(DispatchLogTest, TheEndsOfABatchAreWrittenTogetherAndReadBeforeItsCommit) {
  JobRecord job = MakeJob("j2", "many", 1000);
  job.tasks = 41;
  ASSERT_TRUE(store_->InsertJob(job, {}).ok());
  auto started = [](uint64_t id) {
    AttemptRecord a = MakeAttempt(id, "j2", "t" + std::to_string(id - 100), 1);
    a.worker = "w1";
    a.task_index = static_cast<int64_t>(id - 100);
    return a;
  };
  auto outcome = [](uint64_t id) {
    AttemptOutcome o = test_util::FullOutcome();
    const auto n = static_cast<int64_t>(id);
    o.exit_code = static_cast<int>(n);
    o.signal = static_cast<int>(n % 7);
    o.message = "m" + std::to_string(n);
    o.wall = std::chrono::microseconds(n * 10);
    o.cpu_user = std::chrono::microseconds(n * 11);
    o.cpu_sys = std::chrono::microseconds(n * 12);
    o.max_rss_kb = n * 13;
    o.out.bytes = static_cast<uint64_t>(n * 14);
    o.out.dropped = static_cast<uint64_t>(n * 15);
    o.err.bytes = static_cast<uint64_t>(n * 16);
    o.err.dropped = static_cast<uint64_t>(n * 17);
    o.result_json = "{\"n\":" + std::to_string(n) + "}";
    o.outputs = {{"k", std::to_string(n)}};
    return o;
  };
  // Every column of attempt `id`'s row, as the SQL below joins them.
  auto expected = [&](uint64_t id) {
    const AttemptRecord a = started(id);
    const AttemptOutcome o = outcome(id);
    const auto n = static_cast<int64_t>(id);
    return std::to_string(id) + "|j2|" + a.task + "|1|w" + std::to_string(id) + "|1|" +
           std::to_string(a.started_ms) + "|" + std::to_string(5000 + n) + "|timeout|" +
           std::to_string(n) + "|" + std::to_string(n % 7) + "|m" + std::to_string(n) +
           "|" + std::to_string(n * 10) + "|" + std::to_string(n * 11) + "|" +
           std::to_string(n * 12) + "|" + std::to_string(n * 13) + "|" +
           std::to_string(n * 14) + "|" + std::to_string(n * 15) + "|" +
           std::to_string(n * 16) + "|" + std::to_string(n * 17) + "|" + o.result_json +
           "|" + OutputsToJson(o.outputs) + "|" + std::to_string(n - 100) + "|0|0";
  };
  constexpr const char* kRows =
      "SELECT group_concat(r, ' ') FROM (SELECT id || '|' || job_id || '|' || task || "
      "'|' || number || '|' || worker || '|' || finished || '|' || started_ms || '|' || "
      "finished_ms || '|' || reason || '|' || exit_code || '|' || signal || '|' || "
      "message || '|' || wall_us || '|' || cpu_user_us || '|' || cpu_sys_us || '|' || "
      "max_rss_kb || '|' || stdout_bytes || '|' || stdout_dropped || '|' || "
      "stderr_bytes || '|' || stderr_dropped || '|' || result_json || '|' || "
      "outputs_json || '|' || task_idx || '|' || task_row || '|' || fingerprint AS r "
      "FROM attempts WHERE job_id = 'j2' ORDER BY id)";

  ASSERT_TRUE(store_->Begin().ok());
  for (uint64_t id = 101; id <= 141; ++id)
    ASSERT_TRUE(store_->InsertAttempt(started(id)).ok());
  ASSERT_TRUE(store_->Commit().ok());
  ASSERT_TRUE(store_->Begin().ok());
  // 40 of them, odd ids then even ones; 141 stays running.
  std::vector<uint64_t> order;
  for (uint64_t id = 101; id <= 139; id += 2) order.push_back(id);
  for (uint64_t id = 102; id <= 140; id += 2) order.push_back(id);
  for (uint64_t id : order) {
    auto ended = store_->FinishAttempt(id, "w" + std::to_string(id), outcome(id),
                                       5000 + static_cast<int64_t>(id));
    ASSERT_TRUE(ended.ok() && *ended) << id;
  }
  // Read inside the batch: ended, and no longer running.
  auto listed = store_->Attempts("j2", "t7");
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_TRUE((*listed)[0].finished);
  EXPECT_EQ((*listed)[0].outcome.message, "m107");
  EXPECT_EQ(UnfinishedIds(), (std::vector<uint64_t>{141}));
  ASSERT_TRUE(store_->Commit().ok());

  std::string want;
  for (uint64_t id = 101; id <= 140; ++id)
    want += (want.empty() ? "" : " ") + expected(id);
  EXPECT_EQ(RawSql(kRows), want);
  EXPECT_EQ(RawSql("SELECT count(*) FROM dispatches"), "1");  // 141's entry

  ASSERT_TRUE(store_->Begin().ok());
  ASSERT_TRUE(*store_->FinishAttempt(141, "w141", outcome(141), 5141));
  ASSERT_TRUE(store_->Commit().ok());
  EXPECT_EQ(RawSql(kRows), want + " " + expected(141));
  EXPECT_EQ(RawSql("SELECT count(*) FROM dispatches"), "0");
}

// Given ended attempts whose rows cannot be written (a trigger refuses one),
// a read of them inside the batch should fail, and so should the commit
// after it, losing the batch whole: no row written, every attempt running
// again; once the rows can be written, a batch should write them all.
TEST_F(DispatchLogTest, AnEndedRowThatCannotBeWrittenFailsTheWholeBatch) {
  ASSERT_TRUE(store_->Begin().ok());
  for (uint32_t i = 0; i < 3; ++i)
    ASSERT_TRUE(store_->InsertAttempt(Started(11 + i, i)).ok());
  ASSERT_TRUE(store_->Commit().ok());
  RawSql(
      "CREATE TRIGGER refuse_13 BEFORE INSERT ON attempts WHEN NEW.id = 13 BEGIN "
      "SELECT RAISE(ABORT, 'attempt 13 refused'); END");
  AttemptOutcome ok;
  for (bool read_first : {true, false}) {
    SCOPED_TRACE(read_first ? "read inside the batch" : "commit only");
    ASSERT_TRUE(store_->Begin().ok());
    for (uint64_t id = 11; id <= 13; ++id)
      ASSERT_TRUE(*store_->FinishAttempt(id, "w1", ok, 500));
    if (read_first) {
      auto read = store_->Attempts("j1", "t0");
      ASSERT_FALSE(read.ok());
      EXPECT_NE(read.status().message().find("attempt 13 refused"), std::string::npos)
          << read.status().ToString();
    }
    Status committed = store_->Commit();
    ASSERT_FALSE(committed.ok());
    EXPECT_NE(committed.message().find("attempt 13 refused"), std::string::npos)
        << committed.ToString();
    EXPECT_FALSE(store_->InBatch());
    EXPECT_EQ(RawSql("SELECT count(*) FROM attempts"), "0");
    EXPECT_EQ(UnfinishedIds(), (std::vector<uint64_t>{11, 12, 13}));
  }
  RawSql("DROP TRIGGER refuse_13");
  ASSERT_TRUE(store_->Begin().ok());
  for (uint64_t id = 11; id <= 13; ++id)
    ASSERT_TRUE(*store_->FinishAttempt(id, "w1", ok, 600));
  ASSERT_TRUE(store_->Commit().ok());
  EXPECT_EQ(RawSql("SELECT count(*) || ' ' || sum(finished_ms) FROM attempts"), "3 1800");
  EXPECT_TRUE(UnfinishedIds().empty());
}

// Given an unfinished attempts row written by a drover before the log
// (schema 10 and older), ending it should update that row, once.
TEST_F(DispatchLogTest, ARowOfAnOlderDroverIsUpdatedAtItsEnd) {
  RawSql(
      "INSERT INTO attempts (id, job_id, task, number, worker, started_ms, task_idx) "
      "VALUES (5, 'j1', 't0', 1, 'w1', 50, 0)");
  store_.reset();
  store_ = Open();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(UnfinishedIds(), (std::vector<uint64_t>{5}));
  auto counts = store_->TaskStateCounts("j1");
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(*counts, (Counts{{"running", 1}, {"waiting", 3}}));
  AttemptOutcome ok;
  ASSERT_TRUE(*store_->FinishAttempt(5, "", ok, 60));
  EXPECT_FALSE(*store_->FinishAttempt(5, "", ok, 70));
  EXPECT_EQ(RawSql("SELECT finished || ' ' || finished_ms FROM attempts WHERE id = 5"),
            "1 60");
  EXPECT_TRUE(UnfinishedIds().empty());
}

// Given a row of the log that is not what drover writes (not JSON, or an
// entry of another shape), Open should refuse the directory with an error
// that names the file and the row, and open it once the row is gone.
TEST_F(DispatchLogTest, ARowThatIsNotDroversIsNamedAtOpen) {
  store_.reset();
  for (const char* bad :
       {"[[1, \"j1\", \"t0\"", "{\"id\": 1}", "[[1, \"j1\", \"t0\", 1, \"w1\", 5]]",
        "[[1, \"j1\", \"t0\", \"one\", \"w1\", 5, 0]]"}) {
    SCOPED_TRACE(bad);
    RawSql(std::string("INSERT INTO dispatches (id, last_id, attempts) VALUES (7, 7, '") +
           bad + "')");
    Result<std::unique_ptr<Store>> opened = Store::Open(dir_);
    ASSERT_FALSE(opened.ok());
    EXPECT_EQ(opened.status().code(), StatusCode::kFailedPrecondition);
    const std::string message = opened.status().message();
    EXPECT_NE(message.find(DbPath().string()), std::string::npos) << message;
    EXPECT_NE(message.find("row 7 (table dispatches)"), std::string::npos) << message;
    RawSql("DELETE FROM dispatches");
  }
  store_ = Open();
  ASSERT_NE(store_, nullptr);
  EXPECT_TRUE(UnfinishedIds().empty());
}

}  // namespace
}  // namespace drover::store

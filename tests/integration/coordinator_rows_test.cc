// Integration tests of the coordinator's task rows (docs/state.md, "tasks"):
// a task's row is made when the task leaves its first state, and a
// restarted coordinator finds what ran without one. The coordinator runs on
// its own thread; workers and clients are DEALER sockets over inproc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tests/integration/coordinator_fixture.h"

namespace drover {
namespace {

using ::testing::Contains;
using testing::CoordinatorTest;
using ::testing::ElementsAre;
using testing::FakeClient;
using testing::FakeWorker;
using testing::IndependentTasks;
using testing::Ok;
using ::testing::Pair;

// A task's row is made when the task leaves its first state (docs/state.md,
// "tasks"). Given a job of 3 independent tasks and a worker with one slot,
// the store should hold no task row at submit (the job counts 3 waiting),
// the running task alone while its first attempt runs, its written row
// once it ends, and every row once the job has ended.
TEST_F(CoordinatorTest, TaskRowsAreMadeAsTasksLeaveTheirFirstState) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeClient& client = AddClient();
  auto submitted = client.Submit(IndependentTasks("rows", 3));
  ASSERT_TRUE(submitted);
  const std::string job = submitted->job_id();
  EXPECT_EQ(submitted->tasks(), 3u);
  auto rows = [&] {
    std::vector<std::pair<std::string, std::string>> out;
    auto tasks = Reader().Tasks(job);
    EXPECT_TRUE(tasks.ok());
    if (tasks.ok()) {
      for (const auto& t : *tasks) out.emplace_back(t.name, t.state);
    }
    return out;
  };
  auto counts = [&] {
    auto c = Reader().TaskStateCounts(job);
    EXPECT_TRUE(c.ok());
    return c.ok() ? *c : std::vector<std::pair<std::string, uint64_t>>();
  };
  EXPECT_TRUE(rows().empty());
  EXPECT_THAT(counts(), ElementsAre(Pair("waiting", 3u)));

  FakeWorker& worker = AddWorker("w1", 1);
  auto first = worker.ExpectDispatch();
  ASSERT_TRUE(first);
  EXPECT_THAT(rows(), ElementsAre(Pair(first->task(), "running")));
  EXPECT_THAT(counts(), ElementsAre(Pair("running", 1u), Pair("waiting", 2u)));
  worker.SendResult(first->attempt_id(), Ok());
  ASSERT_TRUE(worker.ExpectAck());
  EXPECT_THAT(rows(), Contains(Pair(first->task(), "succeeded")));
  for (int i = 0; i < 2; ++i) {
    auto next = worker.ExpectDispatch();
    ASSERT_TRUE(next);
    worker.SendResult(next->attempt_id(), Ok());
    ASSERT_TRUE(worker.ExpectAck());
  }
  EXPECT_EQ(JobState(job), "succeeded");
  EXPECT_THAT(rows(), ElementsAre(Pair("t1", "succeeded"), Pair("t2", "succeeded"),
                                  Pair("t3", "succeeded")));
  EXPECT_THAT(counts(), ElementsAre(Pair("succeeded", 3u)));
}

// Given a coordinator restarted while a job has a task that ended, one
// whose first attempt runs (no row yet: its attempt places it) and one that
// never started (no row at all), the job should come back with the running
// attempt claimed by its worker, the unstarted task run, and no task run
// twice.
TEST_F(CoordinatorTest, RestartRecoversTasksThatHaveNoRowYet) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 2);
  FakeClient& client = AddClient();
  auto submitted = client.Submit(
      "version: 1\nname: unrowed\ntasks:\n  t1: {run: echo 1}\n  t2: {run: echo 2}\n"
      "  t3: {run: echo 3, needs: t2}\n");
  ASSERT_TRUE(submitted);
  const std::string job = submitted->job_id();
  auto first = worker.ExpectDispatch();
  auto second = worker.ExpectDispatch();
  ASSERT_TRUE(first && second);
  if (first->task() == "t2") std::swap(first, second);
  ASSERT_EQ(first->task(), "t1");
  worker.SendResult(first->attempt_id(), Ok());
  ASSERT_TRUE(worker.ExpectAck());
  EXPECT_EQ(Task(job, "t1").state, "succeeded");

  workers_.clear();
  clients_.clear();
  ASSERT_NO_FATAL_FAILURE(RestartCoordinator());
  FakeWorker& again =
      *workers_.emplace_back(std::make_unique<FakeWorker>(context_, endpoint_, "w1"));
  ASSERT_TRUE(
      again.RegisterWith("session-2", {{"spawn", 2}}, {}, {second->attempt_id()}));
  FakeClient& watcher = AddClient();
  watcher.Watch(job);
  Sync();
  again.SendResult(second->attempt_id(), Ok());
  ASSERT_TRUE(again.ExpectAck());
  auto third = again.ExpectDispatch();
  ASSERT_TRUE(third);
  EXPECT_EQ(third->task(), "t3");
  again.SendResult(third->attempt_id(), Ok());
  ASSERT_TRUE(again.ExpectAck());
  auto done = watcher.WaitJobEvent();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state(), "succeeded");
  for (const char* t : {"t1", "t2", "t3"}) {
    EXPECT_EQ(Attempts(job, t).size(), 1u) << t;
    EXPECT_EQ(Task(job, t).state, "succeeded") << t;
  }
}

}  // namespace
}  // namespace drover

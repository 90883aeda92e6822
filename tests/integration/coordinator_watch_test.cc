// The coordinator and its watching clients over real sockets: what a
// client that watches a job is sent (TASK-EVENTs, one a message or in
// batches, and the heartbeats of a quiet job).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/coordinator_fixture.h"

namespace drover {
namespace {

using testing::Cancelled;
using testing::CoordinatorTest;
using testing::Exit;
using testing::FakeClient;
using testing::FakeWorker;
using testing::IndependentTasks;

// Given a client watching a job that is quiet (its only task is running),
// should send that client a HEARTBEAT every heartbeat interval, so that it
// can tell a quiet job from a dead coordinator.
TEST_F(CoordinatorTest, WatchingClientIsHeartbeated) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& client = AddClient();
  auto submitted = client.Submit(IndependentTasks("quiet", 1));
  ASSERT_TRUE(submitted);
  ASSERT_TRUE(worker.ExpectDispatch());
  const int before = client.heartbeats();
  clock_.Advance(std::chrono::milliseconds(1100));  // past one interval
  coordinator_->Poke();
  Sync();
  EXPECT_TRUE(client.Queued().empty());  // nothing but heartbeats
  EXPECT_GT(client.heartbeats(), before);
}

// Given a failed attempt's TASK-EVENT and then one with no attempt (its
// dependent blocked), should send in the second none of the first's
// reason, detail, wall time or worker: the coordinator reuses one event
// from task to task.
TEST_F(CoordinatorTest, ATaskEventCarriesNothingOfTheOneBefore) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& client = AddClient();
  auto submitted = client.Submit(
      "version: 1\nname: events\ntasks:\n"
      "  a: {run: exit 3}\n"
      "  b: {run: echo b, needs: a}\n");
  ASSERT_TRUE(submitted);
  auto d = worker.ExpectDispatch();
  ASSERT_TRUE(d);
  ASSERT_EQ(d->task(), "a");
  AttemptOutcome failed = Exit(3);
  failed.wall = std::chrono::milliseconds(7);
  worker.SendResult(d->attempt_id(), failed);
  ASSERT_TRUE(worker.ExpectAck());

  auto a = client.WaitTaskEvent("a", "failed");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->reason(), "exit");
  EXPECT_EQ(a->detail(), "exit 3");
  EXPECT_EQ(a->wall_us(), 7000u);
  EXPECT_EQ(a->worker(), "w1");
  EXPECT_EQ(a->attempt(), 1u);

  auto b = client.WaitTaskEvent("b", "blocked");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->job_id(), submitted->job_id());
  EXPECT_EQ(b->reason(), "");
  EXPECT_EQ(b->detail(), "");
  EXPECT_EQ(b->wall_us(), 0u);
  EXPECT_EQ(b->worker(), "");
  EXPECT_EQ(b->attempt(), 0u);
  EXPECT_EQ(b->counts().failed(), 1u);
  EXPECT_EQ(b->counts().other(), 1u);
  auto done = client.WaitJobEvent();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state(), "failed");
}

// Given a client that takes TASK-EVENTs in batches of 4 (Submit.max_batch)
// and one that does not (a WATCH without it), when cancelling a job skips
// its 9 pending tasks in one turn, then the first should get them in
// messages of at most 4 events (the head and its `more`, entries without a
// `more` of their own), the second one event a message, both in the same
// order, each task once, and each its JOB-EVENT after the last of them.
// A RETRY-JOB of the batching client should have its events batched too.
TEST_F(CoordinatorTest, ABatchingClientGetsItsTaskEventsInBatchesInOrder) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& batching = AddClient();
  batching.max_batch = 4;
  FakeClient& single = AddClient();
  auto submitted = batching.Submit(IndependentTasks("batched", 10));
  ASSERT_TRUE(submitted);
  const std::string job = submitted->job_id();
  single.Watch(job);
  auto running = worker.ExpectDispatch();
  ASSERT_TRUE(running);
  // The WATCH is in before the cancel: its STATUS is answered after it.
  ASSERT_TRUE(single.Status(job));

  batching.CancelJob(job);
  ASSERT_TRUE(worker.ExpectCancel());
  worker.SendResult(running->attempt_id(), Cancelled());
  ASSERT_TRUE(worker.ExpectAck());

  // Every message until the JOB-EVENT, flattened: the task of each event.
  auto read = [&](FakeClient& client, const std::string& id, size_t* messages,
                  size_t* largest) {
    std::vector<std::string> tasks;
    for (;;) {
      auto m = client.Next(testing::kDeadline);
      if (!m) {
        ADD_FAILURE() << "no JOB-EVENT";
        return tasks;
      }
      if (m->command == testing::Command::kJobEvent) return tasks;
      if (m->command != testing::Command::kTaskEvent) continue;  // the OK
      const auto ev = testing::Body<wire::TaskEvent>(*m);
      ++*messages;
      *largest = std::max<size_t>(*largest, 1 + ev.more_size());
      tasks.push_back(ev.task() + " " + ev.state());
      for (const wire::TaskEvent& e : ev.more()) {
        EXPECT_EQ(e.more_size(), 0);
        EXPECT_EQ(e.job_id(), id);
        tasks.push_back(e.task() + " " + e.state());
      }
    }
  };
  size_t batched_messages = 0, batched_largest = 0;
  const std::vector<std::string> batched =
      read(batching, job, &batched_messages, &batched_largest);
  size_t single_messages = 0, single_largest = 0;
  const std::vector<std::string> singles =
      read(single, job, &single_messages, &single_largest);

  // 9 skipped, then the running one cancelled.
  ASSERT_EQ(batched.size(), 10u);
  EXPECT_EQ(batched, singles);
  EXPECT_EQ(std::set<std::string>(batched.begin(), batched.end()).size(), 10u);
  EXPECT_EQ(batched.back(), running->task() + " cancelled");
  EXPECT_EQ(batched_largest, 4u);
  EXPECT_LT(batched_messages, 10u);
  EXPECT_EQ(single_largest, 1u);
  EXPECT_EQ(single_messages, 10u);

  auto retried = batching.Retry(job);
  ASSERT_TRUE(retried);
  auto again = worker.ExpectDispatch();
  ASSERT_TRUE(again);
  batching.CancelJob(retried->job_id());
  ASSERT_TRUE(worker.ExpectCancel());
  worker.SendResult(again->attempt_id(), Cancelled());
  ASSERT_TRUE(worker.ExpectAck());
  size_t retried_messages = 0, retried_largest = 0;
  EXPECT_EQ(read(batching, retried->job_id(), &retried_messages, &retried_largest).size(),
            10u);
  EXPECT_EQ(retried_largest, 4u);
}

}  // namespace
}  // namespace drover

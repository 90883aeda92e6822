// Protocol tests of dynamic fan-out (docs/spec.md, "Dynamic matrix"): a
// placeholder until the upstream succeeds, expansion into instances and
// their rows, failures of the expansion, the instance cap, and a restart
// after an expansion. The fixture is coordinator_fixture.h.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "backends/spawn/spawn.pb.h"
#include "tests/integration/coordinator_fixture.h"

namespace drover {
namespace {

using testing::CoordinatorTest;
using ::testing::ElementsAre;
using testing::FakeClient;
using testing::FakeWorker;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using testing::Ok;

constexpr const char* kFanJob = R"(version: 1
name: fan
tasks:
  plan: {run: echo plan}
  fan:
    needs: [plan]
    matrix: {shard: "${tasks.plan.outputs.shards}"}
    run: "work ${matrix.shard}"
  report:
    needs: [fan]
    run: "echo ${tasks.fan.outputs.n}"
)";

AttemptOutcome WithOutputs(Outputs outputs) {
  AttemptOutcome o = Ok();
  o.outputs = std::move(outputs);
  return o;
}

std::string Argv(const wire::Dispatch& d) {
  spawn::SpawnTask task;
  EXPECT_TRUE(task.ParseFromString(d.payload())) << d.task();
  std::string out;
  for (const auto& a : task.argv()) out += (out.empty() ? "" : " ") + a;
  return out;
}

std::vector<std::string> RowNames(store::Store& reader, const std::string& job) {
  std::vector<std::string> names;
  auto rows = reader.Tasks(job);
  EXPECT_TRUE(rows.ok());
  if (rows.ok()) {
    for (const auto& r : *rows) names.push_back(r.name);
  }
  return names;
}

// Runs the dispatches `worker` gets for `n` attempts, answering each with
// outputs {n: its shard}; returns the task names in dispatch order.
std::vector<std::string> RunInstances(FakeWorker& worker, int n) {
  std::vector<std::string> names;
  for (int i = 0; i < n; ++i) {
    auto d = worker.ExpectDispatch();
    if (!d) break;
    names.push_back(d->task());
    const std::string shard = d->task().substr(d->task().find('=') + 1, 1);
    worker.SendResult(d->attempt_id(), WithOutputs({{"n", shard}}));
    EXPECT_TRUE(worker.ExpectAck());
  }
  return names;
}

class CoordinatorFanOutTest : public CoordinatorTest {
 protected:
  // Runs kFanJob, submitted as `text`, through one worker, as the test
  // below says.
  void ExpandsWhenUpstreamSucceeds(const std::string& text);
};

// Given a dynamic task, should show one waiting placeholder saying what it
// waits for until `plan` succeeds; then create one instance per value of
// plan's list (stored rows, dispatched with ${matrix.shard} rendered), and
// give the dependent the list of their outputs once all succeeded.
TEST_F(CoordinatorFanOutTest, ExpandsWhenUpstreamSucceeds) {
  ExpandsWhenUpstreamSucceeds(kFanJob);
}

// Given the same job in a spec big enough to be loaded off the loop (the
// spec loader then builds the job's plan and rows, its placeholder's
// among them, with the id the loop drew): the same.
TEST_F(CoordinatorFanOutTest, ExpandsTheSameWhenItsSpecLoadsOffTheLoop) {
  const std::string text = std::string(kFanJob) + "# " + std::string(20000, 'x') + "\n";
  ASSERT_GT(text.size(), size_t{16 * 1024}) << "past the loop's kLoadHereBytes";
  ExpandsWhenUpstreamSucceeds(text);
}

void CoordinatorFanOutTest::ExpandsWhenUpstreamSucceeds(const std::string& text) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& client = AddClient();
  FakeClient& asker = AddClient();
  auto submitted = client.Submit(text);
  ASSERT_TRUE(submitted);
  const std::string job = submitted->job_id();
  EXPECT_THAT(job, MatchesRegex("[0-9]{8}-[0-9]{6}-[0-9a-f]{4}")) << "a job's id";
  EXPECT_EQ(submitted->tasks(), 3u);
  auto plan = worker.ExpectDispatch();
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->task(), "plan");

  auto status = asker.Status(job);
  ASSERT_TRUE(status);
  ASSERT_EQ(status->jobs(0).tasks_size(), 3);
  const wire::TaskStatus& fan = status->jobs(0).tasks(1);
  EXPECT_EQ(fan.name(), "fan");
  EXPECT_EQ(fan.state(), "waiting");
  EXPECT_EQ(fan.pending_reason(), "fan-out waits for plan's output shards");
  EXPECT_EQ(Task(job, "fan").pending_reason, "fan-out waits for plan's output shards");

  worker.SendResult(plan->attempt_id(), WithOutputs({{"shards", R"(["a","b","c"])"}}));
  ASSERT_TRUE(worker.ExpectAck());
  auto first = worker.ExpectDispatch();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->task(), "fan[shard=a]");
  EXPECT_EQ(Argv(*first), "/bin/sh -c work a");
  // `report` has no row until it leaves its first state; the instances
  // have theirs at once, so that a restart finds the expansion.
  EXPECT_THAT(RowNames(Reader(), job),
              ElementsAre("plan", "fan[shard=a]", "fan[shard=b]", "fan[shard=c]"));
  worker.SendResult(first->attempt_id(), WithOutputs({{"n", "a"}}));
  ASSERT_TRUE(worker.ExpectAck());
  EXPECT_THAT(RunInstances(worker, 2), ElementsAre("fan[shard=b]", "fan[shard=c]"));

  auto report = worker.ExpectDispatch();
  ASSERT_TRUE(report);
  EXPECT_EQ(report->task(), "report");
  EXPECT_EQ(Argv(*report), R"(/bin/sh -c echo ["a","b","c"])");
  worker.SendResult(report->attempt_id(), Ok());
  ASSERT_TRUE(worker.ExpectAck());
  auto done = client.WaitJobEvent();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state(), "succeeded");
  EXPECT_EQ(done->counts().succeeded(), 5u);
}

// Given upstream outputs that cannot be a dynamic matrix (not JSON, an
// empty list, no such output), the fan-out should fail as missing-input
// with the reason, its dependent be blocked and the job fail.
TEST_F(CoordinatorTest, FanOutFailsOnABadList) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 1);
  const std::map<std::string, Outputs> cases = {
      {"not JSON", {{"shards", "a, b"}}},
      {"empty list", {{"shards", "[]"}}},
      {"produced no output 'shards'", {{"other", "[1]"}}},
  };
  for (const auto& [words, outputs] : cases) {
    FakeClient& client = AddClient();
    auto submitted = client.Submit(kFanJob);
    ASSERT_TRUE(submitted);
    auto plan = worker.ExpectDispatch();
    ASSERT_TRUE(plan);
    worker.SendResult(plan->attempt_id(), WithOutputs(outputs));
    ASSERT_TRUE(worker.ExpectAck());
    auto done = client.WaitJobEvent();
    ASSERT_TRUE(done);
    EXPECT_EQ(done->state(), "failed");
    const store::TaskRecord fan = Task(submitted->job_id(), "fan");
    EXPECT_EQ(fan.state, "failed");
    EXPECT_EQ(fan.reason, "missing-input");
    EXPECT_THAT(fan.detail, HasSubstr("fan-out: matrix key 'shard' from 'plan'"));
    EXPECT_THAT(fan.detail, HasSubstr(words));
    EXPECT_EQ(Task(submitted->job_id(), "report").state, "blocked");
  }
}

// Given a job cap of 4 instances and a fan-out of 3 in a job of 3 tasks,
// the fan-out should fail naming the cap, and nothing be expanded.
TEST_F(CoordinatorTest, FanOutAppliesTheInstanceCap) {
  options_.spec_options.max_instances = 4;
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& client = AddClient();
  auto submitted = client.Submit(kFanJob);
  ASSERT_TRUE(submitted);
  auto plan = worker.ExpectDispatch();
  ASSERT_TRUE(plan);
  worker.SendResult(plan->attempt_id(), WithOutputs({{"shards", "[1,2,3]"}}));
  ASSERT_TRUE(worker.ExpectAck());
  auto done = client.WaitJobEvent();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state(), "failed");
  const store::TaskRecord fan = Task(submitted->job_id(), "fan");
  EXPECT_THAT(fan.detail, HasSubstr("the fan-out gives 3 instances"));
  EXPECT_THAT(fan.detail, HasSubstr("more than the cap of 4"));
  EXPECT_THAT(RowNames(Reader(), submitted->job_id()),
              ElementsAre("plan", "fan", "report"));
}

// Given a coordinator restarted after an expansion, with one instance
// running and one done, the job should come back with every instance
// (rebuilt from the stored rows and plan's stored output): the running one
// claimed by its worker, the rest run, and the dependent see all outputs.
TEST_F(CoordinatorTest, FanOutSurvivesARestart) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& client = AddClient();
  auto submitted = client.Submit(kFanJob);
  ASSERT_TRUE(submitted);
  const std::string job = submitted->job_id();
  auto plan = worker.ExpectDispatch();
  ASSERT_TRUE(plan);
  worker.SendResult(plan->attempt_id(), WithOutputs({{"shards", R"(["a","b","c"])"}}));
  ASSERT_TRUE(worker.ExpectAck());
  EXPECT_THAT(RunInstances(worker, 1), ElementsAre("fan[shard=a]"));
  auto running = worker.ExpectDispatch();
  ASSERT_TRUE(running);
  EXPECT_EQ(running->task(), "fan[shard=b]");

  workers_.clear();
  clients_.clear();
  ASSERT_NO_FATAL_FAILURE(RestartCoordinator());
  FakeWorker& again =
      *workers_.emplace_back(std::make_unique<FakeWorker>(context_, endpoint_, "w1"));
  ASSERT_TRUE(
      again.RegisterWith("session-2", {{"spawn", 1}}, {}, {running->attempt_id()}));
  FakeClient& watcher = AddClient();
  watcher.Watch(job);
  Sync();
  again.SendResult(running->attempt_id(), WithOutputs({{"n", "b"}}));
  ASSERT_TRUE(again.ExpectAck());
  EXPECT_THAT(RunInstances(again, 1), ElementsAre("fan[shard=c]"));
  auto report = again.ExpectDispatch();
  ASSERT_TRUE(report);
  EXPECT_EQ(Argv(*report), R"(/bin/sh -c echo ["a","b","c"])");
  again.SendResult(report->attempt_id(), Ok());
  ASSERT_TRUE(again.ExpectAck());
  auto done = watcher.WaitJobEvent();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state(), "succeeded");
  EXPECT_THAT(RowNames(Reader(), job), ElementsAre("plan", "fan[shard=a]", "report",
                                                   "fan[shard=b]", "fan[shard=c]"));
  EXPECT_EQ(Attempts(job, "fan[shard=a]").size(), 1u);
}

// Given a failed fan-out instance, RETRY-JOB should expand the same values
// again at once (plan carried over), carry the instances that succeeded
// and run only the failed one, continuing its attempt numbers.
TEST_F(CoordinatorTest, FanOutRetryRerunsOnlyFailedInstances) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& client = AddClient();
  auto submitted = client.Submit(kFanJob);
  ASSERT_TRUE(submitted);
  auto plan = worker.ExpectDispatch();
  ASSERT_TRUE(plan);
  worker.SendResult(plan->attempt_id(), WithOutputs({{"shards", R"(["a","b"])"}}));
  ASSERT_TRUE(worker.ExpectAck());
  EXPECT_THAT(RunInstances(worker, 1), ElementsAre("fan[shard=a]"));
  auto b = worker.ExpectDispatch();
  ASSERT_TRUE(b);
  worker.SendResult(b->attempt_id(), testing::Exit(1));
  ASSERT_TRUE(worker.ExpectAck());
  auto failed = client.WaitJobEvent();
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->state(), "failed");

  FakeClient& retrier = AddClient();
  auto retried = retrier.Retry(submitted->job_id());
  ASSERT_TRUE(retried);
  EXPECT_EQ(retried->carried_over(), 1u);  // plan; the instances come at expansion
  auto again = worker.ExpectDispatch();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->task(), "fan[shard=b]");
  EXPECT_EQ(again->attempt(), 2u);
  worker.SendResult(again->attempt_id(), WithOutputs({{"n", "b"}}));
  ASSERT_TRUE(worker.ExpectAck());
  auto report = worker.ExpectDispatch();
  ASSERT_TRUE(report);
  EXPECT_EQ(Argv(*report), R"(/bin/sh -c echo ["a","b"])");
  worker.SendResult(report->attempt_id(), Ok());
  ASSERT_TRUE(worker.ExpectAck());
  auto done = retrier.WaitJobEvent();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state(), "succeeded");
  EXPECT_EQ(Task(retried->job_id(), "fan[shard=a]").state, "succeeded");
}

}  // namespace
}  // namespace drover

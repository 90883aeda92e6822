// Coordinator restart recovery: a Coordinator stopped mid-job and a new one
// opened on the same state directory (a real SQLite file) keeps the job
// running; its workers claim their attempts by registering again; the
// attempts nobody claims fail as worker-lost after the grace; no result is
// recorded twice. Fake peers over inproc with a FakeClock, and one real
// Worker over tcp://127.0.0.1 with real time. Fixture: coordinator_fixture.h.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "backends/backend.h"
#include "tests/integration/coordinator_fixture.h"
#include "worker/worker.h"

namespace drover {
namespace {

using testing::Command;
using testing::CoordinatorTest;
using ::testing::ElementsAre;
using testing::Exit;
using testing::FakeClient;
using testing::FakeWorker;
using testing::IndependentTasks;
using ::testing::IsEmpty;
using testing::Ok;

// The next DISPATCH to `w`, skipping the ACKs queued before it.
std::optional<wire::Dispatch> NextDispatch(FakeWorker& w) {
  for (int i = 0; i < 4; ++i) {
    auto m = w.Next(testing::kDeadline);
    if (!m) break;
    if (m->command == Command::kDispatch) return testing::Body<wire::Dispatch>(*m);
    if (m->command != Command::kAck) {
      ADD_FAILURE() << "waiting for DISPATCH, got " << testing::Name(m->command);
      return std::nullopt;
    }
  }
  ADD_FAILURE() << "no DISPATCH in time";
  return std::nullopt;
}

// Given a job with one attempt finished and one running on w1 when the
// coordinator stops, should have the new coordinator keep the job running,
// let w1 (registering again with the attempt in Hello.running) claim it
// without re-running it, record its resent RESULT once, and finish the job
// for a client that re-sent WATCH.
TEST_F(CoordinatorTest, RestartedCoordinatorLetsTheWorkerFinishItsAttempt) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& before = AddWorker("w1", 2);
  FakeClient& client = AddClient();
  auto submitted = client.Submit(IndependentTasks("restart", 2));
  ASSERT_TRUE(submitted);
  const std::string job = submitted->job_id();
  auto d1 = before.ExpectDispatch();
  auto d2 = before.ExpectDispatch();
  ASSERT_TRUE(d1 && d2);
  before.SendResult(d1->attempt_id(), Ok(), "one\n");
  ASSERT_TRUE(before.ExpectAck());

  ASSERT_NO_FATAL_FAILURE(RestartCoordinator());
  EXPECT_EQ(Stat(&CoordinatorStats::recovered_jobs), 1u);
  EXPECT_EQ(JobState(job), "running");
  FakeClient& watcher = AddClient();
  watcher.Watch(job);
  FakeWorker& after =
      *workers_.emplace_back(std::make_unique<FakeWorker>(context_, endpoint_, "w1"));
  ASSERT_TRUE(after.RegisterWith("session-1", {{"spawn", 2}}, {}, {d2->attempt_id()}));
  EXPECT_THAT(after.welcome().unknown(), IsEmpty());
  EXPECT_EQ(Stat(&CoordinatorStats::claimed_attempts), 1u);
  Sync();
  ExpectNothingQueued(after, "a worker whose slots hold claimed attempts");

  after.SendResult(d2->attempt_id(), Ok(), "two\n");
  auto ack = after.ExpectAck();
  ASSERT_TRUE(ack);
  EXPECT_THAT(*ack, ElementsAre(d2->attempt_id()));
  auto done = watcher.WaitJobEvent();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state(), "succeeded");
  EXPECT_EQ(done->counts().succeeded(), 2u);

  // Resent once more (its ACK "lost"): ACKed, recorded once.
  const auto rows = Attempts(job, d2->task());
  ASSERT_EQ(rows.size(), 1u);
  clock_.Advance(std::chrono::seconds(3));
  after.SendResult(d2->attempt_id(), Exit(9));
  ASSERT_TRUE(after.ExpectAck());
  const auto again = Attempts(job, d2->task());
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].finished_ms, rows[0].finished_ms);
  EXPECT_EQ(again[0].outcome.reason, FailureReason::kNone);
  EXPECT_EQ(Task(job, d2->task()).attempts, 1u);
  EXPECT_EQ(testing::ReadFile(Reader().LogPath(job, d2->task(), 1, false)), "two\n");
  EXPECT_EQ(JobState(job), "succeeded");
}

// Given a restarted coordinator whose recovered attempt nobody claims,
// should wait out the grace (heartbeat * liveness) and then fail it as
// worker-lost, counted against retries, and run attempt 2 on a worker.
TEST_F(CoordinatorTest, UnclaimedAttemptIsLostAfterTheGrace) {
  options_.liveness = 5;
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& before = AddWorker("w1", 1);
  FakeClient& client = AddClient();
  auto submitted = client.Submit(
      "version: 1\nname: grace\ntasks:\n  only: {run: echo hi, retries: 1, "
      "retry_backoff: 100ms}\n");
  ASSERT_TRUE(submitted);
  const std::string job = submitted->job_id();
  auto first = before.ExpectDispatch();
  ASSERT_TRUE(first);

  ASSERT_NO_FATAL_FAILURE(RestartCoordinator());
  FakeClient& watcher = AddClient();
  watcher.Watch(job);
  // Another worker may take work, but the recovered attempt is w1's.
  FakeWorker& other = AddWorker("w2", 1, "session-2");
  clock_.Advance(std::chrono::seconds(4));
  coordinator_->Poke();
  other.SendHeartbeat();
  Sync();
  ExpectNothingQueued(other, "w2 inside the grace");
  EXPECT_FALSE(Attempts(job, "only").at(0).finished);

  clock_.Advance(std::chrono::milliseconds(1100));  // 5.1 s: grace over
  coordinator_->Poke();
  auto lost = watcher.WaitTaskEvent("only", "retry-wait");
  ASSERT_TRUE(lost);
  EXPECT_EQ(lost->reason(), "worker-lost");
  EXPECT_THAT(lost->detail(), ::testing::HasSubstr("did not register again"));
  clock_.Advance(std::chrono::milliseconds(200));
  other.SendHeartbeat();
  coordinator_->Poke();
  auto second = other.ExpectDispatch();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->attempt(), 2u);
  EXPECT_GT(second->attempt_id(), first->attempt_id());
  const auto attempts = Attempts(job, "only");
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0].outcome.reason, FailureReason::kWorkerLost);

  // w1 comes back late with the old attempt: told to forget it.
  FakeWorker& late =
      *workers_.emplace_back(std::make_unique<FakeWorker>(context_, endpoint_, "w1"));
  ASSERT_TRUE(late.RegisterWith("session-1", {{"spawn", 1}}, {}, {first->attempt_id()}));
  EXPECT_THAT(late.welcome().unknown(), ElementsAre(first->attempt_id()));
  late.SendResult(first->attempt_id(), Ok());
  ASSERT_TRUE(late.ExpectAck());
  EXPECT_EQ(Attempts(job, "only").at(0).outcome.reason, FailureReason::kWorkerLost);
  EXPECT_EQ(Task(job, "only").state, "running");
}

// Given a job resumed after its task failed once (attempt 1, an earlier
// run) with `retries: 1`, and a coordinator restarted while this run's
// first attempt (attempt 2) runs, should count only this run's attempts
// against retries: attempt 2 failing leaves the task a retry (attempt 3),
// not a failure for good.
TEST_F(CoordinatorTest, RestartCountsOnlyThisRunsAttemptsAgainstRetries) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& w1 = AddWorker("w1", 1);
  FakeClient& client = AddClient();
  auto first =
      client.Submit("version: 1\nname: resumed\ntasks:\n  only: {run: 'false'}\n");
  ASSERT_TRUE(first);
  const std::string job = first->job_id();
  auto a1 = w1.ExpectDispatch();
  ASSERT_TRUE(a1);
  w1.SendResult(a1->attempt_id(), Exit(1));
  ASSERT_TRUE(w1.ExpectAck());
  Sync();
  ASSERT_EQ(JobState(job), "failed");

  auto resumed = AddClient().Submit(
      "version: 1\nname: resumed\ntasks:\n  only: {run: 'false', retries: 1, "
      "retry_backoff: 100ms}\n",
      /*resume=*/true);
  ASSERT_TRUE(resumed);
  ASSERT_EQ(resumed->job_id(), job);
  auto a2 = w1.ExpectDispatch();
  ASSERT_TRUE(a2);
  EXPECT_EQ(a2->attempt(), 2u);

  ASSERT_NO_FATAL_FAILURE(RestartCoordinator());
  FakeWorker& again =
      *workers_.emplace_back(std::make_unique<FakeWorker>(context_, endpoint_, "w1"));
  ASSERT_TRUE(again.RegisterWith("session-1", {{"spawn", 1}}, {}, {a2->attempt_id()}));
  EXPECT_THAT(again.welcome().unknown(), IsEmpty());
  again.SendResult(a2->attempt_id(), Exit(1));
  ASSERT_TRUE(again.ExpectAck());
  Sync();
  EXPECT_EQ(JobState(job), "running");
  EXPECT_EQ(Task(job, "only").state, "retry-wait");
  clock_.Advance(std::chrono::milliseconds(200));
  again.SendHeartbeat();
  coordinator_->Poke();
  auto a3 = again.ExpectDispatch();
  ASSERT_TRUE(a3);
  EXPECT_EQ(a3->attempt(), 3u);
}

// Given a restarted coordinator, should fail a recovered attempt at once
// (not after the grace) when its worker registers again without it.
TEST_F(CoordinatorTest, WorkerRegisteringWithoutItsAttemptLosesIt) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& before = AddWorker("w1", 1);
  FakeClient& client = AddClient();
  auto submitted = client.Submit(IndependentTasks("forgot", 1));
  ASSERT_TRUE(submitted);
  auto first = before.ExpectDispatch();
  ASSERT_TRUE(first);

  ASSERT_NO_FATAL_FAILURE(RestartCoordinator());
  FakeClient& watcher = AddClient();
  watcher.Watch(submitted->job_id());
  Sync();  // watching before the worker registers (different connections)
  FakeWorker& fresh =
      *workers_.emplace_back(std::make_unique<FakeWorker>(context_, endpoint_, "w1"));
  ASSERT_TRUE(fresh.RegisterWith("session-new", {{"spawn", 1}}));
  auto failed = watcher.WaitTaskEvent("t1", "failed");
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->reason(), "worker-lost");
  auto done = watcher.WaitJobEvent();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state(), "failed");
}

// Given a job with a finished task a, a running task b (a -> b -> c) and a
// failed independent task, should rebuild the plan from the store: a stays
// succeeded (not re-run), c waits for b, the failure stands.
TEST_F(CoordinatorTest, RecoveredPlanKeepsFinishedTasks) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& before = AddWorker("w1", 2);
  FakeClient& client = AddClient();
  auto submitted = client.Submit(
      "version: 1\nname: chain\ntasks:\n  a: {run: echo a}\n  b: {run: echo b, needs: "
      "a}\n"
      "  c: {run: echo c, needs: b}\n  bad: {run: exit 1}\n");
  ASSERT_TRUE(submitted);
  const std::string job = submitted->job_id();
  // Watching from another connection, so that the restart comes only after
  // bad's failure is committed (events follow the commit).
  FakeClient& early = AddClient();
  early.Watch(job);
  Sync();
  std::map<std::string, uint64_t> ids;
  for (int i = 0; i < 2; ++i) {
    auto d = before.ExpectDispatch();
    ASSERT_TRUE(d);
    ids[d->task()] = d->attempt_id();
  }
  before.SendResult(ids.at("a"), Ok());
  before.SendResult(ids.at("bad"), Exit(1));
  std::optional<wire::Dispatch> b;
  for (int i = 0; i < 3 && !b; ++i) {
    auto m = before.Next(testing::kDeadline);
    ASSERT_TRUE(m);
    if (m->command == Command::kDispatch) b = testing::Body<wire::Dispatch>(*m);
  }
  ASSERT_TRUE(b);
  ASSERT_EQ(b->task(), "b");
  ASSERT_TRUE(early.WaitTaskEvent("bad", "failed"));

  ASSERT_NO_FATAL_FAILURE(RestartCoordinator());
  FakeClient& watcher = AddClient();
  auto status = watcher.Status(job);
  ASSERT_TRUE(status);
  std::map<std::string, std::string> states;
  for (const auto& t : status->jobs(0).tasks()) states[t.name()] = t.state();
  EXPECT_EQ(
      states,
      (std::map<std::string, std::string>{
          {"a", "succeeded"}, {"b", "running"}, {"c", "waiting"}, {"bad", "failed"}}));
  watcher.Watch(job);
  FakeWorker& after =
      *workers_.emplace_back(std::make_unique<FakeWorker>(context_, endpoint_, "w1"));
  ASSERT_TRUE(after.RegisterWith("session-1", {{"spawn", 2}}, {}, {b->attempt_id()}));
  after.SendResult(b->attempt_id(), Ok());
  auto c = NextDispatch(after);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->task(), "c");
  after.SendResult(c->attempt_id(), Ok());
  auto done = watcher.WaitJobEvent();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state(), "failed");
  EXPECT_EQ(done->counts().succeeded(), 3u);
  EXPECT_EQ(done->counts().failed(), 1u);
  EXPECT_EQ(Attempts(job, "a").size(), 1u);
  EXPECT_EQ(Attempts(job, "bad").size(), 1u);
  EXPECT_EQ(Attempts(job, "b").size(), 1u);
}

// Given a real Worker over tcp://127.0.0.1 (ephemeral port) running a task
// when the coordinator is stopped and a new one opened on the same port and
// state directory, should have the worker reconnect and register again on
// its own, the attempt claimed (not re-run) and its result recorded once,
// and the job finish.
TEST_F(CoordinatorTest, RealWorkerOverTcpSurvivesACoordinatorRestart) {
  // The fixture stops the coordinator after the test body returns, so its
  // clock must outlive the body.
  static RealClock real;
  coordinator_clock_ = &real;
  options_.endpoints = {"tcp://127.0.0.1:0"};
  options_.heartbeat_interval = std::chrono::milliseconds(100);
  options_.liveness = 30;  // a 3 s grace for the worker to come back
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  options_.endpoints = {endpoint_};  // the restarted one binds the same port

  BackendRegistry registry;
  RegisterBuiltinBackends(registry);
  WorkerOptions wopt;
  wopt.coordinator = endpoint_;
  wopt.name = "real";
  wopt.slots = {{"spawn", 2}};
  wopt.spool_dir = state_dir_ / "spool";
  wopt.heartbeat_interval = std::chrono::milliseconds(100);
  wopt.reconnect_min = std::chrono::milliseconds(100);
  wopt.reconnect_max = std::chrono::milliseconds(400);
  wopt.shutdown_grace = Duration(0);
  Worker worker(context_, wopt, registry, real);
  ASSERT_TRUE(worker.Start().ok());
  std::thread worker_thread([&] { (void)worker.Run(); });
  struct Joiner {
    Worker& w;
    std::thread& t;
    ~Joiner() {
      w.Stop();
      if (t.joinable()) t.join();
    }
  } joiner{worker, worker_thread};

  // Submitted watching with output, so that the "running" TASK-EVENT,
  // sent after the commit, says when the attempt is stored as running.
  FakeClient& client = AddClient();
  wire::Submit submit;
  submit.set_spec_file("job.yaml");
  submit.set_spec_text(
      "version: 1\nname: tcp\ntasks:\n"
      "  slow: {run: 'sleep 1; echo slow'}\n  after: {run: echo after, needs: slow}\n");
  submit.set_watch(true);
  submit.set_output(true);
  submit.set_cwd("/");
  client.Send(Command::kSubmit, submit);
  auto m = client.Expect(Command::kSubmitted);
  ASSERT_TRUE(m);
  const std::string job = testing::Body<wire::Submitted>(*m).job_id();
  ASSERT_TRUE(client.WaitTaskEvent("slow", "running"));
  ASSERT_EQ(Task(job, "slow").state, "running");

  ASSERT_NO_FATAL_FAILURE(RestartCoordinator());
  FakeClient& watcher = AddClient();
  watcher.Watch(job);
  auto done = watcher.WaitJobEvent();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state(), "succeeded");
  EXPECT_EQ(Stat(&CoordinatorStats::claimed_attempts), 1u);
  const auto attempts = Attempts(job, "slow");
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_TRUE(attempts[0].finished);
  EXPECT_EQ(attempts[0].worker, "real");
  EXPECT_EQ(testing::ReadFile(Reader().LogPath(job, "slow", 1, false)), "slow\n");
}

}  // namespace
}  // namespace drover

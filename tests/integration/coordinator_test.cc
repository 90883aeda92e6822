// Protocol tests of the coordinator: dispatch, results, liveness, retries,
// failure, cancellation, submission and the state directory (peers that
// misbehave: coordinator_hardening_test.cc; what watching clients are sent:
// coordinator_watch_test.cc). The fixture is
// coordinator_fixture.h.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "backends/spawn/spawn.pb.h"
#include "tests/integration/coordinator_fixture.h"

namespace drover {
namespace {

namespace fs = std::filesystem;
using testing::Cancelled;
using ::testing::Contains;
using testing::CoordinatorTest;
using ::testing::ElementsAre;
using testing::Exit;
using testing::FakeClient;
using testing::FakePeer;
using testing::FakeWorker;
using ::testing::HasSubstr;
using testing::IndependentTasks;
using ::testing::MatchesRegex;
using testing::Ok;
using ::testing::Pair;
using testing::ReadFile;

// ---- dispatch and results ------------------------------------------------

// Given a worker with 2 spawn slots and a job of 5 independent tasks, should
// never have more than 2 attempts outstanding: 2 DISPATCHes at first, and
// each further one only after a RESULT.
TEST_F(CoordinatorTest, DispatchIsCreditBased) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 2);
  EXPECT_EQ(worker.welcome().coordinator().size(), 16u);  // its instance id
  FakeClient& client = AddClient();
  auto submitted = client.Submit(IndependentTasks("credit", 5));
  ASSERT_TRUE(submitted);
  ASSERT_FALSE(submitted->job_id().empty());

  std::vector<uint64_t> outstanding;
  std::set<std::string> dispatched_tasks;
  for (int i = 0; i < 2; ++i) {
    auto d = worker.ExpectDispatch();
    ASSERT_TRUE(d);
    outstanding.push_back(d->attempt_id());
    dispatched_tasks.insert(d->task());
  }
  Sync();
  ExpectNothingQueued(worker, "a worker with both slots in use");

  while (!outstanding.empty()) {
    const uint64_t done = outstanding.front();
    outstanding.erase(outstanding.begin());
    worker.SendResult(done, Ok());
    auto ack = worker.ExpectAck();
    ASSERT_TRUE(ack);
    EXPECT_THAT(*ack, ElementsAre(done));
    if (dispatched_tasks.size() < 5) {
      auto d = worker.ExpectDispatch();
      ASSERT_TRUE(d);
      EXPECT_TRUE(dispatched_tasks.insert(d->task()).second) << d->task() << " twice";
      outstanding.push_back(d->attempt_id());
    }
    Sync();
    ExpectNothingQueued(worker, "the worker after one RESULT");
    ASSERT_LE(outstanding.size(), 2u);
  }
  EXPECT_EQ(dispatched_tasks.size(), 5u);
  EXPECT_EQ(Stat(&CoordinatorStats::dispatched), 5u);
  auto job = client.WaitJobEvent();
  ASSERT_TRUE(job);
  EXPECT_EQ(job->state(), "succeeded");
  EXPECT_EQ(job->counts().succeeded(), 5u);
}

// Given dispatched attempts, should ACK each RESULT only once the finished
// attempt and the succeeded task row are committed. A commit that followed
// its ACK would be seen missing only if the read wins the race against it,
// so the guarantee is checked on many results in a row.
TEST_F(CoordinatorTest, ResultIsCommittedBeforeItIsAcked) {
  constexpr int kTasks = 20;
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& client = AddClient();
  auto submitted = client.Submit(IndependentTasks("ack", kTasks));
  ASSERT_TRUE(submitted);
  // Opened beforehand, so that each read follows its ACK closely.
  store::Store& reader = Reader();

  for (int i = 0; i < kTasks; ++i) {
    auto d = worker.ExpectDispatch();
    ASSERT_TRUE(d) << "dispatch " << i;
    EXPECT_EQ(d->attempt(), 1u);
    EXPECT_EQ(d->backend(), "spawn");
    const std::string n = d->task().substr(1);
    spawn::SpawnTask task;  // the payload, the spawn backend's message
    ASSERT_TRUE(task.ParseFromString(d->payload()));
    EXPECT_THAT(std::vector<std::string>(task.argv().begin(), task.argv().end()),
                ElementsAre("/bin/sh", "-c", "echo " + n));

    AttemptOutcome ok = Ok();
    ok.max_rss_kb = 2048 + i;
    worker.SendResult(d->attempt_id(), ok);
    auto ack = worker.ExpectAck();
    ASSERT_TRUE(ack);
    EXPECT_THAT(*ack, ElementsAre(d->attempt_id()));

    // Read right after the ACK, before anything else: it must be there.
    const auto attempts = reader.Attempts(submitted->job_id(), d->task());
    const auto tasks = reader.Tasks(submitted->job_id());
    ASSERT_TRUE(attempts.ok()) << attempts.status().ToString();
    ASSERT_TRUE(tasks.ok()) << tasks.status().ToString();
    ASSERT_EQ(attempts->size(), 1u);
    const store::AttemptRecord& attempt = attempts->front();
    EXPECT_EQ(attempt.id, d->attempt_id());
    EXPECT_TRUE(attempt.finished) << d->task() << " ACKed before it was committed";
    EXPECT_EQ(attempt.worker, "w1");
    EXPECT_EQ(attempt.outcome.reason, FailureReason::kNone);
    EXPECT_EQ(attempt.outcome.exit_code, 0);
    EXPECT_EQ(attempt.outcome.max_rss_kb, 2048 + i);
    auto row = std::find_if(tasks->begin(), tasks->end(),
                            [&](const store::TaskRecord& t) { return t.name == d->task(); });
    ASSERT_NE(row, tasks->end());
    EXPECT_EQ(row->state, "succeeded") << d->task() << " ACKed before it was committed";
    EXPECT_EQ(row->attempts, 1u);
    EXPECT_EQ(row->reason, "ok");
    EXPECT_EQ(row->worker, "w1");
  }
  auto done = client.WaitJobEvent();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state(), "succeeded");
}

// Given RESULTs whose payload frames carry output, should write each
// non-empty stream to its Store::LogPath and create no file for an empty one.
TEST_F(CoordinatorTest, ResultPayloadsLandInLogFiles) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 2);
  FakeClient& client = AddClient();
  auto submitted = client.Submit(IndependentTasks("logs", 2));
  ASSERT_TRUE(submitted);
  const std::string job = submitted->job_id();
  auto d1 = worker.ExpectDispatch();
  auto d2 = worker.ExpectDispatch();
  ASSERT_TRUE(d1 && d2);

  std::string out = "line one\nline two\n";
  out.push_back('\0');  // binary output survives the frame and the file
  out += "bin";
  worker.SendResult(d1->attempt_id(), Ok(), out, "");
  worker.SendResult(d2->attempt_id(), Exit(3), "", "oops\n");
  // Both results may come back in one ACK or in two.
  std::set<uint64_t> acked;
  for (int i = 0; i < 2 && acked.size() < 2; ++i) {
    auto ack = worker.ExpectAck();
    ASSERT_TRUE(ack);
    acked.insert(ack->begin(), ack->end());
  }
  EXPECT_EQ(acked, (std::set<uint64_t>{d1->attempt_id(), d2->attempt_id()}));

  store::Store& reader = Reader();
  EXPECT_EQ(ReadFile(reader.LogPath(job, d1->task(), 1, false)), out);
  EXPECT_FALSE(fs::exists(reader.LogPath(job, d1->task(), 1, true)));
  EXPECT_FALSE(fs::exists(reader.LogPath(job, d2->task(), 1, false)));
  EXPECT_EQ(ReadFile(reader.LogPath(job, d2->task(), 1, true)), "oops\n");
}

// Given a RESULT that was ACKed, should ACK a duplicate of it again and
// record it once: no second attempt, the attempt row unchanged, and no slot
// freed twice.
TEST_F(CoordinatorTest, DuplicateResultIsAckedAndRecordedOnce) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& client = AddClient();
  auto submitted = client.Submit(IndependentTasks("dup", 3));
  ASSERT_TRUE(submitted);
  const std::string job = submitted->job_id();
  auto d1 = worker.ExpectDispatch();
  ASSERT_TRUE(d1);
  worker.SendResult(d1->attempt_id(), Ok(), "first\n");
  auto ack = worker.ExpectAck();
  ASSERT_TRUE(ack);
  auto d2 = worker.ExpectDispatch();  // the slot went to the next task
  ASSERT_TRUE(d2);
  const auto before = Attempts(job, d1->task());
  ASSERT_EQ(before.size(), 1u);
  const auto row_before = Task(job, d1->task());

  // Wall time moves, so a second recording would show in finished_ms.
  clock_.Advance(std::chrono::seconds(3));
  worker.SendResult(d1->attempt_id(), Ok(), "first\n");
  auto again = worker.ExpectAck();
  ASSERT_TRUE(again);
  EXPECT_THAT(*again, ElementsAre(d1->attempt_id()));
  Sync();
  // The duplicate must not have freed a slot: t3 waits for d2's result.
  ExpectNothingQueued(worker, "a busy worker after a duplicate RESULT");

  const auto after = Attempts(job, d1->task());
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].finished_ms, before[0].finished_ms);
  EXPECT_EQ(after[0].outcome.reason, before[0].outcome.reason);
  const auto row_after = Task(job, d1->task());
  EXPECT_EQ(row_after.attempts, 1u);
  EXPECT_EQ(row_after.state, "succeeded");
  EXPECT_EQ(row_after.finished_ms, row_before.finished_ms);
  EXPECT_EQ(Stat(&CoordinatorStats::results), 1u);
  EXPECT_EQ(Stat(&CoordinatorStats::stale_results), 1u);
}

// ---- liveness and retries ------------------------------------------------

// Given a worker that stops heartbeating while running an attempt, should
// after heartbeat_interval * liveness re-queue the attempt as worker-lost,
// dispatch attempt 2 to another worker, and later ACK but ignore the first
// worker's late RESULT for attempt 1.
TEST_F(CoordinatorTest, SilentWorkerIsLostAndItsLateResultIgnored) {
  options_.liveness = 5;  // 5 s of silence at a 1 s heartbeat
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& w1 = AddWorker("w1", 1, "session-a");
  FakeClient& client = AddClient();
  auto submitted = client.Submit(
      "version: 1\nname: lost\ntasks:\n"
      "  only: {run: echo hi, retries: 1, retry_backoff: 100ms}\n");
  ASSERT_TRUE(submitted);
  const std::string job = submitted->job_id();
  auto first = w1.ExpectDispatch();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->attempt(), 1u);

  // w2 registers halfway, so it is still well inside its liveness when w1
  // runs out of it.
  clock_.Advance(std::chrono::milliseconds(2500));
  FakeWorker& w2 = AddWorker("w2", 1, "session-b");
  Sync();
  ExpectNothingQueued(w2, "w2 while the only task runs on w1");
  EXPECT_EQ(Stat(&CoordinatorStats::workers_lost), 0u);

  clock_.Advance(std::chrono::milliseconds(2600));  // w1 silent for 5.1 s
  coordinator_->Poke();
  auto retry = client.WaitTaskEvent("only", "retry-wait");
  ASSERT_TRUE(retry);
  EXPECT_EQ(retry->reason(), "worker-lost");
  EXPECT_EQ(retry->attempt(), 1u);
  EXPECT_EQ(Stat(&CoordinatorStats::workers_lost), 1u);

  clock_.Advance(std::chrono::milliseconds(200));  // past the 100 ms +-20% backoff
  coordinator_->Poke();
  auto second = w2.ExpectDispatch();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->task(), "only");
  EXPECT_EQ(second->attempt(), 2u);
  EXPECT_NE(second->attempt_id(), first->attempt_id());

  auto row = Task(job, "only");
  EXPECT_EQ(row.state, "running");
  EXPECT_EQ(row.attempts, 2u);
  EXPECT_EQ(row.reason, "worker-lost");
  auto attempts = Attempts(job, "only");
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0].number, 1u);
  EXPECT_TRUE(attempts[0].finished);
  EXPECT_EQ(attempts[0].outcome.reason, FailureReason::kWorkerLost);
  EXPECT_EQ(attempts[0].worker, "w1");
  EXPECT_EQ(attempts[1].number, 2u);
  EXPECT_FALSE(attempts[1].finished);
  EXPECT_EQ(attempts[1].worker, "w2");

  // w1 comes back as a new process of the same name and reports attempt 1.
  ASSERT_TRUE(w1.Register("session-a2", 1));
  w1.SendResult(first->attempt_id(), Exit(1), "late\n");
  auto ack = w1.ExpectAck();
  ASSERT_TRUE(ack);
  EXPECT_THAT(*ack, ElementsAre(first->attempt_id()));
  EXPECT_EQ(Stat(&CoordinatorStats::stale_results), 1u);
  attempts = Attempts(job, "only");
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0].outcome.reason, FailureReason::kWorkerLost);
  EXPECT_FALSE(attempts[1].finished);
  EXPECT_EQ(Task(job, "only").state, "running");
  EXPECT_FALSE(fs::exists(Reader().LogPath(job, "only", 1, false)));

  w2.SendResult(second->attempt_id(), Ok());
  ASSERT_TRUE(w2.ExpectAck());
  auto done = client.WaitJobEvent();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state(), "succeeded");
  row = Task(job, "only");
  EXPECT_EQ(row.state, "succeeded");
  EXPECT_EQ(row.reason, "ok");
  EXPECT_EQ(row.worker, "w2");
  EXPECT_EQ(row.attempts, 2u);
}

// Given a task with `retries: 1` and `retry_backoff: 10s` whose first
// attempt exits 1, should not dispatch it again before the backoff (10 s
// +-20%) has passed on the clock, and then dispatch attempt 2.
TEST_F(CoordinatorTest, FailedTaskIsRetriedAfterItsBackoff) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& client = AddClient();
  auto submitted = client.Submit(
      "version: 1\nname: retry\ntasks:\n"
      "  flaky: {run: exit 1, retries: 1, retry_backoff: 10s}\n");
  ASSERT_TRUE(submitted);
  auto first = worker.ExpectDispatch();
  ASSERT_TRUE(first);
  worker.SendResult(first->attempt_id(), Exit(1), "", "boom\n");
  ASSERT_TRUE(worker.ExpectAck());
  auto wait = client.WaitTaskEvent("flaky", "retry-wait");
  ASSERT_TRUE(wait);
  EXPECT_EQ(wait->reason(), "exit");
  EXPECT_EQ(wait->attempt(), 1u);
  Sync();
  ExpectNothingQueued(worker, "the worker right after the failure");
  EXPECT_EQ(Task(submitted->job_id(), "flaky").state, "retry-wait");

  clock_.Advance(std::chrono::seconds(7));  // below the shortest backoff (8 s)
  coordinator_->Poke();
  Sync();
  ExpectNothingQueued(worker, "the worker 7 s into a 10 s backoff");

  clock_.Advance(std::chrono::seconds(6));  // 13 s: past the longest (12 s)
  coordinator_->Poke();
  auto second = worker.ExpectDispatch();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->task(), "flaky");
  EXPECT_EQ(second->attempt(), 2u);
  worker.SendResult(second->attempt_id(), Ok());
  ASSERT_TRUE(worker.ExpectAck());
  auto done = client.WaitJobEvent();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state(), "succeeded");
  EXPECT_EQ(Task(submitted->job_id(), "flaky").attempts, 2u);
}

// ---- failure and cancellation --------------------------------------------

// Given a fail_fast job with two tasks running and two pending, should on
// one task failing for good CANCEL the other running attempt, skip the
// pending tasks, and end the job failed once the cancelled RESULT is in.
TEST_F(CoordinatorTest, FailFastCancelsRunningAndSkipsPending) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 2);
  FakeClient& client = AddClient();
  auto submitted = client.Submit(IndependentTasks("ff", 4, "fail_fast: true\n"));
  ASSERT_TRUE(submitted);
  const std::string job = submitted->job_id();
  auto a = worker.ExpectDispatch();
  auto b = worker.ExpectDispatch();
  ASSERT_TRUE(a && b);

  worker.SendResult(a->attempt_id(), Exit(1));
  auto ack = worker.ExpectAck();
  ASSERT_TRUE(ack);
  EXPECT_THAT(*ack, ElementsAre(a->attempt_id()));
  auto cancel = worker.ExpectCancel();
  ASSERT_TRUE(cancel);
  EXPECT_THAT(*cancel, ElementsAre(b->attempt_id()));
  Sync();
  ExpectNothingQueued(worker, "the worker after fail_fast fired");

  std::set<std::string> pending;
  for (const char* t : {"t1", "t2", "t3", "t4"}) {
    if (t != a->task() && t != b->task()) pending.insert(t);
  }
  ASSERT_EQ(pending.size(), 2u);
  for (const auto& t : pending) EXPECT_EQ(Task(job, t).state, "skipped") << t;
  EXPECT_EQ(Task(job, a->task()).state, "failed");
  EXPECT_EQ(Task(job, b->task()).state, "running");
  EXPECT_EQ(JobState(job), "running");
  for (const auto& m : client.Queued()) {
    EXPECT_NE(m.command, testing::Command::kJobEvent) << "JOB-EVENT before b ended";
  }

  worker.SendResult(b->attempt_id(), Cancelled());
  ASSERT_TRUE(worker.ExpectAck());
  auto done = client.WaitJobEvent();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state(), "failed");
  EXPECT_EQ(done->counts().total(), 4u);
  EXPECT_EQ(done->counts().failed(), 1u);
  EXPECT_EQ(done->counts().running(), 0u);
  EXPECT_EQ(done->counts().pending(), 0u);
  EXPECT_EQ(done->counts().other(), 3u);
  EXPECT_EQ(Task(job, b->task()).state, "cancelled");
  EXPECT_EQ(JobState(job), "failed");
}

// Given a running job, should on CANCEL-JOB answer OK, send CANCEL for its
// running attempt, skip its pending tasks, and report the job cancelled
// once the cancelled RESULT is in.
TEST_F(CoordinatorTest, CancelJobCancelsRunningAndSkipsPending) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& client = AddClient();
  auto submitted = client.Submit(IndependentTasks("cancel", 3));
  ASSERT_TRUE(submitted);
  const std::string job = submitted->job_id();
  auto running = worker.ExpectDispatch();
  ASSERT_TRUE(running);

  client.CancelJob(job);
  auto ok = client.Expect(testing::Command::kOk);
  ASSERT_TRUE(ok);
  EXPECT_THAT(testing::Body<wire::Ok>(*ok).message(), HasSubstr("cancelling job " + job));
  auto cancel = worker.ExpectCancel();
  ASSERT_TRUE(cancel);
  EXPECT_THAT(*cancel, ElementsAre(running->attempt_id()));
  Sync();
  std::set<std::string> skipped_events;
  for (const auto& m : client.Queued()) {
    ASSERT_EQ(m.command, testing::Command::kTaskEvent) << testing::Name(m.command);
    const auto ev = testing::Body<wire::TaskEvent>(m);
    EXPECT_EQ(ev.state(), "skipped") << ev.task();
    skipped_events.insert(ev.task());
  }
  EXPECT_EQ(skipped_events.size(), 2u);
  EXPECT_EQ(skipped_events.count(running->task()), 0u);
  EXPECT_EQ(JobState(job), "running");

  worker.SendResult(running->attempt_id(), Cancelled());
  ASSERT_TRUE(worker.ExpectAck());
  auto done = client.WaitJobEvent();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state(), "cancelled");
  EXPECT_EQ(JobState(job), "cancelled");
  EXPECT_EQ(Task(job, running->task()).state, "cancelled");
  for (const auto& t : skipped_events) EXPECT_EQ(Task(job, t).state, "skipped") << t;
  Sync();
  ExpectNothingQueued(worker, "the worker of a cancelled job");
}

// ---- submission ----------------------------------------------------------

// Given a SUBMIT whose spec is invalid, should answer SUBMITTED with
// FILE:LINE:COL errors and no job id, and store no job.
TEST_F(CoordinatorTest, InvalidSpecIsRefusedWithLocatedErrors) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& client = AddClient();
  auto submitted = client.Submit(
      "version: 1\nname: bad\ntasks:\n  a: {rnu: echo a}\n  b: {run: echo b, needs: c}\n",
      false, "bad.yaml");
  ASSERT_TRUE(submitted);
  EXPECT_TRUE(submitted->job_id().empty());
  ASSERT_GE(submitted->errors_size(), 2);
  for (const auto& e : submitted->errors()) {
    EXPECT_THAT(e, MatchesRegex("bad\\.yaml:[0-9]+:[0-9]+: .+"));
  }
  EXPECT_THAT(submitted->errors(), Contains(HasSubstr("'rnu'")));
  EXPECT_THAT(submitted->errors(), Contains(HasSubstr("'c'")));
  Sync();
  ExpectNothingQueued(worker, "a worker after a refused job");
  auto latest = Reader().LatestJob();
  ASSERT_TRUE(latest.ok()) << latest.status().ToString();
  EXPECT_FALSE(latest->has_value());
}

// Given a job that ended with one failed task, should on a resume SUBMIT of
// the same spec reuse the job id, carry the succeeded tasks over and
// dispatch only the failed one, as its attempt 2.
TEST_F(CoordinatorTest, ResumeRerunsOnlyWhatFailed) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 3);
  FakeClient& client = AddClient();
  const std::string spec = IndependentTasks("resume", 3);
  auto submitted = client.Submit(spec);
  ASSERT_TRUE(submitted);
  const std::string job = submitted->job_id();
  std::string failed_task;
  uint64_t max_id = 0;
  std::set<uint64_t> first_ids;
  for (int i = 0; i < 3; ++i) {
    auto d = worker.ExpectDispatch();
    ASSERT_TRUE(d);
    max_id = std::max(max_id, d->attempt_id());
    first_ids.insert(d->attempt_id());
    if (d->task() == "t2") {
      failed_task = d->task();
      worker.SendResult(d->attempt_id(), Exit(1));
    } else {
      worker.SendResult(d->attempt_id(), Ok());
    }
  }
  ASSERT_EQ(failed_task, "t2");
  auto first_run = client.WaitJobEvent();
  ASSERT_TRUE(first_run);
  EXPECT_EQ(first_run->state(), "failed");
  // Each turn sends its ACKs before its events, so all three are queued.
  std::set<uint64_t> acked;
  for (const auto& m : worker.Queued()) {
    ASSERT_EQ(m.command, testing::Command::kAck) << testing::Name(m.command);
    const auto ack = testing::Body<wire::Ack>(m);
    acked.insert(ack.attempt_ids().begin(), ack.attempt_ids().end());
  }
  EXPECT_EQ(acked, first_ids);

  auto resumed = client.Submit(spec, /*resume=*/true);
  ASSERT_TRUE(resumed);
  EXPECT_EQ(resumed->job_id(), job);
  EXPECT_EQ(resumed->tasks(), 3u);
  EXPECT_EQ(resumed->carried_over(), 2u);
  auto d = worker.ExpectDispatch();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->task(), "t2");
  EXPECT_EQ(d->attempt(), 2u);
  EXPECT_GT(d->attempt_id(), max_id);
  Sync();
  ExpectNothingQueued(worker, "the worker of a resumed job");

  worker.SendResult(d->attempt_id(), Ok());
  ASSERT_TRUE(worker.ExpectAck());
  auto second_run = client.WaitJobEvent();
  ASSERT_TRUE(second_run);
  EXPECT_EQ(second_run->state(), "succeeded");
  EXPECT_EQ(JobState(job), "succeeded");
  EXPECT_EQ(Task(job, "t2").attempts, 2u);
  EXPECT_EQ(Attempts(job, "t2").size(), 2u);
  EXPECT_EQ(Task(job, "t1").attempts, 1u);
  EXPECT_EQ(Attempts(job, "t1").size(), 1u);
  EXPECT_EQ(Task(job, "t3").attempts, 1u);
}

// ---- the state directory -------------------------------------------------

// Given a running coordinator, should refuse a second one on the same state
// directory with a message saying it is in use, binding nothing.
TEST_F(CoordinatorTest, SecondCoordinatorOnTheSameStateDirIsRefused) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  CoordinatorOptions other = options_;
  other.endpoints = {"inproc://second-coordinator"};
  Coordinator second(context_, other, clock_);
  const Status opened = second.Open();
  ASSERT_FALSE(opened.ok());
  EXPECT_THAT(opened.message(), HasSubstr("in use"));
  EXPECT_TRUE(second.endpoints().empty());
  zmq::socket_t squatter(context_, zmq::socket_type::router);
  squatter.set(zmq::sockopt::linger, 0);
  EXPECT_NO_THROW(squatter.bind("inproc://second-coordinator"));
  Sync();  // the first one still serves
}

// Given a job left running in the store by a coordinator destroyed mid-job,
// should have the next coordinator's Open() with recover_jobs = false (as
// `drover run` opens it) mark it interrupted and record its unfinished
// attempt as worker-lost.
TEST_F(CoordinatorTest, OpenMarksJobsOfAStoppedCoordinatorInterrupted) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& client = AddClient();
  auto submitted = client.Submit(IndependentTasks("interrupted", 2));
  ASSERT_TRUE(submitted);
  const std::string job = submitted->job_id();
  auto d = worker.ExpectDispatch();
  ASSERT_TRUE(d);
  StopCoordinator();
  EXPECT_EQ(JobState(job), "running");

  CoordinatorOptions next = options_;
  next.endpoints = {"inproc://next-coordinator"};
  next.recover_jobs = false;
  Coordinator successor(context_, next, clock_);
  const Status opened = successor.Open();
  ASSERT_TRUE(opened.ok()) << opened.ToString();

  EXPECT_EQ(JobState(job), "interrupted");
  const auto attempts = Attempts(job, d->task());
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_TRUE(attempts[0].finished);
  EXPECT_EQ(attempts[0].outcome.reason, FailureReason::kWorkerLost);
  const auto row = Task(job, d->task());
  EXPECT_EQ(row.state, "failed");
  EXPECT_EQ(row.reason, "worker-lost");
  // The task that never left its first state has no row: it counts as
  // waiting (docs/state.md, "tasks").
  auto counts = Reader().TaskStateCounts(job);
  ASSERT_TRUE(counts.ok());
  EXPECT_THAT(*counts, ElementsAre(Pair("failed", 1u), Pair("waiting", 1u)));
}

}  // namespace
}  // namespace drover

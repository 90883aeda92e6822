// Protocol tests of the coordinator's client API: WATCH, STATUS, WORKERS,
// RETRY-JOB, CANCEL-JOB of one task, LOGS-REQUEST (with follow), OUTPUT
// forwarding and worker drains. The fixture is coordinator_fixture.h.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tests/integration/coordinator_fixture.h"

namespace drover {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using testing::Body;
using testing::Command;
using testing::CoordinatorTest;
using testing::Exit;
using testing::FakeClient;
using testing::FakeWorker;
using testing::IndependentTasks;
using testing::Message;
using testing::Ok;

const wire::TaskStatus* FindTask(const wire::JobStatus& job, const std::string& name) {
  for (const auto& t : job.tasks()) {
    if (t.name() == name) return &t;
  }
  ADD_FAILURE() << "no task " << name << " in the status of " << job.job_id();
  return nullptr;
}

// Given a running job, should send a client that WATCHes it every later
// TASK-EVENT and the JOB-EVENT; and answer a WATCH of a finished job with
// its JOB-EVENT at once, and of an unknown job with an ERROR.
TEST_F(CoordinatorTest, WatchFollowsRunningJobAndAnswersFinishedOne) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& submitter = AddClient();
  wire::Submit submit;
  submit.set_spec_file("job.yaml");
  submit.set_spec_text(IndependentTasks("watched", 1));
  submit.set_watch(false);
  auto submitted = submitter.Ask<wire::Submitted>(Command::kSubmit, submit,
                                                  Command::kSubmitted);
  ASSERT_TRUE(submitted);
  const std::string job = submitted->job_id();
  auto d = worker.ExpectDispatch();
  ASSERT_TRUE(d);

  FakeClient& watcher = AddClient();
  watcher.Watch(job);
  Sync();  // the WATCH is handled before the result
  worker.SendResult(d->attempt_id(), Ok());
  ASSERT_TRUE(worker.ExpectAck());
  auto ev = watcher.WaitTaskEvent("t1", "succeeded");
  ASSERT_TRUE(ev);
  auto done = watcher.WaitJobEvent();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state(), "succeeded");
  Sync();
  ExpectNothingQueued(submitter, "a client that submitted without watch");

  FakeClient& late = AddClient();
  late.Watch(job);
  auto at_once = late.Expect(Command::kJobEvent);
  ASSERT_TRUE(at_once);
  const auto body = Body<wire::JobEvent>(*at_once);
  EXPECT_EQ(body.job_id(), job);
  EXPECT_EQ(body.state(), "succeeded");
  EXPECT_EQ(body.counts().total(), 1u);
  EXPECT_EQ(body.counts().succeeded(), 1u);

  wire::Watch unknown;
  unknown.set_job_id("no-such-job");
  EXPECT_THAT(late.AskError(Command::kWatch, unknown), HasSubstr("no job no-such-job"));
}

// Given a finished job whose tasks ended in several ways (a success that
// stands for its row, one with a row of its own after a retry, a failure, a
// task blocked by it, a matrix), the counts of a list of jobs and of a
// late WATCH (added up by SQLite) should be those of the job's own STATUS
// (counted from its rows), state by state.
TEST_F(CoordinatorTest, ListsAndLateWatchesCountAFinishedJobAsItsStatusDoes) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 8);
  FakeClient& client = AddClient();
  auto submitted = client.Submit(
      "version: 1\nname: mixed\ntasks:\n"
      "  ok: {run: echo ok}\n"
      "  again: {run: echo again, retries: 1}\n"
      "  bad: {run: echo bad}\n"
      "  after: {run: echo after, needs: bad}\n"
      "  m: {run: echo m, matrix: {i: [1, 2, 3]}}\n");
  ASSERT_TRUE(submitted);
  ASSERT_TRUE(submitted->errors().empty()) << submitted->errors(0);
  const std::string job = submitted->job_id();
  std::map<std::string, uint64_t> attempt_of;
  for (int i = 0; i < 6; ++i) {
    auto d = worker.ExpectDispatch();
    ASSERT_TRUE(d);
    attempt_of[d->task()] = d->attempt_id();
  }
  ASSERT_EQ(attempt_of.size(), 6u);
  for (const auto& [task, id] : attempt_of) {
    worker.SendResult(id, task == "bad" || task == "again" ? Exit(1) : Ok());
    ASSERT_TRUE(worker.ExpectAck()) << task;
  }
  ASSERT_TRUE(client.WaitTaskEvent("again", "retry-wait"));
  clock_.Advance(std::chrono::seconds(60));  // past "again"'s retry backoff
  coordinator_->Poke();
  auto retry = worker.ExpectDispatch();
  ASSERT_TRUE(retry);
  ASSERT_EQ(retry->task(), "again");
  worker.SendResult(retry->attempt_id(), Ok());
  ASSERT_TRUE(worker.ExpectAck());
  ASSERT_TRUE(client.WaitJobEvent());

  FakeClient& asker = AddClient();
  auto own = asker.Status(job);
  ASSERT_TRUE(own);
  ASSERT_EQ(own->jobs_size(), 1);
  const wire::Counts want = own->jobs(0).counts();
  EXPECT_EQ(want.total(), 7u);
  EXPECT_EQ(want.succeeded(), 5u);
  EXPECT_EQ(want.failed(), 1u);
  EXPECT_EQ(want.other(), 1u);  // blocked

  auto listing = asker.Status("", /*tasks=*/false);
  ASSERT_TRUE(listing);
  ASSERT_EQ(listing->jobs_size(), 1);
  FakeClient& late = AddClient();
  late.Watch(job);
  auto event = late.Expect(Command::kJobEvent);
  ASSERT_TRUE(event);
  for (const wire::Counts& got :
       {listing->jobs(0).counts(), Body<wire::JobEvent>(*event).counts()}) {
    EXPECT_EQ(got.SerializeAsString(), want.SerializeAsString())
        << got.ShortDebugString() << " against " << want.ShortDebugString();
  }
}

// Given one client watching with output and one without, should forward a
// worker's OUTPUT chunk (with job id and task name) to the first only, and
// drop OUTPUT for an attempt the worker does not hold.
TEST_F(CoordinatorTest, OutputIsForwardedToClientsThatAskedForIt) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& plain = AddClient();
  auto submitted = plain.Submit(IndependentTasks("output", 1));
  ASSERT_TRUE(submitted);
  auto d = worker.ExpectDispatch();
  ASSERT_TRUE(d);
  FakeClient& tail = AddClient();
  tail.Watch(submitted->job_id(), /*output=*/true);
  Sync();

  worker.SendOutput(d->attempt_id(), 1, 0, "hello\n");
  worker.SendOutput(d->attempt_id() + 100, 1, 0, "forged\n");
  auto out = tail.Expect(Command::kOutput);
  ASSERT_TRUE(out);
  const auto body = Body<wire::Output>(*out);
  EXPECT_EQ(body.attempt_id(), d->attempt_id());
  EXPECT_EQ(body.job_id(), submitted->job_id());
  EXPECT_EQ(body.task(), "t1");
  EXPECT_EQ(body.stream(), 1u);
  ASSERT_EQ(out->payloads.size(), 1u);
  EXPECT_EQ(out->payloads[0], "hello\n");
  Sync();
  ExpectNothingQueued(tail, "the output watcher after the forged chunk");
  ExpectNothingQueued(plain, "a watcher that did not ask for output");
  EXPECT_EQ(Stat(&CoordinatorStats::outputs), 2u);
}

// Given a running job with a running, a ready and a waiting task, should
// answer STATUS with live states, backends and the ready task's pending
// reason, and, once a task has ended, its stored row; list recent jobs
// newest first; and answer an unknown job with an ERROR.
TEST_F(CoordinatorTest, StatusReportsLiveTasksAndStoredJobs) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& client = AddClient();
  auto first = client.Submit(IndependentTasks("first", 1));
  ASSERT_TRUE(first);
  auto d = worker.ExpectDispatch();
  ASSERT_TRUE(d);
  worker.SendResult(d->attempt_id(), Exit(2), "", "bad\n");
  ASSERT_TRUE(worker.ExpectAck());
  ASSERT_TRUE(client.WaitJobEvent());

  clock_.Advance(std::chrono::seconds(2));  // a later creation time
  auto second = client.Submit(
      "version: 1\nname: second\ntasks:\n"
      "  a: {run: echo a}\n  b: {run: echo b}\n  c: {run: echo c, needs: a}\n");
  ASSERT_TRUE(second);
  auto running = worker.ExpectDispatch();
  ASSERT_TRUE(running);
  ASSERT_EQ(running->task(), "a");

  FakeClient& asker = AddClient();
  auto status = asker.Status(second->job_id());
  ASSERT_TRUE(status);
  ASSERT_EQ(status->jobs_size(), 1);
  const wire::JobStatus& job = status->jobs(0);
  EXPECT_EQ(job.name(), "second");
  EXPECT_EQ(job.state(), "running");
  EXPECT_EQ(job.counts().total(), 3u);
  EXPECT_EQ(job.counts().running(), 1u);
  EXPECT_EQ(job.counts().pending(), 2u);
  ASSERT_EQ(job.tasks_size(), 3);
  const auto* a = FindTask(job, "a");
  const auto* b = FindTask(job, "b");
  const auto* c = FindTask(job, "c");
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a->state(), "running");
  EXPECT_EQ(a->worker(), "w1");
  EXPECT_EQ(a->attempts(), 1u);
  EXPECT_EQ(a->backend(), "spawn");
  EXPECT_EQ(b->state(), "ready");
  EXPECT_EQ(b->pending_reason(), "waiting for a free spawn slot");
  EXPECT_EQ(c->state(), "waiting");
  EXPECT_EQ(c->pending_reason(), "");

  // A task of a running job that has ended: the coordinator no longer
  // holds its row, the store's is listed.
  worker.SendResult(running->attempt_id(), Exit(3));
  ASSERT_TRUE(worker.ExpectAck());
  auto later = asker.Status(second->job_id());
  ASSERT_TRUE(later);
  EXPECT_EQ(later->jobs(0).state(), "running");
  const auto* ended = FindTask(later->jobs(0), "a");
  ASSERT_TRUE(ended);
  EXPECT_EQ(ended->state(), "failed");
  EXPECT_EQ(ended->reason(), "exit");
  EXPECT_EQ(ended->detail(), "exit 3");
  EXPECT_EQ(ended->worker(), "w1");
  EXPECT_EQ(ended->attempts(), 1u);
  const auto* blocked = FindTask(later->jobs(0), "c");
  ASSERT_TRUE(blocked);
  EXPECT_EQ(blocked->state(), "blocked");

  auto listing = asker.Status("", /*tasks=*/false);
  ASSERT_TRUE(listing);
  ASSERT_EQ(listing->jobs_size(), 2);
  EXPECT_EQ(listing->jobs(0).job_id(), second->job_id());
  EXPECT_EQ(listing->jobs(1).job_id(), first->job_id());
  EXPECT_EQ(listing->jobs(1).state(), "failed");
  EXPECT_EQ(listing->jobs(1).counts().failed(), 1u);
  EXPECT_EQ(listing->jobs(1).tasks_size(), 0);

  auto latest = asker.Status("latest");
  ASSERT_TRUE(latest);
  ASSERT_EQ(latest->jobs_size(), 1);
  EXPECT_EQ(latest->jobs(0).job_id(), second->job_id());

  auto stored = asker.Status(first->job_id());
  ASSERT_TRUE(stored);
  const auto* t1 = FindTask(stored->jobs(0), "t1");
  ASSERT_TRUE(t1);
  EXPECT_EQ(t1->state(), "failed");
  EXPECT_EQ(t1->reason(), "exit");
  EXPECT_EQ(t1->detail(), "exit 2");

  wire::StatusRequest unknown;
  unknown.set_job_id("nope");
  EXPECT_THAT(asker.AskError(Command::kStatusRequest, unknown), HasSubstr("no job nope"));
}

// Given a worker that says DRAINING, should dispatch nothing more to it,
// show it draining in WORKERS, and after DISCONNECT drained=true show it
// drained (not lost) while a silent worker shows lost.
TEST_F(CoordinatorTest, DrainingWorkerGetsNoWorkAndEndsDrainedNotLost) {
  options_.liveness = 5;
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& draining = AddWorker("w1", 2);
  FakeClient& client = AddClient();
  auto submitted = client.Submit(IndependentTasks("drain", 3));
  ASSERT_TRUE(submitted);
  auto d1 = draining.ExpectDispatch();
  auto d2 = draining.ExpectDispatch();
  ASSERT_TRUE(d1 && d2);
  draining.SendDraining();
  Sync();
  draining.SendResult(d1->attempt_id(), Ok());
  ASSERT_TRUE(draining.ExpectAck());
  Sync();
  ExpectNothingQueued(draining, "a draining worker with a free slot");

  FakeClient& admin = AddClient();
  auto workers = admin.Workers();
  ASSERT_TRUE(workers);
  ASSERT_EQ(workers->workers_size(), 1);
  EXPECT_EQ(workers->workers(0).name(), "w1");
  EXPECT_EQ(workers->workers(0).state(), "draining");
  EXPECT_EQ(workers->workers(0).running(), 1u);
  EXPECT_EQ(workers->workers(0).slots().at("spawn").total(), 2u);
  EXPECT_EQ(workers->workers(0).slots().at("spawn").used(), 1u);
  EXPECT_EQ(workers->workers(0).version(), "test");

  // The third task waits for a worker that takes work.
  auto status = admin.Status(submitted->job_id());
  ASSERT_TRUE(status);
  for (const auto& t : status->jobs(0).tasks()) {
    if (t.state() == "ready") {
      EXPECT_EQ(t.pending_reason(), "no live worker offers backend spawn (1 draining)");
    }
  }

  FakeWorker& fresh = AddWorker("w2", 1, "session-2");
  auto d3 = fresh.ExpectDispatch();
  ASSERT_TRUE(d3);
  draining.SendResult(d2->attempt_id(), Ok());
  ASSERT_TRUE(draining.ExpectAck());
  draining.SendDisconnect(/*drained=*/true, "drained");
  Sync();

  // w2 goes silent: lost after 5 s.
  clock_.Advance(std::chrono::seconds(6));
  coordinator_->Poke();
  auto retried = client.WaitTaskEvent(d3->task(), "failed");
  ASSERT_TRUE(retried);
  EXPECT_EQ(retried->reason(), "worker-lost");
  workers = admin.Workers();
  ASSERT_TRUE(workers);
  std::map<std::string, std::string> states;
  for (const auto& w : workers->workers()) states[w.name()] = w.state();
  EXPECT_EQ(states, (std::map<std::string, std::string>{{"w1", "drained"}, {"w2", "lost"}}));
}

// Given a finished job with one failed task, should answer RETRY-JOB with a
// new job that carries the succeeded tasks over and runs only the failed
// one; and refuse to retry a running job or an unknown one.
TEST_F(CoordinatorTest, RetryJobRerunsOnlyWhatDidNotSucceed) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 2);
  FakeClient& client = AddClient();
  auto submitted = client.Submit(IndependentTasks("retry", 2));
  ASSERT_TRUE(submitted);
  const std::string old_job = submitted->job_id();
  for (int i = 0; i < 2; ++i) {
    auto d = worker.ExpectDispatch();
    ASSERT_TRUE(d);
    worker.SendResult(d->attempt_id(), d->task() == "t2" ? Exit(1) : Ok());
  }
  auto first = client.WaitJobEvent();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->state(), "failed");

  auto retried = client.Retry(old_job);
  ASSERT_TRUE(retried);
  EXPECT_NE(retried->job_id(), old_job);
  EXPECT_FALSE(retried->job_id().empty());
  EXPECT_EQ(retried->tasks(), 2u);
  EXPECT_EQ(retried->carried_over(), 1u);
  // Running: a second retry is refused.
  wire::RetryJob again;
  again.set_job_id(retried->job_id());
  EXPECT_THAT(client.AskError(Command::kRetryJob, again), HasSubstr("still running"));

  std::optional<wire::Dispatch> d;
  for (int i = 0; i < 3 && !d; ++i) {  // ACKs of the first run may come first
    auto m = worker.Next(testing::kDeadline);
    ASSERT_TRUE(m);
    if (m->command == Command::kDispatch) d = Body<wire::Dispatch>(*m);
  }
  ASSERT_TRUE(d);
  EXPECT_EQ(d->task(), "t2");
  EXPECT_EQ(d->job_id(), retried->job_id());
  EXPECT_EQ(d->attempt(), 2u);
  worker.SendResult(d->attempt_id(), Ok());
  auto done = client.WaitJobEvent();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->job_id(), retried->job_id());
  EXPECT_EQ(done->state(), "succeeded");
  EXPECT_EQ(JobState(old_job), "failed");
  EXPECT_EQ(Task(retried->job_id(), "t1").state, "succeeded");
  EXPECT_EQ(Task(retried->job_id(), "t1").attempts, 1u);

  wire::RetryJob unknown;
  unknown.set_job_id("nope");
  EXPECT_THAT(client.AskError(Command::kRetryJob, unknown), HasSubstr("no job nope"));
}

// Given a job a -> b and an independent c, should on CANCEL-JOB of task a
// (running) answer OK, send CANCEL, and record a's non-zero exit as
// cancelled with b blocked; on CANCEL-JOB of c (not started) answer OK and
// cancel it at once; and refuse a finished task with an ERROR naming why.
TEST_F(CoordinatorTest, CancelOneTaskOfAJob) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& client = AddClient();
  auto submitted = client.Submit(
      "version: 1\nname: one\ntasks:\n"
      "  a: {run: sleep 9, retries: 3}\n  b: {run: echo b, needs: a}\n  c: {run: echo c}\n");
  ASSERT_TRUE(submitted);
  const std::string job = submitted->job_id();
  auto d = worker.ExpectDispatch();
  ASSERT_TRUE(d);
  ASSERT_EQ(d->task(), "a");

  auto ok = client.Ask<wire::Ok>(Command::kCancelJob, [&] {
    wire::CancelJob c;
    c.set_job_id(job);
    c.set_task("c");
    return c;
  }(), Command::kOk);
  ASSERT_TRUE(ok);
  EXPECT_THAT(ok->message(), HasSubstr("cancelled before it started"));
  auto c_event = client.WaitTaskEvent("c", "cancelled");
  ASSERT_TRUE(c_event);
  EXPECT_EQ(Task(job, "c").state, "cancelled");

  client.CancelJob(job, "a");
  auto ok_a = client.Expect(Command::kOk);
  ASSERT_TRUE(ok_a);
  EXPECT_THAT(Body<wire::Ok>(*ok_a).message(), HasSubstr("cancelling task 'a'"));
  auto cancel = worker.ExpectCancel();
  ASSERT_TRUE(cancel);
  EXPECT_THAT(*cancel, ElementsAre(d->attempt_id()));
  worker.SendResult(d->attempt_id(), Exit(143));
  ASSERT_TRUE(worker.ExpectAck());
  auto a_event = client.WaitTaskEvent("a", "cancelled");
  ASSERT_TRUE(a_event);
  EXPECT_EQ(a_event->reason(), "cancelled");
  auto done = client.WaitJobEvent();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state(), "failed");
  EXPECT_EQ(Task(job, "b").state, "blocked");
  Sync();
  ExpectNothingQueued(worker, "the worker after a cancelled task (no retry)");

  wire::CancelJob finished;
  finished.set_job_id(job);
  EXPECT_THAT(client.AskError(Command::kCancelJob, finished), HasSubstr("already finished"));
}

// Given a finished attempt with output, should answer LOGS-REQUEST with its
// stdout and stderr; and given a running attempt followed with -f, should
// send LOGS (not done), forward the worker's OUTPUT, then LOGS done=true
// with the final output when the attempt ends.
TEST_F(CoordinatorTest, LogsServesStoredOutputAndFollowsARunningAttempt) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& client = AddClient();
  auto submitted = client.Submit(IndependentTasks("logs", 2));
  ASSERT_TRUE(submitted);
  const std::string job = submitted->job_id();
  auto d1 = worker.ExpectDispatch();
  ASSERT_TRUE(d1);
  worker.SendResult(d1->attempt_id(), Ok(), "out one\n", "err one\n");
  ASSERT_TRUE(worker.ExpectAck());
  auto d2 = worker.ExpectDispatch();
  ASSERT_TRUE(d2);

  FakeClient& reader = AddClient();
  auto stored = reader.Logs(job, d1->task());
  ASSERT_TRUE(stored);
  auto body = Body<wire::Logs>(*stored);
  EXPECT_EQ(body.attempt(), 1u);
  EXPECT_TRUE(body.done());
  EXPECT_EQ(body.state(), "succeeded");
  EXPECT_THAT(stored->payloads, ElementsAre("out one\n", "err one\n"));

  auto follow = reader.Logs(job, d2->task(), 0, /*follow=*/true);
  ASSERT_TRUE(follow);
  body = Body<wire::Logs>(*follow);
  EXPECT_FALSE(body.done());
  EXPECT_EQ(body.state(), "running");
  worker.SendOutput(d2->attempt_id(), 1, 0, "partial");
  auto chunk = reader.Expect(Command::kOutput);
  ASSERT_TRUE(chunk);
  EXPECT_EQ(Body<wire::Output>(*chunk).task(), d2->task());
  worker.SendResult(d2->attempt_id(), Exit(1), "partial end\n", "");
  auto last = reader.Expect(Command::kLogs);
  ASSERT_TRUE(last);
  body = Body<wire::Logs>(*last);
  EXPECT_TRUE(body.done());
  EXPECT_EQ(body.state(), "failed");
  EXPECT_EQ(body.attempt(), 1u);
  EXPECT_THAT(last->payloads, ElementsAre("partial end\n", ""));

  wire::LogsRequest bad;
  bad.set_job_id(job);
  bad.set_task("t9");
  EXPECT_THAT(reader.AskError(Command::kLogsRequest, bad), HasSubstr("no task 't9'"));
  bad.set_task(d1->task());
  bad.set_attempt(5);
  EXPECT_THAT(reader.AskError(Command::kLogsRequest, bad), HasSubstr("no attempt 5"));
}

// Given a spec handed over by the process that embeds the coordinator (as
// drover run does), the SUBMIT of exactly its text and file should take
// that spec instead of loading the text, once; a SUBMIT of another text or
// file loads its own. The handed-over spec here has three tasks where its
// text has two, so the SUBMITTED count says which was used.
TEST_F(CoordinatorTest, ASubmitTakesTheSpecHandedOverForItsTextOnce) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  const std::string two = IndependentTasks("handed", 2);
  auto three =
      spec::LoadString(IndependentTasks("handed", 3), "job.yaml", options_.spec_options);
  ASSERT_TRUE(three.ok());
  coordinator_->HandOver("job.yaml", two, std::move(*three.spec));

  FakeClient& client = AddClient();
  auto other_file = client.Submit(two, /*resume=*/false, "other.yaml");
  ASSERT_TRUE(other_file);
  EXPECT_EQ(other_file->tasks(), 2u) << "another file loads its own text";
  auto other_text = client.Submit(IndependentTasks("handed", 4));
  ASSERT_TRUE(other_text);
  EXPECT_EQ(other_text->tasks(), 4u) << "another text loads its own";

  auto first = client.Submit(two);
  ASSERT_TRUE(first);
  ASSERT_TRUE(first->errors().empty()) << first->errors(0);
  EXPECT_EQ(first->tasks(), 3u) << "the spec handed over for this text";
  auto second = client.Submit(two);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->tasks(), 2u) << "taken once: the text is loaded again";
}

// The number the store gave job `id` (jobs.seq, docs/state.md): jobs are
// numbered in the order they are admitted. -1 when there is none.
int64_t JobNumber(const std::filesystem::path& state_dir, const std::string& id) {
  sqlite3* db = nullptr;
  int64_t seq = -1;
  if (sqlite3_open_v2((state_dir / "state.db").c_str(), &db, SQLITE_OPEN_READONLY,
                      nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT seq FROM jobs WHERE id = ?1", -1, &st, nullptr) ==
        SQLITE_OK) {
      sqlite3_bind_text(st, 1, id.c_str(), -1, SQLITE_TRANSIENT);
      if (sqlite3_step(st) == SQLITE_ROW) seq = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return seq;
}

// Given a SUBMIT whose spec is big enough to be loaded off the loop, and
// its load held on the loader's thread: the coordinator should go on
// answering other clients meanwhile, and answer the same client's next
// request after its SUBMITTED; a small SUBMIT sent during the load
// should wait behind it (its spec would load at once) and be answered
// after it; and both jobs should be admitted in the order they came
// (their numbers in the store). A loop that loaded the spec itself would
// stop at the held load, and the WORKERS request would get no answer.
TEST_F(CoordinatorTest, ABigSpecLoadsOffTheLoopAndSubmitsStayInOrder) {
  // The loader's hook: shared with it, so that it outlives this test's body.
  struct Gate {
    std::mutex mu;
    std::condition_variable cv;
    int loads = 0;
    bool release = false;
    void Open() {
      std::lock_guard<std::mutex> lock(mu);
      release = true;
      cv.notify_all();
    }
  };
  auto gate = std::make_shared<Gate>();
  options_.before_spec_load = [gate] {
    std::unique_lock<std::mutex> lock(gate->mu);
    ++gate->loads;
    gate->cv.notify_all();
    gate->cv.wait(lock, [&] { return gate->release; });
  };
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  // Whatever ends the test, the loader is let go before the coordinator stops.
  struct Release {
    Gate& gate;
    ~Release() { gate.Open(); }
  } releaser{*gate};

  FakeClient& big = AddClient();
  FakeClient& small = AddClient();
  FakeClient& other = AddClient();
  wire::Submit submit;
  submit.set_spec_file("big.yaml");
  submit.set_cwd("/");
  // Past Loop::kLoadHereBytes by a comment: the spec is still two tasks.
  submit.set_spec_text(IndependentTasks("big", 2) + "# " + std::string(20000, 'x') +
                       "\n");
  big.Send(Command::kSubmit, submit);
  {
    std::unique_lock<std::mutex> lock(gate->mu);
    ASSERT_TRUE(gate->cv.wait_for(lock, std::chrono::seconds(30), [&] {
      return gate->loads == 1;
    })) << "the big spec never reached the loader";
  }

  ASSERT_TRUE(other.Workers()) << "the loop answers while a spec loads";
  // The big spec's client asks too: answered after its SUBMITTED.
  big.Send(Command::kWorkersRequest, wire::WorkersRequest());
  submit.set_spec_file("small.yaml");
  submit.set_spec_text(IndependentTasks("small", 1));
  small.Send(Command::kSubmit, submit);
  ASSERT_NO_FATAL_FAILURE(Sync());
  ExpectNothingQueued(big, "the big spec's client, while its spec loads");
  ExpectNothingQueued(small, "the small spec's client, queued behind it");

  gate->Open();
  auto big_done = big.Expect(Command::kSubmitted);
  auto small_done = small.Expect(Command::kSubmitted);
  ASSERT_TRUE(big_done && small_done);
  EXPECT_TRUE(big.Expect(Command::kWorkersReply))
      << "its next request, after its SUBMITTED";
  const auto first = Body<wire::Submitted>(*big_done);
  const auto second = Body<wire::Submitted>(*small_done);
  ASSERT_TRUE(first.errors().empty()) << first.errors(0);
  ASSERT_TRUE(second.errors().empty()) << second.errors(0);
  EXPECT_EQ(first.tasks(), 2u);
  EXPECT_EQ(second.tasks(), 1u);
  {
    std::lock_guard<std::mutex> lock(gate->mu);
    EXPECT_EQ(gate->loads, 2) << "the small spec waited in the loader's queue";
  }
  EXPECT_LT(JobNumber(state_dir_, first.job_id()), JobNumber(state_dir_, second.job_id()))
      << "admitted in the order they came";
}

// Given three clients of one job, one that submitted it with
// problems_only, one that watches with problems_only and one that watches
// plainly, and tasks that succeed, fail and succeed: the first two should
// get the TASK-EVENT of the failure alone, the third all three, and each
// the JOB-EVENT.
TEST_F(CoordinatorTest, AProblemsOnlyWatcherGetsTheEventsOfProblemsAlone) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 3);
  FakeClient& submitter = AddClient();
  wire::Submit submit;
  submit.set_spec_file("job.yaml");
  submit.set_spec_text(IndependentTasks("quiet", 3));
  submit.set_watch(true);
  submit.set_problems_only(true);
  auto submitted =
      submitter.Ask<wire::Submitted>(Command::kSubmit, submit, Command::kSubmitted);
  ASSERT_TRUE(submitted);
  const std::string job = submitted->job_id();
  FakeClient& quiet = AddClient();
  wire::Watch w;
  w.set_job_id(job);
  w.set_problems_only(true);
  quiet.Send(Command::kWatch, w);
  FakeClient& plain = AddClient();
  plain.Watch(job);
  Sync();  // both WATCHes are handled before the results

  std::map<std::string, uint64_t> attempt_of;
  for (int i = 0; i < 3; ++i) {
    auto d = worker.ExpectDispatch();
    ASSERT_TRUE(d);
    attempt_of[d->task()] = d->attempt_id();
  }
  ASSERT_EQ(attempt_of.size(), 3u);
  worker.SendResult(attempt_of.at("t1"), Ok());
  worker.SendResult(attempt_of.at("t2"), Exit(1));
  worker.SendResult(attempt_of.at("t3"), Ok());

  auto events_of = [](FakeClient& c) {
    std::vector<std::string> seen;
    auto done = c.WaitJobEvent();
    EXPECT_TRUE(done);
    if (done) {
      EXPECT_EQ(done->state(), "failed");
    }
    for (const wire::TaskEvent& ev : c.events())
      seen.push_back(ev.task() + " " + ev.state());
    std::sort(seen.begin(), seen.end());
    return seen;
  };
  const std::vector<std::string> problems = {"t2 failed"};
  EXPECT_EQ(events_of(submitter), problems);
  EXPECT_EQ(events_of(quiet), problems);
  const std::vector<std::string> all = {"t1 succeeded", "t2 failed", "t3 succeeded"};
  EXPECT_EQ(events_of(plain), all);
}

}  // namespace
}  // namespace drover

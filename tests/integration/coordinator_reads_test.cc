// The requests served off the coordinator's loop: the reads of jobs it does
// not run (STATUS, LOGS-REQUEST, a late WATCH, RETRY-JOB's, a resuming
// SUBMIT's), answered by
// the store reader on its own thread (core/coordinator/store_reader.h),
// and big specs, loaded by the spec loader (spec_loader.h): the loop goes
// on meanwhile, each client's replies keep its requests' order, what
// waits is bounded, and the live jobs a list shows are as the loop knows
// them. The fixture is coordinator_fixture.h.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "tests/integration/coordinator_fixture.h"

namespace drover {
namespace {

using testing::Body;
using testing::Command;
using testing::CoordinatorTest;
using testing::FakeClient;
using testing::FakeWorker;
using testing::IndependentTasks;

// The reader's hook: each read waits until the gate opens. Shared with the
// hook, so that it outlives the test's body.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  int reads = 0;  // reads that reached the hook
  bool open = false;
  void Open() {
    std::lock_guard<std::mutex> lock(mu);
    open = true;
    cv.notify_all();
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mu);
    open = false;
  }
  bool WaitForReads(int n) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(30), [&] { return reads >= n; });
  }
};

// Opens the gate whatever ends the test, before the coordinator stops.
struct OpenAtExit {
  Gate& gate;
  ~OpenAtExit() { gate.Open(); }
};

std::function<void()> HoldAt(const std::shared_ptr<Gate>& gate) {
  return [gate] {
    std::unique_lock<std::mutex> lock(gate->mu);
    ++gate->reads;
    gate->cv.notify_all();
    gate->cv.wait(lock, [&] { return gate->open; });
  };
}

// Submits a job of one task, `name`, through `submitter` and runs it to its
// end on `worker` (with `outcome`, and `out` as its stdout); its SUBMITTED,
// or nullopt (a failure recorded) when any step fails.
std::optional<wire::Submitted> RunToItsEnd(FakeClient& submitter, FakeWorker& worker,
                                           const std::string& name,
                                           AttemptOutcome outcome = testing::Ok(),
                                           const std::string& out = "") {
  auto job = submitter.Submit(IndependentTasks(name, 1));
  if (!job) return std::nullopt;
  auto d = worker.ExpectDispatch();
  if (!d) return std::nullopt;
  worker.SendResult(d->attempt_id(), outcome, out);
  if (!worker.ExpectAck() || !submitter.WaitJobEvent()) return std::nullopt;
  return job;
}

// Given a finished job and a running one, and the STATUS of the finished
// job held on the reader's thread: the coordinator should go on answering
// others meanwhile (WORKERS, the running job's STATUS without its tasks);
// the same client's next request, the running job's STATUS, should wait
// behind its first; and both should come in the order they were asked
// once the read ends. A loop that read the finished job itself would stop
// at the held read, and WORKERS would get no answer.
TEST_F(CoordinatorTest, ReadsOfEndedJobsComeOffTheLoopInEachClientsOrder) {
  auto gate = std::make_shared<Gate>();
  options_.before_store_read = HoldAt(gate);
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  OpenAtExit opener{*gate};
  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& submitter = AddClient();
  auto ended = RunToItsEnd(submitter, worker, "ended");
  ASSERT_TRUE(ended);
  auto running = submitter.Submit(IndependentTasks("running", 1));
  ASSERT_TRUE(running);
  ASSERT_TRUE(worker.ExpectDispatch());  // and it never answers

  FakeClient& client = AddClient();
  wire::StatusRequest first;
  first.set_job_id(ended->job_id());
  first.set_tasks(true);
  client.Send(Command::kStatusRequest, first);
  ASSERT_TRUE(gate->WaitForReads(1)) << "the ended job's STATUS never reached the reader";
  wire::StatusRequest second;
  second.set_job_id(running->job_id());
  second.set_tasks(true);
  client.Send(Command::kStatusRequest, second);

  FakeClient& other = AddClient();
  ASSERT_TRUE(other.Workers()) << "the loop answers while a read is held";
  auto live = other.Status(running->job_id(), /*tasks=*/false);
  ASSERT_TRUE(live) << "a running job's STATUS without its tasks is the loop's";
  ASSERT_EQ(live->jobs_size(), 1);
  EXPECT_EQ(live->jobs(0).state(), "running");
  ASSERT_NO_FATAL_FAILURE(Sync());
  ExpectNothingQueued(client, "the client whose read is held");

  gate->Open();
  auto a = client.Expect(Command::kStatusReply);
  auto b = client.Expect(Command::kStatusReply);
  ASSERT_TRUE(a && b);
  const auto ra = Body<wire::StatusReply>(*a);
  const auto rb = Body<wire::StatusReply>(*b);
  ASSERT_EQ(ra.jobs_size(), 1);
  ASSERT_EQ(rb.jobs_size(), 1);
  EXPECT_EQ(ra.jobs(0).job_id(), ended->job_id()) << "the first request's answer first";
  EXPECT_EQ(ra.jobs(0).state(), "succeeded");
  ASSERT_EQ(ra.jobs(0).tasks_size(), 1);
  EXPECT_EQ(ra.jobs(0).tasks(0).state(), "succeeded");
  EXPECT_EQ(rb.jobs(0).job_id(), running->job_id());
  EXPECT_EQ(rb.jobs(0).state(), "running");
  ASSERT_EQ(rb.jobs(0).tasks_size(), 1);
  EXPECT_EQ(rb.jobs(0).tasks(0).state(), "running");
  EXPECT_EQ(Stat(&CoordinatorStats::reads_answered), 2u)
      << "two reads: the running job's tasks are rendered by the reader too";
}

// Given a running job of three tasks on one slot, one ended, one running,
// one ready, and its STATUS with tasks held on the reader's thread: the
// loop should have taken its snapshot and gone on (it takes the running
// task's result and dispatches the ready one, it answers WORKERS); once
// the read ends, the status should be the job as it was asked about: the
// ended task with its stored row (its worker, its exit), the running one,
// the ready one with why it waits. A loop that rendered it would hold
// every dispatch for as long (120 ms for 100,000 tasks).
TEST_F(CoordinatorTest, ARunningJobsTasksAreRenderedOffTheLoop) {
  auto gate = std::make_shared<Gate>();
  options_.before_store_read = HoldAt(gate);
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  OpenAtExit opener{*gate};
  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& submitter = AddClient();
  auto job = submitter.Submit(IndependentTasks("three", 3));
  ASSERT_TRUE(job);
  auto first = worker.ExpectDispatch();
  ASSERT_TRUE(first);
  worker.SendResult(first->attempt_id(), testing::Ok());
  ASSERT_TRUE(worker.ExpectAck());
  auto second = worker.ExpectDispatch();
  ASSERT_TRUE(second);

  FakeClient& client = AddClient();
  wire::StatusRequest req;
  req.set_job_id(job->job_id());
  req.set_tasks(true);
  client.Send(Command::kStatusRequest, req);
  ASSERT_TRUE(gate->WaitForReads(1))
      << "the running job's STATUS never reached the reader";
  worker.SendResult(second->attempt_id(), testing::Ok());
  ASSERT_TRUE(worker.ExpectAck())
      << "the loop takes results while the status is rendered";
  auto third = worker.ExpectDispatch();
  ASSERT_TRUE(third) << "and dispatches";
  FakeClient& other = AddClient();
  ASSERT_TRUE(other.Workers());
  ExpectNothingQueued(client, "the client whose status is being rendered");

  gate->Open();
  auto reply = client.Expect(Command::kStatusReply);
  ASSERT_TRUE(reply);
  const auto r = Body<wire::StatusReply>(*reply);
  ASSERT_EQ(r.jobs_size(), 1);
  const wire::JobStatus& js = r.jobs(0);
  EXPECT_EQ(js.state(), "running");
  EXPECT_EQ(js.tasks_matched(), 3u);
  std::map<std::string, wire::TaskStatus> tasks;
  for (const auto& t : js.tasks()) tasks[t.name()] = t;
  ASSERT_EQ(tasks.size(), 3u);
  const wire::TaskStatus& ended = tasks[first->task()];
  EXPECT_EQ(ended.state(), "succeeded");
  EXPECT_EQ(ended.worker(), "w1") << "its row, read from the store";
  EXPECT_EQ(ended.reason(), "ok");
  EXPECT_EQ(ended.exit_code(), 0);
  EXPECT_EQ(ended.attempts(), 1u);
  EXPECT_EQ(tasks[second->task()].state(), "running") << "as it was when asked";
  const wire::TaskStatus& ready = tasks[third->task()];
  EXPECT_EQ(ready.state(), "ready");
  EXPECT_NE(ready.pending_reason(), "");
  EXPECT_EQ(Stat(&CoordinatorStats::reads_answered), 1u);

  // A page by name, by group (a task's key), and of a name the job lacks.
  for (const auto& [name, group, listed] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {third->task(), "", third->task()},
           {"", first->task(), first->task()},
           {"t9", "", ""}}) {
    wire::StatusRequest page;
    page.set_job_id(job->job_id());
    page.set_tasks(true);
    page.set_task_name(name);
    page.set_task_group(group);
    client.Send(Command::kStatusRequest, page);
    auto paged = client.Expect(Command::kStatusReply);
    ASSERT_TRUE(paged);
    const auto p = Body<wire::StatusReply>(*paged);
    ASSERT_EQ(p.jobs_size(), 1);
    EXPECT_EQ(p.jobs(0).tasks_matched(), listed.empty() ? 0u : 1u) << name << group;
    ASSERT_EQ(p.jobs(0).tasks_size(), listed.empty() ? 0 : 1) << name << group;
    if (!listed.empty()) {
      EXPECT_EQ(p.jobs(0).tasks(0).name(), listed);
    }
  }
}

// Given a job whose task runs on the only slot and one whose task is ready
// for it: a list of jobs, read by the store reader, should show them as the
// loop knows them (the ready task's store row would say it waits), and
// the finished job as its rows say.
TEST_F(CoordinatorTest, AListOfJobsShowsTheRunningOnesAsTheLoopKnowsThem) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& submitter = AddClient();
  auto ended = RunToItsEnd(submitter, worker, "ended");
  ASSERT_TRUE(ended);
  auto busy = submitter.Submit(IndependentTasks("busy", 1));
  ASSERT_TRUE(busy);
  ASSERT_TRUE(worker.ExpectDispatch());  // holds the slot
  auto queued = submitter.Submit(IndependentTasks("queued", 1));
  ASSERT_TRUE(queued);

  FakeClient& client = AddClient();
  auto list = client.Status("", /*tasks=*/true);
  ASSERT_TRUE(list);
  EXPECT_EQ(Stat(&CoordinatorStats::reads_answered), 1u);
  std::map<std::string, wire::JobStatus> by_id;
  for (const auto& js : list->jobs()) by_id[js.job_id()] = js;
  ASSERT_EQ(by_id.size(), 3u);
  const wire::JobStatus& q = by_id[queued->job_id()];
  ASSERT_EQ(q.tasks_size(), 1);
  EXPECT_EQ(q.tasks(0).state(), "ready") << "the loop's plan, not the row";
  EXPECT_EQ(q.counts().pending(), 1u);
  const wire::JobStatus& b = by_id[busy->job_id()];
  ASSERT_EQ(b.tasks_size(), 1);
  EXPECT_EQ(b.tasks(0).state(), "running");
  const wire::JobStatus& e = by_id[ended->job_id()];
  EXPECT_EQ(e.state(), "succeeded");
  EXPECT_EQ(e.counts().succeeded(), 1u);
}

// Given an ended job: its LOGS and a late WATCH of it should be answered
// by the store reader, as before by the loop (the attempt's output; the
// JOB-EVENT of its end), and a job that does not exist named in the
// reader's ERROR. So should the output of an ended attempt of a job that
// runs: the loop makes the LOGS, the reader reads its files.
TEST_F(CoordinatorTest, LogsAndLateWatchesOfEndedJobsAreTheReaders) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& submitter = AddClient();
  auto ended = RunToItsEnd(submitter, worker, "ended", testing::Ok(), "hello from t1\n");
  ASSERT_TRUE(ended);

  FakeClient& client = AddClient();
  auto logs = client.Logs(ended->job_id(), "t1");
  ASSERT_TRUE(logs);
  ASSERT_EQ(logs->payloads.size(), 2u);
  EXPECT_EQ(logs->payloads[0], "hello from t1\n");
  EXPECT_TRUE(Body<wire::Logs>(*logs).done());
  client.Watch(ended->job_id());
  auto ev = client.Expect(Command::kJobEvent);
  ASSERT_TRUE(ev);
  EXPECT_EQ(Body<wire::JobEvent>(*ev).state(), "succeeded");
  EXPECT_EQ(Body<wire::JobEvent>(*ev).counts().succeeded(), 1u);
  wire::LogsRequest none;
  none.set_job_id("20260101-000000-0000");
  none.set_task("t1");
  EXPECT_EQ(client.AskError(Command::kLogsRequest, none), "no job 20260101-000000-0000");
  EXPECT_EQ(Stat(&CoordinatorStats::reads_answered), 3u);

  auto running = submitter.Submit(IndependentTasks("running", 2));
  ASSERT_TRUE(running);
  auto first = worker.ExpectDispatch();
  ASSERT_TRUE(first);
  worker.SendResult(first->attempt_id(), testing::Ok(), "out of " + first->task() + "\n");
  ASSERT_TRUE(worker.ExpectAck());
  ASSERT_TRUE(worker.ExpectDispatch());  // the other task, which never ends
  auto ended_attempt = client.Logs(running->job_id(), first->task());
  ASSERT_TRUE(ended_attempt);
  ASSERT_EQ(ended_attempt->payloads.size(), 2u);
  EXPECT_EQ(ended_attempt->payloads[0], "out of " + first->task() + "\n");
  const auto head = Body<wire::Logs>(*ended_attempt);
  EXPECT_TRUE(head.done());
  EXPECT_EQ(head.attempt(), 1u);
  EXPECT_EQ(head.state(), "succeeded");
  EXPECT_EQ(Stat(&CoordinatorStats::reads_answered), 4u);
}

// Given a job that failed, and the RETRY-JOB of it held on the reader's
// thread (its spec loaded again, its rows read): the coordinator should
// answer others meanwhile, and once the read ends admit the new job, which
// runs the failed task again.
TEST_F(CoordinatorTest, ARetryReadsTheJobItRetriesOffTheLoop) {
  auto gate = std::make_shared<Gate>();
  options_.before_store_read = HoldAt(gate);
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  OpenAtExit opener{*gate};
  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& submitter = AddClient();
  auto failed = RunToItsEnd(submitter, worker, "flaky", testing::Exit(1));
  ASSERT_TRUE(failed);

  FakeClient& client = AddClient();
  wire::RetryJob retry;
  retry.set_job_id(failed->job_id());
  client.Send(Command::kRetryJob, retry);
  ASSERT_TRUE(gate->WaitForReads(1)) << "the retry's reads never reached the reader";
  FakeClient& other = AddClient();
  ASSERT_TRUE(other.Workers()) << "the loop answers while the retry's reads are held";
  ASSERT_NO_FATAL_FAILURE(Sync());
  ExpectNothingQueued(client, "the retrying client, while its reads are held");
  ExpectNothingQueued(worker, "the worker, before the retry is admitted");

  gate->Open();
  auto submitted = client.Expect(Command::kSubmitted);
  ASSERT_TRUE(submitted);
  const auto s = Body<wire::Submitted>(*submitted);
  EXPECT_NE(s.job_id(), failed->job_id());
  EXPECT_EQ(s.tasks(), 1u);
  auto again = worker.ExpectDispatch();
  ASSERT_TRUE(again) << "the failed task runs again";
  EXPECT_EQ(again->job_id(), s.job_id());
  EXPECT_EQ(again->task(), "t1");
}

// Given a job that failed, and a SUBMIT that resumes it held on the
// reader's thread (its spec, the previous run's rows and the job's state
// are the reader's): the coordinator should answer others meanwhile and
// hold the client's next request; once the read ends, resume the same job
// with its succeeded task carried over and run the failed one again, then
// answer the held request. With no earlier run of its name, the SUBMIT
// should start a new job; with a spec that does not load, get its located
// errors.
TEST_F(CoordinatorTest, AResumeReadsThePreviousRunOffTheLoop) {
  auto gate = std::make_shared<Gate>();
  options_.before_store_read = HoldAt(gate);
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  OpenAtExit opener{*gate};
  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& client = AddClient();
  const std::string spec = IndependentTasks("again", 2);
  auto first = client.Submit(spec);
  ASSERT_TRUE(first);
  for (int i = 0; i < 2; ++i) {
    auto d = worker.ExpectDispatch();
    ASSERT_TRUE(d);
    worker.SendResult(d->attempt_id(),
                      d->task() == "t1" ? testing::Exit(1) : testing::Ok());
    ASSERT_TRUE(worker.ExpectAck());
  }
  ASSERT_TRUE(client.WaitJobEvent());

  wire::Submit resume;
  resume.set_spec_file("again.yaml");
  resume.set_spec_text(spec);
  resume.set_resume(true);
  client.Send(Command::kSubmit, resume);
  ASSERT_TRUE(gate->WaitForReads(1)) << "the resume never reached the reader";
  client.Send(Command::kWorkersRequest, wire::WorkersRequest());
  FakeClient& other = AddClient();
  ASSERT_TRUE(other.Workers()) << "the loop answers while the resume's reads are held";
  ASSERT_NO_FATAL_FAILURE(Sync());
  ExpectNothingQueued(client, "the resuming client, while its reads are held");
  ExpectNothingQueued(worker, "the worker, before the resume is admitted");

  gate->Open();
  auto submitted = client.Expect(Command::kSubmitted);
  ASSERT_TRUE(submitted);
  const auto s = Body<wire::Submitted>(*submitted);
  ASSERT_TRUE(s.errors().empty()) << s.errors(0);
  EXPECT_EQ(s.job_id(), first->job_id()) << "the same job, resumed";
  EXPECT_EQ(s.carried_over(), 1u);
  EXPECT_TRUE(client.Expect(Command::kWorkersReply)) << "its next request, after it";
  auto again = worker.ExpectDispatch();
  ASSERT_TRUE(again) << "the failed task runs again";
  EXPECT_EQ(again->job_id(), first->job_id());
  EXPECT_EQ(again->task(), "t1");
  worker.SendResult(again->attempt_id(), testing::Ok());
  ASSERT_TRUE(worker.ExpectAck());

  auto fresh = other.Submit(IndependentTasks("never-ran", 1), /*resume=*/true);
  ASSERT_TRUE(fresh);
  EXPECT_NE(fresh->job_id(), first->job_id());
  EXPECT_EQ(fresh->carried_over(), 0u);
  auto d = worker.ExpectDispatch();
  ASSERT_TRUE(d) << "a resume of a name that never ran is a new job";
  EXPECT_EQ(d->job_id(), fresh->job_id());

  resume.set_spec_text("version: 1\nname: bad\ntasks:\n  t: {run: 5, nope: 1}\n");
  other.Send(Command::kSubmit, resume);
  auto refused = other.Expect(Command::kSubmitted);
  ASSERT_TRUE(refused);
  const auto r = Body<wire::Submitted>(*refused);
  ASSERT_GT(r.errors_size(), 0);
  EXPECT_NE(r.errors(0).find("again.yaml:4:"), std::string::npos) << r.errors(0);
}

// Given a SUBMIT that resumes a job, its reads done and their answer held
// on the reader's thread, and a job of the same name submitted meanwhile
// by another client (the loop admits it at once): while that job runs, the
// resume should be refused as running; when it has ended by then, as
// overtaken (it, not the run the reader read, is the latest now), rather
// than resume a run that is no longer the latest.
TEST_F(CoordinatorTest, AResumeOvertakenByAJobOfItsNameIsRefused) {
  auto gate = std::make_shared<Gate>();
  options_.after_store_read = HoldAt(gate);
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  OpenAtExit opener{*gate};
  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& client = AddClient();
  FakeClient& other = AddClient();
  ASSERT_TRUE(RunToItsEnd(client, worker, "twice"));
  wire::Submit resume;
  resume.set_spec_file("twice.yaml");
  resume.set_spec_text(IndependentTasks("twice", 1));
  resume.set_resume(true);

  client.Send(Command::kSubmit, resume);
  ASSERT_TRUE(gate->WaitForReads(1));
  clock_.Advance(std::chrono::seconds(1));  // a later created_ms
  auto overtaking = other.Submit(IndependentTasks("twice", 1));
  ASSERT_TRUE(overtaking);
  auto d = worker.ExpectDispatch();
  ASSERT_TRUE(d);
  gate->Open();
  auto running = client.Expect(Command::kError);
  ASSERT_TRUE(running);
  EXPECT_EQ(
      Body<wire::Error>(*running).message(),
      "job " + overtaking->job_id() + " (twice) is still running; cannot resume it");

  worker.SendResult(d->attempt_id(), testing::Ok());
  ASSERT_TRUE(worker.ExpectAck());
  ASSERT_TRUE(other.WaitJobEvent());
  gate->Close();
  client.Send(Command::kSubmit, resume);  // the reader reads `overtaking`
  ASSERT_TRUE(gate->WaitForReads(2));
  clock_.Advance(std::chrono::seconds(1));
  ASSERT_TRUE(RunToItsEnd(other, worker, "twice"));
  gate->Open();
  auto overtaken = client.Expect(Command::kError);
  ASSERT_TRUE(overtaken);
  EXPECT_NE(Body<wire::Error>(*overtaken)
                .message()
                .find("a job named twice was submitted while this one's resume was read"),
            std::string::npos)
      << Body<wire::Error>(*overtaken).message();
}

// Given a client whose read is held, and who sends 300 more requests
// meanwhile: the coordinator should hold 256 of them (Loop::kMaxHeld) and
// drop the rest, and once the read ends answer the read, then the held
// ones in order; and hold at most 16 MiB of them.
TEST_F(CoordinatorTest, WhatAClientSendsBehindItsReadIsBounded) {
  auto gate = std::make_shared<Gate>();
  options_.before_store_read = HoldAt(gate);
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  OpenAtExit opener{*gate};
  FakeClient& client = AddClient();
  wire::StatusRequest list;  // a list of jobs: the reader's
  client.Send(Command::kStatusRequest, list);
  ASSERT_TRUE(gate->WaitForReads(1));
  const uint64_t ignored = Stat(&CoordinatorStats::ignored);
  for (int i = 0; i < 300; ++i) {
    wire::CancelJob cancel;  // each answered with an ERROR naming its job
    cancel.set_job_id("no-such-job-" + std::to_string(i));
    client.Send(Command::kCancelJob, cancel);
  }
  ASSERT_NO_FATAL_FAILURE(Sync());
  EXPECT_EQ(Stat(&CoordinatorStats::ignored) - ignored, 44u);
  ExpectNothingQueued(client, "the client, while its read is held");

  gate->Open();
  ASSERT_TRUE(client.Expect(Command::kStatusReply));
  for (int i = 0; i < 256; ++i) {
    auto e = client.Expect(Command::kError);
    ASSERT_TRUE(e) << "held request " << i;
    EXPECT_NE(
        Body<wire::Error>(*e).message().find("no-such-job-" + std::to_string(i) + " "),
        std::string::npos)
        << Body<wire::Error>(*e).message();
  }
  ASSERT_NO_FATAL_FAILURE(Sync());
  ExpectNothingQueued(client, "the client, its held requests answered");

  // And at most 16 MiB of them (Loop::kMaxHeldBytes): requests of 1 MiB
  // each, 15 held and 5 dropped.
  gate->Close();
  client.Send(Command::kStatusRequest, list);
  ASSERT_TRUE(gate->WaitForReads(2));
  const uint64_t ignored_before_big = Stat(&CoordinatorStats::ignored);
  for (int i = 0; i < 20; ++i) {
    wire::CancelJob cancel;
    cancel.set_job_id(std::to_string(i) + "-" + std::string(1u << 20, 'x'));
    client.Send(Command::kCancelJob, cancel);
  }
  ASSERT_NO_FATAL_FAILURE(Sync());
  EXPECT_EQ(Stat(&CoordinatorStats::ignored) - ignored_before_big, 5u);
  gate->Open();
  ASSERT_TRUE(client.Expect(Command::kStatusReply));
  for (int i = 0; i < 15; ++i) {
    auto e = client.Expect(Command::kError);
    ASSERT_TRUE(e) << "held request " << i;
    EXPECT_EQ(Body<wire::Error>(*e).message().rfind("job " + std::to_string(i) + "-x", 0),
              0u);
  }
}

// Given the spec loader held, and 17 clients that each submit a spec of
// 4,000,000 bytes: the first 16 (64 MB) should wait for the loader, and
// the 17th, which would take the specs waiting past 64 MiB, be answered
// with an ERROR at once, the loop never waiting for room; once the loader
// goes on, the 16 are admitted.
TEST_F(CoordinatorTest, SpecsWaitingToLoadAreBoundedAndTheLoopNeverWaits) {
  auto gate = std::make_shared<Gate>();
  options_.before_spec_load = HoldAt(gate);
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  OpenAtExit opener{*gate};
  wire::Submit submit;
  submit.set_spec_file("big.yaml");
  submit.set_cwd("/");
  const std::string text = IndependentTasks("big", 1);
  submit.set_spec_text(text + "# " + std::string(4'000'000 - text.size() - 3, 'x') +
                       "\n");
  std::vector<FakeClient*> clients;
  for (int i = 0; i < 17; ++i) clients.push_back(&AddClient());
  clients[0]->Send(Command::kSubmit, submit);
  ASSERT_TRUE(gate->WaitForReads(1)) << "the first spec never reached the loader";
  for (int i = 1; i < 17; ++i) clients[i]->Send(Command::kSubmit, submit);
  auto refused = clients[16]->Expect(Command::kError);
  ASSERT_TRUE(refused);
  EXPECT_EQ(Body<wire::Error>(*refused).message(),
            "the coordinator is loading 64 MiB of specs already; try again shortly");
  ASSERT_NO_FATAL_FAILURE(Sync());
  for (int i = 0; i < 16; ++i) {
    ExpectNothingQueued(*clients[i],
                        "client " + std::to_string(i) + ", its spec waiting");
  }
  gate->Open();
  for (int i = 0; i < 16; ++i) {
    auto done = clients[i]->Expect(Command::kSubmitted, testing::Millis(60000));
    ASSERT_TRUE(done) << "client " << i;
    EXPECT_EQ(Body<wire::Submitted>(*done).tasks(), 1u);
  }
}

}  // namespace
}  // namespace drover

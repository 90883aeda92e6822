// Protocol tests of scheduled pipelines (`--pipelines DIR`): due runs,
// concurrency skip/queue/replace, catchup across a restart, DST in
// Europe/Berlin, reload keeping a good version, PIPELINES and PIPELINE-RUN.
// Time is the fixture's FakeClock: a test moves the wall clock to the next
// fire time and pokes the loop, so minutes and DST nights pass at once.
// The fixture is coordinator_fixture.h.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "tests/integration/coordinator_fixture.h"

namespace drover {
namespace {

using testing::Command;
using testing::CoordinatorTest;
using ::testing::ElementsAre;
using testing::FakeClient;
using testing::FakeWorker;
using ::testing::HasSubstr;
using testing::Ok;

namespace fs = std::filesystem;

WallTime Unix(int64_t seconds) { return WallTime(std::chrono::seconds(seconds)); }
int64_t Ms(int64_t seconds) { return seconds * 1000; }

class PipelinesTest : public CoordinatorTest {
 protected:
  void SetUp() override {
    CoordinatorTest::SetUp();
    dir_ = state_dir_ / "pipelines";
    fs::create_directories(dir_);
    options_.pipelines_dir = dir_;
  }

  void Write(const std::string& file, const std::string& yaml) {
    std::ofstream(dir_ / file, std::ios::trunc) << yaml;
  }

  // A pipeline of one task, `run`.
  static std::string Pipeline(const std::string& name, const std::string& schedule,
                              const std::string& extra = "") {
    return "version: 1\nname: " + name + "\nschedule: \"" + schedule + "\"\n" + extra +
           "tasks:\n  run: {run: echo " + name + "}\n";
  }

  // Moves the FakeClock's wall time forward to `t` and wakes the loop.
  void AdvanceTo(WallTime t) {
    const auto now = clock_.WallNow();
    ASSERT_GE(t, now);
    clock_.Advance(std::chrono::duration_cast<Duration>(t - now));
    coordinator_->Poke();
  }

  std::optional<wire::PipelinesReply> List(FakeClient& client, uint32_t next = 3) {
    wire::PipelinesRequest req;
    req.set_next_runs(next);
    return client.Ask<wire::PipelinesReply>(Command::kPipelinesRequest, req,
                                            Command::kPipelinesReply);
  }

  const wire::PipelineInfo* Find(const wire::PipelinesReply& reply,
                                 const std::string& name) {
    for (const auto& p : reply.pipelines()) {
      if (p.name() == name) return &p;
    }
    return nullptr;
  }

  // The next fire time of pipeline `name`, from PIPELINES.
  WallTime NextDue(FakeClient& client, const std::string& name) {
    auto reply = List(client);
    const wire::PipelineInfo* p = reply ? Find(*reply, name) : nullptr;
    if (p == nullptr || p->next_unix_ms().empty()) {
      ADD_FAILURE() << "no next run of " << name;
      return clock_.WallNow();
    }
    return WallTime(std::chrono::milliseconds(p->next_unix_ms(0)));
  }

  store::PipelineHistory History(const std::string& name) {
    auto h = Reader().PipelineHistoryOf(name);
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    return h.ok() ? *h : store::PipelineHistory{};
  }

  fs::path dir_;
};

// Given a pipeline `*/5 * * * *` and a worker, should list it with its next
// three fire times, submit nothing before the first one, and submit a job
// (recorded with submitter "schedule" and as the pipeline's last run) when
// it comes due.
TEST_F(PipelinesTest, DueRunIsSubmitted) {
  Write("five.yaml", Pipeline("five", "*/5 * * * *"));
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& client = AddClient();

  auto reply = List(client);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->dir(), dir_.string());
  ASSERT_EQ(reply->pipelines_size(), 1);
  const wire::PipelineInfo& p = reply->pipelines(0);
  EXPECT_EQ(p.name(), "five");
  EXPECT_EQ(p.file(), (dir_ / "five.yaml").string());
  EXPECT_EQ(p.schedule(), "*/5 * * * *");
  EXPECT_EQ(p.timezone(), "UTC");
  EXPECT_EQ(p.concurrency(), "skip");
  EXPECT_FALSE(p.has_last_run());
  ASSERT_EQ(p.next_unix_ms_size(), 3);
  const int64_t first = p.next_unix_ms(0);
  EXPECT_EQ(first % Ms(300), 0);
  EXPECT_EQ(p.next_unix_ms(1), first + Ms(300));
  EXPECT_EQ(p.next_unix_ms(2), first + Ms(600));

  AdvanceTo(WallTime(std::chrono::milliseconds(first - 1000)));
  Sync();
  ExpectNothingQueued(worker, "the worker a second before the first run");

  AdvanceTo(WallTime(std::chrono::milliseconds(first)));
  auto d = worker.ExpectDispatch();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->task(), "run");
  auto job = Reader().GetJob(d->job_id());
  ASSERT_TRUE(job.ok() && *job);
  EXPECT_EQ((*job)->name, "five");
  EXPECT_EQ((*job)->submitter_name, "schedule");
  EXPECT_EQ((*job)->spec_file, (dir_ / "five.yaml").string());
  const store::PipelineHistory h = History("five");
  ASSERT_TRUE(h.last_started);
  EXPECT_EQ(h.last_started->job_id, d->job_id());
  EXPECT_EQ(h.last_started->due_ms, first);
  EXPECT_EQ(h.last_started->trigger, "schedule");
  EXPECT_EQ(h.last_due_ms, first);

  worker.SendResult(d->attempt_id(), Ok());
  ASSERT_TRUE(worker.ExpectAck());
  reply = List(client);
  ASSERT_TRUE(reply && reply->pipelines_size() == 1);
  EXPECT_EQ(reply->pipelines(0).last_run().job_id(), d->job_id());
  EXPECT_EQ(reply->pipelines(0).last_run().state(), "succeeded");
  EXPECT_EQ(reply->pipelines(0).next_unix_ms(0), first + Ms(300));
}

// Given a pipeline with the default concurrency (skip) whose run is still
// going when the next comes due, should record the next one as skipped and
// start nothing; once the run ended, the following one starts.
TEST_F(PipelinesTest, SkipWhileRunning) {
  Write("p.yaml", Pipeline("p", "@every 1m"));
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 4);
  FakeClient& client = AddClient();

  AdvanceTo(NextDue(client, "p"));
  auto d1 = worker.ExpectDispatch();
  ASSERT_TRUE(d1);
  AdvanceTo(NextDue(client, "p"));
  Sync();
  ExpectNothingQueued(worker, "the worker when a run comes due during the previous one");
  EXPECT_EQ(History("p").skipped, 1u);
  auto reply = List(client);
  ASSERT_TRUE(reply && reply->pipelines_size() == 1);
  EXPECT_EQ(reply->pipelines(0).skipped(), 1u);
  EXPECT_EQ(reply->pipelines(0).last_run().job_id(), d1->job_id());
  EXPECT_EQ(reply->pipelines(0).last_run().state(), "running");

  worker.SendResult(d1->attempt_id(), Ok());
  ASSERT_TRUE(worker.ExpectAck());
  AdvanceTo(NextDue(client, "p"));
  auto d2 = worker.ExpectDispatch();
  ASSERT_TRUE(d2);
  EXPECT_NE(d2->job_id(), d1->job_id());
}

// Given `concurrency: queue`, should hold a run that comes due during the
// previous one, fold a further one into it (recorded as skipped), and start
// the held run as soon as the previous one ends, without waiting for a
// fire time.
TEST_F(PipelinesTest, QueueStartsWhenPreviousEnds) {
  Write("q.yaml", Pipeline("q", "@every 1m", "concurrency: queue\n"));
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 4);
  FakeClient& client = AddClient();

  AdvanceTo(NextDue(client, "q"));
  auto d1 = worker.ExpectDispatch();
  ASSERT_TRUE(d1);
  const WallTime queued_due = NextDue(client, "q");
  AdvanceTo(queued_due);
  AdvanceTo(NextDue(client, "q"));
  Sync();
  ExpectNothingQueued(worker, "the worker while a run waits");
  auto reply = List(client);
  ASSERT_TRUE(reply && reply->pipelines_size() == 1);
  ASSERT_TRUE(reply->pipelines(0).has_queued());
  EXPECT_EQ(reply->pipelines(0).queued().state(), "queued");
  EXPECT_EQ(reply->pipelines(0).queued().due_unix_ms(), ToUnixMillis(queued_due));
  EXPECT_EQ(reply->pipelines(0).skipped(), 1u);

  worker.SendResult(d1->attempt_id(), Ok());
  ASSERT_TRUE(worker.ExpectAck());
  auto d2 = worker.ExpectDispatch();
  ASSERT_TRUE(d2);
  EXPECT_NE(d2->job_id(), d1->job_id());
  const store::PipelineHistory h = History("q");
  ASSERT_TRUE(h.last_started);
  EXPECT_EQ(h.last_started->job_id, d2->job_id());
  EXPECT_EQ(h.last_started->due_ms, ToUnixMillis(queued_due));
  EXPECT_FALSE(h.queued);
}

// Given `concurrency: replace`, should cancel the running run's attempt
// when the next comes due and start the new run; the old job ends
// cancelled.
TEST_F(PipelinesTest, ReplaceCancelsRunning) {
  Write("r.yaml", Pipeline("r", "@every 1m", "concurrency: replace\n"));
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 4);
  FakeClient& client = AddClient();

  AdvanceTo(NextDue(client, "r"));
  auto d1 = worker.ExpectDispatch();
  ASSERT_TRUE(d1);
  AdvanceTo(NextDue(client, "r"));
  auto cancel = worker.ExpectCancel();
  ASSERT_TRUE(cancel);
  EXPECT_THAT(*cancel, ElementsAre(d1->attempt_id()));
  auto d2 = worker.ExpectDispatch();
  ASSERT_TRUE(d2);
  EXPECT_NE(d2->job_id(), d1->job_id());
  worker.SendResult(d1->attempt_id(), testing::Cancelled());
  ASSERT_TRUE(worker.ExpectAck());
  Sync();
  EXPECT_EQ(JobState(d1->job_id()), "cancelled");
  EXPECT_EQ(History("r").last_started->job_id, d2->job_id());
}

// Given a pipeline that ran, then a coordinator down across several fire
// times: without catchup the restarted coordinator starts nothing until
// the next fire time; with `catchup: true` it starts the last missed run
// at once (one, however many were missed).
TEST_F(PipelinesTest, CatchupAfterDowntime) {
  Write("plain.yaml", Pipeline("plain", "*/10 * * * *"));
  Write("eager.yaml", Pipeline("eager", "*/10 * * * *", "catchup: true\n"));
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  {
    FakeWorker& worker = AddWorker("w1", 4);
    FakeClient& client = AddClient();
    AdvanceTo(NextDue(client, "plain"));
    // Both come due at once: two jobs, dispatched in one turn or two.
    std::vector<uint64_t> ids;
    for (int i = 0; i < 2; ++i) {
      auto d = worker.ExpectDispatch();
      ASSERT_TRUE(d);
      ids.push_back(d->attempt_id());
    }
    for (uint64_t id : ids) worker.SendResult(id, Ok());
    size_t acked = 0;
    while (acked < ids.size()) {
      auto ack = worker.ExpectAck();
      ASSERT_TRUE(ack);
      acked += ack->size();
    }
  }
  const int64_t ran = History("eager").last_due_ms;
  ASSERT_GT(ran, 0);
  StopCoordinator();
  // Down for 35 minutes: three fire times missed, the last 30 min after.
  clock_.Advance(std::chrono::minutes(35));
  workers_.clear();
  clients_.clear();
  ASSERT_NO_FATAL_FAILURE(RestartCoordinator());
  FakeWorker& worker = AddWorker("w2", 4, "session-2");
  auto d = worker.ExpectDispatch();
  ASSERT_TRUE(d);
  auto job = Reader().GetJob(d->job_id());
  ASSERT_TRUE(job.ok() && *job);
  EXPECT_EQ((*job)->name, "eager");
  Sync();
  ExpectNothingQueued(worker, "the worker after the one catchup run");
  const store::PipelineHistory eager = History("eager");
  ASSERT_TRUE(eager.last_started);
  EXPECT_EQ(eager.last_started->trigger, "catchup");
  EXPECT_EQ(eager.last_started->due_ms, ran + Ms(1800));
  EXPECT_EQ(History("plain").last_due_ms, ran);

  FakeClient& client = AddClient();
  auto reply = List(client);
  ASSERT_TRUE(reply);
  const wire::PipelineInfo* plain = Find(*reply, "plain");
  ASSERT_NE(plain, nullptr);
  EXPECT_EQ(plain->next_unix_ms(0), ran + Ms(2400));
}

// Given `30 2 * * *` in Europe/Berlin, should run once at the instant of the
// spring-forward jump (02:30 does not exist on 2027-03-28: 01:00 UTC) and
// once at the first 02:30 of the fall-back night (2026-10-25, 00:30 UTC),
// not at the second (01:30 UTC), as Vixie cron does.
TEST_F(PipelinesTest, DaylightSavingInBerlin) {
  Write("nightly.yaml", Pipeline("nightly", "30 2 * * *", "timezone: Europe/Berlin\n"));
  // w1 outlives the night (a silent worker is lost after liveness seconds).
  options_.liveness = 100000;
  // Start the evening before the fall-back night.
  clock_.Advance(
      std::chrono::duration_cast<Duration>(Unix(1792843200) - clock_.WallNow()));
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 4);
  FakeClient& client = AddClient();
  auto reply = List(client);
  ASSERT_TRUE(reply && reply->pipelines_size() == 1);
  EXPECT_THAT(reply->pipelines(0).next_unix_ms(),
              ElementsAre(Ms(1792888200), Ms(1792888200 + 86400 + 3600),
                          Ms(1792888200 + 2 * 86400 + 3600)));

  AdvanceTo(Unix(1792888200));  // 02:30 CEST, the first one
  auto d = worker.ExpectDispatch();
  ASSERT_TRUE(d);
  worker.SendResult(d->attempt_id(), Ok());
  ASSERT_TRUE(worker.ExpectAck());
  AdvanceTo(Unix(1792891800));  // 02:30 CET, the repeated one
  Sync();
  ExpectNothingQueued(worker, "the worker at the repeated 02:30");
  EXPECT_EQ(NextDue(client, "nightly"), Unix(1792978200));

  // On to the eve of the spring-forward night, months later (w1, silent
  // meanwhile, is lost). The runs due in between fire once, late, at the
  // first turn: the one due 2026-10-26, not a burst.
  AdvanceTo(Unix(1806148800));
  Sync();
  FakeWorker& w2 = AddWorker("w2", 4, "session-2");
  auto late = w2.ExpectDispatch();
  ASSERT_TRUE(late);
  w2.SendResult(late->attempt_id(), Ok());
  ASSERT_TRUE(w2.ExpectAck());
  EXPECT_EQ(History("nightly").last_started->due_ms, Ms(1792978200));
  Sync();
  ExpectNothingQueued(w2, "w2 after the one late run");
  EXPECT_EQ(NextDue(client, "nightly"), Unix(1806195600));
  AdvanceTo(Unix(1806195600));  // 03:00 CEST, the instant 02:00 CET became it
  auto spring = w2.ExpectDispatch();
  ASSERT_TRUE(spring);
  const store::PipelineHistory h = History("nightly");
  ASSERT_TRUE(h.last_started);
  EXPECT_EQ(h.last_started->due_ms, Ms(1806195600));
  EXPECT_EQ(NextDue(client, "nightly"), Unix(1806280200));  // 02:30 CEST again
}

// Given a directory with a good and a bad spec, should load the good one
// only; on reload (SIGHUP) should add a new pipeline, keep the previous
// version of one whose file broke (naming FILE:LINE:COL), and then apply
// its fixed version and drop a removed one.
TEST_F(PipelinesTest, ReloadKeepsGoodVersion) {
  Write("a.yaml", Pipeline("a", "0 * * * *"));
  Write("b.yaml",
        "version: 1\nname: b\nschedule: \"0 25 * * *\"\ntasks:\n  x: {run: echo}\n");
  Write("notes.txt", "not a spec");
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeClient& client = AddClient();
  auto reply = List(client);
  ASSERT_TRUE(reply);
  ASSERT_EQ(reply->pipelines_size(), 1);
  EXPECT_EQ(reply->pipelines(0).name(), "a");

  // a.yaml breaks (hour 24), c.yaml appears.
  Write("a.yaml", Pipeline("a", "0 24 * * *"));
  Write("c.yml", Pipeline("c", "@daily"));
  coordinator_->ReloadPipelines();
  Sync();
  reply = List(client);
  ASSERT_TRUE(reply);
  ASSERT_EQ(reply->pipelines_size(), 2);
  const wire::PipelineInfo* a = Find(*reply, "a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->schedule(), "0 * * * *");  // the version loaded before
  EXPECT_THAT(a->error(), HasSubstr((dir_ / "a.yaml").string() + ":3:"));
  EXPECT_THAT(a->error(), HasSubstr("hour"));
  ASSERT_NE(Find(*reply, "c"), nullptr);

  Write("a.yaml", Pipeline("a", "15 * * * *"));
  fs::remove(dir_ / "c.yml");
  coordinator_->ReloadPipelines();
  Sync();
  reply = List(client);
  ASSERT_TRUE(reply);
  ASSERT_EQ(reply->pipelines_size(), 1);
  EXPECT_EQ(reply->pipelines(0).schedule(), "15 * * * *");
  EXPECT_EQ(reply->pipelines(0).error(), "");
  EXPECT_EQ(reply->pipelines(0).next_unix_ms(0) / 1000 % 3600, 15 * 60);
}

// Given a pipeline with the default concurrency, PIPELINE-RUN should start
// a run now (SUBMITTED, trigger manual), refuse a second one while it runs
// (skip) and an unknown name, each with an ERROR saying why.
TEST_F(PipelinesTest, RunNowRespectsConcurrency) {
  Write("p.yaml", Pipeline("p", "@yearly"));
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 4);
  FakeClient& client = AddClient();

  wire::PipelineRun run;
  run.set_name("p");
  auto submitted =
      client.Ask<wire::Submitted>(Command::kPipelineRun, run, Command::kSubmitted);
  ASSERT_TRUE(submitted);
  EXPECT_EQ(submitted->tasks(), 1u);
  auto d = worker.ExpectDispatch();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->job_id(), submitted->job_id());
  EXPECT_EQ(History("p").last_started->trigger, "manual");
  EXPECT_EQ(History("p").last_due_ms, 0);  // a manual run is no fire time

  EXPECT_THAT(client.AskError(Command::kPipelineRun, run),
              HasSubstr("still running job " + d->job_id()));
  run.set_name("nope");
  EXPECT_THAT(client.AskError(Command::kPipelineRun, run),
              HasSubstr("no pipeline 'nope'"));
}

// Given a coordinator without --pipelines, PIPELINES should answer an empty
// list without a directory and PIPELINE-RUN an ERROR naming the flag.
TEST_F(CoordinatorTest, PipelinesWithoutDirectory) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeClient& client = AddClient();
  auto reply = client.Ask<wire::PipelinesReply>(
      Command::kPipelinesRequest, wire::PipelinesRequest(), Command::kPipelinesReply);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->dir(), "");
  EXPECT_EQ(reply->pipelines_size(), 0);
  wire::PipelineRun run;
  run.set_name("p");
  EXPECT_THAT(client.AskError(Command::kPipelineRun, run), HasSubstr("--pipelines DIR"));
}

}  // namespace
}  // namespace drover

// Protocol tests of the coordinator's placement: `on:` labels, `slots:`,
// least-loaded choice, priorities between jobs, and the pending reason of a
// task no worker can take. The fixture is coordinator_fixture.h.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <tuple>
#include <vector>

#include "backends/fork/fork.pb.h"
#include "tests/integration/coordinator_fixture.h"

namespace drover {
namespace {

using ::testing::ElementsAre;
using testing::Body;
using testing::Command;
using testing::CoordinatorTest;
using testing::FakeClient;
using testing::FakeWorker;
using testing::IndependentTasks;
using testing::Ok;

// The HELLO of a worker "pre" with 1 spawn slot and a prefetch of 1.
wire::Hello PrefetchingHello() {
  wire::Hello hello;
  hello.set_name("pre");
  hello.set_session("s-pre");
  (*hello.mutable_slots())["spawn"] = 1;
  (*hello.mutable_prefetch())["spawn"] = 1;
  return hello;
}

// The same, saying Hello.reports_starts (but not takes_recall).
wire::Hello ReportingHello() {
  wire::Hello hello = PrefetchingHello();
  hello.set_reports_starts(true);
  return hello;
}

std::map<std::string, std::string> PendingReasons(const wire::StatusReply& status) {
  std::map<std::string, std::string> out;
  for (const auto& t : status.jobs(0).tasks()) {
    if (t.state() == "ready") out[t.name()] = t.pending_reason();
  }
  return out;
}

// Given workers labelled zone=a and zone=b and tasks on each zone plus one
// on zone=c, should send each task to the worker of its zone, keep the
// zone=c task pending with the reason naming the label, and not let it hold
// up the tasks behind it.
TEST_F(CoordinatorTest, LabelsChooseTheWorkerAndAMissingLabelIsAReason) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  workers_.push_back(std::make_unique<FakeWorker>(context_, endpoint_, "wa"));
  FakeWorker& wa = *workers_.back();
  ASSERT_TRUE(wa.RegisterWith("sa", {{"spawn", 4}}, {{"zone", "a"}, {"disk", "ssd"}}));
  workers_.push_back(std::make_unique<FakeWorker>(context_, endpoint_, "wb"));
  FakeWorker& wb = *workers_.back();
  ASSERT_TRUE(wb.RegisterWith("sb", {{"spawn", 4}}, {{"zone", "b"}}));

  FakeClient& client = AddClient();
  auto submitted = client.Submit(
      "version: 1\nname: zones\ntasks:\n"
      "  first: {run: echo c, on: {zone: c}}\n"
      "  in-a: {run: echo a, on: {zone: a, disk: ssd}}\n"
      "  in-b: {run: echo b, on: {zone: b}}\n"
      "  both: {run: echo x, on: {zone: b, disk: ssd}}\n"
      "  fork: {backend: fork, pool: p, message: 1}\n"
      "pools:\n  p: {command: [cat]}\n");
  ASSERT_TRUE(submitted);
  auto da = wa.ExpectDispatch();
  auto db = wb.ExpectDispatch();
  ASSERT_TRUE(da && db);
  EXPECT_EQ(da->task(), "in-a");
  EXPECT_EQ(db->task(), "in-b");
  Sync();
  ExpectNothingQueued(wa, "worker zone=a");
  ExpectNothingQueued(wb, "worker zone=b");

  // Another client: the submitting one also receives the job's events.
  auto status = AddClient().Status(submitted->job_id());
  ASSERT_TRUE(status);
  EXPECT_EQ(PendingReasons(*status),
            (std::map<std::string, std::string>{
                {"first", "no worker with label zone=c offers backend spawn"},
                {"both", "no worker with all of the labels disk=ssd,zone=b offers backend "
                         "spawn"},
                {"fork", "no live worker offers backend fork"}}));

  // A worker of zone c arrives: the waiting task goes to it.
  workers_.push_back(std::make_unique<FakeWorker>(context_, endpoint_, "wc"));
  FakeWorker& wc = *workers_.back();
  ASSERT_TRUE(wc.RegisterWith("sc", {{"spawn", 1}}, {{"zone", "c"}}));
  auto dc = wc.ExpectDispatch();
  ASSERT_TRUE(dc);
  EXPECT_EQ(dc->task(), "first");
}

// Given a fork task naming a pool its job does not declare (a workers'
// configuration pool), a worker without that pool and, later, one that
// lists it in HELLO, should keep the task pending with a reason naming the
// pool, run the job's own-pool task on either, then place the first on the
// worker offering the pool; WORKERS shows each worker's pools.
TEST_F(CoordinatorTest, WorkerPoolTaskGoesOnlyToAWorkerOfferingIt) {
  options_.spec_options.undeclared_pools = true;  // as `drover coordinator` sets it
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  workers_.push_back(std::make_unique<FakeWorker>(context_, endpoint_, "plain"));
  FakeWorker& plain = *workers_.back();
  ASSERT_TRUE(plain.RegisterWith("s-plain", {{"fork", 2}}));
  FakeClient& client = AddClient();
  auto job = client.Submit(
      "version: 1\nname: pools\ntasks:\n"
      "  theirs: {backend: fork, pool: py, message: 1}\n"
      "  ours: {backend: fork, pool: own, message: 2}\n"
      "pools:\n  own: {command: [cat]}\n");
  ASSERT_TRUE(job);
  auto ours = plain.ExpectDispatch();
  ASSERT_TRUE(ours);
  EXPECT_EQ(ours->task(), "ours");
  Sync();
  ExpectNothingQueued(plain, "the worker without pool py");
  auto status = client.Status(job->job_id());
  ASSERT_TRUE(status);
  EXPECT_EQ(PendingReasons(*status),
            (std::map<std::string, std::string>{
                {"theirs", "no live worker offers pool 'py' (the job does not declare it: it "
                           "must come from a worker's configuration)"}}));

  workers_.push_back(std::make_unique<FakeWorker>(context_, endpoint_, "pooled"));
  FakeWorker& pooled = *workers_.back();
  wire::Hello hello;
  hello.set_name("pooled");
  hello.set_session("s-pooled");
  (*hello.mutable_slots())["fork"] = 2;
  hello.add_pools("py");
  pooled.Send(Command::kHello, hello);
  ASSERT_TRUE(pooled.Expect(Command::kWelcome));
  auto theirs = pooled.ExpectDispatch();
  ASSERT_TRUE(theirs);
  EXPECT_EQ(theirs->task(), "theirs");
  fork::ForkTask task;  // the payload, the fork backend's message
  ASSERT_TRUE(task.ParseFromString(theirs->payload()));
  EXPECT_EQ(task.pool(), "py");
  EXPECT_FALSE(task.has_pool_spec());

  auto workers = client.Workers();
  ASSERT_TRUE(workers);
  std::map<std::string, std::vector<std::string>> pools;
  for (const auto& w : workers->workers()) {
    pools[w.name()].assign(w.pools().begin(), w.pools().end());
  }
  EXPECT_EQ(pools, (std::map<std::string, std::vector<std::string>>{
                       {"plain", {}}, {"pooled", {"py"}}}));
}

// Given a worker with 4 spawn slots and tasks asking for 3, 2 and 8 slots,
// should send `slots` in DISPATCH, hold that many slots per attempt (so the
// 2-slot task waits while the 3-slot one runs), and give the 8-slot task
// the reason that no worker is large enough.
TEST_F(CoordinatorTest, TasksHoldTheirSlotCount) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 4);
  FakeClient& client = AddClient();
  auto submitted = client.Submit(
      "version: 1\nname: slots\ntasks:\n"
      "  big: {run: echo big, slots: 3}\n"
      "  mid: {run: echo mid, slots: 2}\n"
      "  huge: {run: echo huge, slots: 8}\n");
  ASSERT_TRUE(submitted);
  auto big = worker.ExpectDispatch();
  ASSERT_TRUE(big);
  EXPECT_EQ(big->task(), "big");
  EXPECT_EQ(big->slots(), 3u);
  Sync();
  ExpectNothingQueued(worker, "a worker with 1 of 4 slots free");
  // Another client: the submitting one also receives the job's events.
  auto status = AddClient().Status(submitted->job_id());
  ASSERT_TRUE(status);
  EXPECT_EQ(PendingReasons(*status),
            (std::map<std::string, std::string>{
                {"mid", "waiting for 2 free spawn slots on one worker"},
                {"huge", "needs 8 spawn slots, largest worker has 4"}}));
  auto workers = client.Workers();
  ASSERT_TRUE(workers);
  EXPECT_EQ(workers->workers(0).slots().at("spawn").used(), 3u);

  worker.SendResult(big->attempt_id(), Ok());
  ASSERT_TRUE(worker.ExpectAck());
  auto mid = worker.ExpectDispatch();
  ASSERT_TRUE(mid);
  EXPECT_EQ(mid->task(), "mid");
  EXPECT_EQ(mid->slots(), 2u);
}

// Given a worker with 1 spawn slot and a prefetch of 1 (Hello.prefetch)
// and a plain worker with 1 slot, should fill every worker's own slots
// first, then place one more on the prefetching worker (its slot plus its
// prefetch), no more, show the prefetch in WORKERS, and place again when a
// result frees room.
TEST_F(CoordinatorTest, PrefetchPlacesBeyondSlotsOnlyAfterEveryFreeSlot) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  wire::Hello hello = PrefetchingHello();
  (*hello.mutable_prefetch())["threads"] = 4;  // not offered: ignored
  FakeWorker& pre = AddWorkerWithHello(hello);
  FakeWorker& plain = AddWorker("plain", 1, "s-plain");
  FakeClient& client = AddClient();
  ASSERT_TRUE(client.Submit(IndependentTasks("prefetched", 4)));

  auto first = pre.ExpectDispatch();
  ASSERT_TRUE(first);
  ASSERT_TRUE(plain.ExpectDispatch());
  auto second = pre.ExpectDispatch();
  ASSERT_TRUE(second);
  Sync();
  ExpectNothingQueued(pre, "a worker with its slot and its prefetch used");
  ExpectNothingQueued(plain, "a full worker without prefetch");

  auto workers = client.Workers();
  ASSERT_TRUE(workers);
  std::map<std::string, std::tuple<uint32_t, uint32_t, uint32_t>> slots;
  for (const auto& w : workers->workers()) {
    const auto& s = w.slots().at("spawn");
    slots[w.name()] = {s.total(), s.used(), s.prefetch()};
    EXPECT_EQ(w.slots().count("threads"), 0u) << w.name();
  }
  EXPECT_EQ(slots, (std::map<std::string, std::tuple<uint32_t, uint32_t, uint32_t>>{
                       {"pre", {1, 2, 1}}, {"plain", {1, 1, 0}}}));

  pre.SendResult(first->attempt_id(), Ok());
  ASSERT_TRUE(pre.ExpectAck());
  auto fourth = pre.ExpectDispatch();
  ASSERT_TRUE(fourth);
  EXPECT_NE(fourth->attempt_id(), second->attempt_id());
}

// Given a worker with 1 spawn slot offering a prefetch of 3, should use
// only 1 of it until an attempt has ended there; after a short one (1 ms),
// all 3 (WORKERS says so); after a long one (2 s), 1 again: nothing more is
// placed until what it holds falls under its slot plus 1.
TEST_F(CoordinatorTest, PrefetchBeyondTheSlotsFollowsHowLongTheTasksRun) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  wire::Hello hello = PrefetchingHello();
  (*hello.mutable_prefetch())["spawn"] = 3;
  FakeWorker& pre = AddWorkerWithHello(hello);
  FakeClient& client = AddClient();
  ASSERT_TRUE(client.Submit(IndependentTasks("grant", 12)));
  // Another client: the submitting one also receives the job's events.
  FakeClient& asker = AddClient();
  auto granted = [&] {
    auto reply = asker.Workers();
    if (!reply || reply->workers_size() != 1) {
      ADD_FAILURE() << "no WORKERS reply with one worker";
      return uint32_t{0};
    }
    return reply->workers(0).slots().at("spawn").prefetch();
  };
  auto ended = [&](uint64_t id, std::chrono::milliseconds wall) {
    AttemptOutcome o = Ok();
    o.wall = wall;
    pre.SendResult(id, o);
    ASSERT_TRUE(pre.ExpectAck());
  };

  std::vector<uint64_t> held;
  for (int i = 0; i < 2; ++i) {
    auto d = pre.ExpectDispatch();
    ASSERT_TRUE(d);
    held.push_back(d->attempt_id());
  }
  Sync();
  ExpectNothingQueued(pre, "a worker of unknown tasks: its slot and 1 of its prefetch");
  EXPECT_EQ(granted(), 1u);

  // A short task: its slot plus all 3, so 3 more for the 1 that ended.
  ASSERT_NO_FATAL_FAILURE(ended(held[0], std::chrono::milliseconds(1)));
  held.erase(held.begin());
  for (int i = 0; i < 3; ++i) {
    auto d = pre.ExpectDispatch();
    ASSERT_TRUE(d) << "dispatch " << i << " of 3 after a short task";
    held.push_back(d->attempt_id());
  }
  Sync();
  ExpectNothingQueued(pre, "a worker of short tasks holding its slot and all 3");
  EXPECT_EQ(granted(), 3u);

  // A long one: back to its slot plus 1. It holds 3, so nothing comes
  // until 2 more have ended (long too), and then 1.
  ASSERT_NO_FATAL_FAILURE(ended(held[0], std::chrono::seconds(2)));
  Sync();
  ExpectNothingQueued(pre, "a worker holding 3 after a long task (room for 2)");
  EXPECT_EQ(granted(), 1u);
  ASSERT_NO_FATAL_FAILURE(ended(held[1], std::chrono::seconds(2)));
  Sync();
  ExpectNothingQueued(pre, "a worker holding 2 after long tasks (room for 2)");
  ASSERT_NO_FATAL_FAILURE(ended(held[2], std::chrono::seconds(2)));
  ASSERT_TRUE(pre.ExpectDispatch());
  Sync();
  ExpectNothingQueued(pre, "a worker of long tasks holding its slot and 1");
}

// Given a worker of 1 spawn slot holding 100 attempts of tasks that run
// 4 ms (396 ms of them waiting beyond its slot), when two RESULTs come back
// to back, should hold the turn the first one wakes (for half that) and
// acknowledge both in one ACK; and hold no turn while how long its tasks
// run is not known yet (core/coordinator/turn_hold.h).
// Given a worker whose backlog holds the coordinator's turns and no timer
// due for an hour, a STATUS that the store reader answers (it wakes the
// loop through its wake fd, during a hold) should still reach the client:
// the wake-up that ends a hold is not lost with it.
TEST_F(CoordinatorTest, AReadAnsweredDuringAHeldTurnReachesTheClient) {
  options_.max_turn_hold = std::chrono::seconds(10);    // the backlog decides
  options_.heartbeat_interval = std::chrono::hours(1);  // no timer wakes the loop
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  wire::Hello hello = PrefetchingHello();
  (*hello.mutable_prefetch())["spawn"] = 99;
  FakeWorker& pre = AddWorkerWithHello(hello);
  FakeClient& client = AddClient();
  auto job = client.Submit(IndependentTasks("held-read", 120));
  ASSERT_TRUE(job);
  auto d = pre.ExpectDispatch();
  ASSERT_TRUE(d);
  ASSERT_TRUE(pre.ExpectDispatch());
  AttemptOutcome four_ms = Ok();
  four_ms.wall = std::chrono::milliseconds(4);
  pre.SendResult(d->attempt_id(), four_ms);  // a known length: the backlog holds turns
  ASSERT_TRUE(pre.ExpectAck());
  for (int i = 0; i < 99; ++i) ASSERT_TRUE(pre.ExpectDispatch()) << "dispatch " << i;
  const uint64_t answered = Stat(&CoordinatorStats::reads_answered);
  FakeClient& reader = AddClient();  // `client` also gets the job's events
  auto status = reader.Status(job->job_id(), /*tasks=*/true);
  ASSERT_TRUE(status) << "the reader's answer never left the loop";
  ASSERT_EQ(status->jobs_size(), 1);
  EXPECT_EQ(status->jobs(0).state(), "running");
  EXPECT_EQ(Stat(&CoordinatorStats::reads_answered), answered + 1);
}

TEST_F(CoordinatorTest, ATurnIsHeldForMoreResultsWhileTheWorkerHasABacklog) {
  options_.max_turn_hold = std::chrono::seconds(10);  // the backlog decides
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  wire::Hello hello = PrefetchingHello();
  (*hello.mutable_prefetch())["spawn"] = 99;
  FakeWorker& pre = AddWorkerWithHello(hello);
  FakeClient& client = AddClient();
  ASSERT_TRUE(client.Submit(IndependentTasks("held", 120)));
  std::vector<uint64_t> held;
  auto take = [&](int n) {
    for (int i = 0; i < n; ++i) {
      auto d = pre.ExpectDispatch();
      ASSERT_TRUE(d) << "dispatch " << i << " of " << n;
      held.push_back(d->attempt_id());
    }
  };
  ASSERT_NO_FATAL_FAILURE(take(2));  // its slot and 1 until a task ended
  AttemptOutcome four_ms = Ok();
  four_ms.wall = std::chrono::milliseconds(4);
  pre.SendResult(held[0], four_ms);
  auto first = pre.ExpectAck();
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, std::vector<uint64_t>{held[0]});
  EXPECT_EQ(Stat(&CoordinatorStats::turns_held), 0u)
      << "a turn held before any task's length was known";
  held.erase(held.begin());
  ASSERT_NO_FATAL_FAILURE(take(99));  // short tasks: its slot and all 99
  Sync();
  ExpectNothingQueued(pre, "a worker holding its slot and all 99");

  const uint64_t before = Stat(&CoordinatorStats::turns_held);
  pre.SendResult(held[0], four_ms);
  pre.SendResult(held[1], four_ms);
  auto both = pre.ExpectAck();
  ASSERT_TRUE(both);
  EXPECT_EQ(*both, (std::vector<uint64_t>{held[0], held[1]}))
      << "the first RESULT's turn was not held for the second";
  EXPECT_GT(Stat(&CoordinatorStats::turns_held), before);
}

// Given a prefetching worker (1 spawn slot, prefetch 1, Hello.takes_recall)
// holding a running attempt and a waiting one, when a worker with a free
// slot registers, should recall the waiting one (Cancel.recall, nothing in
// attempt_ids), place the task on the free worker once it comes back
// unstarted, without counting that attempt against retries: 0, and recall
// nothing more.
TEST_F(CoordinatorTest, AWaitingAttemptIsRecalledForAFreeSlotElsewhere) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  wire::Hello hello = PrefetchingHello();
  hello.set_takes_recall(true);
  FakeWorker& pre = AddWorkerWithHello(hello);
  FakeClient& client = AddClient();
  auto submitted = client.Submit(IndependentTasks("recalled", 2));
  ASSERT_TRUE(submitted);
  auto running = pre.ExpectDispatch();
  auto waiting = pre.ExpectDispatch();
  ASSERT_TRUE(running && waiting);
  Sync();
  ExpectNothingQueued(pre, "the only worker, its slot and prefetch used");

  FakeWorker& idle = AddWorker("idle", 1, "s-idle");
  auto m = pre.Expect(Command::kCancel);
  ASSERT_TRUE(m);
  const auto recall = testing::Body<wire::Cancel>(*m);
  EXPECT_EQ(recall.attempt_ids_size(), 0);
  ASSERT_EQ(recall.recall_size(), 1);
  EXPECT_EQ(recall.recall(0), waiting->attempt_id());

  AttemptOutcome back;
  back.reason = FailureReason::kWorkerLost;
  back.message = "handed back before it started";
  back.not_started = true;
  pre.SendResult(waiting->attempt_id(), back);
  ASSERT_TRUE(pre.ExpectAck());
  auto moved = idle.ExpectDispatch();
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->task(), waiting->task());
  EXPECT_NE(moved->attempt_id(), waiting->attempt_id());
  EXPECT_EQ(moved->attempt(), waiting->attempt() + 1);
  Sync();
  ExpectNothingQueued(pre, "a worker whose waiting attempt was recalled");
  EXPECT_EQ(Stat(&CoordinatorStats::recalled), 1u);

  // retries: 0, yet the task runs to success: the recall spent nothing.
  idle.SendResult(moved->attempt_id(), Ok());
  ASSERT_TRUE(idle.ExpectAck());
  pre.SendResult(running->attempt_id(), Ok());
  ASSERT_TRUE(pre.ExpectAck());
  // Another client: the submitting one also receives the job's events.
  auto status = AddClient().Status(submitted->job_id());
  ASSERT_TRUE(status);
  for (const auto& t : status->jobs(0).tasks())
    EXPECT_EQ(t.state(), "succeeded") << t.name();
}

// Given a prefetching worker that does not say Hello.takes_recall, should
// never recall its waiting attempt, even with a free slot elsewhere.
TEST_F(CoordinatorTest, AWorkerWithoutTakesRecallIsNeverRecalled) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& pre = AddWorkerWithHello(PrefetchingHello());
  FakeClient& client = AddClient();
  ASSERT_TRUE(client.Submit(IndependentTasks("kept", 2)));
  ASSERT_TRUE(pre.ExpectDispatch());
  ASSERT_TRUE(pre.ExpectDispatch());
  AddWorker("idle", 1, "s-idle");
  Sync();
  ExpectNothingQueued(pre, "a prefetching worker without takes_recall");
}

// A prefetching worker "pre" that reports starts (Hello.reports_starts),
// holding task t1 running and t2 waiting behind it, and a plain worker
// "idle" with a free slot; retries: 0. (pre does not take recalls, so t2
// stays on it until it is lost.)
struct HeldByAReportingWorker {
  FakeWorker* pre = nullptr;
  FakeWorker* idle = nullptr;
  std::string job;
  wire::Dispatch running;
  wire::Dispatch waiting;
};

class ReportedStartsTest : public CoordinatorTest {
 protected:
  void Hold(HeldByAReportingWorker* h) {
    h->pre = &AddWorkerWithHello(ReportingHello());
    FakeClient& client = AddClient();
    auto submitted = client.Submit(IndependentTasks("held", 2));
    ASSERT_TRUE(submitted);
    h->job = submitted->job_id();
    auto running = h->pre->ExpectDispatch();
    auto waiting = h->pre->ExpectDispatch();
    ASSERT_TRUE(running && waiting);
    h->running = *running;
    h->waiting = *waiting;
    h->idle = &AddWorker("idle", 1, "s-idle");
    Sync();
    ExpectNothingQueued(*h->idle, "a free worker while every task is placed");
  }
};

// Given a prefetching worker that reports starts and is lost (DISCONNECT,
// not drained) with one attempt running and one waiting, should fail the
// running one as worker-lost, and place the waiting one again on another
// worker without spending a retry (retries: 0, yet it succeeds), its lost
// attempt kept in the history as worker-lost and "had not started".
TEST_F(ReportedStartsTest, AWaitingAttemptOfALostWorkerIsPlacedAgainWithoutARetry) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  HeldByAReportingWorker h;
  ASSERT_NO_FATAL_FAILURE(Hold(&h));

  h.pre->SendDisconnect(/*drained=*/false, "crashed");
  auto moved = h.idle->ExpectDispatch();
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->task(), h.waiting.task());
  EXPECT_EQ(moved->attempt(), h.waiting.attempt() + 1);
  h.idle->SendResult(moved->attempt_id(), Ok());
  ASSERT_TRUE(h.idle->ExpectAck());
  Sync();
  ExpectNothingQueued(*h.idle, "a worker whose one task ended");

  EXPECT_EQ(Task(h.job, h.running.task()).state, "failed");
  EXPECT_EQ(Task(h.job, h.running.task()).reason, "worker-lost");
  EXPECT_EQ(Task(h.job, h.waiting.task()).state, "succeeded");
  const auto attempts = Attempts(h.job, h.waiting.task());
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0].outcome.reason, FailureReason::kWorkerLost);
  EXPECT_THAT(attempts[0].outcome.message, ::testing::HasSubstr("had not started"));
  EXPECT_EQ(attempts[1].outcome.reason, FailureReason::kNone);
}

// Given the same, but the worker reported the waiting attempt's start
// (Heartbeat.started) before it was lost, should count both attempts: with
// retries: 0 both tasks fail, and the free worker gets nothing.
TEST_F(ReportedStartsTest, AnAttemptReportedStartedIsCountedWhenItsWorkerIsLost) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  HeldByAReportingWorker h;
  ASSERT_NO_FATAL_FAILURE(Hold(&h));

  wire::Heartbeat started;
  started.add_started(h.waiting.attempt_id());
  started.add_started(987654321);  // not its own: ignored
  h.pre->Send(Command::kHeartbeat, started);
  h.pre->SendDisconnect(/*drained=*/false, "crashed");
  Sync();
  ExpectNothingQueued(*h.idle, "a free worker, after a loss that spent the retries");
  EXPECT_EQ(Task(h.job, h.running.task()).state, "failed");
  EXPECT_EQ(Task(h.job, h.waiting.task()).state, "failed");
  EXPECT_EQ(Task(h.job, h.waiting.task()).reason, "worker-lost");
}

// Given the same, but the start reported on the RESULT of the running
// attempt (Result.started, which the WELCOME says the coordinator takes):
// the running one succeeds, and once the worker is lost the started one
// counts, so with retries: 0 it fails and the free worker gets nothing.
TEST_F(ReportedStartsTest, AStartReportedOnAResultIsCountedWhenItsWorkerIsLost) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  HeldByAReportingWorker h;
  ASSERT_NO_FATAL_FAILURE(Hold(&h));

  wire::Result ended = protocol::OutcomeToWire(h.running.attempt_id(), "pre", Ok());
  ended.add_started(h.waiting.attempt_id());
  ended.add_started(987654321);  // not its own: ignored
  h.pre->Send(Command::kResult, ended, {"", ""});
  ASSERT_TRUE(h.pre->ExpectAck());
  h.pre->SendDisconnect(/*drained=*/false, "crashed");
  Sync();
  ExpectNothingQueued(*h.idle, "a free worker, after a loss that spent the retries");
  EXPECT_EQ(Task(h.job, h.running.task()).state, "succeeded");
  EXPECT_EQ(Task(h.job, h.waiting.task()).state, "failed");
  EXPECT_EQ(Task(h.job, h.waiting.task()).reason, "worker-lost");
}

// Given the same, WORKERS should show the waiting attempt's slot in
// `waiting` (of `used`), and no longer once the worker reports its start.
TEST_F(ReportedStartsTest, WorkersShowTheSlotsOfWaitingAttempts) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  HeldByAReportingWorker h;
  ASSERT_NO_FATAL_FAILURE(Hold(&h));
  auto spawn_slots = [&] {
    auto reply = AddClient().Workers();
    if (reply) {
      for (const auto& w : reply->workers()) {
        if (w.name() == "pre") return w.slots().at("spawn");
      }
    }
    ADD_FAILURE() << "no worker pre";
    return wire::BackendSlots();
  };
  wire::BackendSlots s = spawn_slots();
  EXPECT_EQ(s.used(), 2u);
  EXPECT_EQ(s.waiting(), 1u);

  wire::Heartbeat started;
  started.add_started(h.waiting.attempt_id());
  h.pre->Send(Command::kHeartbeat, started);
  Sync();
  s = spawn_slots();
  EXPECT_EQ(s.used(), 2u);
  EXPECT_EQ(s.waiting(), 0u);
}

// Given the same, STATUS should show the waiting task as running and
// waiting_in_worker (the one that runs: not), and no longer once the worker
// reports its start.
TEST_F(ReportedStartsTest, StatusShowsATaskWaitingInItsWorker) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  HeldByAReportingWorker h;
  ASSERT_NO_FATAL_FAILURE(Hold(&h));
  FakeClient& asker = AddClient();
  auto waiting_in_worker = [&](const std::string& task) {
    auto reply = asker.Status(h.job);
    if (reply && reply->jobs_size() == 1) {
      for (const auto& t : reply->jobs(0).tasks()) {
        if (t.name() != task) continue;
        EXPECT_EQ(t.state(), "running") << task;
        EXPECT_EQ(t.worker(), "pre") << task;
        return t.waiting_in_worker();
      }
    }
    ADD_FAILURE() << "no task " << task << " in the job's status";
    return false;
  };
  EXPECT_TRUE(waiting_in_worker(h.waiting.task()));
  EXPECT_FALSE(waiting_in_worker(h.running.task()));

  wire::Heartbeat started;
  started.add_started(h.waiting.attempt_id());
  h.pre->Send(Command::kHeartbeat, started);
  Sync();
  EXPECT_FALSE(waiting_in_worker(h.waiting.task()));
}

// Given the same worker registering again on a new connection (same
// session), whose HELLO lists both attempts running and none in
// Hello.waiting (its start notice went with the old connection), should
// believe the HELLO: lost after that, both attempts count.
TEST_F(ReportedStartsTest, AHelloAgainSaysWhichAttemptsStillWait) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  HeldByAReportingWorker h;
  ASSERT_NO_FATAL_FAILURE(Hold(&h));

  wire::Hello again = ReportingHello();
  again.add_running(h.running.attempt_id());
  again.add_running(h.waiting.attempt_id());
  FakeWorker& reconnected = AddWorkerWithHello(again);
  reconnected.SendDisconnect(/*drained=*/false, "crashed");
  Sync();
  ExpectNothingQueued(*h.idle, "a free worker, after a loss that spent the retries");
  EXPECT_EQ(Task(h.job, h.waiting.task()).state, "failed");
}

// Given two idle workers with 2 slots each, should place two tasks one on
// each (least loaded first), not both on one.
TEST_F(CoordinatorTest, PlacementPrefersTheLeastLoadedWorker) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& w1 = AddWorker("w1", 2, "s1");
  FakeWorker& w2 = AddWorker("w2", 2, "s2");
  FakeClient& client = AddClient();
  ASSERT_TRUE(client.Submit(IndependentTasks("spread", 2)));
  ASSERT_TRUE(w1.ExpectDispatch());
  ASSERT_TRUE(w2.ExpectDispatch());
}

// Given a busy single-slot worker and jobs submitted as low A, low B, high
// C, should dispatch C first, then A, then B (priority, then FIFO).
TEST_F(CoordinatorTest, HigherPriorityFirstThenSubmissionOrder) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& client = AddClient();
  ASSERT_TRUE(client.Submit(IndependentTasks("busy", 1)));
  auto busy = worker.ExpectDispatch();
  ASSERT_TRUE(busy);
  std::map<std::string, std::string> job_name;
  for (const auto& [name, priority] :
       std::vector<std::pair<std::string, int>>{{"low-a", 0}, {"low-b", 0}, {"high-c", 5}}) {
    auto s = client.Submit(IndependentTasks(name, 1, "priority: " + std::to_string(priority) +
                                                         "\n"));
    ASSERT_TRUE(s);
    job_name[s->job_id()] = name;
  }
  std::vector<std::string> order;
  uint64_t running = busy->attempt_id();
  for (int i = 0; i < 3; ++i) {
    worker.SendResult(running, Ok());
    std::optional<wire::Dispatch> d;
    for (int k = 0; k < 3 && !d; ++k) {
      auto m = worker.Next(testing::kDeadline);
      ASSERT_TRUE(m);
      if (m->command == Command::kDispatch) d = Body<wire::Dispatch>(*m);
    }
    ASSERT_TRUE(d);
    order.push_back(job_name[d->job_id()]);
    running = d->attempt_id();
  }
  EXPECT_THAT(order, ElementsAre("high-c", "low-a", "low-b"));
}

}  // namespace
}  // namespace drover

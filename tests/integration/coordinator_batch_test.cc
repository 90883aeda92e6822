// Batches (docs/protocol.md, "Batches"): several attempts in one DISPATCH
// to a worker that takes them, several results in one RESULT to the
// coordinator, and one attempt per message to a worker that did not say it
// takes batches.
#include "tests/integration/coordinator_fixture.h"

namespace drover {
namespace {

using testing::Body;
using testing::Command;
using testing::CoordinatorTest;
using testing::FakeClient;
using testing::FakeWorker;
using testing::IndependentTasks;

// Registers `worker` with `spawn` slots, saying it takes `max_batch`
// attempts per DISPATCH; returns the WELCOME (nullopt when none came).
std::optional<wire::Welcome> RegisterBatching(FakeWorker& worker, uint32_t spawn,
                                              uint32_t max_batch) {
  wire::Hello hello;
  hello.set_name(worker.name());
  hello.set_session("session-1");
  (*hello.mutable_slots())["spawn"] = spawn;
  hello.set_heartbeat_ms(1000);
  hello.set_max_batch(max_batch);
  worker.Send(Command::kHello, hello);
  auto welcome = worker.Expect(Command::kWelcome);
  if (!welcome) return std::nullopt;
  return Body<wire::Welcome>(*welcome);
}

// Every attempt of a DISPATCH: its head, then its `more`.
std::vector<wire::Dispatch> Unbatch(wire::Dispatch d) {
  std::vector<wire::Dispatch> all;
  auto more = std::move(*d.mutable_more());
  d.clear_more();
  all.push_back(std::move(d));
  for (auto& e : more) all.push_back(std::move(e));
  return all;
}

// Given a worker that takes batches of 8 and 4 ready tasks when it
// registers, should get all 4 in one DISPATCH (no more than its slots), be
// told the coordinator takes batched results, and have one RESULT of 4
// results recorded, each with its own output, and ACKed together.
TEST_F(CoordinatorTest, BatchedDispatchAndResultsAreEachRecorded) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeClient& client = AddClient();
  auto submitted = client.Submit(IndependentTasks("batched", 5));
  ASSERT_TRUE(submitted);
  Sync();
  FakeWorker worker(context_, endpoint_, "w1");
  auto welcome = RegisterBatching(worker, /*spawn=*/4, /*max_batch=*/8);
  ASSERT_TRUE(welcome);
  EXPECT_GT(welcome->max_batch(), 1u);
  EXPECT_TRUE(welcome->takes_result_starts());
  auto d = worker.ExpectDispatch();
  ASSERT_TRUE(d);
  const std::vector<wire::Dispatch> attempts = Unbatch(*d);
  ASSERT_EQ(attempts.size(), 4u);  // its 4 slots, not the 5 ready tasks
  Sync();
  ExpectNothingQueued(worker, "a worker with no free slot");

  // One RESULT: the head's output in the frames, each entry's inline.
  auto result = [&](size_t i) {
    AttemptOutcome o = testing::Ok();
    const std::string out = "out " + attempts[i].task();
    o.out.bytes = out.size();
    wire::Result r = protocol::OutcomeToWire(attempts[i].attempt_id(), "w1", o);
    if (i > 0) r.set_stdout_data(out);
    return r;
  };
  wire::Result batch = result(0);
  for (size_t i = 1; i < attempts.size(); ++i) *batch.add_more() = result(i);
  worker.Send(Command::kResult, batch, {"out " + attempts[0].task(), ""});
  auto acked = worker.ExpectAck();
  ASSERT_TRUE(acked);
  std::vector<uint64_t> want;
  for (const auto& a : attempts) want.push_back(a.attempt_id());
  std::sort(acked->begin(), acked->end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(*acked, want);
  for (const auto& a : attempts) {
    EXPECT_EQ(Task(submitted->job_id(), a.task()).state, "succeeded") << a.task();
    auto log =
        testing::ReadFile(Reader().LogPath(submitted->job_id(), a.task(), 1, false));
    EXPECT_EQ(log.value_or("<none>"), "out " + a.task()) << a.task();
  }

  // The fifth task follows in a DISPATCH of its own.
  auto last = worker.ExpectDispatch();
  ASSERT_TRUE(last);
  EXPECT_EQ(last->more_size(), 0);
  worker.SendResult(last->attempt_id(), testing::Ok());
  auto done = client.WaitJobEvent();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state(), "succeeded");
}

// Given a worker that does not say it takes batches (an older version 2
// worker), should get one attempt per DISPATCH however many are ready.
TEST_F(CoordinatorTest, WorkerWithoutMaxBatchGetsOneAttemptPerDispatch) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeClient& client = AddClient();
  ASSERT_TRUE(client.Submit(IndependentTasks("single", 3)));
  Sync();
  FakeWorker& worker = AddWorker("w1", 3);
  for (int i = 0; i < 3; ++i) {
    auto d = worker.ExpectDispatch();
    ASSERT_TRUE(d) << i;
    EXPECT_EQ(d->more_size(), 0) << i;
  }
}

// Given a RESULT one of whose entries holds results of its own, should drop
// that entry (counted as malformed) and record the others.
TEST_F(CoordinatorTest, NestedResultEntryIsDroppedOthersRecorded) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeClient& client = AddClient();
  auto submitted = client.Submit(IndependentTasks("nested", 2));
  ASSERT_TRUE(submitted);
  Sync();
  FakeWorker worker(context_, endpoint_, "w1");
  ASSERT_TRUE(RegisterBatching(worker, /*spawn=*/2, /*max_batch=*/8));
  auto d = worker.ExpectDispatch();
  ASSERT_TRUE(d);
  const std::vector<wire::Dispatch> attempts = Unbatch(*d);
  ASSERT_EQ(attempts.size(), 2u);
  const uint64_t malformed = Stat(&CoordinatorStats::malformed);
  wire::Result batch =
      protocol::OutcomeToWire(attempts[0].attempt_id(), "w1", testing::Ok());
  wire::Result* bad = batch.add_more();
  *bad = protocol::OutcomeToWire(attempts[1].attempt_id(), "w1", testing::Ok());
  *bad->add_more() =
      protocol::OutcomeToWire(attempts[1].attempt_id(), "w1", testing::Ok());
  worker.Send(Command::kResult, batch, {"", ""});
  auto acked = worker.ExpectAck();
  ASSERT_TRUE(acked);
  EXPECT_EQ(*acked, std::vector<uint64_t>{attempts[0].attempt_id()});
  EXPECT_EQ(Stat(&CoordinatorStats::malformed), malformed + 1);
  EXPECT_EQ(Task(submitted->job_id(), attempts[0].task()).state, "succeeded");
  EXPECT_EQ(Task(submitted->job_id(), attempts[1].task()).state, "running");
}

// Given 40 attempts in flight on a worker and their 40 RESULTs sent at
// once, should end at most half of them a turn (Run: the others keep coming
// back while a turn is written): every ACK names at most 20 attempts, and
// all 40 are ACKed and recorded.
TEST_F(CoordinatorTest, ATurnEndsAtMostHalfTheAttemptsInFlight) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeClient& client = AddClient();
  constexpr size_t kTasks = 40;
  auto submitted = client.Submit(IndependentTasks("halves", kTasks));
  ASSERT_TRUE(submitted);
  Sync();
  FakeWorker worker(context_, endpoint_, "w1");
  ASSERT_TRUE(RegisterBatching(worker, /*spawn=*/kTasks, /*max_batch=*/kTasks));
  std::vector<wire::Dispatch> attempts;
  while (attempts.size() < kTasks) {
    auto d = worker.ExpectDispatch();
    ASSERT_TRUE(d) << attempts.size() << " of 40 dispatched";
    for (auto& a : Unbatch(*d)) attempts.push_back(std::move(a));
  }
  ASSERT_EQ(attempts.size(), kTasks);
  // One message each, back to back: queued together at the coordinator,
  // where one turn would otherwise take them all.
  for (const auto& a : attempts) worker.SendResult(a.attempt_id(), testing::Ok());
  std::vector<uint64_t> acked;
  while (acked.size() < kTasks) {
    auto ack = worker.ExpectAck();
    ASSERT_TRUE(ack) << acked.size() << " of 40 ACKed";
    EXPECT_LE(ack->size(), kTasks / 2);
    acked.insert(acked.end(), ack->begin(), ack->end());
  }
  std::vector<uint64_t> want;
  for (const auto& a : attempts) want.push_back(a.attempt_id());
  std::sort(acked.begin(), acked.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(acked, want);
  auto done = client.WaitJobEvent();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state(), "succeeded");
}

// Given a one-slot worker that takes ACKs on its DISPATCH
// (Hello.takes_dispatch_acks) and one that does not, each running a job of
// 3 tasks one at a time: the first should find each ACK in the DISPATCH of
// its next task and get an ACK message only for its last result, which no
// DISPATCH follows; the second should get an ACK message, then the
// DISPATCH without acks, for every result.
TEST_F(CoordinatorTest, AnAckRidesOnTheNextDispatchToAWorkerThatTakesIt) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  for (const bool takes : {true, false}) {
    SCOPED_TRACE(takes ? "takes dispatch acks" : "plain worker");
    const std::string name = takes ? "w-acks" : "w-plain";
    wire::Hello hello;
    hello.set_name(name);
    hello.set_session("session-1");
    (*hello.mutable_slots())["spawn"] = 1;
    hello.set_heartbeat_ms(1000);
    hello.set_takes_dispatch_acks(takes);
    FakeWorker& worker = AddWorkerWithHello(hello);
    FakeClient& client = AddClient();
    ASSERT_TRUE(client.Submit(IndependentTasks("acks-" + name, 3)));
    auto d = worker.ExpectDispatch();
    ASSERT_TRUE(d);
    EXPECT_EQ(d->acks_size(), 0);
    for (int i = 0; i < 2; ++i) {
      const uint64_t ended = d->attempt_id();
      worker.SendResult(ended, testing::Ok());
      if (!takes) {
        auto ack = worker.ExpectAck();
        ASSERT_TRUE(ack);
        EXPECT_EQ(*ack, std::vector<uint64_t>{ended});
      }
      d = worker.ExpectDispatch();  // an ACK message first fails here
      ASSERT_TRUE(d);
      EXPECT_NE(d->attempt_id(), ended);
      if (takes) {
        EXPECT_EQ(std::vector<uint64_t>(d->acks().begin(), d->acks().end()),
                  std::vector<uint64_t>{ended});
      } else {
        EXPECT_EQ(d->acks_size(), 0);
      }
    }
    worker.SendResult(d->attempt_id(), testing::Ok());
    auto ack = worker.ExpectAck();  // the last: no DISPATCH to ride on
    ASSERT_TRUE(ack);
    EXPECT_EQ(*ack, std::vector<uint64_t>{d->attempt_id()});
    auto done = client.WaitJobEvent();
    ASSERT_TRUE(done);
    EXPECT_EQ(done->state(), "succeeded");
    Sync();
    ExpectNothingQueued(worker, name);
    worker.SendDisconnect(/*drained=*/true);  // the next job is the other's
    Sync();
  }
}

}  // namespace
}  // namespace drover

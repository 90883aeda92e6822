// The coordinator against peers that misbehave or differ from it (issue
// 14): a peer that never registered, malformed messages, liveness by each
// worker's own heartbeat, a bounded log under a flood of bad messages, the
// version ERROR limit, and the per-peer send budget.
// Real coordinator loop, fake peers over inproc://, FakeClock.
#include <gmock/gmock.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <mutex>

#include "tests/integration/coordinator_fixture.h"

namespace drover {
namespace {

namespace fs = std::filesystem;
using testing::Body;
using testing::Command;
using testing::CoordinatorTest;
using testing::Exit;
using testing::FakeClient;
using testing::FakeWorker;
using ::testing::HasSubstr;
using testing::IndependentTasks;
using testing::Message;
using testing::Millis;
using testing::Ok;

// Keeps every line logged through spdlog's default logger while it lives.
class CapturedLog {
 public:
  CapturedLog() : previous_(spdlog::default_logger()) {
    sink_ = std::make_shared<Sink>();
    auto logger = std::make_shared<spdlog::logger>("captured", sink_);
    logger->set_level(spdlog::level::info);
    spdlog::set_default_logger(logger);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  std::vector<std::string> Lines() const { return sink_->Lines(); }
  size_t Count(const std::string& needle) const {
    size_t n = 0;
    for (const auto& l : Lines()) n += l.find(needle) != std::string::npos;
    return n;
  }

 private:
  class Sink : public spdlog::sinks::base_sink<std::mutex> {
   public:
    std::vector<std::string> Lines() {
      std::lock_guard<std::mutex> lock(this->mutex_);
      return lines_;
    }

   protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
      lines_.emplace_back(msg.payload.data(), msg.payload.size());
    }
    void flush_() override {}

   private:
    std::vector<std::string> lines_;
  };
  std::shared_ptr<spdlog::logger> previous_;
  std::shared_ptr<Sink> sink_;
};

wire::Hello HelloOf(const std::string& name, uint32_t heartbeat_ms) {
  wire::Hello hello;
  hello.set_name(name);
  hello.set_session("s-" + name);
  (*hello.mutable_slots())["spawn"] = 1;
  hello.set_heartbeat_ms(heartbeat_ms);
  return hello;
}

// A version this coordinator does not speak.
constexpr uint8_t kBadVersion = protocol::kVersion + 1;

std::string Header(uint8_t version) { return std::string("DROVER") + char(version); }

// Given a worker that announces a 6 s heartbeat (Hello.heartbeat_ms) to a
// coordinator whose own interval is 1 s with liveness 5, and heartbeats
// exactly every 6 s, should keep it registered and keep its attempt: it is
// dead only after liveness x its own interval (docs/protocol.md).
TEST_F(CoordinatorTest, WorkerHeartbeatingAtItsOwnSlowerIntervalStaysRegistered) {
  options_.liveness = 5;
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker worker(context_, endpoint_, "slow");
  worker.Send(Command::kHello, HelloOf("slow", 6000));
  ASSERT_TRUE(worker.Expect(Command::kWelcome));
  FakeClient& client = AddClient();
  auto submitted = client.Submit(IndependentTasks("slow-hb", 1));
  ASSERT_TRUE(submitted);
  auto dispatch = worker.ExpectDispatch();
  ASSERT_TRUE(dispatch);

  for (int i = 0; i < 6; ++i) {  // 36 s: seven times the coordinator's 5 s
    clock_.Advance(std::chrono::seconds(6));
    coordinator_->Poke();
    worker.SendHeartbeat();
    // Through the worker's own connection: the heartbeat was handled first.
    worker.Send(Command::kWorkersRequest, wire::WorkersRequest());
    auto reply = worker.Expect(Command::kWorkersReply);
    ASSERT_TRUE(reply) << "round " << i;
    const auto workers = Body<wire::WorkersReply>(*reply);
    ASSERT_EQ(workers.workers_size(), 1);
    EXPECT_EQ(workers.workers(0).state(), "ready") << "round " << i;
    EXPECT_EQ(workers.workers(0).running(), 1u) << "round " << i;
  }
  EXPECT_EQ(Stat(&CoordinatorStats::workers_lost), 0u);
  worker.SendResult(dispatch->attempt_id(), testing::Ok());
  ASSERT_TRUE(worker.ExpectAck());
  auto done = client.WaitJobEvent();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state(), "succeeded");
  EXPECT_EQ(Attempts(submitted->job_id(), "t1").size(), 1u);  // never re-run
}

// Given the same 6 s worker gone silent, should declare it lost after
// liveness x 6 s, not before.
TEST_F(CoordinatorTest, WorkerIsLostAfterLivenessTimesItsOwnHeartbeat) {
  options_.liveness = 5;
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker worker(context_, endpoint_, "slow");
  worker.Send(Command::kHello, HelloOf("slow", 6000));
  ASSERT_TRUE(worker.Expect(Command::kWelcome));
  clock_.Advance(std::chrono::seconds(29));
  coordinator_->Poke();
  Sync();
  EXPECT_EQ(Stat(&CoordinatorStats::workers_lost), 0u);
  clock_.Advance(std::chrono::seconds(2));  // 31 s > 5 x 6 s
  coordinator_->Poke();
  Sync();
  EXPECT_EQ(Stat(&CoordinatorStats::workers_lost), 1u);
}

// Given a flood of garbage frames, bad-version messages, commands the
// coordinator never receives and forged RESULTs, should log a bounded
// number of lines (one per peer per reason per minute, then a summary with
// the count), count every message, and answer the bad versions with one
// ERROR per peer per heartbeat interval.
TEST_F(CoordinatorTest, FloodOfBadMessagesLogsBoundedLines) {
  CapturedLog log;
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 1);
  testing::FakePeer hostile(context_, endpoint_);
  constexpr int kEach = 300;
  for (int i = 0; i < kEach; ++i) {
    hostile.SendRawFrames({"garbage", std::string(1, char(i))});
    hostile.SendRawFrames({Header(kBadVersion), std::string(1, '\x07'), ""});
    hostile.SendRawFrames({Header(protocol::kVersion), std::string(1, '\x02'), ""});  // WELCOME
    worker.SendResult(1000000 + i, testing::Ok());                      // forged
  }
  Sync();
  size_t acked = 0;
  while (acked < kEach) {
    auto ids = worker.ExpectAck();
    ASSERT_TRUE(ids);
    acked += ids->size();
  }
  EXPECT_GE(Stat(&CoordinatorStats::malformed), 3u * kEach);
  EXPECT_EQ(Stat(&CoordinatorStats::stale_results), static_cast<uint64_t>(kEach));
  // One version ERROR in this heartbeat interval; nothing else is answered.
  auto replies = hostile.Queued();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].command, Command::kError);
  EXPECT_THAT(Body<wire::Error>(replies[0]).message(), HasSubstr("version " + std::to_string(kBadVersion)));

  // 4 reasons (malformed, unexpected, stale results, and the probe's own
  // errors are not logged): a handful of lines, not 1,200.
  const auto lines = log.Lines();
  EXPECT_LE(lines.size(), 12u) << ::testing::PrintToString(lines);
  EXPECT_EQ(log.Count("malformed message"), 1u);
  EXPECT_EQ(log.Count("no longer current"), 1u);
  EXPECT_EQ(log.Count("which the coordinator does not receive"), 1u);

  // A new heartbeat interval: one more ERROR for the next bad version.
  clock_.Advance(std::chrono::milliseconds(1100));
  coordinator_->Poke();
  Sync();
  hostile.SendRawFrames({Header(kBadVersion), std::string(1, '\x07'), ""});
  hostile.SendRawFrames({Header(kBadVersion), std::string(1, '\x07'), ""});
  Sync();
  replies = hostile.Queued();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].command, Command::kError);

  // After the minute: one summary line per key with the count.
  clock_.Advance(std::chrono::seconds(61));
  coordinator_->Poke();
  Sync();
  EXPECT_GE(log.Count("not logged in the last minute"), 3u)
      << ::testing::PrintToString(log.Lines());
  EXPECT_LE(log.Lines().size(), 20u) << ::testing::PrintToString(log.Lines());
}

// Given a client that sends LOGS-REQUESTs for a task with 1 MiB of output
// and never reads, under a 4 MiB send budget: should stop sending to it,
// drop it with one log line, ignore its further requests, and keep serving
// the others.
TEST_F(CoordinatorTest, ClientOverItsSendBudgetIsDropped) {
  CapturedLog log;
  options_.peer_send_budget = 4u << 20;
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& client = AddClient();
  auto submitted = client.Submit(IndependentTasks("big", 1));
  ASSERT_TRUE(submitted);
  auto d = worker.ExpectDispatch();
  ASSERT_TRUE(d);
  worker.SendResult(d->attempt_id(), testing::Ok(), std::string(1u << 20, 'x'));
  ASSERT_TRUE(worker.ExpectAck());
  ASSERT_TRUE(client.WaitJobEvent());

  // inproc:// hands whole messages to the reader's queue: with nothing
  // read, every LOGS stays queued for this peer.
  testing::FakePeer greedy(context_, endpoint_);
  auto ask = [&](int n) {
    for (int i = 0; i < n; ++i) {
      wire::LogsRequest req;
      req.set_job_id(submitted->job_id());
      req.set_task("t1");
      greedy.Send(Command::kLogsRequest, req);
    }
  };
  // The job has ended: the store reader answers, one read of this peer at
  // a time (its later requests wait for each answer).
  ask(2);
  ASSERT_NO_FATAL_FAILURE(SyncReads(2));  // two LOGS of 1 MiB wait in its queue
  EXPECT_EQ(Stat(&CoordinatorStats::peers_dropped), 0u);
  ask(38);
  ASSERT_NO_FATAL_FAILURE(SyncReads(4));
  Sync();
  EXPECT_EQ(Stat(&CoordinatorStats::peers_dropped), 1u);
  EXPECT_GE(Stat(&CoordinatorStats::unsent), 1u);
  EXPECT_EQ(log.Count("is not reading"), 1u) << ::testing::PrintToString(log.Lines());
  // It has the three that fitted in its budget; the fourth answer, which
  // would have passed it, was not sent, and the requests held behind it
  // were ignored: no fifth read was made.
  const auto got = greedy.Queued();
  EXPECT_EQ(got.size(), 3u);
  EXPECT_EQ(Stat(&CoordinatorStats::reads_answered), 4u);
  // Others are still served.
  auto status = client.Status(submitted->job_id());
  ASSERT_TRUE(status);
  // Having drained its queue (it read above), it is forgotten and heard again.
  Sync();
  EXPECT_EQ(log.Count("has nothing queued any more"), 1u)
      << ::testing::PrintToString(log.Lines());
  wire::LogsRequest again;
  again.set_job_id(submitted->job_id());
  again.set_task("t1");
  greedy.Send(Command::kLogsRequest, again);
  EXPECT_TRUE(greedy.Expect(Command::kLogs));
}

// Given a peer that never said HELLO, should answer its HEARTBEAT and its
// RESULT with DISCONNECT and record nothing from it.
TEST_F(CoordinatorTest, UnregisteredPeerIsToldToRegister) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker stranger(context_, kEndpoint, "w1");
  stranger.SendHeartbeat();
  auto bye = stranger.Expect(testing::Command::kDisconnect);
  ASSERT_TRUE(bye);
  EXPECT_THAT(testing::Body<wire::Disconnect>(*bye).reason(), HasSubstr("HELLO"));

  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& client = AddClient();
  auto submitted = client.Submit(IndependentTasks("stranger", 1));
  ASSERT_TRUE(submitted);
  auto d = worker.ExpectDispatch();
  ASSERT_TRUE(d);

  stranger.SendResult(d->attempt_id(), Exit(9), "forged\n");
  ASSERT_TRUE(stranger.Expect(testing::Command::kDisconnect));
  const auto attempts = Attempts(submitted->job_id(), "t1");
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_FALSE(attempts[0].finished);
  EXPECT_EQ(Task(submitted->job_id(), "t1").state, "running");
  EXPECT_EQ(Stat(&CoordinatorStats::results), 0u);
  EXPECT_FALSE(fs::exists(Reader().LogPath(submitted->job_id(), "t1", 1, false)));

  // The real worker's result still counts.
  worker.SendResult(d->attempt_id(), Ok());
  ASSERT_TRUE(worker.ExpectAck());
  auto done = client.WaitJobEvent();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state(), "succeeded");
}

// Given a bad header frame, a wrong protocol version and a RESULT with a
// garbage body, should drop and count each, answer the wrong version with an
// ERROR naming both versions, and keep serving.
TEST_F(CoordinatorTest, MalformedMessagesAreDroppedAndCounted) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 1);
  const std::string result_byte(1, static_cast<char>(testing::Command::kResult));
  const std::string hb_byte(1, static_cast<char>(testing::Command::kHeartbeat));
  // Field 13 (a string) announcing 5 bytes and carrying 2: cannot parse.
  const std::string garbage(
      "\x6a\x05"
      "ab",
      4);
  ASSERT_FALSE(wire::Result().ParseFromString(garbage));

  worker.SendRawFrames({"NOTDRV\x01", hb_byte, ""});
  worker.SendRawFrames({std::string("DROVER") + '\x01', hb_byte, ""});
  // A peer of another protocol version is told so, in version 2.
  auto refused = worker.Expect(testing::Command::kError);
  ASSERT_TRUE(refused);
  EXPECT_THAT(testing::Body<wire::Error>(*refused).message(),
              HasSubstr("protocol version 1 is not supported (this is 2)"));
  worker.SendRawFrames({std::string("DROVER") + '\x02', result_byte, garbage, "", ""});
  // Same connection, so by its WELCOME the three were handled.
  ASSERT_TRUE(worker.Register("session-1", 1));
  EXPECT_EQ(Stat(&CoordinatorStats::malformed), 3u);
  EXPECT_EQ(Stat(&CoordinatorStats::results), 0u);

  FakeClient& client = AddClient();
  auto submitted = client.Submit(IndependentTasks("after-garbage", 1));
  ASSERT_TRUE(submitted);
  EXPECT_FALSE(submitted->job_id().empty());
  auto d = worker.ExpectDispatch();
  ASSERT_TRUE(d);
  worker.SendResult(d->attempt_id(), Ok());
  ASSERT_TRUE(worker.ExpectAck());
  auto done = client.WaitJobEvent();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state(), "succeeded");
}

}  // namespace
}  // namespace drover

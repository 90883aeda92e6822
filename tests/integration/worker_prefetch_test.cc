// The worker's prefetch (Hello.prefetch, WorkerOptions::prefetch): attempts
// dispatched beyond a backend's slots wait in the worker, in dispatch
// order, and start when a slot frees; a CANCEL ends a waiting one at once,
// and a drain hands the waiting ones back. A real Worker in this process
// with real spawn tasks, against the scripted coordinator of
// fake_coordinator.h. Every Worker is stopped (and its tasks reaped) at the
// end of its test, also when an assertion failed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "backends/backend.h"
#include "backends/spawn/spawn_attempt.h"
#include "core/base/version.h"
#include "core/protocol/drover.pb.h"
#include "tests/integration/cli_test_util.h"
#include "tests/integration/fake_coordinator.h"
#include "tests/integration/worker_thread.h"
#include "worker/worker.h"

namespace drover {
namespace {

namespace fs = std::filesystem;
using protocol::Command;
using testing::FakeCoordinator;

wire::Dispatch ShTask(uint64_t id, const std::string& script) {
  wire::Dispatch d;
  d.set_attempt_id(id);
  d.set_job_id("job-prefetch");
  d.set_task("t" + std::to_string(id));
  d.set_attempt(1);
  d.set_backend("spawn");
  d.set_payload(SpawnPayload({"sh", "-c", script}));
  d.set_timeout_ms(60'000);
  return d;
}

class WorkerPrefetchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("drover-worker-prefetch-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    RegisterBuiltinBackends(registry_);
    options_.coordinator = coordinator_.endpoint();
    options_.name = "w1";
    options_.slots = {{"spawn", 1}};
    options_.prefetch = 1;
    options_.spool_dir = dir_ / "spool";
    options_.liveness = 60;
    options_.shutdown_grace = Duration(0);
  }
  void TearDown() override {
    if (started_fd_ >= 0) ::close(started_fd_);
    worker_.Stop();  // its backends stop and reap what they started
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::optional<wire::Hello> StartWorker(wire::Welcome welcome = {}) {
    if (!worker_.Start(context_, options_, registry_, clock_)) return std::nullopt;
    worker_.Run();
    return coordinator_.Register(std::move(welcome));
  }
  // A script that says it started on the FIFO `started` (made here, and
  // held open for reading by started_fd_), then waits until the file
  // `release` exists (bounded: 60 s).
  std::string Blocker(const std::string& release) {
    const fs::path fifo = dir_ / "started";
    EXPECT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
    started_fd_ = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    EXPECT_GE(started_fd_, 0) << std::strerror(errno);
    const std::string r = (dir_ / release).string();
    return "echo started > '" + fifo.string() + "'; i=0; while [ ! -e '" + r +
           "' ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done";
  }
  // Whether the Blocker said it started, within 30 s.
  bool BlockerStarted() {
    pollfd p{started_fd_, POLLIN, 0};
    return ::poll(&p, 1, 30'000) == 1;
  }

  fs::path dir_;
  zmq::context_t context_;
  FakeCoordinator coordinator_{context_};
  BackendRegistry registry_;
  RealClock clock_;
  WorkerOptions options_;
  testing::WorkerThread worker_;
  int started_fd_ = -1;
};

// Given a worker with 1 spawn slot and a prefetch of 1, HELLO should offer
// the prefetch, and a second attempt dispatched while the first runs
// should start only once the first has ended: the second sees the first's
// end mark when it starts.
TEST_F(WorkerPrefetchTest, WaitingAttemptStartsWhenTheSlotFrees) {
  auto hello = StartWorker();
  ASSERT_TRUE(hello);
  EXPECT_EQ(hello->slots().at("spawn"), 1u);
  ASSERT_EQ(hello->prefetch().count("spawn"), 1u);
  EXPECT_EQ(hello->prefetch().at("spawn"), 1u);
  EXPECT_TRUE(hello->takes_recall());
  // HELLO's version is the drover version, as `drover --version` says.
  EXPECT_FALSE(hello->version().empty());
  EXPECT_EQ(hello->version(), DroverVersion());

  const std::string ended = (dir_ / "first.ended").string();
  // The first runs for a while (the second would start meanwhile if it did
  // not wait), then leaves its mark as its last act.
  coordinator_.Send(Command::kDispatch, ShTask(1, "sleep 0.5; touch '" + ended + "'"));
  coordinator_.Send(Command::kDispatch, ShTask(2, "if [ -e '" + ended +
                                                      "' ]; then echo after; else echo "
                                                      "overlapped; fi"));
  std::string out1, out2;
  auto first = coordinator_.Result(1, &out1);
  auto second = coordinator_.Result(2, &out2);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->reason(), "ok") << first->message();
  EXPECT_EQ(second->reason(), "ok") << second->message();
  EXPECT_EQ(out2, "after\n");
}

// Given an attempt waiting behind a running one, a CANCEL of it should end
// it at once as cancelled, before it ever ran, while the running one goes
// on; the running one then finishes normally.
TEST_F(WorkerPrefetchTest, CancelEndsAWaitingAttemptBeforeItRuns) {
  ASSERT_TRUE(StartWorker());
  coordinator_.Send(Command::kDispatch, ShTask(1, Blocker("release")));
  const std::string ran = (dir_ / "two.ran").string();
  coordinator_.Send(Command::kDispatch, ShTask(2, "touch '" + ran + "'"));
  // No wait: the CANCEL comes after both DISPATCHes on the one connection.
  wire::Cancel cancel;
  cancel.add_attempt_ids(2);
  coordinator_.Send(Command::kCancel, cancel);
  auto second = coordinator_.Result(2);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->reason(), "cancelled");
  EXPECT_EQ(second->message(), "cancelled before it started");
  EXPECT_FALSE(fs::exists(dir_ / "release")) << "the first ended first";

  std::ofstream(dir_ / "release").close();
  auto first = coordinator_.Result(1);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->reason(), "ok") << first->message();
  EXPECT_FALSE(fs::exists(ran)) << "the cancelled attempt ran";
}

// Given an attempt waiting behind a running one, a drain should hand the
// waiting one back at once (worker-lost, "is draining"), so that it is
// placed elsewhere, and let the running one finish.
TEST_F(WorkerPrefetchTest, DrainHandsWaitingAttemptsBack) {
  ASSERT_TRUE(StartWorker());
  coordinator_.Send(Command::kDispatch, ShTask(1, Blocker("release")));
  const std::string ran = (dir_ / "two.ran").string();
  coordinator_.Send(Command::kDispatch, ShTask(2, "touch '" + ran + "'"));
  // The drain must come after both DISPATCHes were handled: the first
  // running says so.
  ASSERT_TRUE(BlockerStarted());
  worker_->Drain(std::chrono::seconds(60));
  auto second = coordinator_.Result(2);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->reason(), "worker-lost");
  EXPECT_EQ(second->message(), "worker w1 is draining");
  EXPECT_TRUE(second->not_started());

  std::ofstream(dir_ / "release").close();
  auto first = coordinator_.Result(1);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->reason(), "ok") << first->message();
  EXPECT_FALSE(fs::exists(ran)) << "the handed-back attempt ran";
}

// Given an attempt running and one waiting behind it, a CANCEL that
// recalls both should hand back only the waiting one (worker-lost,
// not_started) and leave the running one to finish.
TEST_F(WorkerPrefetchTest, RecallHandsBackOnlyAWaitingAttempt) {
  ASSERT_TRUE(StartWorker());
  coordinator_.Send(Command::kDispatch, ShTask(1, Blocker("release")));
  const std::string ran = (dir_ / "two.ran").string();
  coordinator_.Send(Command::kDispatch, ShTask(2, "touch '" + ran + "'"));
  ASSERT_TRUE(BlockerStarted());
  wire::Cancel recall;
  recall.add_recall(1);
  recall.add_recall(2);
  coordinator_.Send(Command::kCancel, recall);
  auto second = coordinator_.Result(2);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->reason(), "worker-lost");
  EXPECT_TRUE(second->not_started());
  EXPECT_EQ(second->message(),
            "handed back before it started: a slot is free on another worker");

  std::ofstream(dir_ / "release").close();
  auto first = coordinator_.Result(1);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->reason(), "ok") << first->message();
  EXPECT_FALSE(first->not_started());
  EXPECT_FALSE(fs::exists(ran)) << "the handed-back attempt ran";
}

// Given an attempt running and one waiting behind it, the worker should
// say Hello.reports_starts, list the waiting one in Hello.waiting when it
// registers again, and report its start (Heartbeat.started) before its
// RESULT; the one that never waited is never reported.
TEST_F(WorkerPrefetchTest, ReportsTheStartOfAnAttemptThatWaited) {
  auto hello = StartWorker();
  ASSERT_TRUE(hello);
  EXPECT_TRUE(hello->reports_starts());
  EXPECT_EQ(hello->waiting_size(), 0);
  coordinator_.Send(Command::kDispatch, ShTask(1, Blocker("release")));
  coordinator_.Send(Command::kDispatch, ShTask(2, "true"));
  ASSERT_TRUE(BlockerStarted());

  // The coordinator forgets the worker: it registers again, and says
  // which of its attempts wait.
  wire::Disconnect bye;
  bye.set_reason("test: register again");
  coordinator_.Send(Command::kDisconnect, bye);
  auto again = coordinator_.Register();
  ASSERT_TRUE(again);
  EXPECT_EQ(std::set<uint64_t>(again->running().begin(), again->running().end()),
            (std::set<uint64_t>{1, 2}));
  EXPECT_EQ(std::vector<uint64_t>(again->waiting().begin(), again->waiting().end()),
            std::vector<uint64_t>{2});

  std::ofstream(dir_ / "release").close();
  auto second = coordinator_.Result(2);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->reason(), "ok") << second->message();
  auto first = coordinator_.Result(1);
  ASSERT_TRUE(first);
  const auto& events = coordinator_.events();
  const auto started = std::find(events.begin(), events.end(), "started 2");
  ASSERT_NE(started, events.end()) << "no Heartbeat.started for the waiting attempt";
  EXPECT_LT(started - events.begin(),
            std::find(events.begin(), events.end(), "result 2") - events.begin());
  EXPECT_EQ(std::count(events.begin(), events.end(), "started 1"), 0);
}

// Given a coordinator that takes batches and Result.started, and an
// attempt waiting behind a running one: the waiting one's start should be
// reported once, on the RESULT of the attempt whose slot it takes (sent
// before it starts), and in no HEARTBEAT.
TEST_F(WorkerPrefetchTest, ReportsAStartOnTheResultThatFreedItsSlot) {
  wire::Welcome welcome;
  welcome.set_max_batch(8);
  welcome.set_takes_result_starts(true);
  ASSERT_TRUE(StartWorker(welcome));
  coordinator_.Send(Command::kDispatch, ShTask(1, Blocker("release")));
  coordinator_.Send(Command::kDispatch, ShTask(2, "true"));
  ASSERT_TRUE(BlockerStarted());
  std::ofstream(dir_ / "release").close();
  auto second = coordinator_.Result(2);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->reason(), "ok") << second->message();
  EXPECT_EQ(second->started_size(), 0);
  auto first = coordinator_.Result(1);
  ASSERT_TRUE(first);
  EXPECT_EQ(std::vector<uint64_t>(first->started().begin(), first->started().end()),
            std::vector<uint64_t>{2});
  const auto& events = coordinator_.events();
  EXPECT_EQ(std::count(events.begin(), events.end(), "started 2"), 1);
  EXPECT_EQ(std::count(events.begin(), events.end(), "started 1"), 0);
  EXPECT_LT(std::find(events.begin(), events.end(), "started 2") - events.begin(),
            std::find(events.begin(), events.end(), "result 2") - events.begin());
}

}  // namespace
}  // namespace drover

// How the worker's loop runs a driven backend (Backend::PollFd): it turns
// the backend (Poll) only when the backend's descriptor was readable in the
// loop's wait or its PollTimeoutMs() is 0, a completion the backend
// reports from Poll, on the loop's own thread, reaches the coordinator, and
// a spin the backend asks for (SpinBeforeWait) hides nothing else. A
// real Worker in this process with a scripted driven backend, against the
// scripted coordinator of fake_coordinator.h.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "backends/backend.h"
#include "backends/threads/threads_kind.h"
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

// What a ScriptedDrivenBackend saw, shared with the test.
struct DrivenLog {
  std::atomic<int> polls{0};
  // Poll() calls with nothing to do: the descriptor not readable and no
  // attempt queued.
  std::atomic<int> idle_polls{0};
  // Attempts held until the test writes wake_fd (the backend's PollFd).
  std::atomic<bool> hold{false};
  // What SpinBeforeWait() answers (zero: no spin).
  std::atomic<std::chrono::nanoseconds> spin{std::chrono::nanoseconds(0)};
  int wake_fd = -1;
  std::mutex mu;
  std::condition_variable submitted_cv;
  int submitted = 0;  // GUARDED_BY(mu)

  // Waits (at most a minute) until `n` attempts were submitted.
  bool WaitSubmitted(int n) {
    std::unique_lock<std::mutex> lock(mu);
    return submitted_cv.wait_for(lock, std::chrono::minutes(1),
                                 [&] { return submitted >= n; });
  }
};

// A driven backend. A submitted attempt finishes in the next Poll() (its
// PollTimeoutMs() is 0 meanwhile), or, when the log holds attempts, in the
// first Poll() after the test writes the descriptor.
class ScriptedDrivenBackend : public Backend {
 public:
  explicit ScriptedDrivenBackend(DrivenLog* log) : log_(log) {
    log_->wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  }
  ~ScriptedDrivenBackend() override { ::close(log_->wake_fd); }
  Status Start(BackendEvents* events) override {
    events_ = events;
    return log_->wake_fd >= 0 ? Status::Ok() : Internal("eventfd failed");
  }
  int Capacity() const override { return 4; }
  Status Submit(TaskAttempt a) override {
    (log_->hold ? held_ : queued_).push_back(a.attempt_id);
    {
      std::lock_guard<std::mutex> lock(log_->mu);
      ++log_->submitted;
    }
    log_->submitted_cv.notify_all();
    return Status::Ok();
  }
  void Cancel(uint64_t) override {}
  void Shutdown(Duration) override {
    queued_.insert(queued_.end(), held_.begin(), held_.end());
    held_.clear();
    Finish();
  }
  bool CapturesOutput() const override { return false; }

  int PollFd() const override { return log_->wake_fd; }
  int PollTimeoutMs() const override { return queued_.empty() ? -1 : 0; }
  std::chrono::nanoseconds SpinBeforeWait() const override { return log_->spin.load(); }
  void Poll() override {
    ++log_->polls;
    pollfd p{log_->wake_fd, POLLIN, 0};
    const bool readable = ::poll(&p, 1, 0) == 1;
    if (!readable && queued_.empty()) ++log_->idle_polls;
    if (readable) {
      uint64_t n;
      (void)!::read(log_->wake_fd, &n, sizeof n);
      queued_.insert(queued_.end(), held_.begin(), held_.end());
      held_.clear();
    }
    Finish();
  }

 private:
  void Finish() {
    while (!queued_.empty()) {
      const uint64_t id = queued_.front();
      queued_.pop_front();
      AttemptOutcome ok;
      ok.reason = FailureReason::kNone;
      ok.exit_code = 0;
      events_->OnFinished(id, std::move(ok));
    }
  }

  DrivenLog* log_;
  BackendEvents* events_ = nullptr;
  std::deque<uint64_t> queued_, held_;  // the worker's loop thread only
};

// Finishes each attempt at once, on the worker's thread, from Submit.
class PlainBackend : public Backend {
 public:
  Status Start(BackendEvents* events) override {
    events_ = events;
    return Status::Ok();
  }
  int Capacity() const override { return 4; }
  Status Submit(TaskAttempt a) override {
    AttemptOutcome ok;
    ok.reason = FailureReason::kNone;
    ok.exit_code = 0;
    events_->OnFinished(a.attempt_id, std::move(ok));
    return Status::Ok();
  }
  void Cancel(uint64_t) override {}
  void Shutdown(Duration) override {}
  bool CapturesOutput() const override { return false; }

 private:
  BackendEvents* events_ = nullptr;
};

wire::Dispatch Attempt(uint64_t id, const std::string& backend) {
  wire::Dispatch d;
  d.set_attempt_id(id);
  d.set_job_id("job-driven");
  d.set_task("t" + std::to_string(id));
  d.set_attempt(1);
  d.set_backend(backend);
  return d;
}

class WorkerDrivenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("drover-worker-driven");
    ASSERT_FALSE(dir_.empty());
    DrivenLog* log = &log_;
    ASSERT_TRUE(
        registry_
            .Register(
                "driven", threads::MakeThreadsTaskKind(),
                [log](const BackendConfig& config) -> Result<std::unique_ptr<Backend>> {
                  if (!config.driven) return Internal("not asked to be driven");
                  return std::unique_ptr<Backend>(new ScriptedDrivenBackend(log));
                })
            .ok());
    ASSERT_TRUE(
        registry_
            .Register("plain", threads::MakeThreadsTaskKind(),
                      [](const BackendConfig&) -> Result<std::unique_ptr<Backend>> {
                        return std::unique_ptr<Backend>(new PlainBackend());
                      })
            .ok());
    options_.coordinator = coordinator_.endpoint();
    options_.name = "w1";
    options_.slots = {{"driven", 4}, {"plain", 4}};
    options_.spool_dir = dir_ / "spool";
    options_.liveness = 60;
    options_.heartbeat_interval = heartbeat_interval_;
    options_.shutdown_grace = Duration(0);
    ASSERT_TRUE(worker_.Start(context_, options_, registry_, clock_));
    worker_.Run();
    ASSERT_TRUE(coordinator_.Register());
  }
  void TearDown() override {
    worker_.Stop();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Dispatches attempts [first, last] to `backend`, one at a time, each
  // after the last one's RESULT.
  void RunOneByOne(uint64_t first, uint64_t last, const std::string& backend) {
    for (uint64_t id = first; id <= last; ++id) {
      coordinator_.Send(Command::kDispatch, Attempt(id, backend));
      auto r = coordinator_.Result(id);
      ASSERT_TRUE(r) << "attempt " << id;
      EXPECT_EQ(r->reason(), "ok") << id << ": " << r->message();
    }
  }

  Duration heartbeat_interval_ = WorkerOptions().heartbeat_interval;
  fs::path dir_;
  DrivenLog log_;
  zmq::context_t context_;
  FakeCoordinator coordinator_{context_};
  BackendRegistry registry_;
  RealClock clock_;
  WorkerOptions options_;
  testing::WorkerThread worker_;
};

// Given turns of the worker's loop for another backend's attempts, the
// driven backend, with nothing to do, should not be turned at all.
TEST_F(WorkerDrivenTest, ABackendWithNothingToDoIsNotTurned) {
  RunOneByOne(1, 8, "plain");
  EXPECT_EQ(log_.polls, 0);
}

// Given attempts that the driven backend finishes in the Poll after their
// Submit, on the loop's thread, every RESULT should reach the
// coordinator, and no turn should find the backend with nothing to do.
TEST_F(WorkerDrivenTest, CompletionsOnTheLoopsThreadAreSent) {
  RunOneByOne(1, 8, "driven");
  EXPECT_GE(log_.polls, 8);
  EXPECT_EQ(log_.idle_polls, 0);
}

// Given attempts held until the backend's descriptor is written (as a
// child's exit makes a pidfd readable), the loop should turn the backend
// when it is, and the RESULTs should follow.
TEST_F(WorkerDrivenTest, ABackendIsTurnedWhenItsDescriptorIsReadable) {
  log_.hold = true;
  for (uint64_t id = 1; id <= 3; ++id) {
    coordinator_.Send(Command::kDispatch, Attempt(id, "driven"));
  }
  ASSERT_TRUE(log_.WaitSubmitted(3));
  const uint64_t one = 1;
  ASSERT_EQ(::write(log_.wake_fd, &one, sizeof one), 8);
  for (uint64_t id = 1; id <= 3; ++id) {
    auto r = coordinator_.Result(id);
    ASSERT_TRUE(r) << "attempt " << id;
    EXPECT_EQ(r->reason(), "ok") << id << ": " << r->message();
  }
  EXPECT_EQ(log_.idle_polls, 0);
}

// A worker whose loop has no deadline for an hour (its heartbeats), so
// that a wait that missed a descriptor would last that long.
class WorkerDrivenSpinTest : public WorkerDrivenTest {
 protected:
  WorkerDrivenSpinTest() { heartbeat_interval_ = std::chrono::hours(1); }
};

// Given a driven backend that asks the loop to spin before each wait, for
// far longer than the test runs (an answer it expects, which does not
// come), the loop should still take what comes on its other descriptors:
// the DISPATCHes of another backend are answered at once. A spin that
// looked only at the backend's descriptor would hold each of them until
// the loop's next deadline, its heartbeat an hour away.
TEST_F(WorkerDrivenSpinTest, ASpinBeforeTheWaitStillSeesEveryDescriptor) {
  log_.spin = std::chrono::hours(1);
  RunOneByOne(1, 4, "plain");
  log_.spin = std::chrono::nanoseconds(0);
  EXPECT_EQ(log_.polls, 0);  // the spin looked; nothing turned the backend
}

}  // namespace
}  // namespace drover

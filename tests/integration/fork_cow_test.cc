// ForkBackend's cow pools against a real zygote (forked once per test
// process by fork_backend_test.cc): built-in and plugin functions in
// forked children, their crashes, errors, output and timeouts. The fixture
// is fork_backend_fixture.h.
#include <gtest/gtest.h>

#include "tests/integration/fork_backend_fixture.h"

namespace drover {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;
using testing::ChildPids;
using testing::ForkBackendTest;
using testing::g_zygote;
using testing::Gone;
using testing::In;
using testing::kSource;
using testing::kWait;
using testing::ReadFile;
using testing::WaitGone;

// ---------------------------------------------------------------------------
// cow pools: children of the zygote.

// Given a cow pool, should run built-in functions in zygote children.
TEST_P(ForkBackendTest, CowPoolRunsFunctions) {
  StartBackend(2);
  PoolSpec spec = CowPool("cow", 2);
  Call(1, spec, "noop", "");
  Call(2, spec, "sort", "[5, 1, 4]");
  EXPECT_EQ(ResultOf(1), "null");
  EXPECT_EQ(ResultOf(2), "[1,4,5]");
  Call(3, spec, "sort", R"({"numbers": [2.5, 1]})");  // not the fast path
  EXPECT_EQ(ResultOf(3), "[1,2.5]");
  Call(4, spec, "test.pid", "null");
  const int pid = std::stoi(ResultOf(4));
  EXPECT_NE(pid, ::getpid());
  EXPECT_NE(pid, (*g_zygote)->pid());
  EXPECT_EQ(events_.WaitStarted(4), pid);
}

// Given a cow pool that already runs, should still refuse a later attempt
// that names no function (launch-failed, without OnStarted).
TEST_P(ForkBackendTest, CowAttemptWithoutAFunctionIsRefusedByARunningPool) {
  StartBackend(1);
  PoolSpec spec = CowPool("named");
  Call(1, spec, "noop", "");
  EXPECT_EQ(ResultOf(1), "null");
  Call(2, spec, "", "null");
  std::optional<AttemptOutcome> o = events_.WaitFor(2);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, FailureReason::kLaunchFailed);
  EXPECT_EQ(o->message, "pool 'named' is a cow pool: the task must name a function (fn)");
  EXPECT_FALSE(events_.WasStarted(2));
}

// Given a cow function that crashes with SIGSEGV, should fail only its task
// (process-crashed, SIGSEGV) while the pool's other process finishes its
// own, and replace the crashed process.
TEST_P(ForkBackendTest, CowCrashFailsOnlyItsTask) {
  StartBackend(2);
  PoolSpec spec = CowPool("isolated", 2);
  Call(1, spec, "sleep", R"({"ms": 300})");
  Call(2, spec, "test.crash", "null");
  std::optional<AttemptOutcome> crashed = events_.WaitFor(2);
  ASSERT_TRUE(crashed.has_value());
  EXPECT_EQ(crashed->reason, FailureReason::kProcessCrashed);
  EXPECT_EQ(crashed->signal, SIGSEGV);
  EXPECT_NE(crashed->message.find("signal SIGSEGV"), std::string::npos)
      << crashed->message;
  EXPECT_EQ(ResultOf(1), "null");
  const int crashed_pid = *events_.WaitStarted(2);
  Call(3, spec, "test.pid", "null");
  Call(4, spec, "test.pid", "null");
  EXPECT_NE(std::stoi(ResultOf(3)), crashed_pid);
  EXPECT_NE(std::stoi(ResultOf(4)), crashed_pid);
}

// Given cow functions that fail, should map them like the threads backend:
// unknown name launch-failed, an error exit 1.
TEST_P(ForkBackendTest, CowFunctionErrorsAreMapped) {
  StartBackend(2);
  PoolSpec spec = CowPool("errors");
  Call(1, spec, "no-such-function", "null");
  Call(2, spec, "sort", R"("not numbers")");
  std::optional<AttemptOutcome> unknown = events_.WaitFor(1);
  ASSERT_TRUE(unknown.has_value());
  EXPECT_EQ(unknown->reason, FailureReason::kLaunchFailed);
  EXPECT_NE(unknown->message.find("no function 'no-such-function'"), std::string::npos);
  std::optional<AttemptOutcome> bad = events_.WaitFor(2);
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->reason, FailureReason::kExit);
  EXPECT_EQ(bad->exit_code, 1);
}

// Given a cow function that prints, its output should be the task's.
TEST_P(ForkBackendTest, CowOutputIsCaptured) {
  StartBackend(1);
  Call(1, CowPool("printing"), "test.print",
       R"({"out": "to stdout", "err": "to stderr"})");
  EXPECT_EQ(ResultOf(1), R"("printed")");
  EXPECT_EQ(ReadFile(dir_ / "1.out"), "to stdout\n");
  EXPECT_EQ(ReadFile(dir_ / "1.err"), "to stderr\n");
}

// Given a cow task that runs past its timeout, should kill its process.
TEST_P(ForkBackendTest, CowTimeoutKillsTheChild) {
  StartBackend(1);
  PoolSpec spec = CowPool("cow-slow");
  Call(1, spec, "sleep", R"({"seconds": 60})", milliseconds(300));
  std::optional<AttemptOutcome> o = events_.WaitFor(1);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, FailureReason::kTimeout);
  EXPECT_TRUE(Gone(*events_.WaitStarted(1)));
  Call(2, spec, "noop", "null");
  EXPECT_EQ(ResultOf(2), "null");
}

// Given a job plugin, a cow task should load it into the zygote and run its
// function in a freshly forked process; a missing plugin fails to launch.
TEST_P(ForkBackendTest, CowLoadsJobPlugins) {
  StartBackend(1);
  PoolSpec spec = CowPool("plugged");
  Call(1, spec, "test.pid", "null");
  const int before = std::stoi(ResultOf(1));
  ForkAttempt attempt;
  attempt.attempt_id = 2;
  attempt.pool = spec.name;
  attempt.pool_spec = spec;
  attempt.fn = "sum";
  attempt.args_json = "[1, 2, 3]";
  attempt.plugins = {DROVER_EXAMPLE_PLUGIN};
  ASSERT_TRUE(backend_->Submit(EncodeForkAttempt(attempt)).ok());
  EXPECT_EQ(ResultOf(2), "6");
  EXPECT_NE(*events_.WaitStarted(2), before);  // forked after the load
  EXPECT_TRUE(WaitGone(before));
  attempt.attempt_id = 3;
  attempt.plugins = {(dir_ / "missing.so").string()};
  ASSERT_TRUE(backend_->Submit(EncodeForkAttempt(attempt)).ok());
  std::optional<AttemptOutcome> o = events_.WaitFor(3);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, FailureReason::kLaunchFailed);
  EXPECT_NE(o->message.find("missing.so"), std::string::npos) << o->message;
}

// Given no zygote, a cow pool should fail its attempts with a clear
// launch-failed message.
TEST_P(ForkBackendTest, CowWithoutZygoteFailsToLaunch) {
  StartBackend(1, /*with_zygote=*/false);
  Call(1, CowPool("orphan"), "noop", "null");
  std::optional<AttemptOutcome> o = events_.WaitFor(1);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, FailureReason::kLaunchFailed);
  EXPECT_EQ(
      o->message,
      "pool 'orphan': mode cow needs the worker's zygote, and this worker started none");
}

// Given another thread is running, StartZygote should refuse to fork.
TEST(ZygoteTest, RefusesToStartWithThreads) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::thread other([&] {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return release; });
  });
  Result<std::shared_ptr<Zygote>> zygote = StartZygote();
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  other.join();
  ASSERT_FALSE(zygote.ok());
  EXPECT_EQ(zygote.status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace drover

// SpawnBackend against real processes: launch failures, cancellation of a
// task's whole process group, shutdown, what Submit refuses, resource usage
// and the limits in force in the child. The fixture is
// spawn_backend_fixture.h.
#include <gtest/gtest.h>

#include "tests/integration/spawn_backend_fixture.h"

namespace drover {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;
using testing::GroupGone;
using testing::In;
using testing::PollUntil;
using testing::ProcessGone;
using testing::ReadStat;
using testing::Slurp;
using testing::SpawnBackendTest;

// Given a command that is not on PATH, should report launch-failed with
// "command not found" and never report it as started.
TEST_P(SpawnBackendTest, CommandNotFoundIsALaunchFailure) {
  Make();
  AttemptOutcome o = Run(Attempt(1, {"drover-no-such-command-xyz", "arg"}));
  EXPECT_EQ(o.reason, FailureReason::kLaunchFailed);
  EXPECT_EQ(o.message, "command not found: drover-no-such-command-xyz");
  EXPECT_FALSE(events_.WasStarted(1));
}

// Given a cwd that does not exist, should report launch-failed naming it.
TEST_P(SpawnBackendTest, BadCwdIsALaunchFailure) {
  Make();
  SpawnAttempt attempt = Attempt(1, {"true"});
  attempt.cwd = (dir_ / "nope").string();
  AttemptOutcome o = Run(std::move(attempt));
  EXPECT_EQ(o.reason, FailureReason::kLaunchFailed);
  EXPECT_EQ(o.message,
            "cwd '" + (dir_ / "nope").string() + "': No such file or directory");
}

// Given a file without execute permission, should report permission denied.
TEST_P(SpawnBackendTest, NonExecutableIsALaunchFailure) {
  Make();
  fs::path script = dir_ / "not-executable";
  std::ofstream(script) << "#!/bin/sh\nexit 0\n";
  ::chmod(script.c_str(), 0644);
  AttemptOutcome o = Run(Attempt(1, {script.string()}));
  EXPECT_EQ(o.reason, FailureReason::kLaunchFailed);
  EXPECT_EQ(o.message, "permission denied: " + script.string());
}

// Given an empty argv, should report a launch failure, not crash.
TEST_P(SpawnBackendTest, EmptyArgvIsALaunchFailure) {
  Make();
  AttemptOutcome o = Run(Attempt(1, {}));
  EXPECT_EQ(o.reason, FailureReason::kLaunchFailed);
  EXPECT_FALSE(o.message.empty());
}

// Given a running task with a background child, Cancel should stop it with
// reason cancelled and leave nothing of its process group.
TEST_P(SpawnBackendTest, CancelStopsTheWholeGroup) {
  SpawnBackend& backend = Make();
  SpawnAttempt attempt = Shell(1, "sleep 300 & echo $!; sleep 300");
  fs::path out = attempt.stdout_path;
  ASSERT_TRUE(backend.Submit(EncodeSpawnAttempt(std::move(attempt))).ok());
  auto pid = events_.WaitStarted(1, In(seconds(10)));
  ASSERT_TRUE(pid.has_value());
  // Cancel once the background child exists, so there is a group to stop.
  int grandchild = 0;
  ASSERT_TRUE(PollUntil([&] { return !!(std::istringstream(Slurp(out)) >> grandchild); },
                        In(seconds(10))));
  extra_pids_.push_back(grandchild);
  backend.Cancel(1);
  backend.Cancel(999);  // unknown ids are ignored
  auto o = events_.WaitFor(1, In(seconds(15)));
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, FailureReason::kCancelled) << o->Describe();
  EXPECT_EQ(o->message, "cancelled");
  EXPECT_TRUE(PollUntil([&] { return GroupGone(*pid); }, In(seconds(5))));
  EXPECT_TRUE(ProcessGone(grandchild));
  EXPECT_EQ(events_.FinishCount(1), 1u);
}

// Given running tasks (one ignoring SIGTERM), Shutdown should report every
// one of them before it returns, and refuse work afterwards.
TEST_P(SpawnBackendTest, ShutdownReportsEveryRunningTask) {
  SpawnBackend& backend = Make(3);
  ASSERT_TRUE(backend.Submit(EncodeSpawnAttempt(Attempt(1, {"sleep", "30"}))).ok());
  SpawnAttempt stubborn = Shell(2, "trap '' TERM; echo ready; sleep 30");
  fs::path stubborn_out = stubborn.stdout_path;
  ASSERT_TRUE(backend.Submit(EncodeSpawnAttempt(std::move(stubborn))).ok());
  SpawnAttempt long_grace = Attempt(3, {"sleep", "30"});
  long_grace.kill_grace = seconds(60);
  ASSERT_TRUE(backend.Submit(EncodeSpawnAttempt(std::move(long_grace))).ok());
  std::vector<int> pids;
  for (uint64_t id : {1, 2, 3}) {
    auto pid = events_.WaitStarted(id, In(seconds(10)));
    ASSERT_TRUE(pid.has_value()) << id;
    pids.push_back(*pid);
  }
  ASSERT_TRUE(
      PollUntil([&] { return Slurp(stubborn_out) == "ready\n"; }, In(seconds(10))));
  auto started = steady_clock::now();
  Shutdown(milliseconds(300));
  EXPECT_LT(steady_clock::now() - started, seconds(10));
  for (uint64_t id : {1, 2, 3}) {
    EXPECT_EQ(events_.FinishCount(id), 1u) << id;
    auto o = events_.WaitFor(id, In(Duration(0)));
    ASSERT_TRUE(o.has_value());
    EXPECT_EQ(o->reason, FailureReason::kCancelled) << o->Describe();
  }
  EXPECT_NE(
      events_.WaitFor(2, In(Duration(0)))->message.find("killed after ignoring SIGTERM"),
      std::string::npos);
  for (int pid : pids) {
    EXPECT_TRUE(PollUntil([&] { return GroupGone(pid); }, In(seconds(5)))) << pid;
  }
  EXPECT_FALSE(backend.Submit(EncodeSpawnAttempt(Attempt(4, {"true"}))).ok());
  Shutdown(Duration(0));  // idempotent
  EXPECT_EQ(events_.FinishCount(4), 0u);
}

// Given a full backend, Submit should refuse (and send no event) beyond
// capacity, for a duplicate id, before Start and after Shutdown.
TEST_P(SpawnBackendTest, SubmitRefusesWhatItCannotTake) {
  BackendConfig config;
  config.slots = 2;
  config.driven = driven();
  SpawnBackend unstarted(config);
  EXPECT_EQ(unstarted.Capacity(), 2);
  EXPECT_FALSE(unstarted.Submit(EncodeSpawnAttempt(Attempt(100, {"true"}))).ok());

  SpawnBackend& backend = Make(2);
  EXPECT_EQ(backend.Capacity(), 2);
  ASSERT_TRUE(backend.Submit(EncodeSpawnAttempt(Attempt(1, {"sleep", "30"}))).ok());
  Status duplicate = backend.Submit(EncodeSpawnAttempt(Attempt(1, {"true"})));
  EXPECT_EQ(duplicate.code(), StatusCode::kAlreadyExists) << duplicate.ToString();
  ASSERT_TRUE(backend.Submit(EncodeSpawnAttempt(Attempt(2, {"sleep", "30"}))).ok());
  Status full = backend.Submit(EncodeSpawnAttempt(Attempt(3, {"true"})));
  EXPECT_FALSE(full.ok());
  backend.Cancel(1);
  ASSERT_TRUE(events_.WaitFor(1, In(seconds(10))).has_value());
  // The freed slot is usable as soon as OnFinished has been seen.
  EXPECT_TRUE(backend.Submit(EncodeSpawnAttempt(Attempt(4, {"true"}))).ok());
  ASSERT_TRUE(events_.WaitFor(4, In(seconds(10))).has_value());
  Shutdown(Duration(0));
  EXPECT_FALSE(backend.Submit(EncodeSpawnAttempt(Attempt(5, {"true"}))).ok());
  EXPECT_EQ(events_.FinishCount(1), 1u);
  EXPECT_EQ(events_.FinishCount(2), 1u);
  EXPECT_EQ(events_.FinishCount(3), 0u);
  EXPECT_EQ(events_.FinishCount(5), 0u);
  EXPECT_EQ(events_.FinishCount(100), 0u);
}

// Given a busy loop, should report its CPU time and peak RSS.
TEST_P(SpawnBackendTest, ReportsResourceUsage) {
  Make();
  AttemptOutcome o = Run(Shell(1, "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"));
  EXPECT_EQ(o.reason, FailureReason::kNone);
  EXPECT_GT(o.cpu_user + o.cpu_sys, Duration(0));
  EXPECT_GT(o.max_rss_kb, 0);
  EXPECT_GE(o.wall, o.cpu_user / 2);  // sanity: same order of magnitude
}

// Given 200 quick tasks through 2 slots, should report each exactly once.
TEST_P(SpawnBackendTest, ManyQuickTasksAreEachReportedOnce) {
  SpawnBackend& backend = Make(2);
  constexpr uint64_t kTasks = 200;
  uint64_t next = 1;
  const SteadyTime deadline = In(seconds(60));
  while (next <= kTasks && steady_clock::now() < deadline) {
    size_t seen = events_.TotalFinished();
    Status s = backend.Submit(EncodeSpawnAttempt(Attempt(next, {"true"})));
    if (s.ok()) {
      ++next;
    } else {
      ASSERT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
      ASSERT_TRUE(events_.WaitTotalAbove(seen, deadline));
    }
  }
  ASSERT_EQ(next, kTasks + 1);
  ASSERT_TRUE(events_.WaitTotalAbove(kTasks - 1, deadline));
  for (uint64_t id = 1; id <= kTasks; ++id) {
    EXPECT_EQ(events_.FinishCount(id), 1u) << id;
    auto o = events_.WaitFor(id, In(Duration(0)));
    ASSERT_TRUE(o.has_value());
    EXPECT_EQ(o->reason, FailureReason::kNone) << id << ": " << o->Describe();
  }
  Shutdown(Duration(0));
  EXPECT_EQ(events_.TotalFinished(), kTasks);
}

// Given limits on an attempt, the process should run under them, as
// /proc/self/limits shows them (cpu: soft the limit, hard 2 s more).
TEST_P(SpawnBackendTest, LimitsAreInForceInTheChild) {
  Make();
  SpawnAttempt a = Attempt(1, {"cat", "/proc/self/limits"});
  a.limits = {
      .cpu_seconds = 7, .memory_bytes = 256ull << 20, .files = 48, .processes = 4000};
  AttemptOutcome o = Run(std::move(a));
  ASSERT_EQ(o.reason, FailureReason::kNone) << o.Describe();
  const std::string limits = Slurp(dir_ / "logs" / "1.out");
  auto row = [&limits](const std::string& name) {
    const size_t at = limits.find(name);
    if (at == std::string::npos) return std::string("missing");
    std::istringstream in(limits.substr(at + name.size()));
    std::string soft, hard;
    in >> soft >> hard;
    return soft + " " + hard;
  };
  EXPECT_EQ(row("Max cpu time"), "7 9") << limits;
  EXPECT_EQ(row("Max data size"), "268435456 268435456") << limits;
  EXPECT_EQ(row("Max open files"), "48 48") << limits;
  EXPECT_EQ(row("Max processes"), "4000 4000") << limits;
}

// Given a CPU limit of 1s and a shell that spins, should end it with
// reason limit, naming the limit and SIGXCPU.
TEST_P(SpawnBackendTest, CpuLimitEndsASpinnerWithReasonLimit) {
  Make();
  SpawnAttempt a = Shell(1, "while :; do :; done");
  a.limits.cpu_seconds = 1;
  AttemptOutcome o = Run(std::move(a), seconds(120));
  EXPECT_EQ(o.reason, FailureReason::kLimit) << o.Describe();
  EXPECT_EQ(o.signal, SIGXCPU);
  EXPECT_NE(o.message.find("cpu limit 1s exceeded (SIGXCPU)"), std::string::npos)
      << o.message;
}

// Given a CPU limit of 1s and a spinner that ignores SIGXCPU, should end
// it by the hard limit's SIGKILL, still with reason limit.
TEST_P(SpawnBackendTest, CpuLimitKillsASpinnerThatIgnoresSigxcpu) {
  Make();
  SpawnAttempt a = Shell(1, "trap '' XCPU; while :; do :; done");
  a.limits.cpu_seconds = 1;
  AttemptOutcome o = Run(std::move(a), seconds(120));
  EXPECT_EQ(o.reason, FailureReason::kLimit) << o.Describe();
  EXPECT_EQ(o.signal, SIGKILL);
  EXPECT_NE(o.message.find("SIGKILL after ignoring SIGXCPU"), std::string::npos)
      << o.message;
}

// Given a memory limit and a pipeline whose tail buffers an endless line,
// should fail with reason limit naming the memory limit.
TEST_P(SpawnBackendTest, MemoryLimitFailsAHogWithReasonLimit) {
  Make();
  SpawnAttempt a = Shell(1, "head -c 1G /dev/zero | tail");
  a.limits.memory_bytes = 64ull << 20;
  AttemptOutcome o = Run(std::move(a), seconds(120));
  EXPECT_EQ(o.reason, FailureReason::kLimit) << o.Describe();
  EXPECT_NE(o.message.find("memory limit 64MiB reached"), std::string::npos) << o.message;
}

// Given a files limit of 16 and a shell that opens descriptors past it,
// should fail on its own exit code with the limit in force in the message.
TEST_P(SpawnBackendTest, FilesLimitFailureSaysTheLimitWasInForce) {
  Make();
  SpawnAttempt a = Attempt(
      1, {"python3", "-c", "import os\nwhile True: os.open('/dev/null', os.O_RDONLY)"});
  a.limits.files = 16;
  AttemptOutcome o = Run(std::move(a));
  EXPECT_EQ(o.reason, FailureReason::kExit) << o.Describe();
  EXPECT_NE(o.message.find("limits in force: files 16"), std::string::npos) << o.message;
  EXPECT_NE(Slurp(dir_ / "logs" / "1.err").find("Too many open files"),
            std::string::npos);
}

// Given a command that cannot be found, with limits (the fork + exec
// launch), should still be a launch failure naming the command.
TEST_P(SpawnBackendTest, CommandNotFoundUnderLimitsIsALaunchFailure) {
  Make();
  SpawnAttempt a = Attempt(1, {"no-such-command-drover"});
  a.limits.files = 64;
  AttemptOutcome o = Run(std::move(a));
  EXPECT_EQ(o.reason, FailureReason::kLaunchFailed);
  EXPECT_EQ(o.message, "command not found: no-such-command-drover");
}

}  // namespace
}  // namespace drover

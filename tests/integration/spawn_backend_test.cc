// SpawnBackend against real processes: exit codes, signals, timeouts,
// orphans, output capture, environment and cwd. The fixture, and how the
// tests wait, are spawn_backend_fixture.h; launch failures, cancellation,
// shutdown, capacity and limits are spawn_lifecycle_test.cc.
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

INSTANTIATE_TEST_SUITE_P(Modes, SpawnBackendTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Driven" : "Threaded";
                         });

// Given a command that exits 0, should report success with exit code 0.
TEST_P(SpawnBackendTest, ExitZeroSucceeds) {
  Make();
  AttemptOutcome o = Run(Attempt(1, {"true"}));
  EXPECT_EQ(o.reason, FailureReason::kNone) << o.Describe();
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.signal, 0);
  EXPECT_GT(o.wall, Duration(0));
  EXPECT_TRUE(events_.WasStarted(1));
}

// Given a command that exits 71, should report reason exit with code 71.
TEST_P(SpawnBackendTest, ExitCodeIsReported) {
  Make();
  AttemptOutcome o = Run(Shell(1, "exit 71"));
  EXPECT_EQ(o.reason, FailureReason::kExit);
  EXPECT_EQ(o.exit_code, 71);
  EXPECT_EQ(o.Describe(), "exit 71");
}

// Given a process that dies of SIGABRT, should report the signal and 128+6.
TEST_P(SpawnBackendTest, DeathBySigabrtIsReported) {
  Make();
  AttemptOutcome o = Run(Shell(1, "kill -ABRT $$"));
  EXPECT_EQ(o.reason, FailureReason::kSignal);
  EXPECT_EQ(o.signal, SIGABRT);
  EXPECT_EQ(o.exit_code, 128 + SIGABRT);
  EXPECT_EQ(o.Describe().rfind("signal SIGABRT", 0), 0u) << o.Describe();
}

// Given a process that dies of SIGKILL (not sent by us), should report it.
TEST_P(SpawnBackendTest, DeathBySigkillIsReported) {
  Make();
  AttemptOutcome o = Run(Shell(1, "kill -KILL $$"));
  EXPECT_EQ(o.reason, FailureReason::kSignal);
  EXPECT_EQ(o.signal, SIGKILL);
  EXPECT_EQ(o.exit_code, 128 + SIGKILL);
}

// Given a child that ignores SIGTERM and a 200ms timeout, should report a
// timeout long before the child would have finished, with its group gone.
// (Whether the shell set its trap before the 200ms is up depends on the
// machine's load; the next test covers the SIGKILL path deterministically.)
TEST_P(SpawnBackendTest, TimeoutStopsAChildThatTrapsTerm) {
  Make();
  SpawnAttempt attempt = Shell(1, "trap '' TERM; sleep 30");
  attempt.timeout = milliseconds(200);
  attempt.kill_grace = milliseconds(200);
  auto started = steady_clock::now();
  AttemptOutcome o = Run(std::move(attempt), seconds(15));
  EXPECT_LT(steady_clock::now() - started, seconds(15));
  EXPECT_EQ(o.reason, FailureReason::kTimeout) << o.Describe();
  EXPECT_EQ(o.message.rfind("timed out after 0.20s", 0), 0u) << o.message;
  EXPECT_EQ(o.exit_code, -1);
  EXPECT_LT(o.wall, seconds(15));
  auto pid = events_.WaitStarted(1, In(seconds(1)));
  ASSERT_TRUE(pid.has_value());
  EXPECT_TRUE(PollUntil([&] { return GroupGone(*pid); }, In(seconds(5))));
}

// Given a child whose TERM trap is known to be in place, stopping it should
// escalate to SIGKILL after kill_grace and say so.
TEST_P(SpawnBackendTest, StopEscalatesToSigkillAfterTheGrace) {
  SpawnBackend& backend = Make();
  SpawnAttempt attempt = Shell(1, "trap '' TERM; echo ready; sleep 30");
  attempt.kill_grace = milliseconds(200);
  fs::path out = attempt.stdout_path;
  ASSERT_TRUE(backend.Submit(EncodeSpawnAttempt(std::move(attempt))).ok());
  ASSERT_TRUE(PollUntil([&] { return Slurp(out) == "ready\n"; }, In(seconds(10))));
  auto stopping = steady_clock::now();
  backend.Cancel(1);
  auto o = events_.WaitFor(1, In(seconds(15)));
  ASSERT_TRUE(o.has_value());
  EXPECT_GE(steady_clock::now() - stopping, milliseconds(200));
  EXPECT_EQ(o->reason, FailureReason::kCancelled) << o->Describe();
  EXPECT_EQ(o->message, "cancelled; killed after ignoring SIGTERM");
  EXPECT_EQ(o->signal, SIGKILL);
  EXPECT_EQ(o->out.bytes, 6u);
}

// Given a FakeClock, a 10 s timeout and a 5 s kill grace, and a child that
// notes SIGTERM and goes on: SIGTERM should come only once the clock is past
// the timeout and SIGKILL only once it is past the grace, the reason
// timeout, the wall time the clock's. No sleeps: each Advance wakes the
// reactor, and the test waits on what the child writes.
TEST_P(SpawnBackendTest, FakeClockTimeoutTermsThenKillsAfterTheGrace) {
  FakeClock& clock = clock_;
  SpawnBackend& backend = Make(4, &clock);
  SpawnAttempt attempt =
      Shell(1, "trap 'echo term' TERM; echo ready; while :; do sleep 1; done");
  attempt.timeout = seconds(10);
  attempt.kill_grace = seconds(5);
  const fs::path out = attempt.stdout_path;
  ASSERT_TRUE(backend.Submit(EncodeSpawnAttempt(std::move(attempt))).ok());
  ASSERT_TRUE(PollUntil([&] { return Slurp(out) == "ready\n"; }, In(seconds(10))));

  clock.Advance(seconds(9));  // not yet
  EXPECT_FALSE(events_.WaitFor(1, In(milliseconds(0))).has_value());
  clock.Advance(seconds(1));  // the timeout: SIGTERM, which the trap notes
  ASSERT_TRUE(PollUntil([&] { return Slurp(out) == "ready\nterm\n"; }, In(seconds(10))))
      << Slurp(out);
  clock.Advance(seconds(4));  // within the grace
  EXPECT_FALSE(events_.WaitFor(1, In(milliseconds(0))).has_value());
  clock.Advance(seconds(1));  // the grace is over: SIGKILL

  std::optional<AttemptOutcome> o = events_.WaitFor(1, In(seconds(15)));
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, FailureReason::kTimeout) << o->Describe();
  EXPECT_EQ(o->message, "timed out after 10.00s; killed after ignoring SIGTERM");
  EXPECT_EQ(o->signal, SIGKILL);
  EXPECT_EQ(o->wall, seconds(15));
}

// Given a child that exits on SIGTERM, should report a timeout without
// waiting for the (long) kill grace.
TEST_P(SpawnBackendTest, TimeoutTerminatesAChildThatExitsOnTerm) {
  Make();
  SpawnAttempt attempt = Attempt(1, {"sleep", "30"});
  attempt.timeout = milliseconds(200);
  attempt.kill_grace = seconds(20);
  AttemptOutcome o = Run(std::move(attempt), seconds(15));
  EXPECT_EQ(o.reason, FailureReason::kTimeout);
  EXPECT_EQ(o.message, "timed out after 0.20s");
  EXPECT_EQ(o.signal, SIGTERM);
  EXPECT_LT(o.wall, seconds(15));
}

// Given a child that exits 0 in its SIGTERM handler after a timeout, should
// still report the timeout: the exit status after our signal is not trusted.
TEST_P(SpawnBackendTest, ExitStatusAfterTimeoutIsNotTrusted) {
  Make();
  SpawnAttempt attempt = Shell(1, "trap 'exit 0' TERM; sleep 30 & wait");
  attempt.timeout = milliseconds(200);
  attempt.kill_grace = seconds(10);
  AttemptOutcome o = Run(std::move(attempt), seconds(15));
  EXPECT_EQ(o.reason, FailureReason::kTimeout) << o.Describe();
  EXPECT_EQ(o.exit_code, -1);
}

// Given a leader that exits while a background grandchild holds its stdout,
// should report promptly and leave no grandchild running.
TEST_P(SpawnBackendTest, GrandchildIsNotOrphaned) {
  Make();
  fs::path pid_file = dir_ / "grandchild.pid";
  AttemptOutcome o =
      Run(Shell(1, "sleep 300 & echo $! > '" + pid_file.string() + "'"), seconds(15));
  EXPECT_EQ(o.reason, FailureReason::kNone) << o.Describe();
  std::ifstream in(pid_file);
  int grandchild = 0;
  ASSERT_TRUE(in >> grandchild) << "no pid in " << pid_file;
  extra_pids_.push_back(grandchild);
  EXPECT_TRUE(PollUntil([&] { return ProcessGone(grandchild); }, In(seconds(5))))
      << "grandchild " << grandchild << " survived its leader";
}

// Given output far over the cap, should keep exactly the last `cap` bytes
// and report the rest as dropped.
TEST_P(SpawnBackendTest, OutputOverTheCapKeepsTheTail) {
  Make();
  std::string full;
  for (int i = 1; i <= 100000; ++i) full += std::to_string(i) + "\n";
  SpawnAttempt attempt = Attempt(1, {"seq", "1", "100000"});
  attempt.output_limit = 1000;
  fs::path out = attempt.stdout_path;
  AttemptOutcome o = Run(std::move(attempt));
  EXPECT_EQ(o.reason, FailureReason::kNone);
  EXPECT_EQ(Slurp(out), full.substr(full.size() - 1000));
  EXPECT_EQ(o.out.bytes, 1000u);
  EXPECT_EQ(o.out.dropped, full.size() - 1000);
  EXPECT_EQ(o.err.bytes, 0u);
}

// Given a child that prints a line and then sleeps, and a backend Clock that
// stands still, should have the line in its file while the child still
// runs: its pipes join the reactor's set a moment after the launch
// (kQuietStart, on the real clock) and what they held is read then.
TEST_P(SpawnBackendTest, OutputIsReadWhileTheChildRuns) {
  SpawnBackend& backend = Make(4, &clock_);
  SpawnAttempt attempt = Shell(1, "echo early; echo late >&2; exec sleep 30");
  fs::path out = attempt.stdout_path, err = attempt.stderr_path;
  ASSERT_TRUE(backend.Submit(EncodeSpawnAttempt(std::move(attempt))).ok());
  EXPECT_TRUE(PollUntil([&] { return Slurp(out) == "early\n" && Slurp(err) == "late\n"; },
                        In(seconds(10))))
      << "stdout '" << Slurp(out) << "', stderr '" << Slurp(err) << "'";
  EXPECT_FALSE(events_.WaitFor(1, In(milliseconds(0))).has_value()) << "it ended";
  backend.Cancel(1);
  auto o = events_.WaitFor(1, In(seconds(10)));
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, FailureReason::kCancelled) << o->Describe();
  EXPECT_EQ(o->out.bytes, 6u);
  EXPECT_EQ(o->err.bytes, 5u);
}

// Given short tasks that print and exit at once, before their pipes are
// watched, should capture every byte of each, whatever the order of their
// ends: what waits in a pipe is drained when its leader exits.
TEST_P(SpawnBackendTest, OutputOfTasksThatEndAtOnceIsDrained) {
  Make(8);
  std::vector<fs::path> outs, errs;
  for (uint64_t id = 1; id <= 8; ++id) {
    SpawnAttempt attempt =
        Shell(id, "printf 'out %s' " + std::to_string(id) + "; printf 'err' >&2");
    outs.push_back(attempt.stdout_path);
    errs.push_back(attempt.stderr_path);
    ASSERT_TRUE(backend_->Submit(EncodeSpawnAttempt(std::move(attempt))).ok());
  }
  for (uint64_t id = 1; id <= 8; ++id) {
    auto o = events_.WaitFor(id, In(seconds(20)));
    ASSERT_TRUE(o.has_value()) << "attempt " << id << " never finished";
    EXPECT_EQ(o->reason, FailureReason::kNone) << o->Describe();
    EXPECT_EQ(Slurp(outs[id - 1]), "out " + std::to_string(id));
    EXPECT_EQ(Slurp(errs[id - 1]), "err");
  }
}

// Given a child that writes several pipes' worth (1 MiB) on both streams
// before it does anything else, with a Clock that stands still, should
// finish with all of it: a full pipe waits only for the quiet start.
TEST_P(SpawnBackendTest, AChildThatFillsItsPipesAtOnceIsNotHeld) {
  Make(4, &clock_);
  SpawnAttempt attempt =
      Shell(1, "head -c 1048576 /dev/zero; head -c 1048576 /dev/zero >&2");
  attempt.output_limit = 4 << 20;
  AttemptOutcome o = Run(std::move(attempt), seconds(20));
  EXPECT_EQ(o.reason, FailureReason::kNone) << o.Describe();
  EXPECT_EQ(o.out.bytes, 1048576u);
  EXPECT_EQ(o.err.bytes, 1048576u);
}

// Given a task that prints nothing, should create no output files.
TEST_P(SpawnBackendTest, SilentTaskCreatesNoFiles) {
  Make();
  SpawnAttempt attempt = Attempt(1, {"true"});
  fs::path out = attempt.stdout_path, err = attempt.stderr_path;
  AttemptOutcome o = Run(std::move(attempt));
  EXPECT_EQ(o.reason, FailureReason::kNone);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(err));
  EXPECT_EQ(o.out.bytes + o.out.dropped + o.err.bytes + o.err.dropped, 0u);
}

// Given writes to both streams, should capture each in its own file.
TEST_P(SpawnBackendTest, StdoutAndStderrAreSeparate) {
  Make();
  SpawnAttempt attempt = Shell(1, "echo out; echo err >&2; echo more");
  fs::path out = attempt.stdout_path, err = attempt.stderr_path;
  AttemptOutcome o = Run(std::move(attempt));
  EXPECT_EQ(o.reason, FailureReason::kNone);
  EXPECT_EQ(Slurp(out), "out\nmore\n");
  EXPECT_EQ(Slurp(err), "err\n");
  EXPECT_EQ(o.out.bytes, 9u);
  EXPECT_EQ(o.err.bytes, 4u);
}

// Given attempt env, should add new variables, override inherited ones
// (without duplicates) and keep the rest of the worker's environment.
TEST_P(SpawnBackendTest, EnvIsAddedAndOverrides) {
  ::setenv("DROVER_TEST_INHERITED", "inherited", 1);
  ::setenv("DROVER_TEST_OVERRIDDEN", "old", 1);
  Make();
  SpawnAttempt attempt =
      Shell(1,
            "printf '%s,%s,%s,' \"$DROVER_TEST_INHERITED\" \"$DROVER_TEST_ADDED\" "
            "\"$DROVER_TEST_OVERRIDDEN\"; env | grep -c '^DROVER_TEST_OVERRIDDEN='");
  attempt.env = {{"DROVER_TEST_ADDED", "added"}, {"DROVER_TEST_OVERRIDDEN", "new"}};
  fs::path out = attempt.stdout_path;
  AttemptOutcome o = Run(std::move(attempt));
  ::unsetenv("DROVER_TEST_INHERITED");
  ::unsetenv("DROVER_TEST_OVERRIDDEN");
  EXPECT_EQ(o.reason, FailureReason::kNone) << o.Describe();
  EXPECT_EQ(Slurp(out), "inherited,added,new,1\n");
}

// Given a cwd, should run the command in it.
TEST_P(SpawnBackendTest, RunsInTheGivenCwd) {
  Make();
  fs::create_directory(dir_ / "work");
  SpawnAttempt attempt = Shell(1, "pwd -P");
  attempt.cwd = (dir_ / "work").string();
  fs::path out = attempt.stdout_path;
  AttemptOutcome o = Run(std::move(attempt));
  EXPECT_EQ(o.reason, FailureReason::kNone);
  EXPECT_EQ(Slurp(out), (dir_ / "work").string() + "\n");
}

}  // namespace
}  // namespace drover

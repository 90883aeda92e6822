// SpawnBackend against real processes: exit codes, signals, timeouts,
// cancellation, orphans, output capture, launch failures and capacity.
// Every wait is on an event (or a bounded poll of a condition) with a
// deadline; nothing sleeps to synchronise.
//
// Each test runs twice: with the backend's own reactor thread (Threaded),
// and driven (Driven, BackendConfig::driven, as the worker runs it), where
// a thread of the test plays the worker's loop: it waits on PollFd() for
// at most PollTimeoutMs() and calls Poll(), until the test stops it before
// Shutdown.
#include "backends/spawn/spawn_backend.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "tests/integration/backend_driver.h"

namespace drover {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

SteadyTime In(Duration d) { return steady_clock::now() + d; }

// Records the backend's events; waits on them with deadlines.
class RecordingEvents : public BackendEvents {
 public:
  void OnStarted(uint64_t attempt_id, int pid) override {
    std::lock_guard<std::mutex> lock(mu_);
    started_[attempt_id] = pid;
    cv_.notify_all();
  }
  void OnFinished(uint64_t attempt_id, AttemptOutcome outcome) override {
    std::lock_guard<std::mutex> lock(mu_);
    finished_[attempt_id].push_back(std::move(outcome));
    ++total_finished_;
    cv_.notify_all();
  }

  // The first outcome of `attempt_id`, or nothing by `deadline`.
  std::optional<AttemptOutcome> WaitFor(uint64_t attempt_id, SteadyTime deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_until(lock, deadline,
                        [&] { return finished_.count(attempt_id) != 0; })) {
      return std::nullopt;
    }
    return finished_[attempt_id].front();
  }
  // The pid reported by OnStarted, or nothing by `deadline`.
  std::optional<int> WaitStarted(uint64_t attempt_id, SteadyTime deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_until(lock, deadline,
                        [&] { return started_.count(attempt_id) != 0; })) {
      return std::nullopt;
    }
    return started_[attempt_id];
  }
  // Waits until more than `seen` OnFinished calls happened in total.
  bool WaitTotalAbove(size_t seen, SteadyTime deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_until(lock, deadline, [&] { return total_finished_ > seen; });
  }
  size_t FinishCount(uint64_t attempt_id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = finished_.find(attempt_id);
    return it == finished_.end() ? 0 : it->second.size();
  }
  bool WasStarted(uint64_t attempt_id) {
    std::lock_guard<std::mutex> lock(mu_);
    return started_.count(attempt_id) != 0;
  }
  size_t TotalFinished() {
    std::lock_guard<std::mutex> lock(mu_);
    return total_finished_;
  }
  std::vector<int> Pids() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<int> pids;
    for (const auto& [id, pid] : started_) pids.push_back(pid);
    return pids;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, int> started_;
  std::map<uint64_t, std::vector<AttemptOutcome>> finished_;
  size_t total_finished_ = 0;
};

// /proc/PID/stat fields after the command name: state, ppid, pgrp.
struct ProcStat {
  char state = '?';
  int pgrp = 0;
};

std::optional<ProcStat> ReadStat(const fs::path& stat_path) {
  std::ifstream in(stat_path);
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  size_t paren = line.rfind(')');  // the command name may hold spaces
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(paren + 1));
  ProcStat stat;
  int ppid = 0;
  if (!(rest >> stat.state >> ppid >> stat.pgrp)) return std::nullopt;
  return stat;
}

// True when `pid` no longer runs: gone, or a zombie waiting for whoever
// inherited it.
bool ProcessGone(int pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
  auto stat = ReadStat("/proc/" + std::to_string(pid) + "/stat");
  return !stat || stat->state == 'Z';
}

// True when no live (non-zombie) process is left in process group `pgid`.
bool GroupGone(int pgid) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto stat = ReadStat(entry.path() / "stat");
    if (stat && stat->pgrp == pgid && stat->state != 'Z') return false;
  }
  return true;
}

// Polls `condition` every few milliseconds until it holds or `deadline`.
template <typename F>
bool PollUntil(F condition, SteadyTime deadline) {
  while (!condition()) {
    if (steady_clock::now() >= deadline) return condition();
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class SpawnBackendTest : public ::testing::TestWithParam<bool> {
 protected:
  bool driven() const { return GetParam(); }
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "drover-spawn-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = fs::canonical(tmpl);
    // SIGABRT tests must not litter the machine with core files.
    rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);
  }

  void TearDown() override {
    if (backend_) Shutdown(Duration(0));
    // Leaders are reaped by the backend; anything a test learned about
    // besides them (grandchildren) is killed by pid if still there.
    for (int pid : extra_pids_) {
      if (pid > 0 && !ProcessGone(pid)) ::kill(pid, SIGKILL);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  SpawnBackend& Make(int slots = 4, const Clock* clock = nullptr) {
    BackendConfig config;
    config.slots = slots;
    config.clock = clock;
    config.driven = driven();
    backend_ = std::make_unique<SpawnBackend>(config);
    Status s = backend_->Start(&events_);
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (s.ok() && driven()) driver_.Start(backend_.get());
    return *backend_;
  }

  // Driven: stops the test's driver thread first, so that Shutdown runs the
  // reactor's last turns on this thread alone.
  void Shutdown(Duration grace) {
    driver_.Stop();
    backend_->Shutdown(grace);
  }

  SpawnAttempt Attempt(uint64_t id, std::vector<std::string> argv) {
    SpawnAttempt attempt;
    attempt.attempt_id = id;
    attempt.job_id = "job";
    attempt.task = "task-" + std::to_string(id);
    attempt.argv = std::move(argv);
    attempt.stdout_path = dir_ / "logs" / (std::to_string(id) + ".out");
    attempt.stderr_path = dir_ / "logs" / (std::to_string(id) + ".err");
    return attempt;
  }

  SpawnAttempt Shell(uint64_t id, const std::string& script) {
    return Attempt(id, {"sh", "-c", script});
  }

  // Submits and waits for the outcome (fails the test on a timeout).
  AttemptOutcome Run(SpawnAttempt attempt, Duration within = seconds(20)) {
    uint64_t id = attempt.attempt_id;
    Status s = backend_->Submit(EncodeSpawnAttempt(std::move(attempt)));
    EXPECT_TRUE(s.ok()) << s.ToString();
    auto outcome = events_.WaitFor(id, In(within));
    EXPECT_TRUE(outcome.has_value()) << "attempt " << id << " never finished";
    return outcome.value_or(AttemptOutcome{});
  }

  fs::path dir_;
  RecordingEvents events_;
  FakeClock clock_;  // for the tests that pass it to Make; outlives backend_
  std::unique_ptr<SpawnBackend> backend_;
  std::vector<int> extra_pids_;
  testing::BackendDriver driver_;  // driven: plays the worker's loop
};

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

// The `drover` binary end to end: `drover run` (coordinator and worker in one
// process over inproc://, state in SQLite) against real processes, and the
// read-only views `status`, `logs` and `validate` (retries and resumes:
// run_resume_test.cc). Every test works in a fresh
// temporary directory, waits on files its tasks write or on processes ending
// with deadlines (never a fixed sleep), and kills by pid whatever it or its
// tasks started that is still alive.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tests/integration/cli_test_util.h"

namespace drover {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::seconds;
using testing::ChildProcess;
using testing::CountLines;
using testing::DroverCliTest;
using testing::kDeadline;
using testing::LinesWith;
using testing::Millis;
using testing::ProcessResult;
using testing::TasksByName;

// Given a job whose tasks all succeed (a shell string, an argv, env, needs and
// a matrix), `drover run` should exit 0, print an `ok` line per task, and
// `status --output json` should show every task succeeded on attempt 1 with
// exit code 0.
TEST_F(DroverCliTest, AllTasksSucceedExitsZero) {
  const std::string spec = Spec("ok.yaml", R"(version: 1
name: all-ok
tasks:
  first:
    run: echo first > first.txt
  list:
    run: [printf, "%s\n", listed]
  env:
    needs: first
    env: {GREETING: hello}
    run: 'test "$GREETING" = hello && cat first.txt'
  shards:
    needs: first
    matrix: {shard: [0, 1, 2]}
    run: [sh, -c, "echo shard ${matrix.shard}"]
  last:
    needs: [env, shards, list]
    run: echo done
)");
  const ProcessResult r = Run(spec);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();

  const std::vector<std::string> names = {"first", "list", "env", "shards[shard=0]",
                                          "shards[shard=1]", "shards[shard=2]", "last"};
  for (const auto& name : names) {
    EXPECT_EQ(LinesWith(r.out, "ok ", {" " + name + " "}).size(), 1u)
        << "no `ok` line for " << name << " in:\n" << r.out;
  }

  const json doc = Status();
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc["job"]["state"], "succeeded");
  EXPECT_EQ(doc["job"]["name"], "all-ok");
  auto tasks = TasksByName(doc);
  EXPECT_EQ(tasks.size(), names.size());
  for (const auto& name : names) {
    SCOPED_TRACE(name);
    EXPECT_EQ(tasks[name]["status"], "succeeded");
    EXPECT_EQ(tasks[name]["attempts"], 1);
    EXPECT_EQ(tasks[name]["exit_code"], 0);
  }

  // The captured output of one instance, through `drover logs`.
  const ProcessResult logs =
      Drover({"logs", "shards[shard=1]", "--state-dir", state_.string()});
  ASSERT_EQ(logs.exit_code, 0) << logs.Describe();
  EXPECT_EQ(logs.out, "shard 1\n");
}

// Given a job of more tasks than its summary lists, all of them succeeding,
// and the same job with two instances failing, `drover run`'s summary
// should count every task by its state as `drover status` does, and list
// only the failed ones.
TEST_F(DroverCliTest, TheSummaryOfALargeJobCountsEveryTaskAndListsOnlyFailures) {
  for (const bool failing : {false, true}) {
    SCOPED_TRACE(failing ? "two failing" : "all succeeding");
    const std::string spec = Spec(
        failing ? "some.yaml" : "all.yaml",
        std::string(R"(version: 1
name: many
tasks:
  work:
    matrix: {i: [)") +
            [] {
              std::string values;
              for (int i = 0; i < 40; ++i) values += (i ? ", " : "") + std::to_string(i);
              return values;
            }() +
            R"(]}
    run: [sh, -c, ")" +
            (failing ? "test ${matrix.i} -ne 7 && test ${matrix.i} -ne 30" : "true") +
            R"("]
)");
    const ProcessResult r = Run(spec);
    ASSERT_EQ(r.exit_code, failing ? 1 : 0) << r.Describe();
    const std::string counts =
        failing ? "40 tasks: 2 failed, 38 succeeded" : "40 tasks: 40 succeeded";
    const auto summary = LinesWith(r.out, "job ", {"(many): ", counts});
    EXPECT_EQ(summary.size(), 1u) << r.out;
    const auto listed = LinesWith(r.out, "work[i=", {"  "});
    const std::vector<std::string> failed = LinesWith(r.out, "work[i=", {" failed "});
    EXPECT_EQ(failed.size(), failing ? 2u : 0u) << r.out;
    EXPECT_EQ(listed.size(), failed.size()) << r.out;
    const ProcessResult status = Drover({"status", "--state-dir", state_.string()});
    EXPECT_EQ(LinesWith(status.out, "job ", {counts}).size(), 1u) << status.out;
  }
}

// Given a task that exits 3 with a chain of dependents and an independent
// branch, `drover run` should exit 1, print a FAILED line with "exit 3",
// leave the dependents blocked (never run) and still run the other branch.
TEST_F(DroverCliTest, FailedTaskBlocksDependentsButNotOtherBranch) {
  const std::string spec = Spec("fail.yaml", R"(version: 1
name: fail
tasks:
  fails:
    run: exit 3
  dependent:
    needs: fails
    run: touch dependent.ran
  transitive:
    needs: dependent
    run: touch transitive.ran
  independent:
    run: echo fine > independent.ran
)");
  const ProcessResult r = Run(spec);
  ASSERT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_EQ(LinesWith(r.out, "FAILED", {" fails ", "exit 3"}).size(), 1u) << r.out;

  const json doc = Status();
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc["job"]["state"], "failed");
  auto tasks = TasksByName(doc);
  EXPECT_EQ(tasks["fails"]["status"], "failed");
  EXPECT_EQ(tasks["fails"]["reason"], "exit");
  EXPECT_EQ(tasks["fails"]["exit_code"], 3);
  EXPECT_EQ(tasks["dependent"]["status"], "blocked");
  EXPECT_EQ(tasks["dependent"]["attempts"], 0);
  EXPECT_EQ(tasks["transitive"]["status"], "blocked");
  EXPECT_EQ(tasks["independent"]["status"], "succeeded");
  EXPECT_FALSE(fs::exists(work_ / "dependent.ran"));
  EXPECT_FALSE(fs::exists(work_ / "transitive.ran"));
  EXPECT_TRUE(fs::exists(work_ / "independent.ran"));
}

// Given a task that kills itself with SIGKILL, the run should fail and the
// task should be reported with reason "signal" and signal 9.
TEST_F(DroverCliTest, DeathBySignalIsReportedWithTheSignal) {
  const std::string spec = Spec("signal.yaml", R"(version: 1
name: signal
tasks:
  killed:
    run: kill -KILL $$
)");
  const ProcessResult r = Run(spec);
  ASSERT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_EQ(LinesWith(r.out, "FAILED", {" killed ", "SIGKILL"}).size(), 1u) << r.out;

  const json doc = Status();
  ASSERT_TRUE(doc.is_object());
  auto tasks = TasksByName(doc);
  EXPECT_EQ(tasks["killed"]["status"], "failed");
  EXPECT_EQ(tasks["killed"]["reason"], "signal");
  EXPECT_EQ(tasks["killed"]["signal"], 9);
}

// Given a task that ignores SIGTERM and sleeps 307s, with timeout 300ms and
// kill_grace 300ms, the task should end with reason "timeout" (SIGKILL after
// the grace), the run should finish far sooner than the sleep, and the
// process should be gone.
TEST_F(DroverCliTest, TimeoutKillsChildThatTrapsTerm) {
  const std::string spec = Spec("timeout.yaml", R"(version: 1
name: timeout
tasks:
  stubborn:
    timeout: 300ms
    kill_grace: 300ms
    run: "trap '' TERM; echo $$ > stubborn.pid; exec sleep 307"
)");
  const ProcessResult r = Run(spec);
  const std::optional<pid_t> pid = testing::WaitForPidFile(work_ / "stubborn.pid", Millis(0));
  if (pid) KillLater(*pid, "sleep 307");
  ASSERT_EQ(r.exit_code, 1) << r.Describe();
  // Not a timing assertion: only a collapse (waiting for the sleep) fails it.
  EXPECT_LT(r.elapsed, seconds(30)) << r.Describe();

  const json doc = Status();
  ASSERT_TRUE(doc.is_object());
  auto tasks = TasksByName(doc);
  EXPECT_EQ(tasks["stubborn"]["status"], "failed");
  EXPECT_EQ(tasks["stubborn"]["reason"], "timeout");

  ASSERT_TRUE(pid.has_value()) << "the task never wrote its pid";
  EXPECT_TRUE(testing::WaitUntil([&] { return testing::ProcessGone(*pid); }, seconds(10)))
      << "pid " << *pid << " still runs";
}

// Given a task that leaves a background grandchild behind (`sleep 308 &`),
// the task should succeed and the grandchild should be gone after the run:
// no orphans.
TEST_F(DroverCliTest, OrphanedGrandchildIsKilled) {
  const std::string spec = Spec("orphan.yaml", R"(version: 1
name: orphan
tasks:
  parent:
    timeout: 20s
    run: "sleep 308 & echo $! > gc.pid"
)");
  const ProcessResult r = Run(spec);
  const std::optional<pid_t> gc = testing::WaitForPidFile(work_ / "gc.pid", Millis(0));
  if (gc) KillLater(*gc, "sleep 308");
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  ASSERT_TRUE(gc.has_value()) << "the task never wrote the grandchild's pid";
  EXPECT_TRUE(testing::WaitUntil([&] { return testing::ProcessGone(*gc); }, seconds(10)))
      << "grandchild " << *gc << " outlived the run";
}

// Given a task that writes more than its output_limit to stdout, `drover
// logs` should print exactly the last output_limit bytes and say on stderr
// how many bytes were dropped.
TEST_F(DroverCliTest, OutputOverLimitKeepsTheTail) {
  const std::string spec = Spec("limit.yaml", R"(version: 1
name: limit
tasks:
  chatty:
    output_limit: 1000
    run: [seq, 1, 2000]
)");
  std::string full;
  for (int i = 1; i <= 2000; ++i) full += std::to_string(i) + "\n";
  const size_t kLimit = 1000;

  const ProcessResult r = Run(spec);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();

  const ProcessResult logs =
      Drover({"logs", "chatty", "--stream", "out", "--state-dir", state_.string()});
  ASSERT_EQ(logs.exit_code, 0) << logs.Describe();
  // The size first, so that a cap that does not hold fails with a short
  // message rather than a 9 KB diff.
  ASSERT_EQ(logs.out.size(), kLimit);
  EXPECT_EQ(logs.out, full.substr(full.size() - kLimit));
  EXPECT_NE(logs.err.find("the first " + std::to_string(full.size() - kLimit) +
                          " bytes of stdout were dropped"),
            std::string::npos)
      << logs.err;
}

// Given a spec with an unknown key, `drover run` and `drover validate` should
// exit 2 and point at the key as FILE:LINE:COL; `validate` of a good file
// should exit 0, and of both files 2.
TEST_F(DroverCliTest, BadSpecExitsTwoWithLocation) {
  const std::string bad = Spec("bad.yaml", R"(version: 1
name: bad
tasks:
  a:
    run: "true"
    neds: [b]
  b:
    run: "true"
)");
  const std::string good = Spec("good.yaml", R"(version: 1
name: good
tasks:
  a:
    run: "true"
)");

  const ProcessResult run = Run(bad);
  EXPECT_EQ(run.exit_code, 2) << run.Describe();
  EXPECT_NE(run.err.find("bad.yaml:6:5:"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("neds"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("needs"), std::string::npos) << "no 'did you mean': " << run.err;
  EXPECT_FALSE(fs::exists(state_ / "state.db")) << "a refused spec should not start a job";

  const ProcessResult validate_bad = Drover({"validate", bad});
  EXPECT_EQ(validate_bad.exit_code, 2) << validate_bad.Describe();
  EXPECT_NE(validate_bad.err.find("bad.yaml:6:5:"), std::string::npos) << validate_bad.err;

  const ProcessResult validate_good = Drover({"validate", good});
  EXPECT_EQ(validate_good.exit_code, 0) << validate_good.Describe();

  const ProcessResult validate_both = Drover({"validate", good, bad});
  EXPECT_EQ(validate_both.exit_code, 2) << validate_both.Describe();
}

// Given a matrix of 1,000 no-op instances, the run should exit 0 and the
// JSON should list 1,000 succeeded tasks.
TEST_F(DroverCliTest, ThousandInstanceMatrixSucceeds) {
  std::string values;
  for (int i = 0; i < 1000; ++i) values += (i ? ", " : "") + std::to_string(i);
  const std::string spec = Spec("matrix.yaml", "version: 1\nname: thousand\ntasks:\n"
                                               "  noop:\n    matrix:\n      i: [" +
                                                   values + "]\n    run: [true]\n");
  const ProcessResult r = Run(spec, {}, seconds(120));
  ASSERT_EQ(r.exit_code, 0) << r.Describe();

  const json doc = Status();
  ASSERT_TRUE(doc.is_object());
  ASSERT_TRUE(doc["tasks"].is_array());
  EXPECT_EQ(doc["tasks"].size(), 1000u);
  size_t succeeded = 0;
  std::map<std::string, int> names;
  for (const auto& t : doc["tasks"]) {
    succeeded += t["status"] == "succeeded" ? 1 : 0;
    ++names[t.value("name", "")];
  }
  EXPECT_EQ(succeeded, 1000u);
  EXPECT_EQ(names.size(), 1000u) << "instance names are not unique";
  EXPECT_EQ(names.count("noop[i=999]"), 1u);
}

// Given a fail_fast job where `boom` fails while `holder` runs (holder waits
// until boom's process has ended, so `after`, which needs holder, cannot
// have started), the run should fail, `after` should be skipped and never
// run, and `holder` should end succeeded or cancelled (not skipped: it ran).
TEST_F(DroverCliTest, FailFastSkipsTasksNotStarted) {
  const std::string spec = Spec("failfast.yaml", R"(version: 1
name: failfast
fail_fast: true
tasks:
  boom:
    run: echo $$ > boom.pid; exit 1
  holder:
    run: |
      i=0
      while [ ! -s boom.pid ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
      p=$(cat boom.pid)
      while kill -0 "$p" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
  after:
    needs: holder
    run: touch after.ran
)");
  const ProcessResult r = Run(spec, {"-j", "2"});
  ASSERT_EQ(r.exit_code, 1) << r.Describe();

  const json doc = Status();
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc["job"]["state"], "failed");
  auto tasks = TasksByName(doc);
  EXPECT_EQ(tasks["boom"]["status"], "failed");
  EXPECT_EQ(tasks["after"]["status"], "skipped");
  EXPECT_EQ(tasks["after"]["attempts"], 0);
  EXPECT_TRUE(tasks["holder"]["status"] == "succeeded" || tasks["holder"]["status"] == "cancelled")
      << tasks["holder"];
  EXPECT_FALSE(fs::exists(work_ / "after.ran"));
}

// Given a running task (`exec sleep 309`), a SIGINT to `drover run` should
// cancel the job: drover exits 1, the job and the task are `cancelled`, and
// the sleep process is gone.
TEST_F(DroverCliTest, SigintCancelsRunningTask) {
  const std::string spec = Spec("sigint.yaml", R"(version: 1
name: sigint
tasks:
  sleeper:
    run: echo $$ > sleep.pid; exec sleep 309
  later:
    needs: sleeper
    run: touch later.ran
)");
  ChildProcess* drover =
      StartDrover({"run", spec, "--state-dir", state_.string(), "--no-progress"});
  ASSERT_NE(drover, nullptr);
  const std::optional<pid_t> pid = testing::WaitForPidFile(work_ / "sleep.pid", kDeadline);
  ASSERT_TRUE(pid.has_value()) << "the task never started";
  KillLater(*pid, "sleep 309");

  ASSERT_TRUE(drover->Signal(SIGINT));
  const ProcessResult r = drover->Wait(seconds(30));
  ASSERT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("cancelling job"), std::string::npos) << r.err;

  const json doc = Status();
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc["job"]["state"], "cancelled");
  auto tasks = TasksByName(doc);
  EXPECT_EQ(tasks["sleeper"]["status"], "cancelled");
  EXPECT_NE(tasks["later"]["status"], "succeeded");
  EXPECT_FALSE(fs::exists(work_ / "later.ran"));
  EXPECT_TRUE(testing::WaitUntil([&] { return testing::ProcessGone(*pid); }, seconds(10)))
      << "the task's sleep (pid " << *pid << ") outlived the cancel";
}

// The signal mask of every thread of `pid` (SigBlk in /proc/PID/task/T/status),
// by thread id.
std::map<std::string, uint64_t> BlockedSignals(pid_t pid) {
  std::map<std::string, uint64_t> masks;
  for (const auto& t : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    std::ifstream in(t.path() / "status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("SigBlk:", 0) == 0) {
        masks[t.path().filename().string()] = std::stoull(line.substr(7), nullptr, 16);
      }
    }
  }
  return masks;
}

// Given `drover run` with a task that ended and one still running, every
// thread of drover should block SIGCHLD (BlockChildExitSignal): a child's
// exit then wakes no thread of it, and the tasks still start with an empty
// signal mask.
TEST_F(DroverCliTest, EveryThreadBlocksSigchldAndTasksStartWithNone) {
  const std::string spec = Spec("chld.yaml", R"(version: 1
name: chld
tasks:
  quick: {run: "true"}
  sleeper:
    needs: [quick]
    run: "grep SigBlk /proc/self/status > mask.txt; echo $$ > sleep.pid; exec sleep 311"
)");
  ChildProcess* drover =
      StartDrover({"run", spec, "--state-dir", state_.string(), "--no-progress"});
  ASSERT_NE(drover, nullptr);
  const std::optional<pid_t> pid =
      testing::WaitForPidFile(work_ / "sleep.pid", kDeadline);
  ASSERT_TRUE(pid.has_value()) << "the task never started";
  KillLater(*pid, "sleep 311");

  const std::map<std::string, uint64_t> masks = BlockedSignals(drover->pid());
  ASSERT_GT(masks.size(), 3u);
  const uint64_t chld = uint64_t{1} << (SIGCHLD - 1);
  for (const auto& [tid, mask] : masks) EXPECT_NE(mask & chld, 0u) << "thread " << tid;
  EXPECT_EQ(testing::ReadFile(work_ / "mask.txt").value_or(""),
            "SigBlk:\t0000000000000000\n");
  ASSERT_TRUE(drover->Signal(SIGINT));
  drover->Wait(seconds(30));
}

// Given a task that ignores SIGTERM (so the cancel cannot finish within its
// 60s grace), a second SIGINT should make `drover run` quit with exit code
// 130 without leaving the task's process behind.
TEST_F(DroverCliTest, SecondSigintQuitsWith130) {
  const std::string spec = Spec("sigint2.yaml", R"(version: 1
name: sigint-twice
tasks:
  stubborn:
    kill_grace: 60s
    run: "trap '' TERM; echo $$ > stubborn.pid; exec sleep 310"
)");
  ChildProcess* drover =
      StartDrover({"run", spec, "--state-dir", state_.string(), "--no-progress"});
  ASSERT_NE(drover, nullptr);
  const std::optional<pid_t> pid = testing::WaitForPidFile(work_ / "stubborn.pid", kDeadline);
  ASSERT_TRUE(pid.has_value()) << "the task never started";
  KillLater(*pid, "sleep 310");

  ASSERT_TRUE(drover->Signal(SIGINT));
  ASSERT_TRUE(testing::WaitUntil(
      [&] { return drover->StderrSoFar().find("cancelling job") != std::string::npos; },
      seconds(10)))
      << drover->StderrSoFar();
  ASSERT_TRUE(drover->Signal(SIGINT));
  const ProcessResult r = drover->Wait(seconds(30));
  EXPECT_EQ(r.exit_code, 130) << r.Describe();
  EXPECT_NE(r.err.find("interrupted"), std::string::npos) << r.err;
  EXPECT_TRUE(testing::WaitUntil([&] { return testing::ProcessGone(*pid); }, seconds(10)))
      << "the task's sleep (pid " << *pid << ") outlived drover";
}

// Given a failed task and one that runs until the test releases it, the
// failed task's line should reach `drover run`'s stdout (a file, so fully
// buffered) while the other still runs: lines are written out when the
// client has nothing more to read, not only at the end.
TEST_F(DroverCliTest, RunWritesATaskLineOutWhileTheJobGoesOn) {
  const std::string spec = Spec("lines.yaml", R"(version: 1
name: lines
tasks:
  fails:
    run: exit 3
  holds:
    run: "echo $$ > holds.pid; i=0; while [ ! -e release ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done"
)");
  ChildProcess* drover = StartDrover(
      {"run", spec, "-j", "2", "--state-dir", state_.string(), "--no-progress"});
  ASSERT_NE(drover, nullptr);
  const std::optional<pid_t> pid =
      testing::WaitForPidFile(work_ / "holds.pid", kDeadline);
  ASSERT_TRUE(pid.has_value()) << "the task never started";
  KillLater(*pid, "holds.pid");
  const bool shown = testing::WaitUntil(
      [&] { return !LinesWith(drover->StdoutSoFar(), "FAILED", {" fails "}).empty(); },
      seconds(20));
  const bool held = !fs::exists(work_ / "release");
  testing::WriteFile(work_ / "release", "");
  const ProcessResult r = drover->Wait(seconds(30));
  EXPECT_TRUE(shown) << "no line for the failed task while the other ran: " << r.out;
  EXPECT_TRUE(held);
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_EQ(LinesWith(r.out, "FAILED", {" fails ", "exit 3"}).size(), 1u) << r.out;
}

// Given an empty directory, `drover status` should exit 1 and say that
// there is no state there.
TEST_F(DroverCliTest, StatusInEmptyDirectoryFails) {
  const ProcessResult r = Drover({"status"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("no drover state"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_FALSE(fs::exists(work_ / ".drover")) << "reading must not create the state";
}

// Given a task that asks for worker labels or more slots than -j gives,
// `drover run` should refuse the spec up front (exit 2, the task's
// FILE:LINE:COL and the labels) instead of leaving the task pending for ever.
TEST_F(DroverCliTest, RunRefusesTasksItsWorkerCannotTake) {
  const std::string labels = Spec("labels.yaml", R"(version: 1
name: labels
tasks:
  anywhere: {run: echo hi}
  zoned:
    run: echo zone b
    on: {zone: b}
)");
  const ProcessResult r = Run(labels);
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_NE(r.err.find("labels.yaml:5:3: task 'zoned'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("zone=b"), std::string::npos) << r.err;

  const std::string big = Spec("big.yaml", R"(version: 1
name: big
tasks:
  wide: {run: echo wide, slots: 3}
)");
  const ProcessResult w = Drover({"run", big, "-j", "2", "--state-dir", state_.string()});
  EXPECT_EQ(w.exit_code, 2) << w.Describe();
  EXPECT_NE(w.err.find("needs 3 spawn slots"), std::string::npos) << w.err;
}

// Given a task that needs the workers' own service (`from: worker`),
// `drover run` should refuse the spec up front (exit 2, the task's
// FILE:LINE:COL and the service): its embedded worker has no services of
// its own, so the task would stay pending for ever.
TEST_F(DroverCliTest, RunRefusesTasksNeedingAWorkersService) {
  const std::string path = Spec("worker-service.yaml", R"(version: 1
name: worker-service
services:
  api: {from: worker}
tasks:
  plain: {run: echo hi}
  call:
    run: echo ${services.api.port}
)");
  const ProcessResult r = Run(path);
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_NE(r.err.find("worker-service.yaml:7:3: task 'call' needs the workers' own service "
                       "'api' (from: worker)"),
            std::string::npos)
      << r.err;
}

// Given a finished run, `drover logs` for a task the job does not have
// should exit 1 and name the task.
TEST_F(DroverCliTest, LogsForUnknownTaskFails) {
  const std::string spec = Spec("one.yaml", R"(version: 1
name: one
tasks:
  only:
    run: echo only
)");
  const ProcessResult run = Run(spec);
  ASSERT_EQ(run.exit_code, 0) << run.Describe();

  const ProcessResult r = Drover({"logs", "no-such-task", "--state-dir", state_.string()});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("no-such-task"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

// Given a child (and a background grandchild in its group) that outlives
// its deadline, ChildProcess::Wait should record a test failure, kill the
// whole group and return finished == false: a hung drover never hangs the
// suite nor outlives it.
TEST_F(DroverCliTest, HelperWaitKillsTheGroupOnItsDeadline) {
  ChildProcess child({"/bin/sh", "-c", "sleep 312 & echo $! > gc.pid; wait"}, work_, capture_);
  ASSERT_TRUE(child.Start());
  const std::optional<pid_t> gc = testing::WaitForPidFile(work_ / "gc.pid", kDeadline);
  ASSERT_TRUE(gc.has_value());
  KillLater(*gc, "sleep 312");

  ProcessResult r;
  EXPECT_NONFATAL_FAILURE(r = child.Wait(Millis(100)), "did not finish within 100ms");
  EXPECT_FALSE(r.finished);
  EXPECT_EQ(child.pid(), -1);
  EXPECT_TRUE(testing::WaitUntil([&] { return testing::ProcessGone(*gc); }, seconds(10)));
}

// Given every example in configs/examples, each should pass `drover
// validate` and `drover run` should exit 0 from the source tree.
TEST_F(DroverCliTest, EveryExampleValidatesAndRuns) {
  const fs::path source = DROVER_SOURCE_DIR;
  std::vector<fs::path> examples;
  for (const auto& entry : fs::directory_iterator(source / "configs" / "examples")) {
    if (entry.path().extension() == ".yaml") examples.push_back(entry.path());
  }
  std::sort(examples.begin(), examples.end());
  ASSERT_FALSE(examples.empty());

  for (const auto& example : examples) {
    SCOPED_TRACE(example.string());
    const std::string relative = fs::relative(example, source).string();
    const ProcessResult validate = Drover({"validate", relative}, kDeadline, source);
    EXPECT_EQ(validate.exit_code, 0) << validate.Describe();

    const fs::path state = root_ / ("state-" + example.stem().string());
    const ProcessResult run = Drover(
        {"run", relative, "--state-dir", state.string(), "--no-progress"}, kDeadline, source);
    EXPECT_EQ(run.exit_code, 0) << run.Describe();
  }
}

}  // namespace
}  // namespace drover

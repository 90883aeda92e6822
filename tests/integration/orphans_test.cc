// Tasks die with the process that supervises them (issue 14, item 6): a
// `drover worker` or `drover run` killed -9 leaves no process of its tasks,
// grandchildren included (backends/process/guardian.h); and a worker
// restarted on the same spool kills what an earlier one left when its
// guardian died with it.
//
// A job's service instances (each in its own process group) die with the
// worker too, and so does a grandchild that left the task's group with
// setsid (found by the guardian marker in its environment).
//
// Each task is a shell that starts a background sleep (a grandchild in the
// task's process group) and then sleeps itself; both write their pids into
// the test's work directory (a fork pool process does the same). The test waits for those
// files, kills the supervisor, and polls /proc for the pids with a deadline. Every
// process of a task is killed by pid at the end whatever happened.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/cli_test_util.h"
#include "tests/integration/distributed_test_util.h"

namespace drover {
namespace {

using testing::DaemonProcess;
using testing::DistributedTest;
using testing::LiveChildren;
using testing::Millis;
using testing::ProcessGone;
using testing::ProcessResult;
using testing::ProcInfo;
using testing::ServeChildren;
using testing::WaitForPidFile;
using testing::WaitUntil;

constexpr Millis kEventDeadline{30'000};

constexpr const char* kTaskSpec = R"(version: 1
name: orphans
tasks:
  sleeper:
    run: [sh, -c, 'sleep 300 & echo $! > grandchild.pid; echo $$ > shell.pid; sleep 300']
)";

// The pids a task wrote, killed (if still ours: a sleep or a sh) when the
// test ends however it ends.
class TaskPids {
 public:
  ~TaskPids() {
    if (grandchild) testing::KillIfRunning(*grandchild, "sleep");
    if (shell) testing::KillIfRunning(*shell, "sh");
  }
  bool Read(const std::filesystem::path& dir) {
    grandchild = WaitForPidFile(dir / "grandchild.pid", kEventDeadline);
    shell = WaitForPidFile(dir / "shell.pid", kEventDeadline);
    return grandchild && shell;
  }
  bool AllGone() const { return ProcessGone(*grandchild) && ProcessGone(*shell); }

  std::optional<pid_t> grandchild, shell;
};

// The worker's guardian: its child named drover-guardian, or -1.
pid_t GuardianOf(pid_t worker) {
  for (const ProcInfo& p : LiveChildren(worker)) {
    if (p.comm == "drover-guardian") return p.pid;
  }
  return -1;
}

// Given a worker running a task whose shell started a grandchild, when the
// worker is killed -9, then neither the shell nor the grandchild should be
// left running.
TEST_F(DistributedTest, TaskDiesWithItsKilledWorker) {
  ASSERT_TRUE(StartCoordinator());
  DaemonProcess* worker = StartWorker("w1", "spawn=1");
  ASSERT_TRUE(worker);
  TaskPids pids;
  ASSERT_FALSE(Submit(Spec("orphans.yaml", kTaskSpec)).empty());
  ASSERT_TRUE(pids.Read(work_));

  const ProcessResult killed = worker->Crash();
  EXPECT_EQ(killed.term_signal, SIGKILL) << killed.Describe();
  EXPECT_TRUE(WaitUntil([&] { return pids.AllGone(); }, kEventDeadline))
      << "the task (shell " << *pids.shell << ", grandchild " << *pids.grandchild
      << ") outlived its worker";
}

// Given `drover run` running a task whose shell started a grandchild, when
// `drover run` is killed -9, then neither should be left running.
TEST_F(DistributedTest, TaskDiesWithItsKilledDroverRun) {
  DaemonProcess* run = StartClient({"run", Spec("orphans.yaml", kTaskSpec)});
  ASSERT_TRUE(run);
  TaskPids pids;
  ASSERT_TRUE(pids.Read(work_));

  const ProcessResult killed = run->Crash();
  EXPECT_EQ(killed.term_signal, SIGKILL) << killed.Describe();
  EXPECT_TRUE(WaitUntil([&] { return pids.AllGone(); }, kEventDeadline))
      << "the task (shell " << *pids.shell << ", grandchild " << *pids.grandchild
      << ") outlived drover run";
}

// Given a worker whose fork pool process (a shell that started a
// grandchild) is busy with a task, when the worker is killed -9, then
// neither the pool process nor its grandchild should be left running.
TEST_F(DistributedTest, PoolProcessDiesWithItsKilledWorker) {
  ASSERT_TRUE(StartCoordinator());
  DaemonProcess* worker = StartWorker("w1", "fork=1");
  ASSERT_TRUE(worker);
  TaskPids pids;
  ASSERT_FALSE(Submit(Spec("pool.yaml", R"(version: 1
name: pool-orphans
pools:
  sleepy:
    command: [sh, -c, 'sleep 300 & echo $! > grandchild.pid; echo $$ > shell.pid; while read -r line <&3; do sleep 300; done']
tasks:
  ask: {backend: fork, pool: sleepy, message: hi}
)")).empty());
  ASSERT_TRUE(pids.Read(work_));

  const ProcessResult killed = worker->Crash();
  EXPECT_EQ(killed.term_signal, SIGKILL) << killed.Describe();
  EXPECT_TRUE(WaitUntil([&] { return pids.AllGone(); }, kEventDeadline))
      << "the pool process (shell " << *pids.shell << ", grandchild " << *pids.grandchild
      << ") outlived its worker";
}

// Given a worker and its guardian both killed -9 while a task runs (so the
// task lives on), when the worker is restarted on the same spool, then it
// should kill the task's shell and grandchild before it registers.
TEST_F(DistributedTest, RestartedWorkerKillsTheGroupsInItsSpool) {
  ASSERT_TRUE(StartCoordinator());
  DaemonProcess* worker = StartWorker("w1", "spawn=1");
  ASSERT_TRUE(worker);
  TaskPids pids;
  ASSERT_FALSE(Submit(Spec("orphans.yaml", kTaskSpec)).empty());
  ASSERT_TRUE(pids.Read(work_));
  const pid_t guardian = GuardianOf(worker->pid());
  ASSERT_GT(guardian, 0) << "the worker has no drover-guardian child";
  ASSERT_EQ(::kill(guardian, SIGKILL), 0);
  ASSERT_TRUE(WaitUntil([&] { return ProcessGone(guardian); }, kEventDeadline));
  worker->Crash();
  ASSERT_FALSE(ProcessGone(*pids.shell)) << "nothing left for the restart to kill";

  DaemonProcess* again = Restart(worker);
  ASSERT_TRUE(again);
  EXPECT_TRUE(WaitUntil([&] { return pids.AllGone(); }, kEventDeadline))
      << "the restarted worker left the earlier task (shell " << *pids.shell
      << ", grandchild " << *pids.grandchild << ") running";
}

// Given a worker running a task, when a second worker is started on the
// same --spool-dir, then it should be refused (exit 2, naming the spool and
// the first worker's pid) and the first worker's task should still run:
// a second worker's start-up kill of the spool's recorded groups is for a
// dead predecessor only.
TEST_F(DistributedTest, SecondWorkerOnALiveWorkersSpoolIsRefused) {
  ASSERT_TRUE(StartCoordinator());
  DaemonProcess* worker = StartWorker("w1", "spawn=1");
  ASSERT_TRUE(worker);
  TaskPids pids;
  ASSERT_FALSE(Submit(Spec("orphans.yaml", kTaskSpec)).empty());
  ASSERT_TRUE(pids.Read(work_));

  DaemonProcess* second =
      StartWorker("w2", "spawn=1", {"--spool-dir", (work_ / "spool" / "w1").string()});
  ASSERT_TRUE(second);
  const ProcessResult r = second->Wait(kEventDeadline);
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_NE(r.err.find("is in use by pid " + std::to_string(worker->pid())), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("--spool-dir"), std::string::npos) << r.err;
  EXPECT_FALSE(ProcessGone(*pids.shell)) << "the refused worker killed the first one's task";
  EXPECT_FALSE(ProcessGone(*pids.grandchild));
}

// Given `drover run` running a task, when a second `drover run` is started
// on the same state directory, then it should be refused (exit 2) and the
// first one's task should still run.
TEST_F(DistributedTest, SecondDroverRunOnTheSameStateDirLeavesTheFirstsTasks) {
  DaemonProcess* run = StartClient({"run", Spec("orphans.yaml", kTaskSpec)});
  ASSERT_TRUE(run);
  TaskPids pids;
  ASSERT_TRUE(pids.Read(work_));

  DaemonProcess* second = StartClient({"run", Spec("other.yaml", R"(version: 1
name: other
tasks:
  quick: {run: 'true'}
)")});
  ASSERT_TRUE(second);
  const ProcessResult r = second->Wait(kEventDeadline);
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_NE(r.err.find("is in use by pid " + std::to_string(run->pid())), std::string::npos)
      << r.err;
  EXPECT_FALSE(ProcessGone(*pids.shell)) << "the second drover run killed the first one's task";
  EXPECT_FALSE(ProcessGone(*pids.grandchild));
}

// Given a worker running a job's service (two `drover serve` instances,
// each in its own process group) for a task that holds it, when the worker
// is killed -9, then no instance should be left running.
TEST_F(DistributedTest, ServiceInstancesDieWithTheirKilledWorker) {
  ASSERT_TRUE(StartCoordinator());
  DaemonProcess* worker = StartWorker("w1", "spawn=1");
  ASSERT_TRUE(worker);
  TaskPids pids;
  ASSERT_FALSE(Submit(Spec("served.yaml", R"(version: 1
name: served
services:
  hello: {command: [drover, serve, hello], instances: 2}
tasks:
  holder:
    run: [sh, -c, 'echo ${services.hello.port}; sleep 300 & echo $! > grandchild.pid; echo $$ > shell.pid; sleep 300']
)")).empty());
  ASSERT_TRUE(pids.Read(work_));
  // The task runs once its service is ready: both instances are up.
  const std::set<pid_t> instances = ServeChildren(worker->pid());
  struct Cleanup {
    const std::set<pid_t>& pids;
    ~Cleanup() {
      for (pid_t p : pids) testing::KillIfRunning(p, "serve");
    }
  } cleanup{instances};
  ASSERT_EQ(instances.size(), 2u);

  const ProcessResult killed = worker->Crash();
  EXPECT_EQ(killed.term_signal, SIGKILL) << killed.Describe();
  EXPECT_TRUE(WaitUntil(
      [&] {
        for (pid_t p : instances) {
          if (!ProcessGone(p)) return false;
        }
        return pids.AllGone();
      },
      kEventDeadline))
      << "a service instance or the task outlived its worker";
}

// Given a task that started a grandchild in a session of its own (setsid:
// out of the task's process group, as a daemon does), when the worker is
// killed -9, then the escaped grandchild should not be left running.
TEST_F(DistributedTest, EscapedGrandchildDiesWithItsKilledWorker) {
  ASSERT_TRUE(StartCoordinator());
  DaemonProcess* worker = StartWorker("w1", "spawn=1");
  ASSERT_TRUE(worker);
  ASSERT_FALSE(Submit(Spec("escape.yaml", R"(version: 1
name: escape
tasks:
  escaper:
    run: [sh, -c, 'setsid sh -c "echo \$\$ > escaped.pid; exec sleep 300" & echo $$ > shell.pid; sleep 300']
)")).empty());
  const std::optional<pid_t> escaped = WaitForPidFile(work_ / "escaped.pid", kEventDeadline);
  const std::optional<pid_t> shell = WaitForPidFile(work_ / "shell.pid", kEventDeadline);
  ASSERT_TRUE(escaped && shell);
  struct Cleanup {
    pid_t escaped, shell;
    ~Cleanup() {
      testing::KillIfRunning(escaped, "sleep");
      testing::KillIfRunning(shell, "sh");
    }
  } cleanup{*escaped, *shell};
  ASSERT_EQ(::getsid(*escaped), *escaped) << "the grandchild did not leave the task's session";

  const ProcessResult killed = worker->Crash();
  EXPECT_EQ(killed.term_signal, SIGKILL) << killed.Describe();
  EXPECT_TRUE(WaitUntil([&] { return ProcessGone(*escaped) && ProcessGone(*shell); },
                        kEventDeadline))
      << "the escaped grandchild " << *escaped << " outlived its worker";
}

}  // namespace
}  // namespace drover

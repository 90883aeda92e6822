// Distributed drover under failure, with real processes: a `drover
// coordinator` and `drover worker`s on an ephemeral loopback port, killed
// -9, stopped, drained and restarted while a job runs; `drover submit`,
// `status`, `cancel` and `workers` as the clients. Heartbeats are 200 ms and
// a peer is dead after 5 missed ones, so each test takes seconds.
//
// Tasks are shell scripts that write marker files (their pid, worker and
// attempt number) into the test's work directory and, where a test needs a
// task to stay running, wait for a release file the test creates; every such
// wait is bounded in the script too. The test synchronises on those files,
// on process exits and on the coordinator's log with deadlines, and checks
// the state store read-only for what the user cannot see: how many results
// were recorded.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tests/integration/cli_test_util.h"
#include "tests/integration/distributed_test_util.h"

namespace drover {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::DaemonProcess;
using testing::DistributedTest;
using testing::JobOfStatus;
using testing::kClientPollInterval;
using testing::Millis;
using testing::PollUntil;
using testing::ProcessGone;
using testing::ProcessResult;
using testing::QueryStore;
using testing::ReadFile;
using testing::SqlQuote;
using testing::StoreCount;
using testing::WaitForPidFile;
using testing::WaitUntil;
using testing::WriteFile;

// Long enough for a lost worker to be noticed (1 s), a retry and a
// reconnect with backoff (1 s, then 2 s); only a hang reaches it.
constexpr Millis kEventDeadline{30'000};

// A shell loop that waits (at most 60 s) for the file $1 to appear.
constexpr const char* kWaitFor =
    "w=0; while [ ! -e \"$1\" ] && [ $w -lt 1200 ]; do sleep 0.05; w=$((w+1)); done";

// A job `name` of two tasks without retries: each writes "PID WORKER" to
// started.I (renamed into place, so that a test that sees the file reads
// it whole: the shell's `>` makes it empty first), then waits for the file
// release.
std::string TwoWaitingTasks(const std::string& name) {
  return "version: 1\nname: " + name +
         "\ntasks:\n  step:\n    matrix: {i: [0, 1]}\n    retries: 0\n"
         "    run: [sh, -c, 'echo \"$$ $DROVER_WORKER\" > started.${matrix.i}.part; "
         "mv started.${matrix.i}.part started.${matrix.i}; " +
         std::string(kWaitFor) + "', sh, release]\n";
}

// Which of two tasks that write started.0 and started.1 in `dir` started
// first (waiting for one to), or -1 when neither did by kEventDeadline.
int FirstStarted(const fs::path& dir) {
  int first = -1;
  WaitUntil(
      [&] {
        for (int i = 0; i < 2 && first < 0; ++i) {
          if (fs::exists(dir / ("started." + std::to_string(i)))) first = i;
        }
        return first >= 0;
      },
      kEventDeadline);
  return first;
}

// The attempt rows of one task, by number: number -> row.
std::map<int, testing::StoreRow> AttemptRows(const fs::path& state,
                                             const std::string& job,
                                             const std::string& task) {
  std::map<int, testing::StoreRow> rows;
  const auto found = QueryStore(state,
                                "SELECT id, number, worker, finished, reason, exit_code "
                                "FROM attempts WHERE job_id = " +
                                    SqlQuote(job) + " AND task = " + SqlQuote(task) +
                                    " ORDER BY number");
  if (!found) return rows;
  for (const auto& r : *found) rows[std::stoi(r.at("number"))] = r;
  return rows;
}

// Checks the store's exactly-once invariants for `job`: every task has
// exactly one succeeded attempt, attempt numbers are unique per task, and no
// attempt is left unfinished.
void ExpectOneResultPerTask(const fs::path& state, const std::string& job, int tasks) {
  const std::string j = SqlQuote(job);
  EXPECT_EQ(StoreCount(state, "SELECT count(*) FROM attempts WHERE job_id = " + j +
                                  " AND finished = 1 AND reason = 'ok'"),
            tasks);
  EXPECT_EQ(
      StoreCount(state, "SELECT count(DISTINCT task) FROM attempts WHERE job_id = " + j +
                            " AND finished = 1 AND reason = 'ok'"),
      tasks);
  EXPECT_EQ(StoreCount(state,
                       "SELECT count(*) FROM (SELECT task, number FROM attempts "
                       "WHERE job_id = " +
                           j + " GROUP BY task, number HAVING count(*) > 1)"),
            0);
  EXPECT_EQ(StoreCount(state, "SELECT count(*) FROM attempts WHERE job_id = " + j +
                                  " AND finished = 0"),
            0);
  EXPECT_EQ(StoreCount(state, "SELECT count(*) FROM tasks WHERE job_id = " + j +
                                  " AND state = 'succeeded'"),
            tasks);
}

// Given two tasks running on worker w1 and an idle w2, when w1 is killed -9,
// then both attempts should be recorded as worker-lost on w1, re-run on w2
// (attempt 2) and the job should succeed; status should show the lost
// attempt and `drover workers` should show w1 lost.
TEST_F(DistributedTest, KilledWorkersAttemptsAreRequeuedAsWorkerLost) {
  ASSERT_TRUE(StartCoordinator());
  DaemonProcess* w1 = StartWorker("w1", "spawn=2");
  ASSERT_TRUE(w1);
  const std::string spec = Spec("lose.yaml", R"(version: 1
name: lose-a-worker
defaults: {retries: 2, retry_backoff: 10ms}
tasks:
  slow:
    matrix: {i: [0, 1]}
    run: [sh, -c, 'echo "$$ $DROVER_WORKER" > started.${matrix.i}.$DROVER_ATTEMPT; if [ "$DROVER_ATTEMPT" = 1 ]; then exec sleep 120; fi']
)");
  DaemonProcess* client = StartClient({"submit", spec, "--wait"});
  ASSERT_TRUE(client);
  for (const char* f : {"started.0.1", "started.1.1"}) {
    ASSERT_TRUE(WaitForPidFile(work_ / f, kEventDeadline)) << f << " never written";
    EXPECT_NE(ReadFile(work_ / f).value_or("").find(" w1"), std::string::npos);
  }
  ASSERT_TRUE(StartWorker("w2", "spawn=2"));
  const ProcessResult killed = w1->Crash();
  ASSERT_EQ(killed.term_signal, SIGKILL) << killed.Describe();

  const ProcessResult r = client->Wait(kEventDeadline);
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  for (const char* f : {"started.0.2", "started.1.2"}) {
    ASSERT_TRUE(WaitForPidFile(work_ / f, Millis(0))) << f << " never written";
    EXPECT_NE(ReadFile(work_ / f).value_or("").find(" w2"), std::string::npos);
  }

  const auto rows = QueryStore(state_, "SELECT id FROM jobs");
  ASSERT_TRUE(rows && rows->size() == 1);
  const std::string job = rows->front().at("id");
  const json doc = Status(job);
  EXPECT_EQ(JobOfStatus(doc).value("state", ""), "succeeded") << doc.dump(2);
  auto tasks = Tasks(job);
  for (const std::string task : {"slow[i=0]", "slow[i=1]"}) {
    SCOPED_TRACE(task);
    EXPECT_EQ(tasks[task].value("status", tasks[task].value("state", "")), "succeeded");
    EXPECT_EQ(tasks[task].value("attempts", 0), 2);
    // The user can see that attempt 1 was lost with its worker.
    EXPECT_NE(tasks[task].dump().find("worker-lost"), std::string::npos)
        << "status does not show the worker-lost attempt: " << tasks[task].dump();
    auto attempts = AttemptRows(state_, job, task);
    ASSERT_EQ(attempts.size(), 2u);
    EXPECT_EQ(attempts[1]["reason"], "worker-lost");
    EXPECT_EQ(attempts[1]["worker"], "w1");
    EXPECT_EQ(attempts[2]["reason"], "ok");
    EXPECT_EQ(attempts[2]["worker"], "w2");
  }
  ExpectOneResultPerTask(state_, job, 2);

  auto workers = Workers();
  EXPECT_EQ(workers["w1"].value("state", ""), "lost") << json(workers).dump(2);
  EXPECT_EQ(workers["w2"].value("state", ""), "ready") << json(workers).dump(2);
}

// Given a task with `retries: 0` running on w1, when w1 is killed -9, then
// the lost attempt should count against the retries: the task fails as
// worker-lost, is not run again, and `submit --wait` exits 1.
TEST_F(DistributedTest, WorkerLostCountsAgainstRetries) {
  ASSERT_TRUE(StartCoordinator());
  DaemonProcess* w1 = StartWorker("w1", "spawn=1");
  ASSERT_TRUE(w1);
  const std::string spec = Spec("noretry.yaml", R"(version: 1
name: no-retries
defaults: {retries: 0}
tasks:
  once:
    run: [sh, -c, 'echo "$$ $DROVER_WORKER" > started.$DROVER_ATTEMPT; exec sleep 120']
)");
  DaemonProcess* client = StartClient({"submit", spec, "--wait"});
  ASSERT_TRUE(client);
  ASSERT_TRUE(WaitForPidFile(work_ / "started.1", kEventDeadline));
  ASSERT_TRUE(StartWorker("w2", "spawn=1"));
  w1->Crash();

  const ProcessResult r = client->Wait(kEventDeadline);
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  const auto rows = QueryStore(state_, "SELECT id FROM jobs");
  ASSERT_TRUE(rows && rows->size() == 1);
  const std::string job = rows->front().at("id");
  auto tasks = Tasks(job);
  EXPECT_EQ(tasks["once"].value("status", tasks["once"].value("state", "")), "failed");
  EXPECT_EQ(tasks["once"].value("reason", ""), "worker-lost") << tasks["once"].dump();
  auto attempts = AttemptRows(state_, job, "once");
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[1]["reason"], "worker-lost");
  EXPECT_FALSE(fs::exists(work_ / "started.2"));
}

// Given 8 tasks with 4 running on two workers, when the coordinator is
// killed -9, the running tasks finish while it is down, and it is restarted
// on the same state directory and port, then the job should complete: the
// workers re-register and resend their unACKed results, which are recorded
// once each (no task runs twice, none is lost, each has one succeeded
// attempt), and the waiting `submit --wait` client follows the job across
// the restart.
TEST_F(DistributedTest, CoordinatorKilledMidJobRecoversOnSameStateDir) {
  ASSERT_TRUE(StartCoordinator());
  ASSERT_TRUE(StartWorker("w1", "spawn=2"));
  ASSERT_TRUE(StartWorker("w2", "spawn=2"));
  const std::string spec =
      Spec("survive.yaml", std::string(R"(version: 1
name: survive-the-coordinator
defaults: {retries: 3, retry_backoff: 10ms}
tasks:
  gated:
    matrix: {i: [0, 1, 2, 3, 4, 5, 6, 7]}
    run: [sh, -c, 'echo "$$ $DROVER_WORKER $DROVER_ATTEMPT" >> ran.${matrix.i}; )") +
                               kWaitFor + R"(; echo out ${matrix.i}', sh, release]
)");
  DaemonProcess* client = StartClient({"submit", spec, "--wait"});
  ASSERT_TRUE(client);

  // Four run (all the slots there are); the other four wait.
  std::vector<pid_t> running;
  ASSERT_TRUE(WaitUntil(
      [&] {
        running.clear();
        for (int i = 0; i < 8; ++i) {
          if (auto pid =
                  WaitForPidFile(work_ / ("ran." + std::to_string(i)), Millis(0))) {
            running.push_back(*pid);
          }
        }
        return running.size() == 4;
      },
      kEventDeadline))
      << running.size() << " tasks started";

  ASSERT_EQ(coordinator()->Crash().term_signal, SIGKILL);
  // They finish while no coordinator is there to take their results.
  WriteFile(work_ / "release", "");
  for (pid_t pid : running) {
    EXPECT_TRUE(WaitUntil([&] { return ProcessGone(pid); }, kEventDeadline)) << pid;
  }
  ASSERT_TRUE(Restart(coordinator()));

  const ProcessResult r = client->Wait(Millis(60'000));
  EXPECT_EQ(r.exit_code, 0) << "submit --wait did not follow the job across the restart: "
                            << r.Describe();
  const auto rows = QueryStore(state_, "SELECT id FROM jobs");
  ASSERT_TRUE(rows && rows->size() == 1);
  const std::string job = rows->front().at("id");
  EXPECT_EQ(WaitForJobState(job, {"succeeded", "failed", "cancelled", "interrupted"},
                            Millis(60'000)),
            "succeeded");

  for (int i = 0; i < 8; ++i) {
    const std::string ran = ReadFile(work_ / ("ran." + std::to_string(i))).value_or("");
    EXPECT_EQ(std::count(ran.begin(), ran.end(), '\n'), 1)
        << "task " << i << " ran more than once or never:\n"
        << ran;
  }
  ExpectOneResultPerTask(state_, job, 8);
  EXPECT_EQ(StoreCount(state_, "SELECT count(*) - count(DISTINCT id) FROM attempts"), 0);
  // A result that crossed the restart keeps its output.
  const ProcessResult logs = Drover({"logs", job, "gated[i=" + std::to_string(0) + "]"});
  EXPECT_EQ(logs.exit_code, 0) << logs.Describe();
  EXPECT_EQ(logs.out, "out 0\n") << logs.Describe();
}

// Given a task whose worker w1 froze (SIGSTOP) long enough to be declared
// lost, so that the task was re-queued to w2, when w1 resumes and reports
// the old attempt's result (exit 7), then that result should be ignored and
// logged, and the task's outcome should be attempt 2's (succeeded, exit 0).
TEST_F(DistributedTest, ResultOfAnAttemptNoLongerCurrentIsIgnored) {
  ASSERT_TRUE(StartCoordinator());
  DaemonProcess* w1 = StartWorker("w1", "spawn=1");
  ASSERT_TRUE(w1);
  const std::string spec = Spec(
      "stale.yaml",
      std::string(R"(version: 1
name: stale-result
defaults: {retries: 2, retry_backoff: 10ms}
tasks:
  t:
    run: [sh, -c, 'echo "$$ $DROVER_WORKER" > started.$DROVER_ATTEMPT; )") +
          kWaitFor +
          R"(; echo attempt $DROVER_ATTEMPT; [ "$DROVER_ATTEMPT" = 1 ] && exit 7; exit 0', sh, release]
)");
  DaemonProcess* client = StartClient({"submit", spec, "--wait"});
  ASSERT_TRUE(client);
  const auto first = WaitForPidFile(work_ / "started.1", kEventDeadline);
  ASSERT_TRUE(first);

  ASSERT_TRUE(w1->Signal(SIGSTOP));
  ASSERT_TRUE(StartWorker("w2", "spawn=1"));
  ASSERT_TRUE(WaitForPidFile(work_ / "started.2", kEventDeadline))
      << "the frozen worker's attempt was never re-queued";
  EXPECT_NE(ReadFile(work_ / "started.2").value_or("").find(" w2"), std::string::npos);
  // Attempt 1 ends (exit 7) while its worker is frozen, so its result is
  // sent only once the worker thaws: after the task was re-queued. The
  // release file ends attempt 2 as well, which must not matter.
  WriteFile(work_ / "release", "");
  ASSERT_TRUE(WaitUntil([&] { return ProcessGone(*first); }, kEventDeadline));
  ASSERT_TRUE(w1->Signal(SIGCONT));

  // Ignored and logged: by the coordinator when the RESULT reaches it, or
  // by either side when the re-registration (HELLO/WELCOME.unknown) settles
  // it before the RESULT is resent.
  EXPECT_TRUE(testing::PollUntil(
      [&] {
        return coordinator()->Err().find("no longer current") != std::string::npos ||
               w1->Err().find("no longer current") != std::string::npos;
      },
      kEventDeadline, Millis(50)))
      << "nobody logged the stale result of attempt 1\n--- coordinator ---\n"
      << coordinator()->ErrTail() << "\n--- w1 ---\n"
      << w1->ErrTail();
  const ProcessResult r = client->Wait(kEventDeadline);
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  const auto rows = QueryStore(state_, "SELECT id FROM jobs");
  ASSERT_TRUE(rows && rows->size() == 1);
  const std::string job = rows->front().at("id");
  auto tasks = Tasks(job);
  EXPECT_EQ(tasks["t"].value("status", tasks["t"].value("state", "")), "succeeded");
  EXPECT_EQ(StoreCount(state_, "SELECT exit_code FROM tasks WHERE job_id = " +
                                   SqlQuote(job) + " AND name = 't'"),
            0)
      << "the stale result (exit 7) was applied to the task";
  auto attempts = AttemptRows(state_, job, "t");
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[1]["reason"], "worker-lost");
  EXPECT_EQ(attempts[2]["reason"], "ok");
  ExpectOneResultPerTask(state_, job, 1);
  const ProcessResult logs = Drover({"logs", job, "t"});
  EXPECT_EQ(logs.out, "attempt 2\n") << logs.Describe();
}

// Given a running task whose shell started a grandchild, when `drover cancel
// JOB/TASK` is sent, then the worker should kill the task's whole process
// group (shell and grandchild gone), the task should show cancelled, and an
// independent task of the same job should keep running and succeed.
TEST_F(DistributedTest, CancelKillsTheTasksProcessGroupOnTheWorker) {
  ASSERT_TRUE(StartCoordinator());
  ASSERT_TRUE(StartWorker("w1", "spawn=2"));
  const std::string spec = Spec("cancel.yaml", std::string(R"(version: 1
name: cancel-one
tasks:
  victim:
    run: [sh, -c, 'sleep 300 & echo $! > grandchild.pid; echo $$ > shell.pid; wait']
  bystander:
    run: [sh, -c, 'echo $$ > bystander.pid; )") + kWaitFor +
                                                   R"(', sh, release]
)");
  const std::string job = Submit(spec);
  ASSERT_FALSE(job.empty());
  const auto grandchild = WaitForPidFile(work_ / "grandchild.pid", kEventDeadline);
  const auto shell = WaitForPidFile(work_ / "shell.pid", kEventDeadline);
  const auto bystander = WaitForPidFile(work_ / "bystander.pid", kEventDeadline);
  ASSERT_TRUE(grandchild && shell && bystander);

  const ProcessResult cancel = Drover({"cancel", job + "/victim"});
  EXPECT_EQ(cancel.exit_code, 0) << cancel.Describe();
  EXPECT_TRUE(WaitUntil([&] { return ProcessGone(*grandchild); }, kEventDeadline))
      << "the grandchild " << *grandchild << " survived the cancel";
  EXPECT_TRUE(WaitUntil([&] { return ProcessGone(*shell); }, kEventDeadline));
  EXPECT_TRUE(testing::PollUntil(
      [&] {
        auto t = Tasks(job)["victim"];
        return t.value("status", t.value("state", "")) == "cancelled";
      },
      kEventDeadline, testing::kClientPollInterval))
      << Status(job).dump(2);
  EXPECT_FALSE(ProcessGone(*bystander)) << "cancelling one task killed another";

  WriteFile(work_ / "release", "");
  WaitForJobState(job, {"succeeded", "failed", "cancelled"}, kEventDeadline);
  auto tasks = Tasks(job);
  EXPECT_EQ(tasks["bystander"].value("status", tasks["bystander"].value("state", "")),
            "succeeded");
  EXPECT_EQ(tasks["victim"].value("status", tasks["victim"].value("state", "")),
            "cancelled");
  auto attempts = AttemptRows(state_, job, "victim");
  ASSERT_EQ(attempts.size(), 1u) << "a cancelled task must not be retried";
  EXPECT_EQ(attempts[1]["reason"], "cancelled");
}

// Given a job with two tasks running and one pending, when `drover cancel
// JOB` is sent, then every running task's processes should be gone, the
// pending one never start, the job end cancelled and `submit --wait` exit 1.
TEST_F(DistributedTest, CancelJobStopsRunningAndPendingTasks) {
  ASSERT_TRUE(StartCoordinator());
  ASSERT_TRUE(StartWorker("w1", "spawn=2"));
  const std::string spec = Spec("cancel-job.yaml", std::string(R"(version: 1
name: cancel-all
tasks:
  busy:
    matrix: {i: [0, 1, 2]}
    run: [sh, -c, 'echo $$ > busy.${matrix.i}; )") + kWaitFor +
                                                       R"(', sh, never]
)");
  DaemonProcess* client = StartClient({"submit", spec, "--wait"});
  ASSERT_TRUE(client);
  std::vector<pid_t> pids;
  ASSERT_TRUE(WaitUntil(
      [&] {
        pids.clear();
        for (int i = 0; i < 3; ++i) {
          if (auto p = WaitForPidFile(work_ / ("busy." + std::to_string(i)), Millis(0))) {
            pids.push_back(*p);
          }
        }
        return pids.size() == 2;
      },
      kEventDeadline));
  const auto rows = QueryStore(state_, "SELECT id FROM jobs");
  ASSERT_TRUE(rows && rows->size() == 1);
  const std::string job = rows->front().at("id");

  const ProcessResult cancel = Drover({"cancel", job});
  EXPECT_EQ(cancel.exit_code, 0) << cancel.Describe();
  for (pid_t pid : pids) {
    EXPECT_TRUE(WaitUntil([&] { return ProcessGone(pid); }, kEventDeadline)) << pid;
  }
  const ProcessResult r = client->Wait(kEventDeadline);
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_EQ(JobOfStatus(Status(job)).value("state", ""), "cancelled");
  int started = 0;
  for (int i = 0; i < 3; ++i)
    started += fs::exists(work_ / ("busy." + std::to_string(i)));
  EXPECT_EQ(started, 2) << "the pending task started after the cancel";
}

// Given a worker with one slot running a task and a second task queued,
// when the worker gets SIGTERM, then it should take no new task, let the
// running one finish, exit 0, and show as drained (not lost) in `drover
// workers`; the queued task should then run on a worker that joins later.
TEST_F(DistributedTest, SigtermDrainsTheWorker) {
  ASSERT_TRUE(StartCoordinator());
  DaemonProcess* w1 = StartWorker("w1", "spawn=1", {"--drain-timeout", "20s"});
  ASSERT_TRUE(w1);
  const std::string spec = Spec("drain.yaml", std::string(R"(version: 1
name: drain
tasks:
  step:
    matrix: {i: [0, 1]}
    run: [sh, -c, 'echo "$$ $DROVER_WORKER" > started.${matrix.i}; )") +
                                                  kWaitFor +
                                                  R"(', sh, release]
)");
  const std::string job = Submit(spec);
  ASSERT_FALSE(job.empty());
  const int first = FirstStarted(work_);
  ASSERT_GE(first, 0) << "neither task started";
  const int second = 1 - first;

  ASSERT_TRUE(w1->Signal(SIGTERM));
  EXPECT_TRUE(WaitForWorkerState("w1", "draining", kEventDeadline))
      << "w1 never showed as draining: " << json(Workers()).dump(2);
  WriteFile(work_ / "release", "");
  const ProcessResult r = w1->Wait(kEventDeadline);
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_FALSE(fs::exists(work_ / ("started." + std::to_string(second))))
      << "the draining worker took a new task";

  auto workers = Workers();
  EXPECT_EQ(workers["w1"].value("state", ""), "drained") << json(workers).dump(2);
  auto tasks = Tasks(job);
  const std::string done = "step[i=" + std::to_string(first) + "]";
  EXPECT_EQ(tasks[done].value("status", tasks[done].value("state", "")), "succeeded");
  EXPECT_EQ(tasks[done].value("attempts", 0), 1);

  ASSERT_TRUE(StartWorker("w2", "spawn=1"));
  EXPECT_EQ(WaitForJobState(job, {"succeeded", "failed", "cancelled"}, kEventDeadline),
            "succeeded");
  EXPECT_NE(
      ReadFile(work_ / ("started." + std::to_string(second))).value_or("").find(" w2"),
      std::string::npos);
  ExpectOneResultPerTask(state_, job, 2);
}

// Given a worker with one slot and a prefetch of one, running a task with a
// second one waiting behind it (retries: 0), when the worker drains, then
// the waiting task should come back without counting against its retries
// (it never started) and run on a worker that joins later; the running
// one finishes where it is.
TEST_F(DistributedTest, DrainingHandsBackWaitingTasksWithoutSpendingARetry) {
  ASSERT_TRUE(StartCoordinator());
  DaemonProcess* w1 =
      StartWorker("w1", "spawn=1", {"--drain-timeout", "20s", "--prefetch", "1"});
  ASSERT_TRUE(w1);
  const std::string spec = Spec("handback.yaml", TwoWaitingTasks("handback"));
  const std::string job = Submit(spec);
  ASSERT_FALSE(job.empty());
  // Both are on w1: one in its slot, one waiting (prefetch).
  ASSERT_TRUE(WaitForSlotsUsed("w1", "spawn", 2, kEventDeadline)) << json(Workers()).dump(2);
  const int first = FirstStarted(work_);
  ASSERT_GE(first, 0) << "neither task started";
  const int second = 1 - first;
  const std::string waiting = "step[i=" + std::to_string(second) + "]";
  auto state_of_waiting = [&] {
    auto tasks = Tasks(job);
    return tasks[waiting].value("status", tasks[waiting].value("state", ""));
  };

  ASSERT_TRUE(w1->Signal(SIGTERM));
  std::string handed_back;
  EXPECT_TRUE(PollUntil(
      [&] {
        handed_back = state_of_waiting();
        return handed_back == "ready" || handed_back == "failed";
      },
      kEventDeadline, kClientPollInterval))
      << json(Tasks(job)).dump(2);
  EXPECT_EQ(handed_back, "ready") << json(Tasks(job)).dump(2);

  ASSERT_TRUE(StartWorker("w2", "spawn=1"));
  EXPECT_TRUE(
      WaitUntil([&] { return fs::exists(work_ / ("started." + std::to_string(second))); },
                kEventDeadline));
  WriteFile(work_ / "release", "");
  EXPECT_EQ(WaitForJobState(job, {"succeeded", "failed", "cancelled"}, kEventDeadline),
            "succeeded");
  EXPECT_NE(
      ReadFile(work_ / ("started." + std::to_string(second))).value_or("").find(" w2"),
      std::string::npos);
  const ProcessResult r = w1->Wait(kEventDeadline);
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  // Its history: the attempt handed back (worker-lost, never started) and
  // the one that ran.
  EXPECT_EQ(
      StoreCount(state_, "SELECT count(*) FROM attempts WHERE reason = 'worker-lost'"),
      1);
  EXPECT_EQ(state_of_waiting(), "succeeded");
}

// Given a worker with one slot and a prefetch of one, running a task with a
// second one waiting behind it (retries: 0), when a second worker with a
// free slot joins, then the coordinator should recall the waiting task and
// run it there while the first still runs, without spending its retry.
TEST_F(DistributedTest, AWaitingTaskMovesToAWorkerThatJoinsWithAFreeSlot) {
  ASSERT_TRUE(StartCoordinator());
  ASSERT_TRUE(StartWorker("w1", "spawn=1", {"--prefetch", "1"}));
  const std::string spec = Spec("recall.yaml", TwoWaitingTasks("recall"));
  const std::string job = Submit(spec);
  ASSERT_FALSE(job.empty());
  // Both are on w1: one in its slot, one waiting (prefetch).
  ASSERT_TRUE(WaitForSlotsUsed("w1", "spawn", 2, kEventDeadline)) << json(Workers()).dump(2);
  const int first = FirstStarted(work_);
  ASSERT_GE(first, 0) << "neither task started";
  const std::string moved = "started." + std::to_string(1 - first);

  ASSERT_TRUE(StartWorker("w2", "spawn=1"));
  EXPECT_TRUE(WaitUntil([&] { return fs::exists(work_ / moved); }, kEventDeadline))
      << "the waiting task never moved to w2";
  EXPECT_NE(ReadFile(work_ / moved).value_or("").find(" w2"), std::string::npos);
  WriteFile(work_ / "release", "");
  EXPECT_EQ(WaitForJobState(job, {"succeeded", "failed", "cancelled"}, kEventDeadline),
            "succeeded");
  EXPECT_EQ(StoreCount(state_, "SELECT count(*) FROM attempts WHERE reason = 'worker-lost'"), 1);
}

// Given a worker with one slot and a prefetch of one, running a task with a
// second one waiting behind it (retries: 0), when the worker is killed -9,
// then the running task should fail (worker-lost, its one try spent), and
// the waiting one, which never started, should run on a worker that joins
// later and succeed: the coordinator knew it waited (Hello.reports_starts),
// and `drover workers` showed it waiting.
TEST_F(DistributedTest, AKilledWorkersWaitingTaskRunsElsewhereWithoutSpendingARetry) {
  ASSERT_TRUE(StartCoordinator());
  DaemonProcess* w1 = StartWorker("w1", "spawn=1", {"--prefetch", "1"});
  ASSERT_TRUE(w1);
  const std::string job = Submit(Spec("killed.yaml", TwoWaitingTasks("killed")));
  ASSERT_FALSE(job.empty());
  ASSERT_TRUE(WaitForSlotsUsed("w1", "spawn", 2, kEventDeadline))
      << json(Workers()).dump(2);
  const int first = FirstStarted(work_);
  ASSERT_GE(first, 0) << "neither task started";
  const std::string ran = "step[i=" + std::to_string(first) + "]";
  const std::string waited = "step[i=" + std::to_string(1 - first) + "]";
  // `drover workers` tells the running one from the waiting one.
  EXPECT_EQ(Workers()["w1"]["slots"]["spawn"]["waiting"], 1) << json(Workers()).dump(2);
  const ProcessResult table = Drover({"workers"});
  EXPECT_NE(table.out.find("spawn 1/1+1"), std::string::npos) << table.Describe();
  // So does `drover status`, and it says where the waiting one waits.
  auto held = Tasks(job);
  EXPECT_EQ(held[waited].value("waiting_in_worker", false), true) << json(held).dump(2);
  EXPECT_EQ(held[ran].value("waiting_in_worker", true), false) << json(held).dump(2);
  const ProcessResult status = Drover({"status", job});
  EXPECT_NE(status.out.find("waiting for a free spawn slot on w1"), std::string::npos)
      << status.Describe();

  ASSERT_EQ(w1->Crash().term_signal, SIGKILL);
  ASSERT_TRUE(StartWorker("w2", "spawn=1"));
  const fs::path moved = work_ / ("started." + std::to_string(1 - first));
  EXPECT_TRUE(WaitUntil([&] { return fs::exists(moved); }, kEventDeadline))
      << json(Tasks(job)).dump(2);
  EXPECT_NE(ReadFile(moved).value_or("").find(" w2"), std::string::npos);
  WriteFile(work_ / "release", "");
  EXPECT_EQ(WaitForJobState(job, {"succeeded", "failed", "cancelled"}, kEventDeadline),
            "failed");
  auto tasks = Tasks(job);
  EXPECT_EQ(tasks[ran].value("status", tasks[ran].value("state", "")), "failed");
  EXPECT_EQ(tasks[waited].value("status", tasks[waited].value("state", "")), "succeeded");
  auto attempts = AttemptRows(state_, job, waited);
  ASSERT_EQ(attempts.size(), 2u) << json(tasks[waited]).dump(2);
  EXPECT_EQ(attempts[1]["reason"], "worker-lost");
  EXPECT_EQ(attempts[1]["worker"], "w1");
  EXPECT_EQ(attempts[2]["reason"], "ok");
  EXPECT_EQ(attempts[2]["worker"], "w2");
}

// Given a draining worker whose running task does not finish within
// --drain-timeout, then the worker should kill the task's processes at the
// deadline, exit 0 soon after, and show as drained.
TEST_F(DistributedTest, DrainTimeoutKillsWhatStillRuns) {
  ASSERT_TRUE(StartCoordinator());
  DaemonProcess* w1 = StartWorker("w1", "spawn=1", {"--drain-timeout", "1s"});
  ASSERT_TRUE(w1);
  const std::string spec = Spec("stuck.yaml", std::string(R"(version: 1
name: stuck
tasks:
  stuck:
    run: [sh, -c, 'echo $$ > stuck.pid; )") + kWaitFor +
                                                  R"(', sh, never]
)");
  const std::string job = Submit(spec);
  ASSERT_FALSE(job.empty());
  const auto pid = WaitForPidFile(work_ / "stuck.pid", kEventDeadline);
  ASSERT_TRUE(pid);

  ASSERT_TRUE(w1->Signal(SIGTERM));
  const ProcessResult r = w1->Wait(Millis(15'000));
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_LT(r.elapsed.count(), 15'000);
  EXPECT_TRUE(WaitUntil([&] { return ProcessGone(*pid); }, kEventDeadline))
      << "the task outlived its drained worker";
  EXPECT_TRUE(WaitForWorkerState("w1", "drained", kEventDeadline))
      << json(Workers()).dump(2);
}

}  // namespace
}  // namespace drover

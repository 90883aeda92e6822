// The daemons and client commands of distributed drover through the real
// binary (tools/cli: daemon_commands.cc, client*.cc, remote_views.cc,
// keygen_command.cc): `drover coordinator` and `drover worker` on
// 127.0.0.1 port 0, the client commands against them, CURVE with a ZAP
// handler, the refusal to listen in the clear on a network, and a worker
// configuration file. Failure handling under kill -9 and drains are in
// distributed_failures_test.cc; both use the DistributedTest harness.
#include <signal.h>

#include <filesystem>
#include <regex>
#include <string>

#include <gtest/gtest.h>

#include "tests/integration/distributed_test_util.h"

namespace drover {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::DaemonProcess;
using testing::DistributedTest;
using testing::Millis;
using testing::ProcessResult;
using testing::ReadFile;
using testing::StoreCount;
using testing::WaitUntil;
using testing::WriteFile;

constexpr Millis kEventDeadline{30'000};

// Given a coordinator on port 0, should print the port it bound on its
// first stdout line and exit 0 on SIGTERM.
TEST_F(DistributedTest, CoordinatorPrintsBoundEndpointAndStopsOnSigterm) {
  DaemonProcess* c = StartCoordinator();
  ASSERT_TRUE(c);
  EXPECT_NE(endpoint_, "tcp://127.0.0.1:0");
  ASSERT_TRUE(c->Signal(SIGTERM));
  const ProcessResult r = c->Wait(kEventDeadline);
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
}

// Given a coordinator and one worker, `submit --wait` should print the job
// id, run the job on the worker and exit 0; status and logs should show it.
TEST_F(DistributedTest, SubmitWaitRunsTheJobOnTheWorker) {
  ASSERT_TRUE(StartCoordinator());
  ASSERT_TRUE(StartWorker("w1", "spawn=2", {"--label", "zone=a"}));
  Spec("hello.yaml", R"(version: 1
name: hello
tasks:
  greet: {run: 'echo "hello from $DROVER_WORKER"; echo to-stderr >&2'}
  after: {needs: [greet], run: echo done}
)");
  const ProcessResult r = Drover({"submit", "hello.yaml", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  std::smatch m;
  static const std::regex kJobLine(R"(^([0-9]{8}-[0-9]{6}-[0-9a-f]+)\n)");
  ASSERT_TRUE(std::regex_search(r.out, m, kJobLine)) << r.Describe();
  const std::string job = m[1];
  EXPECT_NE(r.err.find("succeeded"), std::string::npos) << r.err;

  auto tasks = Tasks(job);
  EXPECT_EQ(tasks["greet"].value("status", ""), "succeeded");
  EXPECT_EQ(tasks["greet"].value("worker", ""), "w1");
  EXPECT_EQ(tasks["after"].value("status", ""), "succeeded");

  const ProcessResult table = Drover({"status", job});
  ASSERT_EQ(table.exit_code, 0) << table.Describe();
  EXPECT_NE(table.out.find("greet"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("succeeded"), std::string::npos) << table.out;

  const ProcessResult logs = Drover({"logs", job, "greet"});
  ASSERT_EQ(logs.exit_code, 0) << logs.Describe();
  EXPECT_EQ(logs.out, "hello from w1\n");
  EXPECT_EQ(logs.err, "to-stderr\n");
}

// Given a task that fails, `submit --wait` should exit 1; given a spec with
// an error, it should print FILE:LINE:COL and exit 2.
TEST_F(DistributedTest, SubmitWaitExitCodesFollowDroverRun) {
  ASSERT_TRUE(StartCoordinator());
  ASSERT_TRUE(StartWorker("w1"));
  Spec("fails.yaml", "version: 1\ntasks:\n  bad: {run: exit 3}\n");
  const ProcessResult failed = Drover({"submit", "fails.yaml", "--wait"});
  EXPECT_EQ(failed.exit_code, 1) << failed.Describe();
  EXPECT_NE(failed.err.find("failed"), std::string::npos) << failed.err;

  Spec("broken.yaml", "version: 1\ntasks:\n  a: {run: x, neds: [b]}\n");
  const ProcessResult broken = Drover({"submit", "broken.yaml", "--wait"});
  EXPECT_EQ(broken.exit_code, 2) << broken.Describe();
  EXPECT_NE(broken.err.find("broken.yaml:3:"), std::string::npos) << broken.err;
  EXPECT_NE(broken.err.find("did you mean 'needs'"), std::string::npos) << broken.err;
}

// Given --follow, should stream the task's output lines and events.
TEST_F(DistributedTest, SubmitFollowStreamsOutput) {
  ASSERT_TRUE(StartCoordinator());
  ASSERT_TRUE(StartWorker("w1"));
  Spec("talk.yaml", "version: 1\ntasks:\n  talk: {run: 'echo line-one; echo line-two'}\n");
  const ProcessResult r = Drover({"submit", "talk.yaml", "--follow"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.out.find("ok      talk"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("talk| line-one\ntalk| line-two\n"), std::string::npos) << r.out;
}

// Given two workers with labels and slots, `drover workers` should list
// each with its address, labels, slots and state, as a table and as JSON.
TEST_F(DistributedTest, WorkersListsLabelsSlotsAndState) {
  ASSERT_TRUE(StartCoordinator());
  ASSERT_TRUE(StartWorker("w1", "spawn=2", {"--label", "zone=a"}));
  ASSERT_TRUE(StartWorker("w2", "threads=3", {"--label", "zone=b"}));
  ASSERT_TRUE(WaitForWorkerState("w1", "ready", kEventDeadline));
  ASSERT_TRUE(WaitForWorkerState("w2", "ready", kEventDeadline));
  auto workers = Workers();
  EXPECT_EQ(workers["w1"]["labels"]["zone"], "a") << json(workers).dump(2);
  EXPECT_EQ(workers["w1"]["slots"]["spawn"]["total"], 2) << json(workers).dump(2);
  EXPECT_EQ(workers["w1"]["slots"]["spawn"]["free"], 2) << json(workers).dump(2);
  EXPECT_EQ(workers["w2"]["slots"]["threads"]["total"], 3) << json(workers).dump(2);
  // The address the coordinator sees the worker's connection come from.
  EXPECT_EQ(workers["w1"]["address"], "127.0.0.1") << json(workers).dump(2);

  const ProcessResult table = Drover({"workers"});
  ASSERT_EQ(table.exit_code, 0) << table.Describe();
  EXPECT_NE(table.out.find("NAME"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("SERVICES"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("zone=a"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("spawn 0/2"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("threads 0/3"), std::string::npos) << table.out;
}

// Given a coordinator without workers, `drover service reload` should
// exit 1 at once with the coordinator's reason; with a worker, a reload
// for a job that is not running should too. (Reloads that reach a worker's
// services are tested end to end with the cluster backend.)
TEST_F(DistributedTest, ServiceReloadReportsTheCoordinatorsRefusal) {
  ASSERT_TRUE(StartCoordinator());
  const ProcessResult none = Drover({"service", "reload", "hello"}, Millis(15'000));
  EXPECT_EQ(none.exit_code, 1) << none.Describe();
  EXPECT_NE(none.err.find("drover: no worker is registered"), std::string::npos) << none.err;
  EXPECT_LT(none.elapsed.count(), 10'000);

  ASSERT_TRUE(StartWorker("w1", "spawn=1"));
  ASSERT_TRUE(WaitForWorkerState("w1", "ready", kEventDeadline));
  const ProcessResult job = Drover({"service", "reload", "hello", "--job", "nope"});
  EXPECT_EQ(job.exit_code, 1) << job.Describe();
  EXPECT_NE(job.err.find("no running job nope"), std::string::npos) << job.err;

  const ProcessResult usage = Drover({"service", "reload"});
  EXPECT_EQ(usage.exit_code, 2) << usage.Describe();
}

// Given a running job, `drover cancel JOB` should answer at once and the
// job should end cancelled; `drover retry JOB --wait` then re-runs what did
// not succeed.
TEST_F(DistributedTest, CancelThenRetryReRunsWhatDidNotSucceed) {
  ASSERT_TRUE(StartCoordinator());
  ASSERT_TRUE(StartWorker("w1", "spawn=2"));
  // `wait` runs until the file `go` exists; its first attempt is cancelled.
  Spec("slow.yaml", R"(version: 1
name: slow
tasks:
  quick: {run: echo quick}
  wait: {run: 'echo $$ > wait.pid; while [ ! -e go ]; do sleep 0.05; done'}
)");
  const std::string job = Submit("slow.yaml");
  ASSERT_FALSE(job.empty());
  ASSERT_TRUE(testing::WaitForPidFile(work_ / "wait.pid", kEventDeadline));
  const ProcessResult cancel = Drover({"cancel", job});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.Describe();
  EXPECT_EQ(WaitForJobState(job, {"cancelled", "failed", "succeeded"}, kEventDeadline),
            "cancelled");

  WriteFile(work_ / "go", "");
  const ProcessResult retry = Drover({"retry", job, "--wait"});
  ASSERT_EQ(retry.exit_code, 0) << retry.Describe();
  std::smatch m;
  static const std::regex kJobId(R"([0-9]{8}-[0-9]{6}-[0-9a-f]+)");
  ASSERT_TRUE(std::regex_search(retry.out, m, kJobId)) << retry.out;
  EXPECT_NE(m[0], job);
  auto tasks = Tasks(m[0]);
  EXPECT_EQ(tasks["wait"].value("status", ""), "succeeded");
}

// Given a running job whose first task has ended, succeeded on its first
// attempt (so its attempt stands for its row: docs/state.md, "tasks"),
// `drover status JOB` through the coordinator should show that task's row
// while the job still runs: its worker, exit code and detail.
TEST_F(DistributedTest, StatusOfARunningJobShowsTheRowOfATaskThatEnded) {
  ASSERT_TRUE(StartCoordinator());
  ASSERT_TRUE(StartWorker("w1", "spawn=2"));
  // `wait` runs until the file `go` exists (a minute at most).
  Spec("ended.yaml", R"(version: 1
name: ended
tasks:
  quick: {run: 'exit 0'}
  wait:
    needs: [quick]
    run: 'echo $$ > wait.pid; for i in $(seq 1200); do [ -e go ] && exit 0; sleep 0.05; done; exit 1'
)");
  const std::string job = Submit("ended.yaml");
  ASSERT_FALSE(job.empty());
  ASSERT_TRUE(testing::WaitForPidFile(work_ / "wait.pid", kEventDeadline));
  auto tasks = Tasks(job);
  EXPECT_EQ(tasks["wait"].value("status", ""), "running");
  EXPECT_EQ(tasks["quick"].value("status", ""), "succeeded");
  EXPECT_EQ(tasks["quick"].value("worker", ""), "w1");
  EXPECT_EQ(tasks["quick"].value("exit_code", -1), 0);
  EXPECT_EQ(tasks["quick"].value("detail", ""), "exit 0");
  EXPECT_EQ(StoreCount(state_, "SELECT count(*) FROM task_rows"), 0);

  WriteFile(work_ / "go", "");
  EXPECT_EQ(WaitForJobState(job, {"cancelled", "failed", "succeeded"}, kEventDeadline),
            "succeeded");
}

// Given an address where no coordinator listens, a client command should
// fail within its --timeout with an error naming the address and the wait.
TEST_F(DistributedTest, UnreachableCoordinatorIsAClearErrorNotAHang) {
  const ProcessResult r = Drover(
      {"status", "--coordinator", "tcp://127.0.0.1:9", "--timeout", "500ms"}, Millis(15'000));
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("no answer from the coordinator at tcp://127.0.0.1:9 within 500ms"),
            std::string::npos)
      << r.err;
  EXPECT_LT(r.elapsed.count(), 10'000);
}

// Given flags out of their documented ranges (docs/operations.md), each
// daemon and `drover run` should refuse to start with a usage error that
// names the flag and the range, before anything listens or runs.
TEST_F(DistributedTest, FlagsOutOfRangeAreUsageErrors) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::string dir = state_.string();
  const std::vector<Case> cases = {
      {{"coordinator", "--listen", "tcp://127.0.0.1:99999", "--state-dir", dir},
       "--listen tcp://127.0.0.1:99999: the port '99999' is not 0 to 65535 (or *)"},
      {{"coordinator", "--listen", "tcp://127.0.0.1:0", "--state-dir", dir, "--heartbeat",
        "0s"},
       "--heartbeat: '0s' is out of range (10ms to 10m)"},
      {{"worker", "--connect", "tcp://127.0.0.1:70000", "--spool-dir", dir},
       "coordinator tcp://127.0.0.1:70000: the port '70000' is not 0 to 65535 (or *)"},
      {{"worker", "--connect", "tcp://127.0.0.1:7700", "--spool-dir", dir, "--heartbeat",
        "1ms"},
       "--heartbeat: '1ms' is out of range (10ms to 10m)"},
      {{"run", "-j", "0", "job.yaml"}, "--jobs: Value 0 not in range 1 to 10000"},
      {{"run", "-j", "99999", "job.yaml"}, "--jobs: Value 99999 not in range 1 to 10000"},
      {{"--log-level", "bogus", "run", "job.yaml"}, "--log-level: bogus not in"},
  };
  for (const Case& c : cases) {
    const ProcessResult r = Drover(c.args);
    EXPECT_EQ(r.exit_code, 2) << r.Describe();
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.Describe();
  }
  // A worker whose HELLO the coordinator would refuse (docs/protocol.md,
  // "Limits of a HELLO") stops at once and says why, connecting nowhere.
  const ProcessResult r = Drover({"worker", "--connect", "tcp://127.0.0.1:9",
                                  "--spool-dir", dir, "--name", "w\x1b[31m"});
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.err.find("the coordinator would refuse this worker's offer: name has a "
                       "control character"),
            std::string::npos)
      << r.Describe();
}

// Given a non-loopback endpoint and no CURVE key, the coordinator should
// refuse to start and say how to fix it; --insecure lets it start.
TEST_F(DistributedTest, ClearTextOnANetworkAddressIsRefusedUnlessInsecure) {
  const ProcessResult r =
      Drover({"coordinator", "--listen", "tcp://0.0.0.0:0", "--state-dir", state_.string()});
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_NE(r.err.find("refusing to listen on tcp://0.0.0.0:0 without CURVE"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("--insecure"), std::string::npos) << r.err;

  DaemonProcess* c = StartClient({"coordinator", "--listen", "tcp://0.0.0.0:0", "--state-dir",
                                  state_.string(), "--insecure"});
  ASSERT_TRUE(c);
  const auto line = c->WaitForFirstLine(kEventDeadline);
  ASSERT_TRUE(line) << c->ErrTail();
  EXPECT_TRUE(std::regex_match(*line, std::regex(R"(tcp://0\.0\.0\.0:[1-9][0-9]*)"))) << *line;
  ASSERT_TRUE(c->Signal(SIGTERM));
  EXPECT_EQ(c->Wait(kEventDeadline).exit_code, 0);
}

// Given CURVE with an authorized_keys file listing w1 and the client, a
// worker with an unlisted key should be refused by the ZAP handler and never
// registered, w1 should run the job, and a client with an unlisted key
// should be told its key was refused.
TEST_F(DistributedTest, CurveAcceptsOnlyAuthorizedKeys) {
  for (const char* name : {"coord", "w1", "intruder", "client"}) {
    const ProcessResult k = Drover({"keygen", name});
    ASSERT_EQ(k.exit_code, 0) << k.Describe();
  }
  // Roles (roles_test.cc): w1 may work, the client may do everything.
  WriteFile(work_ / "authorized_keys",
            "# the fleet\n" + ReadFile(work_ / "w1.pub").value().substr(0, 40) +
                " role=worker w1\n" + ReadFile(work_ / "client.pub").value().substr(0, 40) +
                " role=admin client\n");
  ASSERT_TRUE(StartCoordinator({"--curve-secret", "coord.key", "--authorized-keys",
                                "authorized_keys"}));
  const std::string intruder_pub = ReadFile(work_ / "intruder.pub").value().substr(0, 40);
  ASSERT_TRUE(StartWorker("intruder", "spawn=1",
                          {"--curve-secret", "intruder.key", "--curve-server-key", "coord.pub"}));
  EXPECT_TRUE(coordinator()->WaitForStderr("refused CURVE key " + intruder_pub, kEventDeadline))
      << coordinator()->ErrTail();
  ASSERT_TRUE(StartWorker("w1", "spawn=1",
                          {"--curve-secret", "w1.key", "--curve-server-key", "coord.pub"}));

  Spec("job.yaml", "version: 1\ntasks:\n  t: {run: echo $DROVER_WORKER}\n");
  const std::vector<std::string> keys = {"--curve-secret", "client.key", "--curve-server-key",
                                         "coord.pub"};
  std::vector<std::string> submit = {"submit", "job.yaml", "--wait"};
  submit.insert(submit.end(), keys.begin(), keys.end());
  const ProcessResult r = Drover(submit);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();

  std::vector<std::string> list = {"workers", "--output", "json"};
  list.insert(list.end(), keys.begin(), keys.end());
  const ProcessResult workers = Drover(list);
  ASSERT_EQ(workers.exit_code, 0) << workers.Describe();
  EXPECT_NE(workers.out.find("\"w1\""), std::string::npos) << workers.out;
  EXPECT_EQ(workers.out.find("intruder"), std::string::npos) << workers.out;

  const ProcessResult refused =
      Drover({"workers", "--curve-secret", "intruder.key", "--curve-server-key", "coord.pub",
              "--timeout", "5s"});
  EXPECT_EQ(refused.exit_code, 1) << refused.Describe();
  EXPECT_NE(refused.err.find("refused this client's CURVE key"), std::string::npos)
      << refused.err;
}

// Given a worker configuration with a mistake, the worker should refuse to
// start and name FILE:LINE:COL.
TEST_F(DistributedTest, WorkerConfigErrorNamesFileLineColumn) {
  WriteFile(work_ / "worker.yaml", "name: w1\nslots: {spawn: two}\n");
  const ProcessResult r = Drover({"worker", "--connect", "tcp://127.0.0.1:9", "--config",
                                  "worker.yaml"});
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_NE(r.err.find("worker.yaml:2:16:"), std::string::npos) << r.err;
}

// Given a worker whose configuration sets its name, labels and slots, the
// coordinator should see them; flags override the file.
TEST_F(DistributedTest, WorkerConfigSetsNameLabelsAndSlots) {
  ASSERT_TRUE(StartCoordinator());
  WriteFile(work_ / "worker.yaml",
            "name: from-file\nslots: {spawn: 3}\nlabels: {zone: c, disk: ssd}\n");
  ASSERT_TRUE(StartClient({"worker", "--connect", endpoint_, "--config", "worker.yaml",
                           "--label", "zone=d", "--heartbeat", heartbeat_}));
  ASSERT_TRUE(WaitForWorkerState("from-file", "ready", kEventDeadline));
  auto workers = Workers();
  EXPECT_EQ(workers["from-file"]["labels"]["zone"], "d") << json(workers).dump(2);
  EXPECT_EQ(workers["from-file"]["labels"]["disk"], "ssd") << json(workers).dump(2);
  EXPECT_EQ(workers["from-file"]["slots"]["spawn"]["total"], 3) << json(workers).dump(2);
}

// Given pools declared only in the worker's configuration (a Python process
// pool and a cow pool), a job that names them without declaring them should
// run on them; a job that declares a pool of the same name uses its own.
TEST_F(DistributedTest, PoolsOfTheWorkerConfigServeEveryJob) {
  ASSERT_TRUE(StartCoordinator());
  const std::string py = std::string(DROVER_SOURCE_DIR) + "/configs/examples/ipc_worker.py";
  WriteFile(work_ / "worker.yaml", "pools:\n  py: {command: [python3, '" + py +
                                       "']}\n  fns: {mode: cow}\n");
  ASSERT_TRUE(StartWorker("w1", "fork=2", {"--config", "worker.yaml"}));
  Spec("pools.yaml", R"(version: 1
name: pools
tasks:
  stats: {backend: fork, pool: py, message: [1, 2, 3]}
  sorted: {backend: fork, pool: fns, fn: sort, args: {numbers: [3, 1, 2]}}
)");
  const ProcessResult r = Drover({"submit", "pools.yaml", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  const auto rows = testing::QueryStore(
      state_, "SELECT name, result_json FROM tasks ORDER BY name");
  ASSERT_TRUE(rows && rows->size() == 2u);
  EXPECT_EQ((*rows)[0].at("name"), "sorted");
  EXPECT_NE((*rows)[0].at("result_json").find("[1,2,3]"), std::string::npos)
      << (*rows)[0].at("result_json");
  EXPECT_NE((*rows)[1].at("result_json").find("\"sum\":6"), std::string::npos)
      << (*rows)[1].at("result_json");

  // The job's own `py` (a shell that answers "own") wins over the worker's.
  Spec("own.yaml", R"(version: 1
name: own
pools:
  py: {command: [sh, -c, 'while read -r line <&3; do echo "\"own\"" >&3; done']}
tasks:
  ask: {backend: fork, pool: py, message: hi}
)");
  const ProcessResult own = Drover({"submit", "own.yaml", "--wait"});
  ASSERT_EQ(own.exit_code, 0) << own.Describe();
  const auto own_rows = testing::QueryStore(
      state_, "SELECT result_json FROM tasks WHERE name = 'ask'");
  ASSERT_TRUE(own_rows && own_rows->size() == 1u);
  EXPECT_EQ((*own_rows)[0].at("result_json"), "\"own\"");
}

// Given a coordinator that is killed and restarted on the same port and
// state, the worker should reconnect and register again by itself, and a
// new job should run on it.
TEST_F(DistributedTest, WorkerReRegistersWithARestartedCoordinator) {
  ASSERT_TRUE(StartCoordinator());
  ASSERT_TRUE(StartWorker("w1"));
  ASSERT_TRUE(WaitForWorkerState("w1", "ready", kEventDeadline));
  coordinator()->Crash();
  ASSERT_TRUE(Restart(coordinator()));
  ASSERT_TRUE(WaitForWorkerState("w1", "ready", kEventDeadline));
  Spec("after.yaml", "version: 1\ntasks:\n  t: {run: echo again}\n");
  const ProcessResult r = Drover({"submit", "after.yaml", "--wait"});
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
}

// Given `submit --wait` waiting on a job, when the coordinator is killed -9
// and restarted on the same state, the client should notice the silence,
// reconnect, watch the job again and exit 0 when it succeeds.
TEST_F(DistributedTest, SubmitWaitSurvivesACoordinatorRestart) {
  ASSERT_TRUE(StartCoordinator());
  ASSERT_TRUE(StartWorker("w1"));
  Spec("gate.yaml", R"(version: 1
tasks:
  gate: {run: 'echo $$ > gate.pid; while [ ! -e go ]; do sleep 0.05; done'}
)");
  DaemonProcess* client = StartClient({"submit", "gate.yaml", "--wait"});
  ASSERT_TRUE(client);
  ASSERT_TRUE(testing::WaitForPidFile(work_ / "gate.pid", kEventDeadline));
  coordinator()->Crash();
  ASSERT_TRUE(Restart(coordinator()));
  WriteFile(work_ / "go", "");
  const ProcessResult r = client->Wait(kEventDeadline);
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.err.find("reconnected to " + endpoint_), std::string::npos) << r.err;
}

}  // namespace
}  // namespace drover

namespace drover {
namespace {

// Given a coordinator logging with --log-format json and a worker, a job
// with a failing task should leave: stderr lines that are each one JSON
// object (time, level, logger, message); `drover jobs` listing it through
// the coordinator with its filters; `drover status --state failed` showing
// only the failed task, with the end of its stderr.
TEST_F(DistributedTest, JobsStatusStateAndJsonLogsThroughTheCoordinator) {
  ASSERT_TRUE(StartCoordinator({"--log-format", "json"}));
  ASSERT_TRUE(StartWorker("w1", "spawn=2", {"--log-format", "json"}));
  Spec("mixed.yaml", R"(version: 1
name: mixed
tasks:
  good: {run: 'true'}
  bad: {run: 'echo "it broke here" >&2; exit 4'}
)");
  const std::string job = Submit("mixed.yaml");
  ASSERT_FALSE(job.empty());
  EXPECT_EQ(WaitForJobState(job, {"failed", "succeeded"}, kEventDeadline), "failed");

  const ProcessResult failed = Drover({"jobs", "--state", "failed", "--output", "json"});
  ASSERT_EQ(failed.exit_code, 0) << failed.Describe();
  const json doc = json::parse(failed.out);
  ASSERT_EQ(doc["jobs"].size(), 1u) << failed.out;
  EXPECT_EQ(doc["jobs"][0]["id"], job);
  EXPECT_EQ(doc["jobs"][0]["counts"]["failed"], 1);
  const ProcessResult none = Drover({"jobs", "--name", "other", "--output", "json"});
  EXPECT_EQ(json::parse(none.out)["jobs"].size(), 0u) << none.out;

  const ProcessResult status = Drover({"status", job, "--state", "failed"});
  ASSERT_EQ(status.exit_code, 0) << status.Describe();
  EXPECT_NE(status.out.find("bad "), std::string::npos) << status.out;
  EXPECT_EQ(status.out.find("good "), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("  | it broke here\n"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("(1 task of 2 shown)"), std::string::npos) << status.out;

  for (DaemonProcess* d : {coordinator()}) {
    const std::string err = d->Err();
    size_t lines = 0;
    for (size_t at = 0; at < err.size();) {
      const size_t nl = err.find('\n', at);
      if (nl == std::string::npos) break;  // still being written
      const json line = json::parse(err.substr(at, nl - at), nullptr, false);
      ASSERT_TRUE(line.is_object()) << err.substr(at, nl - at);
      for (const char* key : {"time", "level", "logger", "message"}) {
        EXPECT_TRUE(line.contains(key)) << key << " in " << line.dump();
      }
      ++lines;
      at = nl + 1;
    }
    EXPECT_GT(lines, 0u) << "no log lines from " << d->label();
  }
}

}  // namespace
}  // namespace drover

// Cluster services end to end, through the real binary: `drover coordinator`,
// `drover worker`s with and without `services:` in their configuration, and
// the clients (`submit`, `workers`, `service reload`). What the parts'
// own tests (cluster_service_test, cluster_backend_test, coordinator tests)
// cannot show alone: that JOB-DONE really stops a job's instances on the
// worker, that SERVICE-RELOAD reaches the worker's supervisor and replaces
// its processes, that a `from: worker` service places its tasks on the
// worker offering it, and that SIGHUP applies a changed configuration.
//
// Service instances are children of the worker process (its supervisor
// forks them), so they are found as the worker's children in /proc.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/types.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/distributed_test_util.h"

namespace drover {
namespace {

using json = nlohmann::json;
using testing::DaemonProcess;
using testing::DistributedTest;
using testing::Millis;
using testing::PollUntil;
using testing::ProcessResult;
using testing::ServeChildren;
using testing::WriteFile;

constexpr Millis kEventDeadline{30'000};
constexpr Millis kProcPoll{50};

bool Disjoint(const std::set<pid_t>& a, const std::set<pid_t>& b) {
  return std::none_of(a.begin(), a.end(), [&](pid_t p) { return b.count(p) > 0; });
}

std::string Pids(const std::set<pid_t>& pids) {
  std::string text;
  for (pid_t p : pids) text += std::to_string(p) + " ";
  return text;
}

constexpr const char* kWorkerServices = R"(services:
  api:
    command: [drover, serve, echo]
    instances: 2
    listen: 127.0.0.1:0
)";

constexpr const char* kFromWorkerJob = R"(version: 1
name: uses-api
services:
  api: {from: worker}
tasks:
  ask: {backend: cluster, service: api, request: {method: POST, path: /, body: ping}}
  port: {run: [sh, -c, 'echo port=${services.api.port}']}
)";

// Given a worker whose configuration declares a service, a job that uses it
// `from: worker` should run on that worker and see its port, `drover
// workers` should list the service, and `drover service reload` should
// replace both instances (new pids) and report it.
TEST_F(DistributedTest, WorkerServiceServesJobsAndReloadsOnCommand) {
  ASSERT_TRUE(StartCoordinator());
  WriteFile(work_ / "worker.yaml", kWorkerServices);
  DaemonProcess* w1 = StartWorker("w1", "spawn=2", {"--slots", "cluster=2", "--config", "worker.yaml"});
  ASSERT_TRUE(w1);
  ASSERT_TRUE(WaitForWorkerState("w1", "ready", kEventDeadline));
  auto workers = Workers();
  EXPECT_EQ(workers["w1"]["services"], json::array({"api"})) << json(workers).dump(2);

  std::set<pid_t> before;
  ASSERT_TRUE(PollUntil([&] { return (before = ServeChildren(w1->pid())).size() == 2u; },
                        kEventDeadline, kProcPoll))
      << Pids(before);

  Spec("job.yaml", kFromWorkerJob);
  const ProcessResult r = Drover({"submit", "job.yaml", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  const auto rows = testing::QueryStore(state_, "SELECT name, state FROM tasks ORDER BY name");
  ASSERT_TRUE(rows && rows->size() == 2u);
  EXPECT_EQ((*rows)[0].at("state"), "succeeded");
  EXPECT_EQ((*rows)[1].at("state"), "succeeded");
  const ProcessResult logs = Drover({"logs", "port"});
  EXPECT_NE(logs.out.find("port="), std::string::npos) << logs.Describe();
  EXPECT_EQ(logs.out.find("${services"), std::string::npos) << logs.Describe();
  const ProcessResult echo = Drover({"logs", "ask"});
  EXPECT_NE(echo.out.find("ping"), std::string::npos) << echo.Describe();

  // A worker's own service outlives the job.
  EXPECT_EQ(ServeChildren(w1->pid()), before);

  const ProcessResult reload = Drover({"service", "reload", "api"});
  ASSERT_EQ(reload.exit_code, 0) << reload.Describe();
  EXPECT_NE(reload.out.find("w1"), std::string::npos) << reload.Describe();
  EXPECT_NE(reload.out.find("reloaded"), std::string::npos) << reload.Describe();
  std::set<pid_t> after;
  // The old instances drain and exit after their SIGTERM; the new ones stay.
  ASSERT_TRUE(PollUntil(
      [&] {
        after = ServeChildren(w1->pid());
        return after.size() == 2u && Disjoint(before, after);
      },
      kEventDeadline, kProcPoll))
      << "before: " << Pids(before) << "after: " << Pids(after);

  // And the reloaded service still serves jobs.
  const ProcessResult again = Drover({"submit", "job.yaml", "--wait"});
  EXPECT_EQ(again.exit_code, 0) << again.Describe();
}

// Given a name no service has, `drover service reload` should fail with a
// clear message and exit 1.
TEST_F(DistributedTest, ReloadOfAnUnknownServiceIsAnError) {
  ASSERT_TRUE(StartCoordinator());
  ASSERT_TRUE(StartWorker("w1", "spawn=1", {"--slots", "cluster=1"}));
  ASSERT_TRUE(WaitForWorkerState("w1", "ready", kEventDeadline));
  const ProcessResult r = Drover({"service", "reload", "nope"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("nope"), std::string::npos) << r.Describe();
}

// Given a job that declares its own service with a long idle timeout, the
// worker should stop the service's instances when the job ends (JOB-DONE),
// not when the idle timeout passes.
TEST_F(DistributedTest, JobServicesStopWhenTheJobEnds) {
  ASSERT_TRUE(StartCoordinator());
  DaemonProcess* w1 = StartWorker("w1", "spawn=2", {"--slots", "cluster=2"});
  ASSERT_TRUE(w1);
  ASSERT_TRUE(WaitForWorkerState("w1", "ready", kEventDeadline));
  Spec("own.yaml", R"(version: 1
name: own-service
services:
  hello: {command: [drover, serve, hello], instances: 2, idle_timeout: 10m}
tasks:
  hit: {backend: cluster, service: hello, request: {path: /}}
)");
  const ProcessResult r = Drover({"submit", "own.yaml", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  std::set<pid_t> left;
  EXPECT_TRUE(PollUntil([&] { return (left = ServeChildren(w1->pid())).empty(); },
                        kEventDeadline, kProcPoll))
      << "still running after the job ended: " << Pids(left);
}

// Given a job that uses a service `from: worker` and a worker without it,
// the task should wait with a reason naming the service, then run once a
// worker offering it registers.
TEST_F(DistributedTest, FromWorkerServiceWaitsForAWorkerOfferingIt) {
  ASSERT_TRUE(StartCoordinator());
  ASSERT_TRUE(StartWorker("plain", "spawn=2", {"--slots", "cluster=2"}));
  ASSERT_TRUE(WaitForWorkerState("plain", "ready", kEventDeadline));
  Spec("job.yaml", kFromWorkerJob);
  const std::string job = Submit("job.yaml");
  ASSERT_FALSE(job.empty());
  std::string reason;
  EXPECT_TRUE(PollUntil(
      [&] {
        auto tasks = Tasks(job);
        const json& why = tasks["ask"]["pending_reason"];
        reason = why.is_string() ? why.get<std::string>() : "";
        return reason.find("api") != std::string::npos;
      },
      kEventDeadline, testing::kClientPollInterval))
      << "pending reason: " << reason;

  WriteFile(work_ / "worker.yaml", kWorkerServices);
  ASSERT_TRUE(StartWorker("offers", "spawn=2", {"--slots", "cluster=2", "--config", "worker.yaml"}));
  EXPECT_EQ(WaitForJobState(job, {"succeeded", "failed"}, kEventDeadline), "succeeded");
  auto tasks = Tasks(job);
  EXPECT_EQ(tasks["ask"].value("worker", ""), "offers");
  EXPECT_EQ(tasks["port"].value("worker", ""), "offers");
}

// Given a running worker whose configuration gains an instance of its
// service and a new service, SIGHUP should apply both without a restart:
// the service grows to 3 instances (the 2 old ones keep serving through a
// rolling reload) and `drover workers` lists the new one.
TEST_F(DistributedTest, SighupAppliesAChangedWorkerConfiguration) {
  ASSERT_TRUE(StartCoordinator());
  WriteFile(work_ / "worker.yaml", kWorkerServices);
  DaemonProcess* w1 = StartWorker("w1", "spawn=2", {"--slots", "cluster=2", "--config", "worker.yaml"});
  ASSERT_TRUE(w1);
  ASSERT_TRUE(WaitForWorkerState("w1", "ready", kEventDeadline));
  std::set<pid_t> pids;
  ASSERT_TRUE(PollUntil([&] { return (pids = ServeChildren(w1->pid())).size() == 2u; },
                        kEventDeadline, kProcPoll));

  WriteFile(work_ / "worker.yaml", R"(services:
  api:
    command: [drover, serve, echo]
    instances: 3
    listen: 127.0.0.1:0
  greet:
    command: [drover, serve, hello]
    listen: 127.0.0.1:0
)");
  ASSERT_TRUE(w1->Signal(SIGHUP));
  EXPECT_TRUE(PollUntil([&] { return (pids = ServeChildren(w1->pid())).size() == 4u; },
                        kEventDeadline, kProcPoll))
      << Pids(pids);
  std::map<std::string, json> workers;
  EXPECT_TRUE(PollUntil(
      [&] {
        workers = Workers();
        return workers["w1"]["services"] == json::array({"api", "greet"});
      },
      kEventDeadline, testing::kClientPollInterval))
      << json(workers).dump(2);
  EXPECT_TRUE(w1->running());
}

}  // namespace
}  // namespace drover

// The echo backend, registered by this folder alone, runs jobs end to end
// through `drover run` and through a coordinator with a worker: proof that a
// backend is one folder plus one registration line (issue 10,
// docs/backends/adding-a-backend.md). Every process is `drover-echo`, the
// drover CLI with the echo backend registered (drover_echo_main.cc).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "tests/integration/cli_test_util.h"
#include "tests/integration/distributed_test_util.h"

namespace drover::testing {
namespace {

constexpr char kJob[] = R"(version: 1
name: echoes
defaults: {text: "from defaults"}
tasks:
  greet:
    backend: echo
    matrix: {who: [ann, bob]}
    text: "hello ${matrix.who}"
  plain: {backend: echo}
  after: {needs: [greet, plain], run: echo spawn after echo}
)";

using EchoRunTest = DroverCliTest;

// Given a job mixing echo and spawn tasks, `drover-echo run` should run
// every instance on the echo backend, keep its output and its result, and
// release the spawn task that needs them.
TEST_F(EchoRunTest, RunsEchoTasksEndToEnd) {
  const ProcessResult r = Run(Spec("echo.yaml", kJob));
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.out.find("4 tasks: 4 succeeded"), std::string::npos) << r.out;

  const ProcessResult logs = Drover({"logs", "greet[who=bob]", "--state-dir", state_.string()});
  ASSERT_EQ(logs.exit_code, 0) << logs.Describe();
  EXPECT_EQ(logs.out, "hello bob\n");
  const ProcessResult inherited = Drover({"logs", "plain", "--state-dir", state_.string()});
  EXPECT_EQ(inherited.out, "from defaults\n") << inherited.Describe();

  const nlohmann::json doc = Status();
  bool found = false;
  for (const nlohmann::json& task : doc["tasks"]) {
    if (task["name"] != "greet[who=ann]") continue;
    found = true;
    EXPECT_EQ(task["status"], "succeeded");
    EXPECT_EQ(task["result"]["echo"], "hello ann") << task.dump();
  }
  EXPECT_TRUE(found) << doc.dump();
}

// Given an echo task (a backend that starts no process, so its task cannot
// read the environment) and a spawn task, the worker should give the echo
// attempt the DROVER_* variables but no DROVER_OUTPUT (no file is made for
// it: a create and an unlink per attempt were most of a threads task's
// cost), while the spawn task still hands outputs on through its file.
TEST_F(EchoRunTest, OnlyAProcessGetsAnOutputFile) {
  const ProcessResult r = Run(Spec("env.yaml", R"yaml(version: 1
name: env
tasks:
  quiet: {backend: echo, text: hi}
  spawned: {run: 'echo "seen=$(test -f "$DROVER_OUTPUT" && echo file)" >> "$DROVER_OUTPUT"'}
)yaml"));
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  const nlohmann::json doc = Status();
  int found = 0;
  for (const nlohmann::json& task : doc["tasks"]) {
    if (task["name"] == "quiet") {
      ++found;
      const nlohmann::json& env = task["result"]["env"];
      ASSERT_TRUE(env.is_array()) << task.dump();
      EXPECT_NE(std::find(env.begin(), env.end(), "DROVER_TASK"), env.end())
          << env.dump();
      EXPECT_EQ(std::find(env.begin(), env.end(), "DROVER_OUTPUT"), env.end())
          << env.dump();
    }
  }
  EXPECT_EQ(found, 1) << doc.dump();
  const ProcessResult outputs =
      Drover({"outputs", "spawned", "--state-dir", state_.string()});
  ASSERT_EQ(outputs.exit_code, 0) << outputs.Describe();
  EXPECT_NE(outputs.out.find("seen=file"), std::string::npos) << outputs.out;
}

// Given the echo kind's key misspelt or written in a spawn task, `drover-echo
// validate` should say so at FILE:LINE:COL like for a built-in backend.
TEST_F(EchoRunTest, EchoKeysGetTheLoadersErrors) {
  const std::string spec = Spec("bad.yaml", R"(version: 1
tasks:
  a: {backend: echo, txt: hi}
  b: {run: echo, text: hi}
  c: {backend: ehco, text: hi}
)");
  const ProcessResult r = Drover({"validate", spec});
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_NE(r.err.find("bad.yaml:3:22: unknown key 'txt' in task 'a' (did you mean 'text'?)"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("bad.yaml:4:18: 'text' in task 'b' only applies to backend echo; this "
                       "task's backend is spawn"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("did you mean 'echo'?"), std::string::npos) << r.err;
}

using EchoDistributedTest = DistributedTest;

// Given a coordinator and a worker that offers echo slots, a submitted job
// should run its echo tasks on that worker: the payload crosses the wire
// unread by the coordinator and is decoded by the backend.
TEST_F(EchoDistributedTest, CoordinatorAndWorkerRunEchoTasks) {
  ASSERT_TRUE(StartCoordinator());
  ASSERT_TRUE(StartWorker("w1", "echo=2,spawn=1"));
  const std::string job = Submit(Spec("echo.yaml", kJob));
  ASSERT_FALSE(job.empty());
  EXPECT_EQ(WaitForJobState(job, {"succeeded", "failed"}, kDeadline), "succeeded");
  const ProcessResult logs = Drover({"logs", job, "greet[who=ann]"});
  ASSERT_EQ(logs.exit_code, 0) << logs.Describe();
  EXPECT_EQ(logs.out, "hello ann\n");
  const std::map<std::string, nlohmann::json> workers = Workers();
  ASSERT_EQ(workers.count("w1"), 1u);
  EXPECT_EQ(workers.at("w1")["slots"]["echo"]["total"], 2) << workers.at("w1").dump();
}

}  // namespace
}  // namespace drover::testing

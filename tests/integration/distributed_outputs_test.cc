// Task outputs across hosts (docs/spec.md, "Outputs"): a `drover
// coordinator` and `drover worker`s over TCP loopback, each worker with its
// own spool directory, so an output can only travel through the
// coordinator; and a coordinator killed -9 between an upstream's success
// and its dependent's dispatch, whose successor still has the outputs.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/integration/cli_test_util.h"
#include "tests/integration/distributed_test_util.h"

namespace drover {
namespace {

using testing::DistributedTest;
using testing::Millis;
using testing::PollUntil;
using testing::StoreCount;

constexpr Millis kJobDeadline{60'000};

// A spec with `plan` on the worker labelled host=a and `use` on host=b:
// `use` writes back what it received as its own output `seen`.
constexpr const char* kTwoHosts = R"(version: 1
name: outputs-across-hosts
tasks:
  plan:
    on: {host: a}
    run: |
      echo "token=$DROVER_WORKER-$$" >> "$DROVER_OUTPUT"
      printf 'lines<<X\none\ntwo\nX\n' >> "$DROVER_OUTPUT"
  use:
    on: {host: b}
    needs: [plan]
    env: {TOKEN: "${tasks.plan.outputs.token}", LINES: "${tasks.plan.outputs.lines}"}
    run: |
      printf 'seen<<X\n%s %s %s\nX\n' "$DROVER_WORKER" "$TOKEN" "$LINES" >> "$DROVER_OUTPUT"
)";

// Given two workers with separate spool directories, an output written on
// one should reach a task on the other, through the coordinator.
TEST_F(DistributedTest, OutputsCrossWorkers) {
  ASSERT_TRUE(StartCoordinator());
  ASSERT_TRUE(
      StartWorker("wa", "spawn=1",
                  {"--label", "host=a", "--spool-dir", (root_ / "spool-a").string()}));
  ASSERT_TRUE(
      StartWorker("wb", "spawn=1",
                  {"--label", "host=b", "--spool-dir", (root_ / "spool-b").string()}));
  const std::string job = Submit(Spec("two.yaml", kTwoHosts));
  ASSERT_FALSE(job.empty());
  ASSERT_EQ(WaitForJobState(job, {"succeeded", "failed"}, kJobDeadline), "succeeded");
  auto tasks = Tasks(job);
  const std::string token = tasks["plan"]["outputs"]["token"];
  EXPECT_EQ(token.rfind("wa-", 0), 0u) << token;
  EXPECT_EQ(tasks["use"]["outputs"]["seen"], "wb " + token + " one\ntwo");
}

// Given a coordinator killed -9 after `plan` succeeded and before `use`
// could be placed (no worker had host=b yet), the restarted coordinator
// should dispatch `use` with plan's outputs, read back from the store.
TEST_F(DistributedTest, OutputsSurviveCoordinatorRestart) {
  ASSERT_TRUE(StartCoordinator());
  ASSERT_TRUE(
      StartWorker("wa", "spawn=1",
                  {"--label", "host=a", "--spool-dir", (root_ / "spool-a").string()}));
  const std::string job = Submit(Spec("two.yaml", kTwoHosts));
  ASSERT_FALSE(job.empty());
  ASSERT_TRUE(PollUntil(
      [&] {
        return StoreCount(state_,
                          "SELECT count(*) FROM tasks WHERE name = 'plan' AND state "
                          "= 'succeeded' AND outputs_json != ''") == 1;
      },
      kJobDeadline, Millis(50)));
  ASSERT_EQ(coordinator()->Crash().term_signal, SIGKILL);
  ASSERT_TRUE(Restart(coordinator()));
  ASSERT_TRUE(
      StartWorker("wb", "spawn=1",
                  {"--label", "host=b", "--spool-dir", (root_ / "spool-b").string()}));
  ASSERT_EQ(WaitForJobState(job, {"succeeded", "failed"}, kJobDeadline), "succeeded");
  auto tasks = Tasks(job);
  const std::string token = tasks["plan"]["outputs"]["token"];
  EXPECT_EQ(tasks["use"]["outputs"]["seen"], "wb " + token + " one\ntwo");
}

// Given a coordinator killed -9 after `plan` succeeded, when its dynamic
// matrix had been expanded but no instance could be placed yet (no worker
// had host=b), the restarted coordinator should rebuild every instance from
// the store and run them, and the final task see all their outputs.
TEST_F(DistributedTest, FanOutSurvivesCoordinatorRestart) {
  ASSERT_TRUE(StartCoordinator());
  ASSERT_TRUE(
      StartWorker("wa", "spawn=1",
                  {"--label", "host=a", "--spool-dir", (root_ / "spool-a").string()}));
  const std::string job = Submit(Spec("fan.yaml", R"Y(version: 1
name: fanout-restart
tasks:
  plan:
    on: {host: a}
    run: 'echo ''shards=["a","b","c"]'' >> "$DROVER_OUTPUT"'
  work:
    on: {host: b}
    needs: [plan]
    matrix: {shard: "${tasks.plan.outputs.shards}"}
    run: 'echo "got=${matrix.shard}-$DROVER_WORKER" >> "$DROVER_OUTPUT"'
  report:
    on: {host: b}
    needs: [work]
    env: {ALL: "${tasks.work.outputs.got}"}
    run: 'echo "all=$ALL" >> "$DROVER_OUTPUT"'
)Y"));
  ASSERT_FALSE(job.empty());
  ASSERT_TRUE(PollUntil(
      [&] {
        return StoreCount(state_,
                          "SELECT count(*) FROM tasks WHERE name LIKE 'work[shard=%'") ==
               3;
      },
      kJobDeadline, Millis(50)));
  ASSERT_EQ(coordinator()->Crash().term_signal, SIGKILL);
  ASSERT_TRUE(Restart(coordinator()));
  ASSERT_TRUE(
      StartWorker("wb", "spawn=2",
                  {"--label", "host=b", "--spool-dir", (root_ / "spool-b").string()}));
  ASSERT_EQ(WaitForJobState(job, {"succeeded", "failed"}, kJobDeadline), "succeeded");
  auto tasks = Tasks(job);
  EXPECT_EQ(tasks.size(), 5u);
  EXPECT_EQ(tasks["report"]["outputs"]["all"], R"(["a-wb","b-wb","c-wb"])");
}

}  // namespace
}  // namespace drover

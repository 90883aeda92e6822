// `drover run` end to end across runs of a job: a task's retry within a run
// (each attempt's logs kept), and `--resume`, which re-runs only what did
// not succeed, and of a matrix the failed and the changed instances. As
// run_test.cc: a fresh temporary directory per test, waits with deadlines.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/integration/cli_test_util.h"

namespace drover {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::CountLines;
using testing::DroverCliTest;
using testing::LinesWith;
using testing::ProcessResult;
using testing::TasksByName;

// Given a task with retries: 1 that fails on its first attempt and succeeds
// on its second (a counter file), the task should end succeeded with 2
// attempts, and `drover logs --attempt N` should show each attempt's output.
TEST_F(DroverCliTest, RetryAfterFailedAttemptSucceeds) {
  const std::string spec = Spec("retry.yaml", R"(version: 1
name: retry
tasks:
  flaky:
    retries: 1
    retry_backoff: 100ms
    run: |
      n=$(( $(cat count 2>/dev/null || echo 0) + 1 ))
      echo "$n" > count
      echo "attempt $n output"
      [ "$n" -ge 2 ]
)");
  const ProcessResult r = Run(spec);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(LinesWith(r.out, "retry", {" flaky ", "exit 1"}).size(), 1u) << r.out;

  const json doc = Status();
  ASSERT_TRUE(doc.is_object());
  auto tasks = TasksByName(doc);
  EXPECT_EQ(tasks["flaky"]["status"], "succeeded");
  EXPECT_EQ(tasks["flaky"]["attempts"], 2);
  EXPECT_EQ(tasks["flaky"]["exit_code"], 0);

  const ProcessResult first = Drover({"logs", "flaky", "--attempt", "1", "--stream",
                                      "out", "--state-dir", state_.string()});
  ASSERT_EQ(first.exit_code, 0) << first.Describe();
  EXPECT_EQ(first.out, "attempt 1 output\n");
  const ProcessResult latest =
      Drover({"logs", "flaky", "--stream", "out", "--state-dir", state_.string()});
  ASSERT_EQ(latest.exit_code, 0) << latest.Describe();
  EXPECT_EQ(latest.out, "attempt 2 output\n");
}

// Given a run where `check` fails until a marker file exists, after creating
// the marker `run --resume` should exit 0 in the same job, re-run only
// `check` and its blocked dependent (the tasks that succeeded do not run
// again), and count `check`'s new attempt as its second.
TEST_F(DroverCliTest, ResumeRerunsOnlyWhatDidNotSucceed) {
  const std::string spec = Spec("resume.yaml", R"(version: 1
name: resume
tasks:
  a:
    run: echo a >> runs.log
  b:
    run: echo b >> runs.log
  check:
    needs: a
    run: echo check >> runs.log; test -e marker
  after:
    needs: [check, b]
    run: echo after >> runs.log
)");
  const ProcessResult first = Run(spec);
  ASSERT_EQ(first.exit_code, 1) << first.Describe();
  const json before = Status();
  ASSERT_TRUE(before.is_object());
  auto tasks = TasksByName(before);
  EXPECT_EQ(tasks["check"]["status"], "failed");
  EXPECT_EQ(tasks["after"]["status"], "blocked");

  testing::WriteFile(work_ / "marker", "");
  const ProcessResult second = Run(spec, {"--resume"});
  ASSERT_EQ(second.exit_code, 0) << second.Describe();

  const json doc = Status();
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc["job"]["id"], before["job"]["id"]);
  EXPECT_EQ(doc["job"]["state"], "succeeded");
  tasks = TasksByName(doc);
  for (const char* name : {"a", "b", "check", "after"}) {
    EXPECT_EQ(tasks[name]["status"], "succeeded") << name;
  }
  EXPECT_EQ(tasks["a"]["attempts"], 1);
  EXPECT_EQ(tasks["b"]["attempts"], 1);
  EXPECT_EQ(tasks["check"]["attempts"], 2);
  EXPECT_EQ(tasks["after"]["attempts"], 1);

  const std::string runs = testing::ReadFile(work_ / "runs.log").value_or("");
  EXPECT_EQ(CountLines(runs, "a"), 1u) << runs;
  EXPECT_EQ(CountLines(runs, "b"), 1u) << runs;
  EXPECT_EQ(CountLines(runs, "check"), 2u) << runs;
  EXPECT_EQ(CountLines(runs, "after"), 1u) << runs;
}

// Given a matrix whose instance n=2 fails until a marker exists, `run
// --resume` should re-run only that instance (the others' fingerprints,
// written when they ran, match the spec's); after the command changes for
// every instance, another `--resume` should re-run all three.
TEST_F(DroverCliTest, ResumeOfAMatrixRerunsTheFailedAndTheChangedInstances) {
  const std::string body = R"(version: 1
name: mresume
tasks:
  m:
    run: echo ${matrix.n} >> runs.log; test ${matrix.n} != 2 || test -e marker
    matrix: {n: [1, 2, 3]}
)";
  const std::string spec = Spec("mresume.yaml", body);
  ASSERT_EQ(Run(spec).exit_code, 1);
  testing::WriteFile(work_ / "marker", "");
  const ProcessResult second = Run(spec, {"--resume"});
  ASSERT_EQ(second.exit_code, 0) << second.Describe();
  const std::string before = testing::ReadFile(work_ / "runs.log").value_or("");
  EXPECT_EQ(CountLines(before, "1"), 1u) << before;
  EXPECT_EQ(CountLines(before, "2"), 2u) << before;
  EXPECT_EQ(CountLines(before, "3"), 1u) << before;

  std::string changed = body;
  changed.replace(changed.find("echo "), 5, "echo v2-");
  Spec("mresume.yaml", changed);
  const ProcessResult third = Run(spec, {"--resume"});
  ASSERT_EQ(third.exit_code, 0) << third.Describe();
  const std::string runs = testing::ReadFile(work_ / "runs.log").value_or("");
  EXPECT_EQ(
      CountLines(runs, "v2-1") + CountLines(runs, "v2-2") + CountLines(runs, "v2-3"), 3u)
      << runs;
  auto tasks = TasksByName(Status());
  EXPECT_EQ(tasks["m[n=2]"]["attempts"], 3);
  EXPECT_EQ(tasks["m[n=1]"]["attempts"], 2);
}

}  // namespace
}  // namespace drover

// `drover jobs`, `drover status --state`, the stderr tail under a failed
// task and counts in agreement, through the real binary on a state
// directory (the coordinator path is in daemon_test.cc).
#include <nlohmann/json.hpp>

#include "tests/integration/cli_test_util.h"
#include "tests/integration/distributed_test_util.h"

namespace drover::testing {
namespace {

using json = nlohmann::json;

// Given a task that fails after writing to stderr, `drover run`'s summary
// and `drover status` should show the end of its stderr under its row, and
// every count should agree in number ("1 task").
TEST_F(DroverCliTest, FailedTaskShowsTheEndOfItsStderr) {
  const std::string spec = Spec("fail.yaml", R"(version: 1
name: tail
tasks:
  bad: {run: 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo "err line $i" >&2; done; exit 3'}
)");
  const ProcessResult r = Run(spec);
  ASSERT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.out.find("1 task: 1 failed"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("1 tasks"), std::string::npos) << r.out;
  // The last ten lines, not the first two.
  EXPECT_NE(r.out.find("  | err line 3\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  | err line 12\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("  | err line 2\n"), std::string::npos) << r.out;

  const ProcessResult status = Drover({"status", "--state-dir", state_.string()});
  ASSERT_EQ(status.exit_code, 0) << status.Describe();
  EXPECT_NE(status.out.find("  | err line 12\n"), std::string::npos) << status.out;

  const ProcessResult validate = Drover({"validate", spec});
  EXPECT_NE(validate.out.find("with 1 task\n"), std::string::npos) << validate.out;
}

// Given a job with succeeded, failed and blocked tasks, `status --state`
// should show only the tasks in the states asked for, and refuse an
// unknown state by name.
TEST_F(DroverCliTest, StatusStateShowsOnlyThoseTasks) {
  const std::string spec = Spec("mixed.yaml", R"(version: 1
name: mixed
tasks:
  shards: {matrix: {n: [1, 2, 3, 4]}, run: 'test ${matrix.n} -ne 3'}
  after: {needs: shards, run: echo never}
)");
  ASSERT_EQ(Run(spec).exit_code, 1);
  const ProcessResult failed =
      Drover({"status", "--state", "failed", "--state-dir", state_.string()});
  ASSERT_EQ(failed.exit_code, 0) << failed.Describe();
  EXPECT_NE(failed.out.find("shards[n=3]"), std::string::npos) << failed.out;
  EXPECT_EQ(failed.out.find("shards[n=1]"), std::string::npos) << failed.out;
  EXPECT_EQ(failed.out.find("after"), std::string::npos) << failed.out;
  EXPECT_NE(failed.out.find("(4 tasks in other states not shown)"), std::string::npos)
      << failed.out;

  const ProcessResult two = Drover({"status", "--state", "failed,blocked", "--output",
                                    "json", "--state-dir", state_.string()});
  ASSERT_EQ(two.exit_code, 0) << two.Describe();
  const auto tasks = TasksByName(json::parse(two.out));
  EXPECT_EQ(tasks.size(), 2u) << two.out;
  EXPECT_EQ(tasks.count("after"), 1u);

  const ProcessResult bad =
      Drover({"status", "--state", "broken", "--state-dir", state_.string()});
  EXPECT_EQ(bad.exit_code, 2) << bad.Describe();
  EXPECT_NE(bad.err.find("unknown task state 'broken'"), std::string::npos) << bad.err;
}

// Given a job of three tasks of which two succeed on their first attempt
// and one fails, `drover run` should write a row only for the failed task:
// the successes' attempts stand for their rows (docs/state.md, "tasks").
// The `tasks` view, `drover status` and `drover jobs` should each still see
// all three, with what the successes' rows would have said.
TEST_F(DroverCliTest, ASuccessfulFirstAttemptIsItsTasksRow) {
  const std::string spec = Spec("standing.yaml", R"(version: 1
name: standing
tasks:
  shards: {matrix: {n: [1, 2, 3]}, run: 'echo out-${matrix.n}; test ${matrix.n} -ne 2'}
)");
  ASSERT_EQ(Run(spec).exit_code, 1);
  EXPECT_EQ(StoreCount(state_, "SELECT count(*) FROM task_rows"), 1);
  EXPECT_EQ(StoreCount(state_,
                       "SELECT count(*) FROM task_rows WHERE name = 'shards[n=2]' "
                       "AND state = 'failed'"),
            1);
  EXPECT_EQ(StoreCount(state_,
                       "SELECT count(*) FROM attempts WHERE task_row = 1 AND "
                       "fingerprint != 0"),
            2);
  EXPECT_EQ(StoreCount(state_, "SELECT count(*) FROM tasks"), 3);
  EXPECT_EQ(StoreCount(state_,
                       "SELECT count(*) FROM tasks WHERE state = 'succeeded' AND "
                       "attempts = 1 AND reason = 'ok' AND detail = 'exit 0' AND "
                       "exit_code = 0 AND worker != '' AND finished_ms >= "
                       "started_ms AND started_ms > 0"),
            2);

  auto tasks = TasksByName(Status());
  ASSERT_EQ(tasks.size(), 3u);
  EXPECT_EQ(tasks["shards[n=1]"]["status"], "succeeded");
  EXPECT_EQ(tasks["shards[n=3]"]["status"], "succeeded");
  EXPECT_EQ(tasks["shards[n=3]"]["attempts"], 1);
  EXPECT_EQ(tasks["shards[n=3]"]["detail"], "exit 0");
  EXPECT_EQ(tasks["shards[n=3]"]["worker"], "local");
  EXPECT_EQ(tasks["shards[n=2]"]["status"], "failed");
  const ProcessResult jobs = Drover({"jobs", "--state-dir", state_.string()});
  ASSERT_EQ(jobs.exit_code, 0) << jobs.Describe();
  EXPECT_NE(jobs.out.find("3 tasks: 1 failed, 2 succeeded"), std::string::npos)
      << jobs.out;
}

// Given several jobs, `drover jobs` should list them all, newest first, and
// its filters should keep only the ones asked for.
TEST_F(DroverCliTest, JobsListsEveryJobWithFilters) {
  const std::string ok =
      Spec("ok.yaml", "version: 1\nname: good\ntasks:\n  a: {run: 'true'}\n");
  const std::string bad =
      Spec("bad.yaml", "version: 1\nname: bad\ntasks:\n  a: {run: 'false'}\n");
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Run(ok).exit_code, 0);
  ASSERT_EQ(Run(bad).exit_code, 1);

  const ProcessResult all =
      Drover({"jobs", "--output", "json", "--state-dir", state_.string()});
  ASSERT_EQ(all.exit_code, 0) << all.Describe();
  const json doc = json::parse(all.out);
  ASSERT_EQ(doc["jobs"].size(), 4u) << all.out;
  EXPECT_EQ(doc["jobs"][0]["name"], "bad");  // newest first
  EXPECT_EQ(doc["jobs"][0]["state"], "failed");
  EXPECT_EQ(doc["jobs"][0]["tasks"], 1);
  EXPECT_EQ(doc["jobs"][0]["counts"]["failed"], 1);

  const ProcessResult failed = Drover(
      {"jobs", "--state", "failed", "--output", "json", "--state-dir", state_.string()});
  EXPECT_EQ(json::parse(failed.out)["jobs"].size(), 1u) << failed.out;
  const ProcessResult named =
      Drover({"jobs", "--name", "good", "--since", "1h", "--state-dir", state_.string()});
  ASSERT_EQ(named.exit_code, 0) << named.Describe();
  EXPECT_EQ(
      LinesWith(named.out, "", {" good ", "succeeded", "1 task: 1 succeeded"}).size(), 3u)
      << named.out;
  const ProcessResult limited = Drover(
      {"jobs", "--limit", "2", "--output", "json", "--state-dir", state_.string()});
  EXPECT_EQ(json::parse(limited.out)["jobs"].size(), 2u) << limited.out;

  const ProcessResult wrong =
      Drover({"jobs", "--state", "done", "--state-dir", state_.string()});
  EXPECT_EQ(wrong.exit_code, 2) << wrong.Describe();
  const ProcessResult since =
      Drover({"jobs", "--since", "soon", "--state-dir", state_.string()});
  EXPECT_EQ(since.exit_code, 2) << since.Describe();
}

// Given a spec with a schedule, `drover run` should run it once and say so;
// a bad cron field is a FILE:LINE:COL error at the field.
TEST_F(DroverCliTest, RunOfAScheduledSpecRunsItOnce) {
  const std::string spec = Spec("nightly.yaml", R"(version: 1
name: nightly
schedule: "0 3 * * *"
timezone: Europe/Paris
tasks:
  a: {run: 'true'}
)");
  const ProcessResult r = Run(spec);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.err.find("has a schedule (0 3 * * *); drover run runs it once, now"),
            std::string::npos)
      << r.err;
  const std::string bad = Spec("bad.yaml", R"(version: 1
schedule: "0 25 * * *"
tasks:
  a: {run: 'true'}
)");
  const ProcessResult v = Drover({"validate", bad});
  EXPECT_EQ(v.exit_code, 2) << v.Describe();
  EXPECT_NE(v.err.find("bad.yaml:2:14: 'schedule': bad hour field '25'"),
            std::string::npos)
      << v.err;
}

}  // namespace
}  // namespace drover::testing

// Scheduled pipelines through the real binary, in real time: `drover
// coordinator --pipelines DIR` with a worker, a one-second schedule
// (`@every 1s`), `drover pipelines` (text and JSON), `drover pipelines run
// NAME`, and SIGHUP re-reading the directory with a broken spec in it. The
// fake-clock tests of the same rules are coordinator_pipelines_test.cc.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <string>

#include "tests/integration/distributed_test_util.h"

namespace drover {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::DistributedTest;
using testing::Millis;
using testing::PollUntil;
using testing::ProcessResult;
using testing::StoreCount;
using testing::WriteFile;

constexpr Millis kEventDeadline{30'000};

// Given a pipeline `@every 1s` and one on `@yearly`, the coordinator should
// start scheduled runs every second that succeed on the worker; `drover
// pipelines` should list both with their next three runs and last run;
// `pipelines run` should start the yearly one now; and a SIGHUP with a
// broken spec added should log it at FILE:LINE:COL and keep the others.
TEST_F(DistributedTest, ScheduledPipelinesRunInRealTime) {
  const fs::path dir = work_ / "pipelines";
  fs::create_directories(dir);
  WriteFile(
      dir / "tick.yaml",
      "version: 1\nname: tick\nschedule: \"@every 1s\"\ntasks:\n  t: {run: \"true\"}\n");
  WriteFile(dir / "yearly.yaml",
            "version: 1\nname: yearly\nschedule: \"@yearly\"\ntimezone: Europe/Paris\n"
            "tasks:\n  t: {run: echo once}\n");
  ASSERT_TRUE(StartCoordinator({"--pipelines", dir.string()}));
  ASSERT_TRUE(StartWorker("w1", "spawn=2"));

  // Two scheduled runs have succeeded (a store row each; polled, bounded).
  ASSERT_TRUE(PollUntil(
      [&] {
        return StoreCount(state_,
                          "SELECT count(*) FROM jobs WHERE name = 'tick' AND "
                          "submitter_name = 'schedule' AND state = 'succeeded'") >= 2;
      },
      kEventDeadline, Millis(200)))
      << coordinator()->ErrTail();

  auto ticks =
      testing::QueryStore(state_, "SELECT id FROM jobs WHERE name = 'tick' LIMIT 1");
  ASSERT_TRUE(ticks && !ticks->empty());
  ProcessResult r = Drover({"status", (*ticks)[0]["id"]});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.out.find("submitted by schedule"), std::string::npos) << r.out;

  r = Drover({"pipelines", "--output", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  const json doc = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << r.out;
  EXPECT_EQ(doc["dir"], dir.string());
  ASSERT_EQ(doc["pipelines"].size(), 2u) << r.out;
  const json& tick = doc["pipelines"][0];
  EXPECT_EQ(tick["name"], "tick");
  EXPECT_EQ(tick["schedule"], "@every 1s");
  EXPECT_EQ(tick["timezone"], "UTC");
  EXPECT_EQ(tick["concurrency"], "skip");
  EXPECT_EQ(tick["next_runs_unix_ms"].size(), 3u);
  ASSERT_TRUE(tick["last_run"].is_object()) << r.out;
  EXPECT_EQ(tick["last_run"]["trigger"], "schedule");
  const json& yearly = doc["pipelines"][1];
  EXPECT_EQ(yearly["name"], "yearly");
  EXPECT_TRUE(yearly["last_run"].is_null());
  EXPECT_EQ(yearly["next_runs_unix_ms"][0].get<int64_t>() / 1000 % 86400, 23 * 3600)
      << "midnight of 1 January in Paris is 23:00 UTC";

  r = Drover({"pipelines"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.out.find("tick  (" + (dir / "tick.yaml").string() + ")"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("@every 1s  in UTC, concurrency skip"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("last run  none"), std::string::npos) << r.out;  // yearly's
  EXPECT_NE(r.out.find("CET"), std::string::npos) << r.out;  // yearly's, in its zone

  r = Drover({"pipelines", "run", "yearly"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  const std::string job = r.out.substr(0, r.out.find('\n'));
  ASSERT_FALSE(job.empty()) << r.Describe();
  EXPECT_EQ(WaitForJobState(job, {"succeeded", "failed"}, kEventDeadline), "succeeded");
  r = Drover({"pipelines", "run", "nope"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("no pipeline 'nope'"), std::string::npos) << r.Describe();

  // A broken spec and a change to yearly's schedule, then SIGHUP.
  WriteFile(
      dir / "broken.yaml",
      "version: 1\nname: broken\nschedule: \"0 0 * * moonday\"\ntasks:\n  t: {run: x}\n");
  WriteFile(dir / "yearly.yaml",
            "version: 1\nname: yearly\nschedule: \"@monthly\"\ntimezone: Europe/Paris\n"
            "tasks:\n  t: {run: echo once}\n");
  ASSERT_TRUE(coordinator()->Signal(SIGHUP));
  ASSERT_TRUE(coordinator()->WaitForStderr("SIGHUP: done", kEventDeadline))
      << coordinator()->ErrTail();
  EXPECT_NE(coordinator()->Err().find((dir / "broken.yaml").string() + ":3:"),
            std::string::npos)
      << coordinator()->ErrTail();
  EXPECT_TRUE(coordinator()->running());
  r = Drover({"pipelines", "--output", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  const json after = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(after.is_object()) << r.out;
  ASSERT_EQ(after["pipelines"].size(), 2u) << r.out;
  EXPECT_EQ(after["pipelines"][1]["schedule"], "@monthly");
  EXPECT_EQ(after["pipelines"][1]["last_run"]["job_id"], job);
}

}  // namespace
}  // namespace drover

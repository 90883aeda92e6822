// The chaos test of distributed drover: a 1,000-task job on a coordinator
// and three workers, real processes over TCP loopback, while workers and
// the coordinator are killed -9 and restarted at random points of the job's
// progress. At the end every task must have succeeded and the state store
// must hold exactly one recorded successful result per task.
//
// The kill points come from a seeded RNG: the seed is printed, and
// DROVER_CHAOS_SEED=N replays a run's choices (the timing of the processes
// themselves is not replayable). DROVER_CHAOS_KILLS=N changes how many
// kills there are (default 8).
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "tests/integration/cli_test_util.h"
#include "tests/integration/distributed_test_util.h"

namespace drover {
namespace {

using nlohmann::json;
using testing::DaemonProcess;
using testing::DistributedTest;
using testing::JobOfStatus;
using testing::Millis;
using testing::QueryStore;
using testing::SqlQuote;
using testing::StoreCount;

constexpr int kTasks = 1000;
constexpr int kDefaultKills = 8;
constexpr int kWorkers = 3;
// Generous next to the ~30 s a run takes on two busy cores; only a job
// that stopped making progress reaches it.
constexpr Millis kJobDeadline{150'000};
// How long one progress point may take to be reached.
constexpr Millis kProgressDeadline{60'000};

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  return std::strtoull(v, nullptr, 10);
}

std::string ChaosSpec() {
  std::string values;
  for (int i = 0; i < kTasks; ++i) values += (i ? ", " : "") + std::to_string(i);
  // Many retries with a short backoff: a task may be lost with its worker,
  // or be running when the coordinator dies, more than once.
  return "version: 1\n"
         "name: chaos\n"
         "defaults: {retries: 30, retry_backoff: 10ms}\n"
         "tasks:\n"
         "  t:\n"
         "    matrix: {i: [" +
         values +
         "]}\n"
         "    run: [sleep, '0.02']\n";
}

// Given a 1,000-task job while the coordinator and workers are killed -9
// (a bounded number of times, at random points of its progress) and each
// is restarted at once (the coordinator on the same state directory and
// port, a worker under the same name), the job should succeed with exactly
// 1,000 tasks succeeded, and the store should hold exactly one succeeded
// attempt per task, no unfinished attempt and no attempt number twice.
TEST_F(DistributedTest, ThousandTasksSurviveRandomKills) {
  const uint64_t seed = EnvOr("DROVER_CHAOS_SEED", std::random_device{}());
  const int kills = static_cast<int>(EnvOr("DROVER_CHAOS_KILLS", kDefaultKills));
  std::printf("chaos seed: %llu (replay with DROVER_CHAOS_SEED=%llu), %d kills\n",
              static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(seed), kills);
  std::fflush(stdout);
  RecordProperty("chaos_seed", std::to_string(seed));
  SCOPED_TRACE("chaos seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  log_level_ = "warn";  // 1,000 tasks at info would bury the interesting lines

  ASSERT_TRUE(StartCoordinator());
  std::vector<DaemonProcess*> workers;
  for (int i = 1; i <= kWorkers; ++i) {
    workers.push_back(StartWorker("w" + std::to_string(i), "spawn=4"));
    ASSERT_TRUE(workers.back());
  }
  const auto started = std::chrono::steady_clock::now();
  const std::string job = Submit(Spec("chaos.yaml", ChaosSpec()));
  ASSERT_FALSE(job.empty());

  // Kill points: how many tasks have succeeded, spread over the job with
  // room left after the last one.
  std::uniform_int_distribution<int> point(kTasks / 20, kTasks * 19 / 20);
  std::vector<int> points;
  for (int i = 0; i < kills; ++i) points.push_back(point(rng));
  std::sort(points.begin(), points.end());
  const std::string succeeded_sql =
      "SELECT count(*) FROM attempts WHERE job_id = " + SqlQuote(job) +
      " AND finished = 1 AND reason = 'ok'";

  int coordinator_kills = 0;
  for (int i = 0; i < kills; ++i) {
    int64_t done = 0;
    ASSERT_TRUE(testing::PollUntil(
        [&] {
          done = StoreCount(state_, succeeded_sql);
          return done < 0 || done >= points[i];
        },
        kProgressDeadline, Millis(20)))
        << "the job stalled at " << done << " succeeded tasks before kill " << i + 1;
    ASSERT_GE(done, 0);
    // A third of the kills hit the coordinator, the rest a random worker.
    const bool hit_coordinator = std::bernoulli_distribution(1.0 / 3)(rng);
    const int target = std::uniform_int_distribution<int>(0, kWorkers - 1)(rng);
    DaemonProcess* victim =
        hit_coordinator ? coordinator() : workers[static_cast<size_t>(target)];
    std::printf("chaos: kill %d at %lld succeeded: kill -9 %s (pid %d), restart\n", i + 1,
                static_cast<long long>(done), victim->label().c_str(), victim->pid());
    std::fflush(stdout);
    if (hit_coordinator) ++coordinator_kills;
    ASSERT_EQ(victim->Crash().term_signal, SIGKILL);
    DaemonProcess* restarted = Restart(victim);
    ASSERT_TRUE(restarted) << "could not restart after kill " << i + 1;
    if (!hit_coordinator) workers[static_cast<size_t>(target)] = restarted;
  }

  const std::string state = WaitForStoredJobState(
      job, {"succeeded", "failed", "cancelled", "interrupted"}, kJobDeadline);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ASSERT_EQ(state, "succeeded") << "after " << secs << " s";

  // What the user sees.
  const json doc = Status(job);
  EXPECT_EQ(JobOfStatus(doc).value("state", ""), "succeeded");
  int succeeded = 0;
  int total = 0;
  for (const auto& [name, t] : Tasks(job)) {
    ++total;
    succeeded += t.value("status", t.value("state", "")) == "succeeded";
  }
  EXPECT_EQ(total, kTasks);
  EXPECT_EQ(succeeded, kTasks);

  // What the store recorded: one result per task, exactly.
  const std::string j = SqlQuote(job);
  EXPECT_EQ(StoreCount(state_, succeeded_sql), kTasks);
  EXPECT_EQ(
      StoreCount(state_,
                 "SELECT count(*) FROM (SELECT task FROM attempts WHERE job_id = " + j +
                     " AND finished = 1 AND reason = 'ok' GROUP BY task "
                     "HAVING count(*) = 1)"),
      kTasks);
  EXPECT_EQ(StoreCount(state_, "SELECT count(*) FROM tasks WHERE job_id = " + j +
                                   " AND state = 'succeeded'"),
            kTasks);
  EXPECT_EQ(StoreCount(state_, "SELECT count(*) FROM attempts WHERE job_id = " + j +
                                   " AND finished = 0"),
            0);
  EXPECT_EQ(StoreCount(state_,
                       "SELECT count(*) FROM (SELECT task, number FROM attempts "
                       "WHERE job_id = " +
                           j + " GROUP BY task, number HAVING count(*) > 1)"),
            0);

  const auto reasons = QueryStore(state_,
                                  "SELECT reason, count(*) AS n FROM attempts "
                                  "WHERE job_id = " +
                                      j + " GROUP BY reason");
  std::string summary;
  if (reasons) {
    for (const auto& r : *reasons) summary += " " + r.at("reason") + "=" + r.at("n");
  }
  std::printf(
      "chaos: job %s succeeded in %.1f s after %d kills (%d of the coordinator); "
      "attempts by reason:%s\n",
      job.c_str(), secs, kills, coordinator_kills, summary.c_str());
}

}  // namespace
}  // namespace drover

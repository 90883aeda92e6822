// Unit tests of core/dag's Plan at scale and at random: a 100,000-task
// fan-in, long chains, randomised runs whose counts are checked against a
// recount, and the per-placement-class ready queues.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/base/clock.h"
#include "core/dag/plan.h"
#include "tests/unit/plan_test_util.h"

namespace drover::dag {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;
using S = TaskState;
using test_util::kAllStates;
using test_util::Task;
using test_util::AsArray;
using test_util::Show;
using test_util::CountsMatchStates;
using test_util::States;
using test_util::ReadyOrder;
using test_util::PlanTest;

// Given 100,000 independent tasks and one that needs them all, should run
// them all and release the last one only at the very end.
TEST_F(PlanTest, HundredThousandTaskFanInRunsToCompletion) {
  constexpr uint32_t kN = 100'000;
  std::vector<PlanTask> tasks(kN + 1);
  tasks[kN].needs.resize(kN);
  for (uint32_t i = 0; i < kN; ++i) tasks[kN].needs[i] = i;
  Plan plan(std::move(tasks), {});
  EXPECT_EQ(plan.counts().ready, kN);
  EXPECT_EQ(plan.counts().waiting, 1u);
  uint32_t expected = 0;
  for (uint32_t guard = 0; guard <= kN + 1; ++guard) {
    auto t = plan.PeekReady();
    if (!t) break;
    ASSERT_EQ(*t, expected);  // FIFO: index order, then the join
    if (*t < kN) {
      ASSERT_EQ(plan.state(kN), S::kWaiting);
    }
    plan.Start(*t);
    plan.OnSucceeded(*t);
    ++expected;
  }
  EXPECT_EQ(expected, kN + 1);
  EXPECT_TRUE(CountsMatchStates(plan));
  EXPECT_TRUE(plan.Succeeded());
}

// Given a 100,000-task chain, a failure at its head should block the whole
// chain without deep recursion.
TEST_F(PlanTest, FailureAtHeadOfLongChainBlocksAll) {
  constexpr uint32_t kN = 100'000;
  std::vector<PlanTask> tasks(kN);
  for (uint32_t i = 1; i < kN; ++i) tasks[i].needs = {i - 1};
  Plan plan(std::move(tasks), {});
  Fail(plan, 0);
  EXPECT_EQ(plan.counts().blocked, kN - 1);
  EXPECT_EQ(plan.state(kN - 1), S::kBlocked);
  EXPECT_TRUE(plan.Finished());
}

// Checks what must hold between the states of a task and of its needs.
::testing::AssertionResult Invariants(const Plan& plan,
                                      const std::vector<PlanTask>& tasks) {
  auto is_dead = [](TaskState s) {
    return s == S::kFailed || s == S::kCancelled || s == S::kBlocked;
  };
  for (uint32_t t = 0; t < plan.size(); ++t) {
    const TaskState s = plan.state(t);
    bool all_succeeded = true, any_dead = false;
    for (uint32_t d : tasks[t].needs) {
      all_succeeded = all_succeeded && IsSuccess(plan.state(d));
      any_dead = any_dead || is_dead(plan.state(d));
    }
    if ((s == S::kReady || s == S::kRunning || s == S::kRetryWait) && !all_succeeded) {
      return ::testing::AssertionFailure() << "task " << t << " " << TaskStateName(s)
                                           << " with a need not succeeded";
    }
    if (s == S::kWaiting && all_succeeded) {
      return ::testing::AssertionFailure() << "task " << t << " waits for nothing";
    }
    if (s == S::kBlocked && !any_dead) {
      return ::testing::AssertionFailure() << "task " << t << " blocked for nothing";
    }
  }
  const PlanCounts& c = plan.counts();
  if (plan.PeekReady().has_value() != (c.ready > 0) ||
      (plan.PeekReady() && plan.state(*plan.PeekReady()) != S::kReady)) {
    return ::testing::AssertionFailure() << "PeekReady disagrees with the states";
  }
  if (plan.NextRetryAt().has_value() != (c.retry_wait > 0)) {
    return ::testing::AssertionFailure() << "NextRetryAt disagrees with the states";
  }
  return CountsMatchStates(plan);
}

// Given random graphs driven by random (also invalid) calls, the counts,
// the ready queue, the retry queue and the task states should agree after
// every single step, and the plan should always reach Finished.
TEST_F(PlanTest, CountsStayExactThroughRandomRuns) {
  std::set<TaskState> seen;  // proves the runs reach every state
  int steps = 0;
  for (uint32_t seed = 1; seed <= 24; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 gen(seed);
    constexpr uint32_t kN = 200;
    std::vector<PlanTask> tasks(kN);
    for (uint32_t t = 1; t < kN; ++t) {
      for (int k = static_cast<int>(gen() % 4); k > 0; --k) {
        tasks[t].needs.push_back(gen() % t);
      }
      tasks[t].retries = static_cast<int>(gen() % 3);
      tasks[t].backoff = milliseconds(1 + gen() % 50);
      tasks[t].backoff_max = milliseconds(100);
    }
    Plan plan(tasks, {.fail_fast = seed % 3 == 0, .jitter_seed = seed});
    ASSERT_TRUE(Invariants(plan, tasks));
    auto pick_running = [&]() -> std::optional<uint32_t> {
      std::vector<uint32_t> running;
      for (uint32_t t = 0; t < kN; ++t) {
        if (plan.state(t) == S::kRunning) running.push_back(t);
      }
      if (running.empty()) return std::nullopt;
      return running[gen() % running.size()];
    };
    for (int step = 0; step < 5000 && !plan.Finished(); ++step) {
      const uint32_t any = gen() % (kN + 2);  // sometimes out of range
      switch (gen() % 10) {
        case 0: case 1: case 2:
          if (auto t = plan.PeekReady()) plan.Start(*t);
          break;
        case 3:
          plan.Start(any);
          break;
        case 4: case 5:
          if (auto t = pick_running()) plan.OnSucceeded(*t);
          break;
        case 6:
          if (auto t = pick_running()) plan.OnFailed(*t, clock_.Now(), gen() % 4 != 0);
          break;
        case 7:
          if (auto t = pick_running()) {
            if (gen() % 4 == 0) {
              plan.OnCancelled(*t);
            } else {
              plan.Unstart(*t);
            }
          }
          break;
        case 8:
          clock_.Advance(milliseconds(gen() % 40));
          plan.Promote(clock_.Now());
          break;
        case 9:
          if (step < 200) {
            // Resume (succeeded) or a cache hit (cached): both release.
            if (gen() % 2 == 0) {
              plan.MarkSucceeded(any);
            } else {
              plan.MarkCached(any);
            }
          } else {
            plan.OnSucceeded(any);
          }
          break;
      }
      ASSERT_TRUE(Invariants(plan, tasks)) << "step " << step;
      for (uint32_t t = 0; t < kN; ++t) seen.insert(plan.state(t));
      ++steps;
    }
    // Drain: everything left succeeds on its next attempt.
    for (int guard = 0; guard < 10 * static_cast<int>(kN) && !plan.Finished(); ++guard) {
      if (auto t = plan.PeekReady()) {
        plan.Start(*t);
      } else if (auto r = pick_running()) {
        plan.OnSucceeded(*r);
      } else if (auto at = plan.NextRetryAt()) {
        AdvanceTo(*at);
        plan.Promote(clock_.Now());
      }
      ASSERT_TRUE(Invariants(plan, tasks));
    }
    EXPECT_TRUE(plan.Finished());
  }
  EXPECT_EQ(seen.size(), kAllStates.size());
  EXPECT_GT(steps, 5000);
}

}  // namespace
}  // namespace drover::dag

namespace drover::dag {
namespace {

PlanTask InQueue(uint32_t queue, std::vector<uint32_t> needs = {}) {
  PlanTask t;
  t.needs = std::move(needs);
  t.queue = queue;
  return t;
}

// Given tasks in two queues, should keep one FIFO per queue (PeekReady(q))
// while PeekReady() still returns the oldest ready task of any queue.
TEST(PlanQueuesTest, EachQueueIsFifoAndPeekReadyIsGlobalFifo) {
  Plan plan({InQueue(1), InQueue(0), InQueue(1), InQueue(0, {0})}, {});
  EXPECT_EQ(plan.queues(), 2u);
  EXPECT_EQ(plan.queue(2), 1u);
  EXPECT_EQ(plan.PeekReady(), 0u);
  EXPECT_EQ(plan.PeekReady(0), 1u);
  EXPECT_EQ(plan.PeekReady(1), 0u);
  EXPECT_EQ(plan.PeekReady(7), std::nullopt);
  plan.Start(0);
  EXPECT_EQ(plan.PeekReady(1), 2u);
  EXPECT_EQ(plan.PeekReady(), 1u);
  plan.OnSucceeded(0);  // task 3 (queue 0) becomes ready after task 1
  plan.Start(1);
  EXPECT_EQ(plan.PeekReady(0), 3u);
  EXPECT_EQ(plan.PeekReady(), 2u);  // ready before task 3
  plan.Start(2);
  plan.Start(3);
  EXPECT_EQ(plan.PeekReady(), std::nullopt);
  EXPECT_EQ(plan.PeekReady(0), std::nullopt);
  EXPECT_EQ(plan.PeekReady(1), std::nullopt);
}

// Given a ready task with a dependent, a running task and a finished one,
// CancelNotStarted should cancel only the not-started task (blocking its
// dependent, removing it from its queue) and leave the plan not halted.
TEST(PlanQueuesTest, CancelNotStartedCancelsOnlyPendingTasks) {
  Plan plan({InQueue(0), InQueue(0, {0}), InQueue(0), InQueue(0)}, {});
  plan.Start(2);
  plan.Start(3);
  plan.OnSucceeded(3);
  EXPECT_TRUE(plan.CancelNotStarted(0));
  EXPECT_EQ(plan.state(0), TaskState::kCancelled);
  EXPECT_EQ(plan.state(1), TaskState::kBlocked);
  EXPECT_FALSE(plan.CancelNotStarted(2));  // running: the caller cancels it
  EXPECT_FALSE(plan.CancelNotStarted(3));  // finished
  EXPECT_FALSE(plan.CancelNotStarted(99));
  EXPECT_EQ(plan.PeekReady(), std::nullopt);
  EXPECT_FALSE(plan.halted());
  plan.OnSucceeded(2);
  EXPECT_TRUE(plan.Finished());
  EXPECT_FALSE(plan.Succeeded());
}

// Given a task with retries: 1 whose attempts are restored to 2 (a restart
// found two attempts in the store), should not retry its next failure.
TEST(PlanQueuesTest, RestoredAttemptsCountAgainstRetries) {
  PlanTask t;
  t.retries = 1;
  Plan plan({t}, {});
  plan.Start(0);
  plan.RestoreAttempts(0, 2);
  EXPECT_EQ(plan.attempts(0), 2);
  EXPECT_EQ(plan.OnFailed(0, SteadyTime{}, /*retryable=*/true), std::nullopt);
  EXPECT_EQ(plan.state(0), TaskState::kFailed);
}
}  // namespace
}  // namespace drover::dag

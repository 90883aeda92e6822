// Shared by core/dag's Plan tests (plan_test.cc, plan_scale_test.cc):
// task builders, views of a plan's states and counts, and the fixture with
// a FakeClock.
#ifndef DROVER_TESTS_UNIT_PLAN_TEST_UTIL_H_
#define DROVER_TESTS_UNIT_PLAN_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/base/clock.h"
#include <optional>

#include "core/dag/plan.h"

namespace drover::dag::test_util {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;
using S = TaskState;

inline constexpr std::array<TaskState, 10> kAllStates = {
    S::kWaiting, S::kReady,   S::kRunning, S::kRetryWait, S::kSucceeded,
    S::kFailed,  S::kBlocked, S::kSkipped, S::kCancelled, S::kCached,
};

inline PlanTask Task(std::vector<uint32_t> needs = {}, int retries = 0,
              Duration backoff = seconds(1), Duration backoff_max = seconds(60)) {
  PlanTask t;
  t.needs = std::move(needs);
  t.retries = retries;
  t.backoff = backoff;
  t.backoff_max = backoff_max;
  return t;
}

inline std::array<uint32_t, 11> AsArray(const PlanCounts& c) {
  return {c.total,  c.waiting, c.ready,   c.running,   c.retry_wait, c.succeeded,
          c.failed, c.blocked, c.skipped, c.cancelled, c.cached};
}

inline std::string Show(const PlanCounts& c) {
  std::ostringstream out;
  out << "total=" << c.total << " waiting=" << c.waiting << " ready=" << c.ready
      << " running=" << c.running << " retry_wait=" << c.retry_wait
      << " succeeded=" << c.succeeded << " failed=" << c.failed
      << " blocked=" << c.blocked << " skipped=" << c.skipped
      << " cancelled=" << c.cancelled << " cached=" << c.cached;
  return out.str();
}

// Recounts the states task by task and compares with the plan's own
// incremental counts.
inline ::testing::AssertionResult CountsMatchStates(const Plan& plan) {
  PlanCounts want;
  want.total = plan.size();
  for (uint32_t t = 0; t < plan.size(); ++t) {
    switch (plan.state(t)) {
      case S::kWaiting: ++want.waiting; break;
      case S::kReady: ++want.ready; break;
      case S::kRunning: ++want.running; break;
      case S::kRetryWait: ++want.retry_wait; break;
      case S::kSucceeded: ++want.succeeded; break;
      case S::kFailed: ++want.failed; break;
      case S::kBlocked: ++want.blocked; break;
      case S::kSkipped: ++want.skipped; break;
      case S::kCancelled: ++want.cancelled; break;
      case S::kCached: ++want.cached; break;
    }
  }
  if (AsArray(want) == AsArray(plan.counts())) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "counts " << Show(plan.counts())
                                       << "\n states " << Show(want);
}

inline std::vector<TaskState> States(const Plan& plan) {
  std::vector<TaskState> out;
  for (uint32_t t = 0; t < plan.size(); ++t) out.push_back(plan.state(t));
  return out;
}

// The ready queue in order, read by starting every ready task and putting it
// back (Unstart re-queues in the same order).
inline std::vector<uint32_t> ReadyOrder(Plan& plan) {
  std::vector<uint32_t> order;
  for (uint32_t guard = 0; guard <= plan.size(); ++guard) {
    auto t = plan.PeekReady();
    if (!t) break;
    order.push_back(*t);
    plan.Start(*t);
  }
  for (uint32_t t : order) plan.Unstart(t);
  return order;
}

class PlanTest : public ::testing::Test {
 protected:
  // Starts `task` and reports it succeeded, checking counts on the way.
  void Run(Plan& plan, uint32_t task) {
    ASSERT_EQ(plan.state(task), S::kReady) << "task " << task;
    plan.Start(task);
    ASSERT_EQ(plan.state(task), S::kRunning);
    ASSERT_TRUE(CountsMatchStates(plan));
    plan.OnSucceeded(task);
    ASSERT_EQ(plan.state(task), S::kSucceeded);
    ASSERT_TRUE(CountsMatchStates(plan));
  }
  // Starts `task` and reports a failure now.
  std::optional<SteadyTime> Fail(Plan& plan, uint32_t task, bool retryable = true) {
    plan.Start(task);
    EXPECT_EQ(plan.state(task), S::kRunning) << "task " << task;
    auto at = plan.OnFailed(task, clock_.Now(), retryable);
    EXPECT_TRUE(CountsMatchStates(plan));
    return at;
  }
  void AdvanceTo(SteadyTime t) {
    if (t > clock_.Now()) clock_.Advance(t - clock_.Now());
  }

  FakeClock clock_;
};

}  // namespace drover::dag::test_util

#endif  // DROVER_TESTS_UNIT_PLAN_TEST_UTIL_H_

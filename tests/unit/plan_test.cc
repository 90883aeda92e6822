// Unit tests of core/dag's Plan: the task state machine, the ready queue,
// blocking, fail_fast, retries and backoff, all on a FakeClock. Large and
// randomised runs and per-class queues are in plan_scale_test.cc.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
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


// Given every state, its name should parse back to it and only the six
// end states should be terminal.
TEST_F(PlanTest, StateNamesRoundTrip) {
  std::set<std::string_view> names;
  for (TaskState s : kAllStates) {
    names.insert(TaskStateName(s));
    ASSERT_EQ(ParseTaskState(TaskStateName(s)), s) << TaskStateName(s);
  }
  EXPECT_EQ(names.size(), kAllStates.size());
  EXPECT_EQ(TaskStateName(S::kRetryWait), "retry-wait");
  EXPECT_FALSE(ParseTaskState("retry_wait").has_value());
  EXPECT_FALSE(ParseTaskState("").has_value());
  const std::set<TaskState> terminal = {S::kSucceeded, S::kFailed,    S::kBlocked,
                                        S::kSkipped,   S::kCancelled, S::kCached};
  for (TaskState s : kAllStates) {
    EXPECT_EQ(IsTerminal(s), terminal.count(s) == 1) << TaskStateName(s);
  }
}

// Given every job state, its name should be the one the store and the wire
// have always carried (docs/state.md) and parse back to it.
TEST_F(PlanTest, JobStateNamesAreTheStoredOnes) {
  const std::array<std::pair<JobState, std::string_view>, 5> stored = {{
      {JobState::kRunning, "running"},
      {JobState::kSucceeded, "succeeded"},
      {JobState::kFailed, "failed"},
      {JobState::kCancelled, "cancelled"},
      {JobState::kInterrupted, "interrupted"},
  }};
  for (const auto& [state, name] : stored) {
    EXPECT_EQ(JobStateName(state), name);
    EXPECT_EQ(ParseJobState(name), state) << name;
  }
  EXPECT_FALSE(ParseJobState("retry-wait").has_value());
  EXPECT_FALSE(ParseJobState("").has_value());
}

// Given an empty plan, should be finished and succeeded at once.
TEST_F(PlanTest, EmptyPlanIsFinished) {
  Plan plan({}, {});
  EXPECT_EQ(plan.size(), 0u);
  EXPECT_TRUE(plan.Finished());
  EXPECT_TRUE(plan.Succeeded());
  EXPECT_FALSE(plan.PeekReady().has_value());
  EXPECT_FALSE(plan.NextRetryAt().has_value());
}

// Given tasks without needs, should start ready, queued in index order, and
// tasks released later should queue behind them (FIFO by readiness).
TEST_F(PlanTest, ReadyQueueIsFifoInOrderOfReadiness) {
  // 0, 2, 3 have no needs; 1 needs 0.
  Plan plan({Task(), Task({0}), Task(), Task()}, {});
  EXPECT_EQ(plan.state(1), S::kWaiting);
  EXPECT_EQ(ReadyOrder(plan), (std::vector<uint32_t>{0, 2, 3}));
  Run(plan, 0);
  EXPECT_EQ(ReadyOrder(plan), (std::vector<uint32_t>{2, 3, 1}));
  // Starting from the middle of the queue leaves the order of the rest.
  plan.Start(3);
  EXPECT_EQ(ReadyOrder(plan), (std::vector<uint32_t>{2, 1}));
  EXPECT_TRUE(CountsMatchStates(plan));
}

// Given a task needing three others, should become ready only when the last
// of them succeeded.
TEST_F(PlanTest, FanInWaitsForAllNeeds) {
  Plan plan({Task(), Task(), Task(), Task({0, 1, 2})}, {});
  EXPECT_TRUE(CountsMatchStates(plan));
  EXPECT_EQ(plan.counts().ready, 3u);
  EXPECT_EQ(plan.counts().waiting, 1u);
  Run(plan, 1);
  EXPECT_EQ(plan.state(3), S::kWaiting);
  Run(plan, 0);
  EXPECT_EQ(plan.state(3), S::kWaiting);
  Run(plan, 2);
  EXPECT_EQ(plan.state(3), S::kReady);
  EXPECT_EQ(plan.PeekReady(), 3u);
  EXPECT_FALSE(plan.Finished());
  Run(plan, 3);
  EXPECT_TRUE(plan.Finished());
  EXPECT_TRUE(plan.Succeeded());
}

// Given a diamond a -> {b, c} -> d, should release b and c together after a,
// and d only after both.
TEST_F(PlanTest, DiamondReleasesJoinAfterBothBranches) {
  Plan plan({Task(), Task({0}), Task({0}), Task({1, 2})}, {});
  EXPECT_EQ(States(plan),
            (std::vector<TaskState>{S::kReady, S::kWaiting, S::kWaiting, S::kWaiting}));
  Run(plan, 0);
  EXPECT_EQ(ReadyOrder(plan), (std::vector<uint32_t>{1, 2}));
  Run(plan, 2);
  EXPECT_EQ(plan.state(3), S::kWaiting);
  Run(plan, 1);
  EXPECT_EQ(plan.state(3), S::kReady);
  Run(plan, 3);
  EXPECT_TRUE(plan.Succeeded());
}

// Given a failure without fail_fast, should block every transitive dependent
// exactly once (a diamond below the failure counts its join once) while an
// independent branch keeps running to the end.
TEST_F(PlanTest, FailedTaskBlocksTransitiveDependentsOnly) {
  // 0 -> {1, 2} -> 3 -> 4; independent 5 -> 6.
  Plan plan({Task(), Task({0}), Task({0}), Task({1, 2}), Task({3}), Task(),
             Task({5})},
            {});
  EXPECT_FALSE(Fail(plan, 0).has_value());
  EXPECT_EQ(plan.state(0), S::kFailed);
  for (uint32_t t : {1u, 2u, 3u, 4u}) EXPECT_EQ(plan.state(t), S::kBlocked) << t;
  EXPECT_EQ(plan.counts().blocked, 4u);
  EXPECT_EQ(plan.counts().failed, 1u);
  EXPECT_EQ(plan.state(5), S::kReady);
  EXPECT_FALSE(plan.halted());
  EXPECT_FALSE(plan.Finished());
  Run(plan, 5);
  Run(plan, 6);
  EXPECT_TRUE(plan.Finished());
  EXPECT_FALSE(plan.Succeeded());
  EXPECT_FALSE(plan.PeekReady().has_value());
}

// Given a task with one failed and one succeeding dependency, should stay
// blocked when the other dependency succeeds later.
TEST_F(PlanTest, BlockedTaskStaysBlockedWhenOtherNeedSucceeds) {
  Plan plan({Task(), Task(), Task({0, 1})}, {});
  plan.Start(1);
  Fail(plan, 0);
  EXPECT_EQ(plan.state(2), S::kBlocked);
  plan.OnSucceeded(1);
  EXPECT_EQ(plan.state(2), S::kBlocked);
  EXPECT_TRUE(CountsMatchStates(plan));
  EXPECT_TRUE(plan.Finished());
}

// Given fail_fast, a final failure should skip every task not yet started,
// block its own dependents, leave running tasks running, and CancelPending
// should return exactly those running tasks.
TEST_F(PlanTest, FailFastSkipsPendingAndLeavesRunning) {
  // 0..3 independent, 4 needs 0, 5 needs 1, 6 has retries and will be in
  // retry-wait when the failure hits.
  Plan plan({Task(), Task(), Task(), Task(), Task({0}), Task({1}), Task({}, 2)},
            {.fail_fast = true});
  plan.Start(1);
  plan.Start(2);
  ASSERT_TRUE(Fail(plan, 6).has_value());
  ASSERT_EQ(plan.state(6), S::kRetryWait);
  EXPECT_FALSE(Fail(plan, 0).has_value());
  EXPECT_TRUE(plan.halted());
  EXPECT_EQ(States(plan),
            (std::vector<TaskState>{S::kFailed, S::kRunning, S::kRunning, S::kSkipped,
                                    S::kBlocked, S::kSkipped, S::kSkipped}));
  EXPECT_TRUE(CountsMatchStates(plan));
  EXPECT_FALSE(plan.PeekReady().has_value());
  EXPECT_FALSE(plan.NextRetryAt().has_value());
  EXPECT_FALSE(plan.Finished());

  EXPECT_EQ(plan.CancelPending(), (std::vector<uint32_t>{1, 2}));
  plan.OnCancelled(1);
  // A task that finishes on its own before its cancel lands keeps its result;
  // its dependent 5 was already skipped and is not revived.
  plan.OnSucceeded(2);
  EXPECT_EQ(plan.state(1), S::kCancelled);
  EXPECT_EQ(plan.state(5), S::kSkipped);
  EXPECT_TRUE(CountsMatchStates(plan));
  EXPECT_TRUE(plan.Finished());
  EXPECT_FALSE(plan.Succeeded());
}

// Given a halted plan, a running task that fails with retries left should
// fail (not retry) and one put back with Unstart should be skipped, so the
// job still finishes.
TEST_F(PlanTest, HaltedPlanNeitherRetriesNorRequeues) {
  Plan plan({Task(), Task({}, 3), Task()}, {.fail_fast = true});
  plan.Start(1);
  plan.Start(2);
  Fail(plan, 0);
  ASSERT_TRUE(plan.halted());
  EXPECT_FALSE(plan.OnFailed(1, clock_.Now(), true).has_value());
  EXPECT_EQ(plan.state(1), S::kFailed);
  plan.Unstart(2);
  EXPECT_EQ(plan.state(2), S::kSkipped);
  EXPECT_EQ(plan.attempts(2), 0);
  EXPECT_TRUE(CountsMatchStates(plan));
  EXPECT_TRUE(plan.Finished());
}

// Given a failure with retries left, should wait in retry-wait, come back
// ready at the retry time, and succeed on the second attempt.
TEST_F(PlanTest, RetryThenSuccess) {
  Plan plan({Task({}, 2), Task({0})}, {});
  auto at = Fail(plan, 0);
  ASSERT_TRUE(at.has_value());
  EXPECT_EQ(plan.state(0), S::kRetryWait);
  EXPECT_EQ(plan.state(1), S::kWaiting);
  EXPECT_EQ(plan.attempts(0), 1);
  EXPECT_FALSE(plan.PeekReady().has_value());
  EXPECT_EQ(plan.NextRetryAt(), at);
  AdvanceTo(*at);
  plan.Promote(clock_.Now());
  EXPECT_EQ(plan.state(0), S::kReady);
  EXPECT_TRUE(CountsMatchStates(plan));
  Run(plan, 0);
  EXPECT_EQ(plan.attempts(0), 2);
  EXPECT_EQ(plan.state(1), S::kReady);
  Run(plan, 1);
  EXPECT_TRUE(plan.Succeeded());
}

// Given retries: 2, the third failure should be final and block dependents.
TEST_F(PlanTest, RetriesExhaustedFails) {
  Plan plan({Task({}, 2), Task({0})}, {});
  for (int attempt = 1; attempt <= 2; ++attempt) {
    auto at = Fail(plan, 0);
    ASSERT_TRUE(at.has_value()) << "attempt " << attempt;
    AdvanceTo(*at);
    plan.Promote(clock_.Now());
    ASSERT_EQ(plan.state(0), S::kReady);
  }
  EXPECT_FALSE(Fail(plan, 0).has_value());
  EXPECT_EQ(plan.state(0), S::kFailed);
  EXPECT_EQ(plan.attempts(0), 3);
  EXPECT_EQ(plan.state(1), S::kBlocked);
  EXPECT_TRUE(plan.Finished());
  EXPECT_FALSE(plan.NextRetryAt().has_value());
}

// Given retryable=false, should fail at once despite retries left.
TEST_F(PlanTest, NonRetryableFailureFailsAtOnce) {
  Plan plan({Task({}, 5), Task({0})}, {});
  EXPECT_FALSE(Fail(plan, 0, /*retryable=*/false).has_value());
  EXPECT_EQ(plan.state(0), S::kFailed);
  EXPECT_EQ(plan.attempts(0), 1);
  EXPECT_EQ(plan.state(1), S::kBlocked);
  EXPECT_FALSE(plan.NextRetryAt().has_value());
}

// Given backoff 1s and a 60s cap, successive retry delays should be 1, 2, 4,
// ... 32, 60, 60 seconds, each within +-20% jitter.
TEST_F(PlanTest, BackoffDoublesUntilCapped) {
  Plan plan({Task({}, 10, seconds(1), seconds(60))}, {.jitter_seed = 42});
  const std::vector<int> want_s = {1, 2, 4, 8, 16, 32, 60, 60, 60, 60};
  for (size_t i = 0; i < want_s.size(); ++i) {
    const SteadyTime now = clock_.Now();
    auto at = Fail(plan, 0);
    ASSERT_TRUE(at.has_value()) << "retry " << i + 1;
    const Duration delay = *at - now;
    const Duration want = seconds(want_s[i]);
    EXPECT_GE(delay, want * 8 / 10) << "retry " << i + 1;
    EXPECT_LE(delay, want * 12 / 10) << "retry " << i + 1;
    AdvanceTo(*at);
    plan.Promote(clock_.Now());
    ASSERT_EQ(plan.state(0), S::kReady);
  }
  EXPECT_FALSE(Fail(plan, 0).has_value());
}

// Given a backoff above its cap, the first delay should already be the cap.
TEST_F(PlanTest, BackoffAboveCapUsesCap) {
  Plan plan({Task({}, 2, seconds(10), seconds(3))}, {.jitter_seed = 1});
  const SteadyTime now = clock_.Now();
  auto at = Fail(plan, 0);
  ASSERT_TRUE(at.has_value());
  EXPECT_GE(*at - now, milliseconds(2400));
  EXPECT_LE(*at - now, milliseconds(3600));
}

// Given the same seed, retry times should repeat exactly; given another seed,
// they should differ; and tasks failing together should not retry in
// lockstep.
TEST_F(PlanTest, JitterFollowsSeed) {
  auto delays = [this](uint64_t seed) {
    std::vector<PlanTask> tasks(8, Task({}, 1, seconds(10)));
    Plan plan(std::move(tasks), {.jitter_seed = seed});
    std::vector<Duration> out;
    for (uint32_t t = 0; t < 8; ++t) {
      plan.Start(t);
      out.push_back(*plan.OnFailed(t, clock_.Now(), true) - clock_.Now());
    }
    return out;
  };
  const std::vector<Duration> a = delays(7);
  EXPECT_EQ(a, delays(7));
  EXPECT_NE(a, delays(8));
  std::set<Duration> distinct(a.begin(), a.end());
  EXPECT_GT(distinct.size(), 1u);
  for (Duration d : a) {
    EXPECT_GE(d, seconds(8));
    EXPECT_LE(d, seconds(12));
  }
}

// Given a retry time, Promote should leave the task waiting one nanosecond
// before it and make it ready at it.
TEST_F(PlanTest, PromoteNotBeforeTheRetryTime) {
  Plan plan({Task({}, 1)}, {});
  auto at = Fail(plan, 0);
  ASSERT_TRUE(at.has_value());
  plan.Promote(*at - nanoseconds(1));
  EXPECT_EQ(plan.state(0), S::kRetryWait);
  EXPECT_FALSE(plan.PeekReady().has_value());
  plan.Promote(*at);
  EXPECT_EQ(plan.state(0), S::kReady);
  EXPECT_EQ(plan.PeekReady(), 0u);
  EXPECT_FALSE(plan.NextRetryAt().has_value());
  EXPECT_TRUE(CountsMatchStates(plan));
}

// Given several tasks in retry-wait, NextRetryAt should be the earliest, and
// Promote should release them in order of their retry times.
TEST_F(PlanTest, NextRetryAtIsTheEarliest) {
  Plan plan({Task({}, 1, seconds(50)), Task({}, 1, seconds(5)),
             Task({}, 1, seconds(20))},
            {});
  EXPECT_FALSE(plan.NextRetryAt().has_value());
  auto a0 = Fail(plan, 0);
  auto a1 = Fail(plan, 1);
  auto a2 = Fail(plan, 2);
  ASSERT_TRUE(a0 && a1 && a2);
  ASSERT_LT(*a1, *a2);
  ASSERT_LT(*a2, *a0);
  EXPECT_EQ(plan.NextRetryAt(), a1);
  plan.Promote(*a2);  // releases 1 and 2 in one call, earliest first
  EXPECT_EQ(plan.NextRetryAt(), a0);
  EXPECT_EQ(ReadyOrder(plan), (std::vector<uint32_t>{1, 2}));
  plan.Promote(*a0);
  EXPECT_FALSE(plan.NextRetryAt().has_value());
  EXPECT_EQ(ReadyOrder(plan), (std::vector<uint32_t>{1, 2, 0}));
  EXPECT_TRUE(CountsMatchStates(plan));
}

// Given tasks carried over from an earlier run, MarkSucceeded should mark
// waiting and ready tasks succeeded, take them off the ready queue, and
// release their dependents; on other states it should do nothing.
TEST_F(PlanTest, MarkSucceededForResumeReleasesDependents) {
  // 0 -> 1 -> 2, 3 independent, 4 needs 2 and 3.
  Plan plan({Task(), Task({0}), Task({1}), Task(), Task({2, 3})}, {});
  plan.MarkSucceeded(1);  // waiting: its result is carried over
  EXPECT_EQ(plan.state(1), S::kSucceeded);
  EXPECT_EQ(plan.state(2), S::kReady);
  plan.MarkSucceeded(0);  // ready: leaves the queue, 1 stays succeeded
  EXPECT_EQ(plan.state(0), S::kSucceeded);
  EXPECT_EQ(plan.state(1), S::kSucceeded);
  EXPECT_EQ(ReadyOrder(plan), (std::vector<uint32_t>{3, 2}));
  EXPECT_TRUE(CountsMatchStates(plan));
  EXPECT_EQ(plan.attempts(0), 0);

  plan.Start(3);
  plan.MarkSucceeded(3);  // running: not a resume case, ignored
  EXPECT_EQ(plan.state(3), S::kRunning);
  plan.OnSucceeded(3);
  Run(plan, 2);
  EXPECT_EQ(plan.state(4), S::kReady);
  Run(plan, 4);
  EXPECT_TRUE(plan.Succeeded());
}

// Given a ready task found in the cache and a waiting one carried over as
// cached, MarkCached should release their dependents like a success, count
// them as cached, and the plan should succeed with them; on a running task
// it should do nothing.
TEST_F(PlanTest, MarkCachedCountsAsSuccess) {
  // 0 -> 1 -> 2, 3 independent.
  Plan plan({Task(), Task({0}), Task({1}), Task()}, {});
  plan.MarkCached(0);  // ready: looked up and hit
  EXPECT_EQ(plan.state(0), S::kCached);
  EXPECT_EQ(plan.state(1), S::kReady);
  plan.Start(3);
  plan.MarkCached(3);  // running: ignored
  EXPECT_EQ(plan.state(3), S::kRunning);
  plan.OnSucceeded(3);
  plan.MarkCached(2);  // waiting: carried over by a resume
  EXPECT_EQ(plan.state(2), S::kCached);
  Run(plan, 1);
  EXPECT_EQ(plan.counts().cached, 2u);
  EXPECT_EQ(plan.counts().succeeded, 2u);
  EXPECT_TRUE(CountsMatchStates(plan));
  EXPECT_TRUE(plan.Finished());
  EXPECT_TRUE(plan.Succeeded());
  EXPECT_TRUE(IsSuccess(S::kCached));
  EXPECT_FALSE(IsSuccess(S::kFailed));
}

// Given a failure upstream of a task resumed as succeeded, the resumed task
// should keep its result and its dependents should still be released.
TEST_F(PlanTest, ResumedTaskIsNotBlockedByUpstreamFailure) {
  Plan plan({Task(), Task({0}), Task({1})}, {});
  plan.MarkSucceeded(1);
  Fail(plan, 0);
  EXPECT_EQ(plan.state(1), S::kSucceeded);
  EXPECT_EQ(plan.state(2), S::kReady);
  Run(plan, 2);
  EXPECT_TRUE(plan.Finished());
}

// Given a job cancel, CancelPending should skip waiting, ready and retry-wait
// tasks, keep finished ones, and return the running ones in index order.
TEST_F(PlanTest, CancelPendingSkipsNotStartedAndReturnsRunning) {
  // 0 succeeded, 1 running, 2 retry-wait, 3 ready, 4 waiting, 5 running.
  Plan plan({Task(), Task(), Task({}, 1), Task(), Task({1}), Task()}, {});
  Run(plan, 0);
  plan.Start(5);
  plan.Start(1);
  ASSERT_TRUE(Fail(plan, 2).has_value());
  EXPECT_EQ(plan.CancelPending(), (std::vector<uint32_t>{1, 5}));
  EXPECT_TRUE(plan.halted());
  EXPECT_EQ(States(plan),
            (std::vector<TaskState>{S::kSucceeded, S::kRunning, S::kSkipped,
                                    S::kSkipped, S::kSkipped, S::kRunning}));
  EXPECT_TRUE(CountsMatchStates(plan));
  EXPECT_FALSE(plan.PeekReady().has_value());
  EXPECT_FALSE(plan.NextRetryAt().has_value());
  plan.Promote(clock_.Now() + seconds(3600));  // nothing left to promote
  EXPECT_EQ(plan.state(2), S::kSkipped);
  // A second cancel changes nothing and still reports the running tasks.
  EXPECT_EQ(plan.CancelPending(), (std::vector<uint32_t>{1, 5}));
  plan.OnCancelled(1);
  plan.OnCancelled(5);
  EXPECT_TRUE(CountsMatchStates(plan));
  EXPECT_EQ(plan.counts().cancelled, 2u);
  EXPECT_TRUE(plan.Finished());
  EXPECT_TRUE(plan.CancelPending().empty());
}

// Given a cancelled running task, its dependents should be blocked
// transitively, and (even with fail_fast) independent tasks keep going.
TEST_F(PlanTest, OnCancelledBlocksDependents) {
  Plan plan({Task(), Task({0}), Task({1}), Task()}, {.fail_fast = true});
  plan.Start(0);
  plan.OnCancelled(0);
  EXPECT_EQ(States(plan), (std::vector<TaskState>{S::kCancelled, S::kBlocked,
                                                  S::kBlocked, S::kReady}));
  EXPECT_FALSE(plan.halted());
  EXPECT_TRUE(CountsMatchStates(plan));
  Run(plan, 3);
  EXPECT_TRUE(plan.Finished());
  EXPECT_FALSE(plan.Succeeded());
}

// Given a dispatch that never reached a worker, Unstart should put the task
// back at the end of the ready queue without counting the attempt.
TEST_F(PlanTest, UnstartRequeuesWithoutCountingAttempt) {
  Plan plan({Task(), Task()}, {});
  plan.Start(0);
  EXPECT_EQ(plan.attempts(0), 1);
  plan.Unstart(0);
  EXPECT_EQ(plan.state(0), S::kReady);
  EXPECT_EQ(plan.attempts(0), 0);
  EXPECT_EQ(ReadyOrder(plan), (std::vector<uint32_t>{1, 0}));
  EXPECT_TRUE(CountsMatchStates(plan));
}

// Given calls whose preconditions do not hold (wrong state, out of range,
// duplicate results), should change nothing.
TEST_F(PlanTest, PreconditionViolationsChangeNothing) {
  // 0 ready, 1 running, 2 waiting on 0 and 1, 3 succeeded, 4 failed.
  Plan plan({Task(), Task(), Task({0, 1}), Task(), Task()}, {});
  plan.Start(1);
  Run(plan, 3);
  Fail(plan, 4);
  const std::vector<TaskState> before = States(plan);
  const PlanCounts counts_before = plan.counts();
  const uint32_t kOut = 5;

  plan.Start(2);           // waiting
  plan.Start(1);           // running
  plan.Start(3);           // succeeded
  plan.Start(kOut);
  plan.Unstart(0);         // ready
  plan.Unstart(kOut);
  plan.OnSucceeded(0);     // ready
  plan.OnSucceeded(3);     // duplicate result
  plan.OnSucceeded(kOut);
  EXPECT_FALSE(plan.OnFailed(0, clock_.Now(), true).has_value());
  EXPECT_FALSE(plan.OnFailed(4, clock_.Now(), true).has_value());
  EXPECT_FALSE(plan.OnFailed(kOut, clock_.Now(), true).has_value());
  plan.OnCancelled(2);     // waiting
  plan.OnCancelled(kOut);
  plan.MarkSucceeded(1);   // running
  plan.MarkSucceeded(4);   // failed
  plan.MarkSucceeded(kOut);
  plan.MarkSucceeded(UINT32_MAX);

  EXPECT_EQ(States(plan), before);
  EXPECT_EQ(AsArray(plan.counts()), AsArray(counts_before));
  EXPECT_TRUE(CountsMatchStates(plan));
  EXPECT_EQ(plan.attempts(1), 1);
  EXPECT_EQ(plan.attempts(kOut), 0);
  EXPECT_EQ(plan.PeekReady(), 0u);

  // A duplicate success must not release a dependent twice: 2 needs 0 and 1.
  Run(plan, 0);
  plan.OnSucceeded(0);
  plan.MarkSucceeded(0);
  EXPECT_EQ(plan.state(2), S::kWaiting);
  plan.OnSucceeded(1);
  EXPECT_EQ(plan.state(2), S::kReady);
  EXPECT_TRUE(CountsMatchStates(plan));
}

// Given a ready task 1 (needing 0) with a dependent 2, Grow should append
// ready copies of 1 in its queue, and 2 should wait for all of them: it is
// ready only once 1 and every copy have succeeded.
TEST_F(PlanTest, GrowAddsReadyCopiesTheDependentsWaitFor) {
  std::vector<PlanTask> tasks = {Task(), Task({0}, /*retries=*/2), Task({1})};
  Plan plan(std::move(tasks), PlanOptions{});
  ASSERT_NO_FATAL_FAILURE(Run(plan, 0));
  ASSERT_EQ(plan.state(1), S::kReady);
  EXPECT_EQ(plan.Grow(1, 2), 3u);
  EXPECT_EQ(plan.size(), 5u);
  EXPECT_TRUE(CountsMatchStates(plan));
  EXPECT_EQ(plan.state(3), S::kReady);
  EXPECT_EQ(plan.state(4), S::kReady);
  EXPECT_EQ(plan.queue(4), plan.queue(1));
  ASSERT_NO_FATAL_FAILURE(Run(plan, 1));
  ASSERT_NO_FATAL_FAILURE(Run(plan, 3));
  EXPECT_EQ(plan.state(2), S::kWaiting);
  // A copy keeps the retry policy: its first failure retries.
  EXPECT_TRUE(Fail(plan, 4).has_value());
  EXPECT_EQ(plan.state(2), S::kWaiting);
  AdvanceTo(*plan.NextRetryAt());
  plan.Promote(clock_.Now());
  ASSERT_NO_FATAL_FAILURE(Run(plan, 4));
  EXPECT_EQ(plan.state(2), S::kReady);
}

// Given a copy that fails for good, the dependent should be blocked; and
// Grow of a task that is not ready should change nothing.
TEST_F(PlanTest, GrowCopiesBlockDependentsAndNeedAReadyTask) {
  std::vector<PlanTask> tasks = {Task(), Task({0}), Task({1})};
  Plan plan(std::move(tasks), PlanOptions{});
  EXPECT_EQ(plan.Grow(1, 3), 3u);  // 1 is waiting
  EXPECT_EQ(plan.size(), 3u);
  ASSERT_NO_FATAL_FAILURE(Run(plan, 0));
  EXPECT_EQ(plan.Grow(1, 1), 3u);
  ASSERT_NO_FATAL_FAILURE(Run(plan, 1));
  EXPECT_FALSE(Fail(plan, 3, /*retryable=*/false).has_value());
  EXPECT_EQ(plan.state(2), S::kBlocked);
  EXPECT_TRUE(plan.Finished());
  EXPECT_TRUE(CountsMatchStates(plan));
}

}  // namespace
}  // namespace drover::dag

// LogLimiter (core/coordinator/log_limiter.h): one log line per peer per
// reason per window, with counts of what was not logged. Plain data: time is
// passed in.
#include "core/coordinator/log_limiter.h"

#include <gtest/gtest.h>

namespace drover {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

// Given the same event from one peer many times within a minute, should
// allow the first, suppress the rest, and report the suppressed ones with
// the first line after the minute; another peer or reason has its own line.
TEST(LogLimiterTest, OneLinePerPeerAndReasonPerMinuteWithCounts) {
  LogLimiter limit(minutes(1));
  const SteadyTime t0{};
  uint64_t suppressed = 99;
  EXPECT_TRUE(limit.Allow("k1", "refused SUBMIT", t0, &suppressed));
  EXPECT_EQ(suppressed, 0u);
  for (int i = 1; i <= 5; ++i) EXPECT_FALSE(limit.Allow("k1", "refused SUBMIT", t0 + seconds(i)));
  EXPECT_TRUE(limit.Allow("k1", "refused HELLO", t0 + seconds(1)));
  EXPECT_TRUE(limit.Allow("k2", "refused SUBMIT", t0 + seconds(1)));
  EXPECT_TRUE(limit.Allow("k1", "refused SUBMIT", t0 + seconds(60), &suppressed));
  EXPECT_EQ(suppressed, 5u);
  EXPECT_FALSE(limit.Allow("k1", "refused SUBMIT", t0 + seconds(61)));
}

// Given windows that ended, Sweep should return one summary per key with
// unlogged events (and open a new window for it), and forget quiet keys, so
// memory stays bounded by the keys active in the last minute.
TEST(LogLimiterTest, SweepSummarisesAndForgetsQuietKeys) {
  LogLimiter limit(minutes(1));
  const SteadyTime t0{};
  EXPECT_TRUE(limit.Allow("noisy", "malformed", t0));
  EXPECT_FALSE(limit.Allow("noisy", "malformed", t0 + seconds(1)));
  EXPECT_FALSE(limit.Allow("noisy", "malformed", t0 + seconds(2)));
  EXPECT_TRUE(limit.Allow("quiet", "malformed", t0));
  EXPECT_TRUE(limit.Sweep(t0 + seconds(30)).empty());  // no window over yet
  const auto summaries = limit.Sweep(t0 + seconds(60));
  ASSERT_EQ(summaries.size(), 1u);
  EXPECT_EQ(summaries[0].peer, "noisy");
  EXPECT_EQ(summaries[0].reason, "malformed");
  EXPECT_EQ(summaries[0].suppressed, 2u);
  EXPECT_EQ(limit.size(), 1u);  // "quiet" is forgotten
  // The summary counted as the new window's line.
  EXPECT_FALSE(limit.Allow("noisy", "malformed", t0 + seconds(61)));
  limit.Prune(t0 + seconds(200));
  EXPECT_EQ(limit.size(), 0u);
}

}  // namespace
}  // namespace drover

// core/coordinator/prefetch_grant.h: how much of a worker's prefetch the
// coordinator uses, following how long its tasks run.
#include "core/coordinator/prefetch_grant.h"

#include <gtest/gtest.h>

#include <chrono>

namespace drover {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Given an offer of 12 beyond 3 slots, before any attempt has ended, should
// grant no more than the slots, as drover always did.
TEST(PrefetchGrantTest, GrantsTheSlotsUntilAnAttemptHasEnded) {
  PrefetchGrant grant(3, 12);
  EXPECT_EQ(grant.granted(), 3u);
  EXPECT_FALSE(grant.short_tasks());
}

// Given short attempts (under 5 ms), should grant the whole offer, and say
// that it changed only when it did.
TEST(PrefetchGrantTest, GrantsTheWholeOfferWhileTheTasksAreShort) {
  PrefetchGrant grant(3, 12);
  EXPECT_TRUE(grant.Observe(microseconds(40)));
  EXPECT_EQ(grant.granted(), 12u);
  EXPECT_FALSE(grant.Observe(milliseconds(4)));
  EXPECT_EQ(grant.granted(), 12u);
}

// Given an offer below the slots, should never grant more than the offer,
// short tasks or not.
TEST(PrefetchGrantTest, NeverGrantsMoreThanTheOffer) {
  PrefetchGrant grant(8, 2);
  EXPECT_EQ(grant.granted(), 2u);
  EXPECT_FALSE(grant.Observe(microseconds(10)));
  EXPECT_EQ(grant.granted(), 2u);
  EXPECT_EQ(PrefetchGrant(1, 1u << 30).offered(), PrefetchGrant::kMaxPrefetch);
}

// Given short attempts and then one of 2 s, should fall back to the slots
// at once, and win the whole offer back only after a run of short ones
// has brought the average under 5 ms again: 30 of them.
TEST(PrefetchGrantTest, OneLongTaskEndsTheGrantAndShortOnesWinItBack) {
  PrefetchGrant grant(2, 8);
  ASSERT_TRUE(grant.Observe(microseconds(100)));
  ASSERT_EQ(grant.granted(), 8u);
  EXPECT_TRUE(grant.Observe(seconds(2)));
  EXPECT_EQ(grant.granted(), 2u);
  int shorts = 0;
  while (!grant.short_tasks() && shorts < 1000) {
    grant.Observe(microseconds(100));
    ++shorts;
  }
  EXPECT_EQ(grant.granted(), 8u);
  EXPECT_EQ(shorts, 30);
}

// Given attempts of exactly 5 ms and more, should not count them as short.
TEST(PrefetchGrantTest, FiveMillisecondsIsNotShort) {
  PrefetchGrant grant(1, 4);
  grant.Observe(PrefetchGrant::kShort);
  EXPECT_FALSE(grant.short_tasks());
  EXPECT_EQ(grant.granted(), 1u);
}

}  // namespace
}  // namespace drover

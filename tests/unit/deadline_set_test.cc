// backends/process/deadline_set: the timers of the spawn and fork reactors,
// as plain data.
#include "backends/process/deadline_set.h"

#include <chrono>
#include <limits>

#include <gtest/gtest.h>

namespace drover {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const SteadyTime kT0 = SteadyTime(seconds(1000));

// Given timers for three keys, should pop the due ones earliest first, one
// per key, and leave the rest.
TEST(DeadlineSetTest, PopsDueTimersInOrder) {
  DeadlineSet set;
  set.Set(1, kT0 + seconds(3));
  set.Set(2, kT0 + seconds(1));
  set.Set(3, kT0 + seconds(2));
  EXPECT_EQ(set.Next(), kT0 + seconds(1));
  EXPECT_EQ(set.PopDue(kT0), std::nullopt);
  EXPECT_EQ(set.PopDue(kT0 + seconds(2)), 2u);
  EXPECT_EQ(set.PopDue(kT0 + seconds(2)), 3u);
  EXPECT_EQ(set.PopDue(kT0 + seconds(2)), std::nullopt);
  EXPECT_EQ(set.Get(1), kT0 + seconds(3));
  EXPECT_EQ(set.Get(2), std::nullopt);
}

// Given a key with a timer, Set should replace it, nullopt and Clear remove
// it, and Lower move it only earlier.
TEST(DeadlineSetTest, OneTimerPerKey) {
  DeadlineSet set;
  set.Set(7, kT0 + seconds(5));
  set.Set(7, kT0 + seconds(9));
  EXPECT_EQ(set.Next(), kT0 + seconds(9));
  set.Lower(7, kT0 + seconds(10));
  EXPECT_EQ(set.Get(7), kT0 + seconds(9));
  set.Lower(7, kT0 + seconds(4));
  EXPECT_EQ(set.Get(7), kT0 + seconds(4));
  set.Set(7, std::nullopt);
  EXPECT_TRUE(set.empty());
  set.Lower(8, kT0);  // none yet: set
  EXPECT_EQ(set.Get(8), kT0);
  set.Clear(8);
  set.Clear(8);  // nothing to clear
  EXPECT_EQ(set.Next(), std::nullopt);
}

// Given a deadline, the epoll timeout should be -1 without one, 0 when
// due, rounded up otherwise, and a "forever" grace should not wrap.
TEST(DeadlineSetTest, EpollTimeoutAndSaturation) {
  EXPECT_EQ(EpollTimeoutMs(std::nullopt, kT0), -1);
  EXPECT_EQ(EpollTimeoutMs(kT0, kT0 + seconds(1)), 0);
  EXPECT_EQ(EpollTimeoutMs(kT0 + std::chrono::microseconds(1500), kT0), 2);
  EXPECT_EQ(EpollTimeoutMs(SteadyTime::max(), kT0), std::numeric_limits<int>::max());
  EXPECT_EQ(After(kT0, Duration::max()), SteadyTime::max());
  EXPECT_EQ(After(kT0, milliseconds(5)), kT0 + milliseconds(5));
  EXPECT_EQ(Earliest(std::nullopt, kT0), kT0);
  EXPECT_EQ(Earliest(kT0 + seconds(1), kT0), kT0);
}

}  // namespace
}  // namespace drover

// core/coordinator/turn_hold.h: how long the coordinator may hold a turn
// to gather more results, from what its workers hold.
#include "core/coordinator/turn_hold.h"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>

namespace drover {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

constexpr Duration kMost = milliseconds(5);

// Given nobody holding attempts, should not hold: nothing would come.
TEST(TurnHoldTest, NothingHeldNoHold) {
  TurnHold hold(kMost);
  EXPECT_EQ(hold.hold(), Duration(0));
  hold.Add(0, 4, microseconds(900));  // a pair holding nothing is skipped
  EXPECT_EQ(hold.hold(), Duration(0));
  EXPECT_FALSE(hold.settled());
}

// Given 2 slots holding 10 attempts of 1 ms, should hold half of the 4 ms
// the 8 waiting take to start.
TEST(TurnHoldTest, HalfTheBacklogOfWhatWaitsBeyondTheSlots) {
  TurnHold hold(kMost);
  hold.Add(10, 2, milliseconds(1));
  EXPECT_EQ(hold.hold(), milliseconds(2));
}

// Given several workers, should hold for the one that runs dry first.
TEST(TurnHoldTest, TheShortestBacklogDecides) {
  TurnHold hold(kMost);
  hold.Add(10, 2, milliseconds(1));   // 4 ms
  hold.Add(40, 32, milliseconds(2));  // 8 x 2 ms / 32 = 0.5 ms
  hold.Add(6, 1, milliseconds(1));    // 5 ms
  EXPECT_EQ(hold.hold(), microseconds(250));
}

// Given one pair with nothing waiting beyond its slots, or whose tasks'
// length is not known yet, should not hold, whatever the others hold, and
// say so at once so that the caller stops adding.
TEST(TurnHoldTest, APairWithNothingBehindItsSlotsMeansNoHold) {
  TurnHold at_slots(kMost);
  at_slots.Add(10, 2, milliseconds(1));
  at_slots.Add(4, 4, milliseconds(1));
  EXPECT_TRUE(at_slots.settled());
  at_slots.Add(100, 2, milliseconds(1));
  EXPECT_EQ(at_slots.hold(), Duration(0));

  TurnHold unknown(kMost);
  unknown.Add(10, 2, std::nullopt);
  EXPECT_TRUE(unknown.settled());
  EXPECT_EQ(unknown.hold(), Duration(0));

  TurnHold instant(kMost);
  instant.Add(10, 2, Duration(0));
  EXPECT_EQ(instant.hold(), Duration(0));
}

// Given a long backlog, should hold no longer than the coordinator allows;
// given a limit below what is worth holding (0: never), never.
TEST(TurnHoldTest, AtMostTheLimit) {
  TurnHold hold(kMost);
  hold.Add(1000, 2, milliseconds(4));
  EXPECT_EQ(hold.hold(), kMost);

  TurnHold off(Duration(0));
  EXPECT_TRUE(off.settled());
  off.Add(1000, 2, milliseconds(4));
  EXPECT_EQ(off.hold(), Duration(0));
}

// Given a backlog whose half is under 200 us (tasks of microseconds: the
// threads backend), should not hold: that gathers nothing.
TEST(TurnHoldTest, NotWorthHoldingForTasksOfMicroseconds) {
  TurnHold hold(kMost);
  hold.Add(128, 32, microseconds(5));  // 96 x 5 us / 32 = 15 us
  EXPECT_EQ(hold.hold(), Duration(0));
  TurnHold just(kMost);
  just.Add(3, 1, microseconds(200));  // 400 us: 200 us is worth it
  EXPECT_EQ(just.hold(), microseconds(200));
}

}  // namespace
}  // namespace drover

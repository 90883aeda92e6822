// RefusalLog (core/coordinator/authorization.h): one log line per peer per
// reason per window, with counts. Plain data: time is passed in.
#include "core/coordinator/authorization.h"

#include <gtest/gtest.h>

namespace drover {
namespace {

using std::chrono::seconds;

// Given the same refusal from one peer many times within a minute, should
// log the first, suppress the rest, and make the first line after the
// minute stand for all of them; another peer or reason has its own line.
TEST(RefusalLogTest, OneLinePerPeerAndReasonPerMinuteWithCounts) {
  RefusalLog log;
  const SteadyTime t0{};
  EXPECT_EQ(log.Count("k1", "SUBMIT", t0), 1u);
  for (int i = 1; i <= 5; ++i) EXPECT_EQ(log.Count("k1", "SUBMIT", t0 + seconds(i)), 0u);
  EXPECT_EQ(log.Count("k1", "HELLO", t0 + seconds(1)), 1u);
  EXPECT_EQ(log.Count("k2", "SUBMIT", t0 + seconds(1)), 1u);
  // After the minute: this one and the 5 suppressed.
  EXPECT_EQ(log.Count("k1", "SUBMIT", t0 + seconds(60)), 6u);
  EXPECT_EQ(log.Count("k1", "SUBMIT", t0 + seconds(61)), 0u);
  EXPECT_EQ(log.Count("k1", "SUBMIT", t0 + seconds(200)), 2u);
}

// Given more (peer, reason) pairs than kPruneAt, should drop the quiet ones
// whose minute has passed, so memory stays bounded.
TEST(RefusalLogTest, QuietEntriesArePruned) {
  RefusalLog log;
  const SteadyTime t0{};
  for (size_t i = 0; i <= RefusalLog::kPruneAt; ++i) log.Count(std::to_string(i), "X", t0);
  EXPECT_EQ(log.size(), RefusalLog::kPruneAt + 1);
  EXPECT_EQ(log.Count("new", "X", t0 + seconds(61)), 1u);
  EXPECT_EQ(log.size(), 1u);
}

}  // namespace
}  // namespace drover

// AdaptiveSpin (backends/process/adaptive_spin.h): when a wait spins before
// it blocks, and SpinUntilReadable on a real socket pair.
#include "backends/process/adaptive_spin.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

namespace drover {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

// Given answers within the budget, then one later than it, then one within
// it again, the spin should stay on, turn off, and come back on.
TEST(AdaptiveSpinTest, SpinsUntilAnAnswerTakesLongerThanTheBudget) {
  AdaptiveSpin spin(microseconds(50));
  EXPECT_EQ(spin.Budget(), microseconds(50));  // a first answer is expected soon
  spin.Answered(microseconds(10));
  EXPECT_EQ(spin.Budget(), microseconds(50));
  spin.Answered(microseconds(50));  // at the budget: still worth it
  EXPECT_EQ(spin.Budget(), microseconds(50));
  spin.Answered(milliseconds(3));  // a long task: the next wait blocks at once
  EXPECT_EQ(spin.Budget(), AdaptiveSpin::Duration(0));
  spin.Answered(microseconds(51));
  EXPECT_EQ(spin.Budget(), AdaptiveSpin::Duration(0));
  spin.Answered(microseconds(20));  // a blocking wait answered that soon: spin again
  EXPECT_EQ(spin.Budget(), microseconds(50));
}

// Given a budget of zero, the spin should never be on.
TEST(AdaptiveSpinTest, AZeroBudgetNeverSpins) {
  AdaptiveSpin spin(AdaptiveSpin::Duration(0));
  EXPECT_EQ(spin.Budget(), AdaptiveSpin::Duration(0));
  spin.Answered(AdaptiveSpin::Duration(0));
  EXPECT_EQ(spin.Budget(), AdaptiveSpin::Duration(0));
}

class SpinUntilReadableTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds_), 0); }
  void TearDown() override {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  int fds_[2] = {-1, -1};
};

// Given a byte waiting, it should say so.
TEST_F(SpinUntilReadableTest, SaysReadableWhenInputIsWaiting) {
  ASSERT_EQ(::write(fds_[1], "x", 1), 1);
  EXPECT_TRUE(SpinUntilReadable(fds_[0], milliseconds(10)));
}

// Given nothing to read, it gives up once its budget has passed, not
// sooner and not never.
TEST_F(SpinUntilReadableTest, GivesUpAfterItsBudget) {
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(SpinUntilReadable(fds_[0], milliseconds(2)));
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(2));
}

// Given a budget of zero, it should not look, even with a byte waiting.
TEST_F(SpinUntilReadableTest, WithNoBudgetDoesNotLook) {
  ASSERT_EQ(::write(fds_[1], "x", 1), 1);
  EXPECT_FALSE(SpinUntilReadable(fds_[0], AdaptiveSpin::Duration(0)));
}

// Given a socket shut down, it should say readable (the read finds EOF).
TEST_F(SpinUntilReadableTest, SaysReadableWhenThePeerHasGone) {
  ::close(fds_[1]);
  fds_[1] = ::dup(fds_[0]);  // keeps TearDown's closes balanced
  ::shutdown(fds_[0], SHUT_RDWR);
  EXPECT_TRUE(SpinUntilReadable(fds_[0], milliseconds(10)));  // the read says EOF
}

}  // namespace
}  // namespace drover

// SocketWait (core/protocol/socket_wait.h) over real ZeroMQ sockets on
// inproc:// and a real eventfd. Every wait that should return at once is
// given a minute: a wait that blocked would end with no event and fail.
#include "core/protocol/socket_wait.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <zmq.hpp>

namespace drover::protocol {
namespace {

constexpr std::chrono::milliseconds kLong{60'000};

class SocketWaitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pull_.bind("inproc://socket-wait");
    push_.connect("inproc://socket-wait");
    efd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    ASSERT_GE(efd_, 0);
  }
  void TearDown() override { ::close(efd_); }

  std::string Receive() {
    zmq::message_t m;
    if (!pull_.recv(m, zmq::recv_flags::dontwait)) return "";
    return m.to_string();
  }

  zmq::context_t context_;
  zmq::socket_t pull_{context_, zmq::socket_type::pull};
  zmq::socket_t push_{context_, zmq::socket_type::push};
  int efd_ = -1;
  SocketWait wait_;
};

// Given a message sent before the wait, the wait should return at once
// and say the socket may be read.
TEST_F(SocketWaitTest, ReturnsAtOnceForAMessageAlreadyThere) {
  push_.send(zmq::str_buffer("one"));
  zmq::pollitem_t items[] = {{pull_.handle(), 0, ZMQ_POLLIN, 0}};
  wait_.Wait(items, kLong);
  EXPECT_TRUE(items[0].revents & ZMQ_POLLIN);
  EXPECT_EQ(Receive(), "one");
}

// Given two messages of which one was received, the socket's descriptor
// is quiet (the receive took the mailbox's signal), yet the second
// message waits: the wait must still return at once. A bare poll(2) of
// ZMQ_FD would block here.
TEST_F(SocketWaitTest, ReturnsAtOnceForAMessageLeftBehindAReceive) {
  push_.send(zmq::str_buffer("one"));
  push_.send(zmq::str_buffer("two"));
  zmq::pollitem_t items[] = {{pull_.handle(), 0, ZMQ_POLLIN, 0}};
  wait_.Wait(items, kLong);
  ASSERT_EQ(Receive(), "one");
  wait_.Wait(items, kLong);
  EXPECT_TRUE(items[0].revents & ZMQ_POLLIN);
  EXPECT_EQ(Receive(), "two");
  EXPECT_EQ(Receive(), "");
}

// Given a message sent from another thread while the wait blocks, the
// wait should end, and a receive should find the message.
TEST_F(SocketWaitTest, WakesForAMessageSentDuringTheWait) {
  zmq::pollitem_t items[] = {{pull_.handle(), 0, ZMQ_POLLIN, 0}};
  std::thread sender([this] { push_.send(zmq::str_buffer("late")); });
  std::string got;
  // The first wait may end for the connection's own commands, not the
  // message: a loop receives after every wait, and so does this one.
  for (int i = 0; i < 8 && got.empty(); ++i) {
    wait_.Wait(items, kLong);
    got = Receive();
  }
  sender.join();
  EXPECT_EQ(got, "late");
}

// Given a readable descriptor beside a quiet socket, the wait should
// report the descriptor alone.
TEST_F(SocketWaitTest, ReportsAReadableDescriptor) {
  const uint64_t one = 1;
  ASSERT_EQ(::write(efd_, &one, sizeof one), 8);
  zmq::pollitem_t items[] = {{pull_.handle(), 0, ZMQ_POLLIN, 0},
                             {nullptr, efd_, ZMQ_POLLIN, 0}};
  wait_.Wait(items, kLong);
  EXPECT_TRUE(items[1].revents & ZMQ_POLLIN);
  EXPECT_EQ(Receive(), "");
}

// Given nothing to read, the wait should end when its timeout passes,
// with no event reported.
TEST_F(SocketWaitTest, EndsAtItsTimeoutWithNothingReported) {
  zmq::pollitem_t items[] = {{pull_.handle(), 0, ZMQ_POLLIN, 0},
                             {nullptr, efd_, ZMQ_POLLIN, 0}};
  wait_.Wait(items, std::chrono::milliseconds(20));
  EXPECT_EQ(items[1].revents, 0);
  EXPECT_EQ(Receive(), "");
}

// Given a context being closed, the wait should throw ETERM as zmq::poll
// does, so that a loop can end.
TEST_F(SocketWaitTest, ThrowsETERMOnceTheContextCloses) {
  context_.shutdown();
  zmq::pollitem_t items[] = {{pull_.handle(), 0, ZMQ_POLLIN, 0}};
  try {
    wait_.Wait(items, kLong);
    ADD_FAILURE() << "no exception";
  } catch (const zmq::error_t& e) {
    EXPECT_EQ(e.num(), ETERM);
  }
}

}  // namespace
}  // namespace drover::protocol

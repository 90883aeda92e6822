// The load generator's ZMTP DEALER (tools/bench/zmtp_dealer.h) against a
// libzmq ROUTER over TCP loopback: what the coordinator's socket sees of it.
#include "tools/bench/zmtp_dealer.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <chrono>
#include <string>
#include <vector>
#include <zmq.hpp>

namespace drover::bench {
namespace {

using Clock = std::chrono::steady_clock;
using Frames = std::vector<std::string>;

class ZmtpDealerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.set(zmq::sockopt::linger, 0);
    router_.bind("tcp://127.0.0.1:0");
    const std::string endpoint = router_.get(zmq::sockopt::last_endpoint);
    ASSERT_TRUE(ParseTcpEndpoint(endpoint, &host_, &port_)) << endpoint;
  }

  // Runs the dealer's side (flush, then read what comes within 50 ms)
  // until `done` or 10 s; the ROUTER is served by the caller's `done`.
  template <typename Done>
  bool Pump(ZmtpDealer& dealer, std::vector<Frames>* received, Done done) {
    const auto give_up = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < give_up) {
      if (!dealer.Flush()) return false;
      pollfd p{dealer.fd(),
               static_cast<short>(POLLIN | (dealer.wants_write() ? POLLOUT : 0)), 0};
      if (::poll(&p, 1, 50) > 0 && (p.revents & (POLLIN | POLLERR | POLLHUP)) &&
          !dealer.Read(received)) {
        return false;
      }
      if (done()) return true;
    }
    ADD_FAILURE() << "timed out";
    return false;
  }

  // The ROUTER's next message, its routing id first; empty when none is
  // waiting.
  Frames RouterReceive() {
    Frames frames;
    zmq::message_t part;
    while (router_.recv(part, zmq::recv_flags::dontwait)) {
      frames.push_back(part.to_string());
      if (!part.more()) break;
    }
    return frames;
  }

  zmq::context_t context_{1};
  zmq::socket_t router_{context_, zmq::socket_type::router};
  std::string host_;
  uint16_t port_ = 0;
};

// Given a message queued before the connection is up (frames of 0, 7 and
// 300 bytes: short and long frames), the ROUTER should receive it whole
// once the handshake is done, and the ROUTER's reply (a 1,000-byte frame
// among them) should come back to the dealer as the same frames.
TEST_F(ZmtpDealerTest, MessagesCrossBothWaysWithTheirFrames) {
  ZmtpDealer dealer;
  ASSERT_TRUE(dealer.Connect(host_, port_)) << dealer.error();
  const std::string big(300, 'x');
  dealer.Send({"", "DROVER\x02", big});

  std::vector<Frames> received;
  Frames at_router;
  ASSERT_TRUE(Pump(dealer, &received, [&] {
    at_router = RouterReceive();
    return !at_router.empty();
  })) << dealer.error();
  ASSERT_EQ(at_router.size(), 4u);
  EXPECT_EQ(at_router[1], "");
  EXPECT_EQ(at_router[2], "DROVER\x02");
  EXPECT_EQ(at_router[3], big);

  const std::string reply(1000, 'r');
  router_.send(zmq::buffer(at_router[0]), zmq::send_flags::sndmore);
  router_.send(zmq::str_buffer("a"), zmq::send_flags::sndmore);
  router_.send(zmq::buffer(reply), zmq::send_flags::none);
  ASSERT_TRUE(Pump(dealer, &received, [&] { return !received.empty(); }))
      << dealer.error();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0], (Frames{"a", reply}));
  EXPECT_FALSE(dealer.failed());
}

// Given a ROUTER that goes away, the dealer should say its connection
// ended rather than wait on it.
TEST_F(ZmtpDealerTest, AClosedPeerEndsTheConnection) {
  ZmtpDealer dealer;
  ASSERT_TRUE(dealer.Connect(host_, port_)) << dealer.error();
  dealer.Send({"hello"});
  std::vector<Frames> received;
  ASSERT_TRUE(Pump(dealer, &received, [&] { return !RouterReceive().empty(); }));
  router_.close();
  EXPECT_FALSE(Pump(dealer, &received, [] { return false; }));
  EXPECT_EQ(dealer.error(), "the peer closed the connection");
}

// Given endpoints, ParseTcpEndpoint should take tcp://HOST:PORT only.
TEST(ZmtpEndpointTest, OnlyTcpHostAndPort) {
  std::string host;
  uint16_t port = 0;
  EXPECT_TRUE(ParseTcpEndpoint("tcp://127.0.0.1:5555", &host, &port));
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 5555);
  for (const char* bad : {"ipc:///tmp/x", "tcp://127.0.0.1", "tcp://127.0.0.1:",
                          "tcp://h:0", "tcp://h:65536", "tcp://h:12a"}) {
    EXPECT_FALSE(ParseTcpEndpoint(bad, &host, &port)) << bad;
  }
}

}  // namespace
}  // namespace drover::bench

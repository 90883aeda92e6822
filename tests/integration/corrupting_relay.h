// CorruptingRelay: a TCP relay for fault-injection tests. It listens on
// 127.0.0.1 (an ephemeral port), forwards every connection it accepts to
// 127.0.0.1:TARGET, and, once armed, flips one bit of the byte stream in
// one direction (from its clients to the target, or back): the byte that
// ends the first run of kRun copies of a marker byte. A run that long is never protocol
// framing, so with a file of marker bytes as its payload the flipped byte is always
// inside a chunk's data: the corruption a faulty link or NIC would cause,
// and one that no framing check sees.
//
// Details callers may rely on:
//  - One thread relays every connection (blocking writes: the peers are
//    ZeroMQ I/O threads, which always read). Connections that end on one
//    side are closed on the other.
//  - Arm(direction) corrupts exactly one byte, then the relay passes bytes
//    through unchanged until armed again. corrupted() tells whether it
//    happened.
//  - The destructor stops the thread and closes every socket.
#ifndef DROVER_TESTS_INTEGRATION_CORRUPTING_RELAY_H_
#define DROVER_TESTS_INTEGRATION_CORRUPTING_RELAY_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>

namespace drover::testing {

class CorruptingRelay {
 public:
  static constexpr size_t kRun = 4096;
  enum class Direction { kToTarget, kToClient };

  CorruptingRelay(uint16_t target_port, char marker)
      : target_port_(target_port), marker_(marker) {}
  ~CorruptingRelay();
  CorruptingRelay(const CorruptingRelay&) = delete;
  CorruptingRelay& operator=(const CorruptingRelay&) = delete;

  // Binds and starts relaying. False (and a test failure) on error.
  bool Start();
  // The port it listens on, after Start.
  uint16_t port() const { return port_; }
  void Arm(Direction direction) {
    downstream_ = direction == Direction::kToClient;
    armed_ = true;
  }
  bool corrupted() const { return corrupted_; }

 private:
  void Loop();

  const uint16_t target_port_;
  const char marker_;
  uint16_t port_ = 0;
  int listen_fd_ = -1;
  int stop_fd_ = -1;  // eventfd: tells the thread to quit
  std::thread thread_;
  std::atomic<bool> armed_{false};
  std::atomic<bool> downstream_{false};  // which direction Arm chose
  std::atomic<bool> corrupted_{false};
};

}  // namespace drover::testing

#endif  // DROVER_TESTS_INTEGRATION_CORRUPTING_RELAY_H_

// ZmtpDealer: one DEALER end of a ZMTP 3.0 connection over TCP, written
// directly on a non-blocking socket, for the load generator of
// `tools/bench/bench workers` (workers_bench.cc).
//
// A thousand libzmq DEALER sockets in one process cost the load generator
// a mailbox (an eventfd) per socket and an I/O thread that every message
// crosses: about 25 µs of CPU a task, on the two cores the coordinator it
// measures also runs on. Speaking the wire protocol itself (RFC 23/ZMTP:
// the greeting, the NULL mechanism's READY, frames), a connection is one
// descriptor in the load generator's epoll set and a message one read and
// one write. To the coordinator's ROUTER it is a DEALER like any other:
// it announces Socket-Type DEALER and sends and receives the same frames.
//
// What it does not do, since the bench needs none of it: security
// mechanisms other than NULL, ZMTP heartbeats (PING/PONG; command frames
// are read and skipped), reconnection. A peer that breaks the framing ends
// the connection (`failed()`, with the reason).
#ifndef DROVER_TOOLS_BENCH_ZMTP_DEALER_H_
#define DROVER_TOOLS_BENCH_ZMTP_DEALER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace drover::bench {

class ZmtpDealer {
 public:
  ZmtpDealer() = default;
  ~ZmtpDealer();
  ZmtpDealer(const ZmtpDealer&) = delete;
  ZmtpDealer& operator=(const ZmtpDealer&) = delete;

  // Starts a non-blocking connection to `host`:`port` (an IPv4 address)
  // and queues the greeting and READY. False (with `error()`) when the
  // socket cannot be made.
  bool Connect(const std::string& host, uint16_t port);

  // The descriptor to watch: EPOLLIN always, EPOLLOUT while `wants_write()`.
  int fd() const { return fd_; }

  // Queues a message of these frames: sent by the next Flush once the
  // peer's READY has come (Read), by a Flush after that before.
  void Send(const std::vector<std::string_view>& frames);

  // Writes what is queued, as far as the socket takes it. False when the
  // connection failed.
  bool Flush();
  bool wants_write() const { return sent_ < out_.size() || connecting_; }

  // Reads what the socket has and appends each complete message (its
  // frames) to `messages`. False when the connection failed or closed.
  bool Read(std::vector<std::vector<std::string>>* messages);

  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  bool Fail(std::string why);
  // Takes what `in_` holds from `parsed_` on: the greeting, then frames.
  bool Parse(std::vector<std::vector<std::string>>* messages);

  int fd_ = -1;
  bool connecting_ = false;
  bool greeted_ = false;  // the peer's 64-byte greeting was read
  bool ready_ = false;    // the peer's READY was read
  std::string held_;      // messages queued before that
  std::string out_;       // queued bytes; out_[sent_..] not yet written
  size_t sent_ = 0;
  std::string in_;  // read bytes; in_[parsed_..] not yet parsed
  size_t parsed_ = 0;
  std::vector<std::string> frames_;  // the message being received
  std::string error_;
};

// "tcp://HOST:PORT" as its parts; false when it is not that form.
bool ParseTcpEndpoint(const std::string& endpoint, std::string* host, uint16_t* port);

}  // namespace drover::bench

#endif  // DROVER_TOOLS_BENCH_ZMTP_DEALER_H_

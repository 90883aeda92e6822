// Waiting on ZeroMQ sockets and plain descriptors together, for a loop
// that receives from its sockets until EAGAIN after every wait (the
// coordinator's, the worker's and the client's loops do).
//
// zmq::poll (zmq_poll) does more than such a loop needs: it polls every
// descriptor once without waiting, asks each socket for its events
// (ZMQ_EVENTS) before the wait and again after it, and libzmq answers each
// ask with a getpid(2) and a poll(2) of the socket's mailbox. A blocking
// zmq_poll of one socket is six system calls; Wait is three: one ask per
// socket, then one poll(2) of the sockets' descriptors (ZMQ_FD) and the
// others, with no wait when a socket has a message already.
#ifndef DROVER_CORE_PROTOCOL_SOCKET_WAIT_H_
#define DROVER_CORE_PROTOCOL_SOCKET_WAIT_H_

#include <poll.h>

#include <chrono>
#include <span>
#include <vector>
#include <zmq.hpp>

namespace drover::protocol {

class SocketWait {
 public:
  // Waits until a socket of `items` has a message, a descriptor of `items`
  // is readable, or `timeout` passed (negative: no timeout); sets revents
  // like zmq::poll, with one difference: a socket's ZMQ_POLLIN means it had
  // a message before the wait or its descriptor fired during it, so that
  // it may have one now, and only a receive (ZMQ_DONTWAIT) says. Only
  // ZMQ_POLLIN is waited for. Throws zmq::error_t as zmq::poll does (ETERM
  // once the context is closing); EINTR returns with no revents.
  void Wait(std::span<zmq::pollitem_t> items, std::chrono::milliseconds timeout);

 private:
  std::vector<pollfd> fds_;  // kept between waits: no allocation a turn
};

}  // namespace drover::protocol

#endif  // DROVER_CORE_PROTOCOL_SOCKET_WAIT_H_

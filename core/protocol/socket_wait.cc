#include "core/protocol/socket_wait.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>

namespace drover::protocol {

void SocketWait::Wait(std::span<zmq::pollitem_t> items,
                      std::chrono::milliseconds timeout) {
  // A socket's descriptor signals that its mailbox has commands, not that
  // it has messages, and it does so on an edge: a command taken by any
  // call on the socket since the last wait (a send, a receive) leaves it
  // quiet with a message waiting. So each socket is asked first, and the
  // wait does not block when one has a message.
  bool ready = false;
  fds_.resize(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    zmq::pollitem_t& item = items[i];
    item.revents = 0;
    if (item.socket != nullptr) {
      uint32_t events = 0;
      size_t size = sizeof events;
      if (zmq_getsockopt(item.socket, ZMQ_EVENTS, &events, &size) != 0)
        throw zmq::error_t();
      if (events & ZMQ_POLLIN & item.events) {
        item.revents = ZMQ_POLLIN;
        ready = true;
      }
      int fd = -1;
      size = sizeof fd;
      if (zmq_getsockopt(item.socket, ZMQ_FD, &fd, &size) != 0) throw zmq::error_t();
      fds_[i] = {fd, POLLIN, 0};
    } else {
      fds_[i] = {item.fd, static_cast<short>((item.events & ZMQ_POLLIN) ? POLLIN : 0), 0};
    }
  }
  const int ms =
      ready ? 0 : static_cast<int>(std::clamp<int64_t>(timeout.count(), -1, INT_MAX));
  const int n = ::poll(fds_.data(), fds_.size(), ms);
  if (n < 0) {
    if (errno == EINTR) return;
    throw zmq::error_t();
  }
  if (n == 0) return;
  for (size_t i = 0; i < items.size(); ++i) {
    const short revents = fds_[i].revents;
    if (revents == 0) continue;
    if (items[i].socket != nullptr) {
      items[i].revents |= ZMQ_POLLIN;  // its mailbox has commands: it may have a message
    } else {
      // As zmq_poll reports a plain descriptor.
      if (revents & POLLIN) items[i].revents |= ZMQ_POLLIN;
      if (revents & ~(POLLIN | POLLOUT | POLLPRI)) items[i].revents |= ZMQ_POLLERR;
    }
  }
}

}  // namespace drover::protocol

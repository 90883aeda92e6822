#include "tests/integration/corrupting_relay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

namespace drover::testing {
namespace {

// Writes all of `n` bytes; false when the peer is gone.
bool WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

int ConnectLoopback(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

CorruptingRelay::~CorruptingRelay() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    (void)!::write(stop_fd_, &one, sizeof one);
    thread_.join();
  }
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

bool CorruptingRelay::Start() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listen_fd_ < 0 || stop_fd_ < 0 ||
      ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 16) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ADD_FAILURE() << "relay: cannot listen on 127.0.0.1: " << ::strerror(errno);
    return false;
  }
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { Loop(); });
  return true;
}

void CorruptingRelay::Loop() {
  struct Pair {
    int client;
    int target;
  };
  std::vector<Pair> pairs;
  size_t runs[2] = {0, 0};  // marker bytes in a row: to target, to client
  std::vector<char> buf(64 << 10);
  for (;;) {
    std::vector<pollfd> fds = {{stop_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    for (const Pair& p : pairs) {
      fds.push_back({p.client, POLLIN, 0});
      fds.push_back({p.target, POLLIN, 0});
    }
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents != 0) break;
    if (fds[1].revents & POLLIN) {
      const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0) {
        const int target = ConnectLoopback(target_port_);
        if (target < 0) {
          ::close(client);
        } else {
          pairs.push_back({client, target});
        }
      }
    }
    std::vector<size_t> ended;
    for (size_t i = 0; i < fds.size() - 2; ++i) {
      if (fds[i + 2].revents == 0) continue;
      Pair& p = pairs[i / 2];
      const bool upstream = i % 2 == 0;
      const int from = upstream ? p.client : p.target;
      const int to = upstream ? p.target : p.client;
      const ssize_t n = ::recv(from, buf.data(), buf.size(), 0);
      if (n <= 0) {
        ended.push_back(i / 2);
        continue;
      }
      // Counted while unarmed too, so that a run is always contiguous.
      size_t& run = runs[upstream ? 0 : 1];
      for (ssize_t k = 0; k < n; ++k) {
        run = buf[k] == marker_ ? run + 1 : 0;
        if (run == kRun && armed_ && upstream != downstream_) {
          buf[k] ^= 0x01;
          armed_ = false;
          corrupted_ = true;
        }
      }
      if (!WriteAll(to, buf.data(), static_cast<size_t>(n))) ended.push_back(i / 2);
    }
    // Both directions of a pair may have ended in this turn: close it once.
    std::vector<Pair> kept;
    for (size_t i = 0; i < pairs.size(); ++i) {
      if (std::find(ended.begin(), ended.end(), i) != ended.end()) {
        ::close(pairs[i].client);
        ::close(pairs[i].target);
      } else {
        kept.push_back(pairs[i]);
      }
    }
    pairs = std::move(kept);
  }
  for (const Pair& p : pairs) {
    ::close(p.client);
    ::close(p.target);
  }
}

}  // namespace drover::testing

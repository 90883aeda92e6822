#include "tools/bench/zmtp_dealer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <utility>

namespace drover::bench {
namespace {

constexpr size_t kGreetingBytes = 64;
constexpr uint8_t kMore = 0x01, kLong = 0x02, kCommand = 0x04;
constexpr uint64_t kMaxFrame = uint64_t{64} << 20;  // beyond any DWP message

void AppendBigEndian(std::string* out, uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i)
    out->push_back(static_cast<char>(value >> (8 * i)));
}

uint64_t ReadBigEndian(const char* p, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value = (value << 8) | static_cast<uint8_t>(p[i]);
  return value;
}

// The greeting (RFC 23, "Greeting"): signature, version 3.1, mechanism
// NULL, as-server 0, filler. The signature's padding is a ZMTP 1.0 frame
// length of 1, as libzmq sends it: libzmq closes a connection whose
// padding reads as a length of 0.
std::string Greeting() {
  std::string g;
  g.push_back('\xff');
  g.append(7, '\0');
  g.push_back('\x01');
  g.push_back('\x7f');
  g.push_back('\x03');
  g.push_back('\x01');
  g.append("NULL");
  g.append(16, '\0');
  g.push_back('\x00');
  g.append(31, '\0');
  return g;
}

// The NULL mechanism's READY command with Socket-Type DEALER.
std::string Ready() {
  std::string body;
  body.push_back('\x05');
  body.append("READY");
  const std::string_view name = "Socket-Type", value = "DEALER";
  body.push_back(static_cast<char>(name.size()));
  body.append(name);
  AppendBigEndian(&body, value.size(), 4);
  body.append(value);
  std::string frame;
  frame.push_back(static_cast<char>(kCommand));
  frame.push_back(static_cast<char>(body.size()));
  frame += body;
  return frame;
}

}  // namespace

ZmtpDealer::~ZmtpDealer() {
  if (fd_ >= 0) ::close(fd_);
}

bool ZmtpDealer::Fail(std::string why) {
  if (error_.empty()) error_ = std::move(why);
  return false;
}

bool ZmtpDealer::Connect(const std::string& host, uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1) {
    return Fail("not an IPv4 address: " + host);
  }
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return Fail(std::string("socket: ") + std::strerror(errno));
  const int one = 1;
  (void)::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    if (errno != EINPROGRESS)
      return Fail(std::string("connect: ") + std::strerror(errno));
    connecting_ = true;
  }
  out_ = Greeting() + Ready();
  return true;
}

void ZmtpDealer::Send(const std::vector<std::string_view>& frames) {
  // Held until the peer's READY: libzmq 4.3.4 closed the connection when
  // a message came in the same write as the greeting and READY.
  std::string& to = ready_ ? out_ : held_;
  for (size_t i = 0; i < frames.size(); ++i) {
    const std::string_view f = frames[i];
    uint8_t flags = i + 1 < frames.size() ? kMore : 0;
    if (f.size() > 255) flags |= kLong;
    to.push_back(static_cast<char>(flags));
    AppendBigEndian(&to, f.size(), (flags & kLong) ? 8 : 1);
    to.append(f);
  }
}

bool ZmtpDealer::Flush() {
  if (failed()) return false;
  if (connecting_) {
    int error = 0;
    socklen_t size = sizeof error;
    if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &size) != 0) error = errno;
    if (error != 0) return Fail(std::string("connect: ") + std::strerror(error));
    sockaddr_in peer{};
    socklen_t peer_size = sizeof peer;
    if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&peer), &peer_size) != 0) {
      return errno == ENOTCONN
                 ? true
                 : Fail(std::string("getpeername: ") + std::strerror(errno));
    }
    connecting_ = false;
  }
  while (sent_ < out_.size()) {
    const ssize_t n = ::send(fd_, out_.data() + sent_, out_.size() - sent_, MSG_NOSIGNAL);
    if (n > 0) {
      sent_ += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return Fail(std::string("send: ") + std::strerror(errno));
  }
  out_.clear();
  sent_ = 0;
  return true;
}

bool ZmtpDealer::Read(std::vector<std::vector<std::string>>* messages) {
  if (failed()) return false;
  char buffer[64 * 1024];
  while (true) {
    const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
    if (n > 0) {
      in_.append(buffer, static_cast<size_t>(n));
      if (static_cast<size_t>(n) < sizeof buffer) break;
      continue;
    }
    if (n == 0) return Fail("the peer closed the connection");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    return Fail(std::string("recv: ") + std::strerror(errno));
  }
  return Parse(messages);
}

bool ZmtpDealer::Parse(std::vector<std::vector<std::string>>* messages) {
  if (!greeted_) {
    if (in_.size() - parsed_ < kGreetingBytes) return true;
    const char* g = in_.data() + parsed_;
    if (static_cast<uint8_t>(g[0]) != 0xff || g[9] != '\x7f' || g[10] < 3 ||
        std::string_view(g + 12, 5) != std::string_view("NULL\0", 5)) {
      return Fail("the peer's greeting is not ZMTP 3 with the NULL mechanism");
    }
    parsed_ += kGreetingBytes;
    greeted_ = true;
  }
  while (in_.size() - parsed_ >= 2) {
    const char* p = in_.data() + parsed_;
    const uint8_t flags = static_cast<uint8_t>(p[0]);
    if ((flags & ~(kMore | kLong | kCommand)) != 0)
      return Fail("a frame with unknown flags");
    const size_t head = (flags & kLong) ? 9 : 2;
    if (in_.size() - parsed_ < head) break;
    const uint64_t size = ReadBigEndian(p + 1, static_cast<int>(head - 1));
    if (size > kMaxFrame) return Fail("a frame of " + std::to_string(size) + " bytes");
    if (in_.size() - parsed_ < head + size) break;
    const std::string_view body(p + head, size);
    parsed_ += head + size;
    if (flags & kCommand) {
      // READY releases the messages held; PING needs no answer here (the
      // bench asks for no ZMTP heartbeats); ERROR ends the connection.
      if (body.substr(0, 6) == std::string_view("\x05"
                                                "ERROR",
                                                6)) {
        return Fail("the peer sent ERROR");
      }
      if (body.substr(0, 6) == std::string_view("\x05"
                                                "READY",
                                                6) &&
          !ready_) {
        ready_ = true;
        out_ += held_;
        held_.clear();
      }
      continue;
    }
    frames_.emplace_back(body);
    if (!(flags & kMore)) {
      messages->push_back(std::move(frames_));
      frames_.clear();
    }
  }
  if (parsed_ == in_.size()) {
    in_.clear();
    parsed_ = 0;
  } else if (parsed_ > 64 * 1024) {
    in_.erase(0, parsed_);
    parsed_ = 0;
  }
  return true;
}

bool ParseTcpEndpoint(const std::string& endpoint, std::string* host, uint16_t* port) {
  constexpr std::string_view kScheme = "tcp://";
  if (endpoint.compare(0, kScheme.size(), kScheme) != 0) return false;
  const size_t colon = endpoint.rfind(':');
  if (colon == std::string::npos || colon < kScheme.size()) return false;
  *host = endpoint.substr(kScheme.size(), colon - kScheme.size());
  const std::string digits = endpoint.substr(colon + 1);
  if (digits.empty() || digits.size() > 5 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  const unsigned long value = std::stoul(digits);
  if (value == 0 || value > 65535) return false;
  *port = static_cast<uint16_t>(value);
  return true;
}

}  // namespace drover::bench

#include "backends/services/listen_socket.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>

namespace drover::services {

Result<SocketAddress> ResolveHost(const std::string& host, int port) {
  if (port < 0 || port > 65535) {
    return InvalidArgument("port " + std::to_string(port) + " is out of range 0-65535");
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &found);
  if (rc != 0 || found == nullptr) {
    return InvalidArgument("cannot resolve host '" + host + "': " + ::gai_strerror(rc));
  }
  SocketAddress address;
  std::memcpy(&address.storage, found->ai_addr, found->ai_addrlen);
  address.length = found->ai_addrlen;
  address.family = found->ai_family;
  ::freeaddrinfo(found);
  return address;
}

std::string HostPort(const std::string& host, int port) {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

int LocalPort(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) return -1;
  if (storage.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
  }
  if (storage.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port);
  }
  return -1;
}

Result<UniqueFd> BindListener(const SocketAddress& address, const std::string& host,
                              bool reuseport, int backlog) {
  int port = 0;
  if (address.family == AF_INET) {
    port = ntohs(reinterpret_cast<const sockaddr_in*>(&address.storage)->sin_port);
  } else if (address.family == AF_INET6) {
    port = ntohs(reinterpret_cast<const sockaddr_in6*>(&address.storage)->sin6_port);
  }
  const std::string where = HostPort(host, port);
  UniqueFd fd(::socket(address.family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoError("socket for " + where, errno);
  int one = 1;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
    return ErrnoError("SO_REUSEADDR on " + where, errno);
  }
  if (reuseport && ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    return ErrnoError("SO_REUSEPORT on " + where, errno);
  }
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address.storage), address.length) !=
      0) {
    int err = errno;
    return Status(err == EADDRINUSE ? StatusCode::kUnavailable : StatusCode::kIoError,
                  "cannot listen on " + where + ": " + std::strerror(err));
  }
  if (::listen(fd.get(), backlog) != 0) return ErrnoError("listen on " + where, errno);
  return fd;
}

uint64_t SocketInode(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_ino);
}

std::optional<uint64_t> AcceptedInode(int client_fd) {
  sockaddr_storage client{}, server{};
  socklen_t client_len = sizeof client, server_len = sizeof server;
  if (::getsockname(client_fd, reinterpret_cast<sockaddr*>(&client), &client_len) != 0 ||
      ::getpeername(client_fd, reinterpret_cast<sockaddr*>(&server), &server_len) != 0 ||
      client.ss_family != server.ss_family ||
      (client.ss_family != AF_INET && client.ss_family != AF_INET6)) {
    return std::nullopt;
  }
  // One exact lookup (no NLM_F_DUMP) of the server side: its local end is
  // the client's peer, its remote end the client. Ports and addresses are
  // in network order in both the sockaddrs and the request.
  struct {
    nlmsghdr header;
    inet_diag_req_v2 body;
  } request{};
  request.header.nlmsg_len = sizeof request;
  request.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  request.header.nlmsg_flags = NLM_F_REQUEST;
  inet_diag_req_v2& req = request.body;
  req.sdiag_family = static_cast<uint8_t>(client.ss_family);
  req.sdiag_protocol = IPPROTO_TCP;
  req.idiag_states = ~0u;
  req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  if (client.ss_family == AF_INET) {
    const auto& c = reinterpret_cast<const sockaddr_in&>(client);
    const auto& s = reinterpret_cast<const sockaddr_in&>(server);
    req.id.idiag_sport = s.sin_port;
    req.id.idiag_dport = c.sin_port;
    std::memcpy(req.id.idiag_src, &s.sin_addr, sizeof s.sin_addr);
    std::memcpy(req.id.idiag_dst, &c.sin_addr, sizeof c.sin_addr);
  } else {
    const auto& c = reinterpret_cast<const sockaddr_in6&>(client);
    const auto& s = reinterpret_cast<const sockaddr_in6&>(server);
    req.id.idiag_sport = s.sin6_port;
    req.id.idiag_dport = c.sin6_port;
    std::memcpy(req.id.idiag_src, &s.sin6_addr, sizeof s.sin6_addr);
    std::memcpy(req.id.idiag_dst, &c.sin6_addr, sizeof c.sin6_addr);
  }
  UniqueFd netlink(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!netlink.valid()) return std::nullopt;
  // The kernel answers within sendto; the timeout only bounds a surprise.
  const timeval timeout{1, 0};
  ::setsockopt(netlink.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(netlink.get(), &request, sizeof request, 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof kernel) != static_cast<ssize_t>(sizeof request)) {
    return std::nullopt;
  }
  alignas(nlmsghdr) char buffer[8192];
  const ssize_t n = ::recv(netlink.get(), buffer, sizeof buffer, 0);
  if (n < static_cast<ssize_t>(sizeof(nlmsghdr))) return std::nullopt;
  const auto* reply = reinterpret_cast<const nlmsghdr*>(buffer);
  if (!NLMSG_OK(reply, static_cast<unsigned>(n)) || reply->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
      reply->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) {
    return std::nullopt;  // NLMSG_ERROR (ENOENT): no such connection
  }
  const auto* found = static_cast<const inet_diag_msg*>(NLMSG_DATA(reply));
  // With the connection gone the lookup falls back to the listening
  // socket, whose remote port is 0: that is not the connection.
  if (found->id.idiag_dport != req.id.idiag_dport) return std::nullopt;
  return static_cast<uint64_t>(found->idiag_inode);
}

bool ProcessHoldsSocket(pid_t pid, uint64_t inode) {
  const std::string want = "socket:[" + std::to_string(inode) + "]";
  std::error_code ec;
  std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec);
  if (ec) return false;
  char target[64];
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (ec) return false;
    ssize_t n = ::readlink(it->path().c_str(), target, sizeof(target) - 1);
    if (n <= 0) continue;
    if (std::string_view(target, static_cast<size_t>(n)) == want) return true;
  }
  return false;
}

}  // namespace drover::services

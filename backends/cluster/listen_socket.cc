#include "backends/cluster/listen_socket.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string_view>

namespace drover::cluster {

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

namespace {

// The port of a /proc/net/tcp address "0100007F:1F90" (the part after ':').
int HexPort(std::string_view address) {
  size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) return -1;
  unsigned value = 0;
  for (char c : address.substr(colon + 1)) {
    value <<= 4;
    if (c >= '0' && c <= '9') value |= c - '0';
    else if (c >= 'A' && c <= 'F') value |= c - 'A' + 10;
    else if (c >= 'a' && c <= 'f') value |= c - 'a' + 10;
    else return -1;
  }
  return static_cast<int>(value);
}

std::optional<uint64_t> FindInTable(const char* path, int server_port, int client_port) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    // sl local rem st tx:rx tr:when retr uid timeout inode ...
    char local[64], remote[64];
    unsigned long long inode = 0;
    if (std::sscanf(line.c_str(), " %*s %63s %63s %*s %*s %*s %*s %*s %*s %llu", local, remote,
                    &inode) != 3) {
      continue;
    }
    if (HexPort(local) == server_port && HexPort(remote) == client_port) return inode;
  }
  return std::nullopt;
}

}  // namespace

std::optional<uint64_t> AcceptedInode(int server_port, int client_port) {
  if (auto inode = FindInTable("/proc/net/tcp", server_port, client_port)) return inode;
  return FindInTable("/proc/net/tcp6", server_port, client_port);
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

}  // namespace drover::cluster

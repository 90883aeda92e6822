// Listening sockets for services, and the /proc views of TCP sockets that
// the ready probes use to tell which process accepted a connection.
#ifndef DROVER_BACKENDS_SERVICES_LISTEN_SOCKET_H_
#define DROVER_BACKENDS_SERVICES_LISTEN_SOCKET_H_

#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "backends/process/unique_fd.h"
#include "core/base/status.h"

namespace drover::services {

// A resolved numeric address to bind or connect to.
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = 0;
};

// Resolves `host` (a numeric address or a name such as "localhost") with
// `port`. InvalidArgument names the host and the resolver's reason.
Result<SocketAddress> ResolveHost(const std::string& host, int port);

// A listening TCP socket bound to `address` (close-on-exec, blocking) with
// SO_REUSEADDR, and SO_REUSEPORT when `reuseport`. The message of an error
// names host:port and the reason ("address already in use").
Result<UniqueFd> BindListener(const SocketAddress& address, const std::string& host,
                              bool reuseport, int backlog = 4096);

// The local port of a bound socket, or -1.
int LocalPort(int fd);

// "127.0.0.1:8080", "[::1]:8080".
std::string HostPort(const std::string& host, int port);

// The inode of the kernel socket behind `fd` (what /proc/PID/fd shows as
// "socket:[INODE]"), or 0.
uint64_t SocketInode(int fd);

// The inode of the server side of the loopback TCP connection whose client
// end is `client_fd`: 0 while the connection waits in a listen queue (no
// process has accepted it yet), nothing when the kernel has no such
// connection. One exact sock_diag lookup (NETLINK_SOCK_DIAG), so its cost
// does not grow with the host's sockets as a /proc/net/tcp scan's does
// (a benchmark leaves tens of thousands in TIME_WAIT).
std::optional<uint64_t> AcceptedInode(int client_fd);

// Whether process `pid` holds a descriptor for socket `inode`.
bool ProcessHoldsSocket(pid_t pid, uint64_t inode);

}  // namespace drover::services

#endif  // DROVER_BACKENDS_SERVICES_LISTEN_SOCKET_H_

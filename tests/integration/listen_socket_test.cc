// backends/cluster/listen_socket: AcceptedInode, the sock_diag lookup the
// ready probes use to tell which process accepted a probe connection, on
// real loopback sockets.
#include "backends/services/listen_socket.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>

#include <gtest/gtest.h>

namespace drover::services {
namespace {

// A listener on HOST:0 and a client connected to it (the handshake is done
// by the kernel; nobody has accepted yet). Empty on a failure.
struct Pair {
  UniqueFd listener;
  UniqueFd client;
};

std::optional<Pair> Connected(const std::string& host) {
  Result<SocketAddress> any = ResolveHost(host, 0);
  if (!any.ok()) return std::nullopt;
  Result<UniqueFd> listener = BindListener(*any, host, /*reuseport=*/false, 16);
  if (!listener.ok()) return std::nullopt;
  Result<SocketAddress> bound = ResolveHost(host, LocalPort(listener->get()));
  if (!bound.ok()) return std::nullopt;
  UniqueFd client(::socket(bound->family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!client.valid() ||
      ::connect(client.get(), reinterpret_cast<const sockaddr*>(&bound->storage),
                bound->length) != 0) {
    return std::nullopt;
  }
  return Pair{std::move(*listener), std::move(client)};
}

void ExpectLifecycle(const std::string& host) {
  std::optional<Pair> pair = Connected(host);
  ASSERT_TRUE(pair) << "cannot connect over " << host;
  // In the listen queue: listed, but no process holds it yet.
  EXPECT_EQ(AcceptedInode(pair->client.get()), std::optional<uint64_t>(0));

  UniqueFd server(::accept4(pair->listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(server.valid());
  const uint64_t inode = SocketInode(server.get());
  ASSERT_NE(inode, 0u);
  EXPECT_EQ(AcceptedInode(pair->client.get()), std::optional<uint64_t>(inode));
  EXPECT_TRUE(ProcessHoldsSocket(::getpid(), inode));
  EXPECT_FALSE(ProcessHoldsSocket(::getpid(), SocketInode(pair->listener.get()) + 1000000));

  // Reset by the server (SO_LINGER 0): the kernel forgets the connection,
  // and the lookup must not answer with the listener instead.
  const linger abort{1, 0};
  ASSERT_EQ(::setsockopt(server.get(), SOL_SOCKET, SO_LINGER, &abort, sizeof abort), 0);
  server.Reset();
  EXPECT_EQ(AcceptedInode(pair->client.get()), std::nullopt);
}

// Given a loopback connection over IPv4, should report 0 while it waits to
// be accepted, the accepted socket's inode after, and nothing once reset.
TEST(AcceptedInodeTest, FollowsAConnectionOverIpv4) { ExpectLifecycle("127.0.0.1"); }

// Given a descriptor that is not a connected socket, should answer nothing.
TEST(AcceptedInodeTest, NotAConnectedSocketIsNothing) {
  UniqueFd unconnected(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(AcceptedInode(unconnected.get()), std::nullopt);
  EXPECT_EQ(AcceptedInode(-1), std::nullopt);
}

}  // namespace
}  // namespace drover::services

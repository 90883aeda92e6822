// backends/services/listen_socket: AcceptedInode, the sock_diag lookup the
// ready probes use to tell which process accepted a probe connection, and
// backends/services/probe: ProbeOnce telling the instance it probes from
// the others that share its socket, on real loopback sockets and real
// processes.
#include "backends/services/listen_socket.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <vector>

#include "backends/services/probe.h"

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

// A child process that holds `listener` and accepts every connection on it,
// keeping each, until it is killed; a second one that holds it and never
// accepts. Both are killed and reaped by pid when this goes.
class Holders {
 public:
  explicit Holders(int listener) {
    acceptor_ = ::fork();
    if (acceptor_ == 0) {
      std::vector<int> kept;
      for (;;) {
        int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) kept.push_back(fd);
      }
    }
    idle_ = ::fork();
    if (idle_ == 0) {
      for (;;) ::pause();
    }
  }
  ~Holders() {
    for (pid_t pid : {acceptor_, idle_}) {
      if (pid <= 0) continue;
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  pid_t acceptor() const { return acceptor_; }
  pid_t idle() const { return idle_; }

 private:
  pid_t acceptor_ = -1;
  pid_t idle_ = -1;
};

struct Probed {
  UniqueFd listener;
  ProbeTarget target;
};

std::optional<Probed> ListenerAndTarget() {
  Result<SocketAddress> any = ResolveHost("127.0.0.1", 0);
  if (!any.ok()) return std::nullopt;
  Result<UniqueFd> listener = BindListener(*any, "127.0.0.1", /*reuseport=*/true, 16);
  if (!listener.ok()) return std::nullopt;
  Probed probed;
  probed.target.host = "127.0.0.1";
  probed.target.port = LocalPort(listener->get());
  Result<SocketAddress> bound = ResolveHost("127.0.0.1", probed.target.port);
  if (!bound.ok()) return std::nullopt;
  probed.target.address = *bound;
  probed.listener = std::move(*listener);
  return probed;
}

Status ProbeWithin(const ProbeTarget& target) {
  const std::atomic<bool> stop{false};
  ReadyCheck check;  // tcp
  return ProbeOnce(target, check, std::chrono::steady_clock::now() + std::chrono::seconds(20),
                   stop);
}

// Given a socket that a reload's new instance (idle here) shares with its
// predecessor (which accepts), a probe for the new instance should end
// with kFailedPrecondition naming the predecessor when the service lists
// it among the others (probe again at once), kUnavailable when nobody
// does, and succeed when the probed instance is the one that accepts.
TEST(ProbeOnceTest, TellsTheProbedInstanceFromTheOthersOnItsSocket) {
  std::optional<Probed> probed = ListenerAndTarget();
  ASSERT_TRUE(probed);
  Holders holders(probed->listener.get());
  ASSERT_GT(holders.acceptor(), 0);
  ASSERT_GT(holders.idle(), 0);
  ProbeTarget target = probed->target;

  target.pid = holders.idle();
  target.others = [&] { return std::vector<pid_t>{holders.acceptor()}; };
  Status missed = ProbeWithin(target);
  EXPECT_EQ(missed.code(), StatusCode::kFailedPrecondition) << missed.ToString();
  EXPECT_NE(missed.message().find("pid " + std::to_string(holders.acceptor())),
            std::string::npos)
      << missed.message();

  target.others = nullptr;
  Status unknown = ProbeWithin(target);
  EXPECT_EQ(unknown.code(), StatusCode::kUnavailable) << unknown.ToString();
  EXPECT_NE(unknown.message().find("accepted by another process"), std::string::npos)
      << unknown.message();

  target.pid = holders.acceptor();
  target.others = [&] { return std::vector<pid_t>{holders.idle()}; };
  EXPECT_TRUE(ProbeWithin(target).ok());
}

}  // namespace
}  // namespace drover::services

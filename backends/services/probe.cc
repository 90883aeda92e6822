#include "backends/services/probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "drover/handoff.h"

namespace drover::services {
namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr auto kPollSlice = std::chrono::milliseconds(5);

// Waits for `events` on `fd` in short slices, so that `stop` is noticed.
// Returns the revents, 0 on the deadline, -1 when stopped.
int PollFor(int fd, short events, SteadyClock::time_point deadline,
            const std::atomic<bool>& stop) {
  while (!stop.load(std::memory_order_relaxed)) {
    auto now = SteadyClock::now();
    if (now >= deadline) return 0;
    auto slice = std::min<SteadyClock::duration>(deadline - now, std::chrono::milliseconds(50));
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1,
                    static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(slice).count()));
    if (rc > 0) return p.revents;
    if (rc < 0 && errno != EINTR) return POLLERR;
  }
  return -1;
}

// Polls `condition` every few ms until it holds, the deadline, or stop.
template <typename F>
bool PollCondition(F condition, SteadyClock::time_point deadline, const std::atomic<bool>& stop) {
  while (!stop.load(std::memory_order_relaxed)) {
    if (condition()) return true;
    if (SteadyClock::now() >= deadline) return false;
    pollfd none{-1, 0, 0};
    ::poll(&none, 0, static_cast<int>(kPollSlice.count()));
  }
  return false;
}

Result<UniqueFd> Connect(const SocketAddress& address, const std::string& where,
                         SteadyClock::time_point deadline, const std::atomic<bool>& stop) {
  UniqueFd fd(::socket(address.family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return ErrnoError("socket", errno);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address.storage), address.length) !=
      0) {
    if (errno != EINPROGRESS) {
      return Unavailable("connect to " + where + ": " + std::strerror(errno));
    }
    int revents = PollFor(fd.get(), POLLOUT, deadline, stop);
    if (revents < 0) return Cancelled("stopped");
    if (revents == 0) return Unavailable("connect to " + where + ": timed out");
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return Unavailable("connect to " + where + ": " + std::strerror(err));
  }
  return fd;
}

// GET `path` on the connected `fd`; Ok on a 2xx answer.
Status HttpGet(int fd, const std::string& host_port, const std::string& path,
               SteadyClock::time_point deadline, const std::atomic<bool>& stop) {
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + host_port +
                              "\r\nUser-Agent: drover-ready-check\r\nConnection: close\r\n\r\n";
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EAGAIN) {
      int revents = PollFor(fd, POLLOUT, deadline, stop);
      if (revents < 0) return Cancelled("stopped");
      if (revents == 0) return Unavailable("GET " + path + ": sending timed out");
      continue;
    }
    return Unavailable("GET " + path + ": " + std::strerror(errno));
  }
  std::string head;
  char buf[1024];
  while (head.find("\r\n") == std::string::npos) {
    int revents = PollFor(fd, POLLIN, deadline, stop);
    if (revents < 0) return Cancelled("stopped");
    if (revents == 0) return Unavailable("GET " + path + ": no answer in time");
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n == 0) return Unavailable("GET " + path + ": connection closed without an answer");
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return Unavailable("GET " + path + ": " + std::strerror(errno));
    }
    head.append(buf, static_cast<size_t>(n));
    if (head.size() > 8192) break;
  }
  int status = ParseHttpStatus(head);
  if (status >= 200 && status < 300) return Status::Ok();
  if (status == 0) return Unavailable("GET " + path + ": the answer is not HTTP");
  return Unavailable("GET " + path + " answered " + std::to_string(status));
}

Status ProbeInherited(const ProbeTarget& target, const ReadyCheck& check,
                      SteadyClock::time_point deadline, const std::atomic<bool>& stop) {
  const std::string where = HostPort(target.host, target.port);
  Result<UniqueFd> probe = Connect(target.address, where, deadline, stop);
  if (!probe.ok()) return probe.status();
  uint64_t inode = 0;
  bool listed = false;
  PollCondition(
      [&] {
        std::optional<uint64_t> found = AcceptedInode(probe->get());
        listed = found.has_value();
        inode = found.value_or(0);
        return inode != 0;
      },
      deadline, stop);
  if (stop.load()) return Cancelled("stopped");
  if (inode == 0) {
    return Unavailable(listed ? "a connection to " + where +
                                    " waits in the listen queue: no process accepts it"
                              : "the kernel lists no connection to " + where +
                                    " for the probe (it was reset)");
  }
  if (!target.any_instance) {
    // accept() shows the inode a moment before the descriptor is installed.
    auto short_deadline = std::min(deadline, SteadyClock::now() + std::chrono::milliseconds(50));
    const std::vector<pid_t> others = target.others ? target.others() : std::vector<pid_t>{};
    pid_t holder = 0;
    PollCondition(
        [&] {
          if (ProcessHoldsSocket(target.pid, inode)) {
            holder = target.pid;
            return true;
          }
          for (pid_t other : others) {
            if (ProcessHoldsSocket(other, inode)) {
              holder = other;
              return true;
            }
          }
          return false;
        },
        short_deadline, stop);
    if (stop.load()) return Cancelled("stopped");
    if (holder == 0) return Unavailable("a probe connection was accepted by another process");
    if (holder != target.pid) {
      return FailedPrecondition("the probe was accepted by another instance (pid " +
                                std::to_string(holder) + ")");
    }
  }
  if (check.kind == ReadyCheck::Kind::kTcp) return Status::Ok();
  return HttpGet(probe->get(), where, check.http_path, deadline, stop);
}

Status ProbeHandoff(const ProbeTarget& target, const ReadyCheck& check,
                    SteadyClock::time_point deadline, const std::atomic<bool>& stop) {
  // A private loopback connection: a real TCP socket, as the instance's
  // ordinary connections are, but one only this instance gets.
  Result<SocketAddress> loopback = ResolveHost("127.0.0.1", 0);
  if (!loopback.ok()) return loopback.status();
  Result<UniqueFd> listener = BindListener(*loopback, "127.0.0.1", false, 1);
  if (!listener.ok()) return listener.status();
  Result<SocketAddress> bound = ResolveHost("127.0.0.1", LocalPort(listener->get()));
  if (!bound.ok()) return bound.status();
  Result<UniqueFd> client = Connect(*bound, "the probe listener", deadline, stop);
  if (!client.ok()) return client.status();
  UniqueFd server(::accept4(listener->get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!server.valid()) return ErrnoError("accept", errno);
  const uint64_t inode = SocketInode(server.get());
  int send_errno = EAGAIN;
  PollCondition(
      [&] {
        send_errno = drover_handoff_send(target.handoff_fd, server.get()) == 0 ? 0 : errno;
        return send_errno != EAGAIN;
      },
      deadline, stop);
  if (stop.load()) return Cancelled("stopped");
  if (send_errno == EAGAIN) {
    return Unavailable("the hand-off channel stays full: the instance does not read it");
  }
  if (send_errno != 0) {
    return Unavailable(std::string("the hand-off channel: ") + std::strerror(send_errno));
  }
  server.Reset();
  if (!PollCondition([&] { return ProcessHoldsSocket(target.pid, inode); }, deadline, stop)) {
    if (stop.load()) return Cancelled("stopped");
    return Unavailable(
        "the instance does not take connections from its hand-off channel "
        "(DROVER_HANDOFF_FD=3; see include/drover/handoff.h)");
  }
  if (check.kind == ReadyCheck::Kind::kTcp) return Status::Ok();
  return HttpGet(client->get(), HostPort(target.host, target.port), check.http_path, deadline,
                 stop);
}

}  // namespace

int ParseHttpStatus(const std::string& text) {
  // "HTTP/1.1 200 OK"
  if (text.size() < 12 || text.compare(0, 7, "HTTP/1.") != 0 || text[8] != ' ') return 0;
  int status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (text[i] < '0' || text[i] > '9') return 0;
    status = status * 10 + (text[i] - '0');
  }
  return status;
}

Status ProbeOnce(const ProbeTarget& target, const ReadyCheck& check,
                 SteadyClock::time_point deadline, const std::atomic<bool>& stop) {
  if (target.handoff_fd >= 0) return ProbeHandoff(target, check, deadline, stop);
  return ProbeInherited(target, check, deadline, stop);
}

}  // namespace drover::services

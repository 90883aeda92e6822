// Shared by the supervisor's integration tests (cluster_service_test.cc,
// cluster_reload_test.cc): HTTP requests on fresh loopback connections, a
// steady request load, and `drover serve` service specs.
#ifndef DROVER_TESTS_INTEGRATION_CLUSTER_SERVICE_TEST_UTIL_H_
#define DROVER_TESTS_INTEGRATION_CLUSTER_SERVICE_TEST_UTIL_H_

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "backends/services/service.h"
#include "core/base/clock.h"

namespace drover::services::testing {

using std::chrono::milliseconds;
using std::chrono::seconds;
using SteadyClock = std::chrono::steady_clock;

inline constexpr Duration kReadyWithin = seconds(30);
// A Service keeps a reference to its clock: one that outlives them all.
inline const RealClock kClock;

// Polls `condition` every 2 ms until it holds or `timeout` passes.
inline bool WaitUntil(const std::function<bool()>& condition, milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(2));  // a poll interval, not a synchronisation
  }
}

struct Reply {
  bool ok = false;  // a complete HTTP answer arrived
  int status = 0;
  std::string body;
  pid_t pid = 0;  // X-Drover-Pid
  int client_port = 0;
  std::string error;
};

// One request on a fresh connection (Connection: close), with a 10 s
// deadline on every step.
inline Reply Request(int port, const std::string& method = "GET", const std::string& body = "") {
  Reply reply;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    reply.error = std::string("socket: ") + std::strerror(errno);
    return reply;
  }
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    reply.error = std::string("connect: ") + std::strerror(errno);
    ::close(fd);
    return reply;
  }
  sockaddr_in local{};
  socklen_t len = sizeof(local);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);
  reply.client_port = ntohs(local.sin_port);
  std::string request = method + " / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
                        "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    reply.error = std::string("send: ") + std::strerror(errno);
    ::close(fd);
    return reply;
  }
  std::string in;
  char buf[4096];
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      in.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) reply.error = std::string("recv: ") + std::strerror(errno);
    break;
  }
  ::close(fd);
  size_t head_end = in.find("\r\n\r\n");
  if (head_end == std::string::npos || in.compare(0, 9, "HTTP/1.1 ") != 0) {
    if (reply.error.empty()) reply.error = "no HTTP answer (" + std::to_string(in.size()) + " bytes)";
    return reply;
  }
  reply.status = std::atoi(in.c_str() + 9);
  std::string head = in.substr(0, head_end);
  size_t pid_at = head.find("X-Drover-Pid: ");
  if (pid_at != std::string::npos) reply.pid = std::atoi(head.c_str() + pid_at + 14);
  size_t cl_at = head.find("Content-Length: ");
  size_t length = cl_at == std::string::npos ? 0 : std::stoul(head.substr(cl_at + 16));
  reply.body = in.substr(head_end + 4);
  reply.ok = reply.body.size() == length;
  if (!reply.ok) reply.error = "short body";
  return reply;
}

// Clients that each send one request at a time, on a new connection,
// until stopped; at most one request per client is in flight. A request
// succeeds when it is answered 200 with one of `bodies`.
class Load {
 public:
  Load(int port, int clients, const std::string& method = "GET", const std::string& body = "",
       std::set<std::string> bodies = {"Hello World"})
      : bodies_(std::move(bodies)), per_client_(static_cast<size_t>(clients)) {
    for (int i = 0; i < clients; ++i) {
      threads_.emplace_back([this, port, i, method, body] {
        // Bounded: a client stops by itself after 200,000 requests.
        for (int n = 0; n < 200'000 && !stop_.load(); ++n) {
          Reply r = Request(port, method, body);
          std::lock_guard<std::mutex> lock(mu_);
          if (r.ok && r.status == 200 && bodies_.count(r.body) == 1) {
            ++ok_;
            ++answers_[r.body];
          } else {
            ++per_client_[static_cast<size_t>(i)];
            failures_.push_back(r.error.empty() ? "status " + std::to_string(r.status) + ": " + r.body
                                                : r.error);
          }
        }
      });
    }
  }
  ~Load() { Stop(); }
  void Stop() {
    stop_ = true;
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  uint64_t ok() const { return ok_.load(); }
  std::vector<std::string> failures() {
    std::lock_guard<std::mutex> lock(mu_);
    return failures_;
  }
  // The most requests any one client lost.
  int MaxFailuresPerClient() {
    std::lock_guard<std::mutex> lock(mu_);
    return per_client_.empty() ? 0 : *std::max_element(per_client_.begin(), per_client_.end());
  }
  // How many successful answers had `body`.
  uint64_t Answers(const std::string& body) {
    std::lock_guard<std::mutex> lock(mu_);
    return answers_[body];
  }
  // Waits until `more` further requests succeeded.
  bool WaitForMore(uint64_t more, milliseconds timeout = milliseconds(30'000)) {
    const uint64_t target = ok() + more;
    return WaitUntil([&] { return ok() >= target; }, timeout);
  }

 private:
  const std::set<std::string> bodies_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> ok_{0};
  std::mutex mu_;
  std::vector<int> per_client_;                // failures by client; guarded by mu_
  std::map<std::string, uint64_t> answers_;    // guarded by mu_
  std::vector<std::string> failures_;          // guarded by mu_
  std::vector<std::thread> threads_;
};

inline ServiceSpec ServeSpec(ListenMode mode, int instances, const std::string& server = "hello") {
  ServiceSpec spec;
  spec.name = server;
  spec.command = {DROVER_BIN, "serve", server};
  spec.instances = instances;
  spec.mode = mode;
  spec.ready.kind = ReadyCheck::Kind::kHttp;
  spec.ready.http_path = "/";
  spec.ready.timeout = seconds(20);
  spec.drain = seconds(5);
  spec.kill_grace = seconds(5);
  return spec;
}

inline std::vector<pid_t> Pids(const Service& service) {
  std::vector<pid_t> pids;
  for (const InstanceStats& s : service.Instances()) pids.push_back(s.pid);
  return pids;
}

inline bool Gone(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

// Shuts `service` down and checks that every pid in `pids` is reaped.
inline void ShutdownAndExpectReaped(std::unique_ptr<Service>& service, const std::set<pid_t>& pids) {
  service->Shutdown(seconds(5));
  for (pid_t pid : pids) EXPECT_TRUE(Gone(pid)) << "pid " << pid << " was not reaped";
}

// "reuseport", "shared", "roundrobin": test name suffixes.
inline std::string ModeName(const ::testing::TestParamInfo<ListenMode>& info) {
  std::string name(ListenModeName(info.param));
  name.erase(std::remove(name.begin(), name.end(), '-'), name.end());
  return name;
}

}  // namespace drover::services::testing

#endif  // DROVER_TESTS_INTEGRATION_CLUSTER_SERVICE_TEST_UTIL_H_

// The service supervisor (backends/cluster/service.h) with real `drover
// serve` processes on loopback: each mode serves on one port, crashes are
// respawned losing only the requests in flight, the modes' balance, and
// clear errors for servers that exit or never serve. Reloads are in
// cluster_reload_test.cc.
//
// Every Service is shut down by its destructor (SIGTERM, grace, SIGKILL,
// reap), also when an assertion fails; the tests check that the pids they
// saw are gone.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/integration/cluster_service_test_util.h"

namespace drover::services {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using SteadyClock = std::chrono::steady_clock;
using testing::kClock;
using testing::kReadyWithin;
using testing::Load;
using testing::Pids;
using testing::Reply;
using testing::Request;
using testing::ServeSpec;
using testing::ShutdownAndExpectReaped;
using testing::Gone;
using testing::WaitUntil;

class ModeTest : public ::testing::TestWithParam<ListenMode> {};

// Given three instances in each mode, should serve every request on the one
// port, from the instances' own processes.
TEST_P(ModeTest, InstancesServeOnOnePort) {
  Result<std::unique_ptr<Service>> started = Service::Start(ServeSpec(GetParam(), 3), kClock);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  std::unique_ptr<Service>& service = *started;
  ASSERT_TRUE(service->WaitReady(kReadyWithin).ok()) << service->Describe();
  ASSERT_GT(service->port(), 0);
  std::vector<pid_t> pids = Pids(*service);
  std::set<pid_t> distinct(pids.begin(), pids.end());
  ASSERT_EQ(distinct.size(), 3u);
  EXPECT_EQ(distinct.count(0), 0u);

  std::map<pid_t, int> served;
  for (int i = 0; i < 300; ++i) {
    Reply r = Request(service->port());
    ASSERT_TRUE(r.ok) << r.error;
    ASSERT_EQ(r.status, 200);
    ASSERT_EQ(r.body, "Hello World");
    ASSERT_EQ(distinct.count(r.pid), 1u) << "answered by pid " << r.pid;
    ++served[r.pid];
  }
  std::printf("[ %s ] 300 requests over 3 instances:", std::string(ListenModeName(GetParam())).c_str());
  for (auto& [pid, n] : served) std::printf(" %d", n);
  std::printf("\n");
  if (GetParam() != ListenMode::kShared) {
    EXPECT_EQ(served.size(), 3u);
  }
  EXPECT_NE(service->Describe().find("3 ready"), std::string::npos) << service->Describe();
  ShutdownAndExpectReaped(service, distinct);
}

// Given two instances under a steady load of 8 clients, when one instance
// is killed with SIGKILL, should respawn it, and lose at most the requests
// in flight at the time (one per client).
TEST_P(ModeTest, KilledInstanceIsRespawnedLosingOnlyInFlight) {
  constexpr int kClients = 8;
  Result<std::unique_ptr<Service>> started = Service::Start(ServeSpec(GetParam(), 2), kClock);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  std::unique_ptr<Service>& service = *started;
  ASSERT_TRUE(service->WaitReady(kReadyWithin).ok()) << service->Describe();
  std::vector<pid_t> before = Pids(*service);
  std::set<pid_t> all(before.begin(), before.end());

  Load load(service->port(), kClients);
  ASSERT_TRUE(load.WaitForMore(300));
  ASSERT_EQ(::kill(before[0], SIGKILL), 0);
  ASSERT_TRUE(WaitUntil(
      [&] {
        std::vector<InstanceStats> now = service->Instances();
        return now[0].restarts == 1 && now[0].ready && now[0].pid != before[0];
      },
      milliseconds(30'000)))
      << service->Describe();
  ASSERT_TRUE(load.WaitForMore(300));
  load.Stop();

  std::vector<InstanceStats> after = service->Instances();
  EXPECT_EQ(after[0].last_exit, "signal 9 (Killed)");
  EXPECT_EQ(after[1].pid, before[1]);
  EXPECT_EQ(after[1].restarts, 0u);
  all.insert(after[0].pid);
  std::vector<std::string> failures = load.failures();
  // Each client has at most one request in flight, and only a request the
  // killed instance had taken may fail (its accepted connections die with
  // it). Round-robin: connections passed to it but not yet read, even in
  // the moment after the SIGKILL before anyone can tell (the kernel closes
  // a dying process's connections before its hand-off channel, so a client
  // can fail, reconnect and be passed to it again), are taken back when it
  // exits and passed to the other instance; and once its pidfd says it
  // exited, nothing more is passed to it. So at most one failure per
  // client, and none after the respawn (the load keeps running past it).
  const int max_per_client = load.MaxFailuresPerClient();
  std::printf("[ %s ] kill -9 under load: %zu ok, %zu failed, at most %d per client\n",
              std::string(ListenModeName(GetParam())).c_str(), static_cast<size_t>(load.ok()),
              failures.size(), max_per_client);
  EXPECT_LE(max_per_client, 1) << "first failure: " << (failures.empty() ? "" : failures[0]);
  EXPECT_LE(failures.size(), static_cast<size_t>(kClients));
  ASSERT_TRUE(service->WaitReady(kReadyWithin).ok());
  ShutdownAndExpectReaped(service, all);
}

// Given two instances, over 1,000 short connections (each a new one; the
// kernel may give a later one a client port an earlier one closed, as
// loopback reuses ports in TIME_WAIT), should spread them within 1.3x
// max/min in reuseport and round-robin modes; shared mode's figure is
// printed only.
TEST_P(ModeTest, BalanceOverAThousandConnections) {
  Result<std::unique_ptr<Service>> started = Service::Start(ServeSpec(GetParam(), 2), kClock);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  std::unique_ptr<Service>& service = *started;
  ASSERT_TRUE(service->WaitReady(kReadyWithin).ok()) << service->Describe();
  std::vector<pid_t> pids = Pids(*service);

  std::map<pid_t, int> served;
  std::set<int> client_ports;
  for (pid_t pid : pids) served[pid] = 0;
  for (int i = 0; i < 1000; ++i) {
    Reply r = Request(service->port());
    ASSERT_TRUE(r.ok && r.status == 200) << r.error;
    ASSERT_EQ(served.count(r.pid), 1u) << "answered by pid " << r.pid;
    ++served[r.pid];
    client_ports.insert(r.client_port);
  }
  const int max = std::max(served[pids[0]], served[pids[1]]);
  const int min = std::min(served[pids[0]], served[pids[1]]);
  const double ratio = min == 0 ? 1e9 : static_cast<double>(max) / min;
  std::printf("[ %s ] balance over 1000 connections (%zu distinct client ports): %d / %d, "
              "max/min %.3f\n",
              std::string(ListenModeName(GetParam())).c_str(), client_ports.size(),
              served[pids[0]], served[pids[1]], ratio);
  if (GetParam() == ListenMode::kRoundRobin) {
    // The supervisor's own count agrees with what the clients saw.
    std::vector<InstanceStats> stats = service->Instances();
    EXPECT_EQ(stats[0].connections + stats[1].connections, 1000u);
  }
  if (GetParam() != ListenMode::kShared) {
    EXPECT_LE(ratio, 1.3);
  }
  ShutdownAndExpectReaped(service, {pids.begin(), pids.end()});
}

// Given a command that exits at once, should fail WaitReady promptly with
// its exit status and the tail of its stderr, not hang.
TEST_P(ModeTest, CommandThatExitsAtOnceGivesClearError) {
  ServiceSpec spec = ServeSpec(GetParam(), 2);
  spec.command = {"/bin/sh", "-c", "echo 'cannot open config' >&2; exit 3"};
  Result<std::unique_ptr<Service>> started = Service::Start(spec, kClock);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  const auto t0 = SteadyClock::now();
  Status ready = (*started)->WaitReady(kReadyWithin);
  EXPECT_LT(SteadyClock::now() - t0, seconds(10));
  ASSERT_FALSE(ready.ok());
  EXPECT_NE(ready.message().find("exited before it was ready: exit 3"), std::string::npos)
      << ready.ToString();
  EXPECT_NE(ready.message().find("cannot open config"), std::string::npos) << ready.ToString();
  (*started)->Shutdown(seconds(5));
}

// Given a command that runs but never takes a connection, should fail
// WaitReady after the ready timeout, naming the check that failed.
TEST_P(ModeTest, CommandThatNeverServesGivesClearError) {
  ServiceSpec spec = ServeSpec(GetParam(), 1);
  spec.command = {"sleep", "60"};
  spec.ready.kind = ReadyCheck::Kind::kTcp;
  spec.ready.timeout = seconds(1);
  Result<std::unique_ptr<Service>> started = Service::Start(spec, kClock);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  const pid_t pid = Pids(**started)[0];
  Status ready = (*started)->WaitReady(kReadyWithin);
  ASSERT_FALSE(ready.ok());
  EXPECT_EQ(ready.code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(ready.message().find("is not ready after 1.00s"), std::string::npos)
      << ready.ToString();
  const char* why = GetParam() == ListenMode::kRoundRobin ? "hand-off channel"
                                                          : "waits in the listen queue";
  EXPECT_NE(ready.message().find(why), std::string::npos) << ready.ToString();
  (*started)->Shutdown(milliseconds(500));
  EXPECT_TRUE(Gone(pid));
}

INSTANTIATE_TEST_SUITE_P(Modes, ModeTest,
                         ::testing::Values(ListenMode::kReuseport, ListenMode::kShared,
                                           ListenMode::kRoundRobin),
                         testing::ModeName);

// Given a service instance, should see LISTEN_FDS=1 and LISTEN_PID equal to
// its own pid (set after fork), with a listening socket on fd 3.
TEST(ServiceTest, InstanceGetsSystemdSocketVariables) {
  std::filesystem::path log =
      std::filesystem::temp_directory_path() / ("drover-svc-" + std::to_string(::getpid()) + ".log");
  std::filesystem::remove(log);
  ServiceSpec spec = ServeSpec(ListenMode::kReuseport, 1);
  spec.command = {"/bin/sh", "-c",
                  "echo \"$LISTEN_FDS $LISTEN_PID $$ $(readlink /proc/$$/fd/3 | cut -c1-7)\"; "
                  "exec sleep 60"};
  spec.log_path = log;
  spec.ready.kind = ReadyCheck::Kind::kTcp;
  Result<std::unique_ptr<Service>> started = Service::Start(spec, kClock);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  const pid_t pid = Pids(**started)[0];
  std::string line;
  ASSERT_TRUE(WaitUntil(
      [&] {
        std::ifstream in(log);
        std::getline(in, line);
        return !line.empty();
      },
      milliseconds(10'000)));
  EXPECT_EQ(line, "1 " + std::to_string(pid) + " " + std::to_string(pid) + " socket:");
  (*started)->Shutdown(milliseconds(500));
  EXPECT_TRUE(Gone(pid));
  std::filesystem::remove(log);
}

// Given a command that crash-loops, should keep restarting it with a
// growing delay and say so in Describe.
TEST(ServiceTest, CrashLoopIsRestartedWithBackoffAndReported) {
  ServiceSpec spec = ServeSpec(ListenMode::kReuseport, 1);
  spec.command = {"/bin/sh", "-c", "exit 1"};
  spec.backoff_initial = milliseconds(20);
  spec.backoff_max = milliseconds(200);
  Result<std::unique_ptr<Service>> started = Service::Start(spec, kClock);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  Service& service = **started;
  ASSERT_TRUE(WaitUntil([&] { return service.Instances()[0].restarts >= 4; }, milliseconds(20'000)))
      << service.Describe();
  EXPECT_EQ(service.Instances()[0].last_exit, "exit 1");
  ASSERT_TRUE(WaitUntil(
      [&] { return service.Describe().find("crash-looping") != std::string::npos; },
      milliseconds(5'000)))
      << service.Describe();
  service.Shutdown(milliseconds(500));
}

// Given a command that does not exist, or a port already taken, Start
// should fail with the reason.
TEST(ServiceTest, StartFailsOnMissingCommandOrTakenPort) {
  ServiceSpec spec = ServeSpec(ListenMode::kReuseport, 2);
  spec.command = {"drover-no-such-command"};
  Result<std::unique_ptr<Service>> missing = Service::Start(spec, kClock);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("command not found: drover-no-such-command"),
            std::string::npos)
      << missing.status().ToString();

  Result<std::unique_ptr<Service>> first = Service::Start(ServeSpec(ListenMode::kShared, 1), kClock);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ServiceSpec taken = ServeSpec(ListenMode::kShared, 1);
  taken.port = (*first)->port();
  Result<std::unique_ptr<Service>> second = Service::Start(taken, kClock);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("127.0.0.1:" + std::to_string(taken.port)),
            std::string::npos)
      << second.status().ToString();
  EXPECT_NE(second.status().message().find("in use"), std::string::npos)
      << second.status().ToString();
}

// Given the echo and sort servers as services, should answer with the body
// and with its numbers sorted.
TEST(ServiceTest, EchoAndSortServersAnswer) {
  Result<std::unique_ptr<Service>> echo =
      Service::Start(ServeSpec(ListenMode::kRoundRobin, 1, "echo"), kClock);
  Result<std::unique_ptr<Service>> sort =
      Service::Start(ServeSpec(ListenMode::kReuseport, 1, "sort"), kClock);
  ASSERT_TRUE(echo.ok() && sort.ok());
  ASSERT_TRUE((*echo)->WaitReady(kReadyWithin).ok());
  ASSERT_TRUE((*sort)->WaitReady(kReadyWithin).ok());
  Reply e = Request((*echo)->port(), "POST", "some body\n");
  EXPECT_EQ(e.status, 200);
  EXPECT_EQ(e.body, "some body\n");
  Reply s = Request((*sort)->port(), "POST", "10 -2, 3.5\n7");
  EXPECT_EQ(s.status, 200);
  EXPECT_EQ(s.body, "-2\n3.5\n7\n10\n");
  Reply bad = Request((*sort)->port(), "POST", "1 two 3");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("not a number: 'two'"), std::string::npos) << bad.body;
}

}  // namespace
}  // namespace drover::services

// Service::Reload with real `drover serve` processes on loopback: rolling
// replacement, a changed command and environment, growing and shrinking,
// all under a steady request load with zero failed requests; and the
// reloads that must be refused or that fail, leaving the service serving.
//
// Every Service is shut down by its destructor (SIGTERM, grace, SIGKILL,
// reap), also when an assertion fails; the tests check that the pids they
// saw are gone.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "tests/integration/cluster_service_test_util.h"

namespace drover::services {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using SteadyClock = std::chrono::steady_clock;
using testing::Gone;
using testing::kClock;
using testing::kReadyWithin;
using testing::Load;
using testing::Pids;
using testing::Reply;
using testing::Request;
using testing::ServeSpec;
using testing::ShutdownAndExpectReaped;
using testing::WaitUntil;

class ReloadTest : public ::testing::TestWithParam<ListenMode> {};

// Given two instances under a steady load, when the service is reloaded,
// should replace both instances without a single failed request.
TEST_P(ReloadTest, ReloadUnderLoadFailsNoRequest) {
  Result<std::unique_ptr<Service>> started = Service::Start(ServeSpec(GetParam(), 2), kClock);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  std::unique_ptr<Service>& service = *started;
  ASSERT_TRUE(service->WaitReady(kReadyWithin).ok()) << service->Describe();
  std::vector<pid_t> before = Pids(*service);
  std::set<pid_t> all(before.begin(), before.end());

  Load load(service->port(), 8);
  ASSERT_TRUE(load.WaitForMore(300));
  const auto reload_started = SteadyClock::now();
  Status reloaded = service->Reload();
  const auto reload_ms = std::chrono::duration_cast<milliseconds>(SteadyClock::now() - reload_started);
  ASSERT_TRUE(reloaded.ok()) << reloaded.ToString();
  std::vector<pid_t> after = Pids(*service);
  all.insert(after.begin(), after.end());
  EXPECT_NE(after[0], before[0]);
  EXPECT_NE(after[1], before[1]);
  // The old instances drain and exit; the load goes on meanwhile.
  ASSERT_TRUE(WaitUntil([&] { return Gone(before[0]) && Gone(before[1]); }, milliseconds(30'000)));
  ASSERT_TRUE(load.WaitForMore(300));
  load.Stop();

  std::vector<std::string> failures = load.failures();
  std::printf("[ %s ] reload under load (%lld ms): %zu ok, %zu failed\n",
              std::string(ListenModeName(GetParam())).c_str(),
              static_cast<long long>(reload_ms.count()), static_cast<size_t>(load.ok()),
              failures.size());
  EXPECT_TRUE(failures.empty()) << failures.size() << " failed, first: " << failures[0];
  for (const InstanceStats& s : service->Instances()) EXPECT_EQ(s.restarts, 0u);
  ShutdownAndExpectReaped(service, all);
}

// The value of `name` in process `pid`'s environment, or "" when unset.
std::string EnvOf(pid_t pid, const std::string& name) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  std::string entry;
  while (std::getline(in, entry, '\0')) {
    if (entry.compare(0, name.size() + 1, name + "=") == 0) return entry.substr(name.size() + 1);
  }
  return "";
}

// Given two `serve hello` instances under a steady load, when the service is
// reloaded with `serve echo` and a new env variable, should fail no request,
// and answer with the new program and environment afterwards.
TEST_P(ReloadTest, ReloadWithChangedCommandAndEnvFailsNoRequest) {
  Result<std::unique_ptr<Service>> started = Service::Start(ServeSpec(GetParam(), 2), kClock);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  std::unique_ptr<Service>& service = *started;
  ASSERT_TRUE(service->WaitReady(kReadyWithin).ok()) << service->Describe();
  std::vector<pid_t> before = Pids(*service);
  std::set<pid_t> all(before.begin(), before.end());

  // hello answers "Hello World" to anything, echo answers the body.
  Load load(service->port(), 8, "POST", "ping", {"Hello World", "ping"});
  ASSERT_TRUE(load.WaitForMore(300));
  ServiceSpec next = service->spec();
  EXPECT_EQ(next.port, service->port());
  next.command = {DROVER_BIN, "serve", "echo"};
  next.env = {{"DROVER_TEST_GENERATION", "2"}};
  Status reloaded = service->Reload(next);
  ASSERT_TRUE(reloaded.ok()) << reloaded.ToString();
  std::vector<pid_t> after = Pids(*service);
  all.insert(after.begin(), after.end());
  ASSERT_TRUE(WaitUntil([&] { return Gone(before[0]) && Gone(before[1]); }, milliseconds(30'000)));
  const uint64_t echoed = load.Answers("ping");
  ASSERT_TRUE(load.WaitForMore(300));
  load.Stop();

  std::vector<std::string> failures = load.failures();
  std::printf("[ %s ] reload hello -> echo under load: %zu ok, %zu failed\n",
              std::string(ListenModeName(GetParam())).c_str(), static_cast<size_t>(load.ok()),
              failures.size());
  EXPECT_TRUE(failures.empty()) << failures.size() << " failed, first: " << failures[0];
  // Once the old instances are gone, every answer is the new program's.
  EXPECT_GE(load.Answers("ping"), echoed + 300);
  Reply r = Request(service->port(), "POST", "new body");
  EXPECT_EQ(r.body, "new body");
  for (pid_t pid : after) EXPECT_EQ(EnvOf(pid, "DROVER_TEST_GENERATION"), "2") << "pid " << pid;
  EXPECT_EQ(service->spec().command, next.command);
  EXPECT_NE(service->Describe().find("serve echo"), std::string::npos) << service->Describe();
  ShutdownAndExpectReaped(service, all);
}

// Given two instances under a steady load, when a reload grows the service
// to three and then shrinks it to one, should fail no request, serve from
// the added instance, and stop the removed ones.
TEST_P(ReloadTest, GrowAndShrinkUnderLoadFailNoRequest) {
  Result<std::unique_ptr<Service>> started = Service::Start(ServeSpec(GetParam(), 2), kClock);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  std::unique_ptr<Service>& service = *started;
  ASSERT_TRUE(service->WaitReady(kReadyWithin).ok()) << service->Describe();
  std::set<pid_t> all;
  for (pid_t pid : Pids(*service)) all.insert(pid);

  Load load(service->port(), 8);
  ASSERT_TRUE(load.WaitForMore(300));
  ServiceSpec next = service->spec();
  next.instances = 3;
  Status grown = service->Reload(next);
  ASSERT_TRUE(grown.ok()) << grown.ToString();
  std::vector<pid_t> three = Pids(*service);
  ASSERT_EQ(three.size(), 3u);
  all.insert(three.begin(), three.end());
  EXPECT_EQ(service->spec().instances, 3);
  ASSERT_TRUE(load.WaitForMore(300));
  if (GetParam() != ListenMode::kShared) {
    // The kernel's hash (reuseport) or the supervisor (round-robin) sends
    // the added instance its share; in shared mode nobody can say.
    bool added_serves = false;
    for (int i = 0; i < 60 && !added_serves; ++i) added_serves = Request(service->port()).pid == three[2];
    EXPECT_TRUE(added_serves) << "instance 2 (pid " << three[2] << ") answered none of 60";
  }

  next.instances = 1;
  Status shrunk = service->Reload(next);
  ASSERT_TRUE(shrunk.ok()) << shrunk.ToString();
  std::vector<pid_t> one = Pids(*service);
  ASSERT_EQ(one.size(), 1u);
  all.insert(one[0]);
  // Reload returns once the removed instances are gone.
  EXPECT_TRUE(Gone(three[1]) && Gone(three[2]));
  ASSERT_TRUE(load.WaitForMore(300));
  load.Stop();

  std::vector<std::string> failures = load.failures();
  std::printf("[ %s ] 2 -> 3 -> 1 instances under load: %zu ok, %zu failed\n",
              std::string(ListenModeName(GetParam())).c_str(), static_cast<size_t>(load.ok()),
              failures.size());
  EXPECT_TRUE(failures.empty()) << failures.size() << " failed, first: " << failures[0];
  // Every connection now reaches the one instance left (no socket of a
  // removed slot is left holding connections nobody accepts).
  for (int i = 0; i < 50; ++i) {
    Reply r = Request(service->port());
    ASSERT_TRUE(r.ok) << r.error;
    ASSERT_EQ(r.pid, one[0]);
  }
  EXPECT_NE(service->Describe().find("1 instance of"), std::string::npos) << service->Describe();
  ShutdownAndExpectReaped(service, all);
}

INSTANTIATE_TEST_SUITE_P(Modes, ReloadTest,
                         ::testing::Values(ListenMode::kReuseport, ListenMode::kShared,
                                           ListenMode::kRoundRobin),
                         testing::ModeName);

// Given a running service, a reload that changes its name, host, port or
// mode should be refused with InvalidArgument, and the service should keep
// serving from the same instances with the same spec.
TEST(ServiceTest, ReloadRefusesNameHostPortOrModeChange) {
  Result<std::unique_ptr<Service>> started =
      Service::Start(ServeSpec(ListenMode::kReuseport, 2), kClock);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  std::unique_ptr<Service>& service = *started;
  ASSERT_TRUE(service->WaitReady(kReadyWithin).ok()) << service->Describe();
  const std::vector<pid_t> before = Pids(*service);
  const ServiceSpec spec = service->spec();

  std::vector<std::pair<std::string, ServiceSpec>> changes;
  changes.emplace_back("rename", spec);
  changes.back().second.name = "other";
  changes.emplace_back("host", spec);
  changes.back().second.host = "0.0.0.0";
  changes.emplace_back("port", spec);
  changes.back().second.port = spec.port == 65000 ? 65001 : 65000;
  changes.emplace_back("mode", spec);
  changes.back().second.mode = ListenMode::kShared;
  changes.emplace_back("instances", spec);
  changes.back().second.instances = 0;
  for (const auto& [what, next] : changes) {
    Status reloaded = service->Reload(next);
    EXPECT_EQ(reloaded.code(), StatusCode::kInvalidArgument) << what << ": " << reloaded.ToString();
    EXPECT_NE(reloaded.message().find("service hello: reload: "), std::string::npos)
        << reloaded.ToString();
  }
  EXPECT_EQ(Pids(*service), before);
  EXPECT_EQ(service->spec().port, spec.port);
  EXPECT_EQ(service->spec().instances, 2);
  Reply r = Request(service->port());
  EXPECT_TRUE(r.ok && r.status == 200) << r.error;
  // Port 0 in a reload means "keep the bound one".
  ServiceSpec same_port = spec;
  same_port.port = 0;
  ASSERT_TRUE(service->Reload(same_port).ok());
  EXPECT_EQ(service->spec().port, spec.port);
  std::set<pid_t> all(before.begin(), before.end());
  for (pid_t pid : Pids(*service)) all.insert(pid);
  ShutdownAndExpectReaped(service, all);
}

// Given a running service, a reload whose new command never becomes ready
// (replacing or adding an instance) should fail naming the instance and
// why, and leave the old instances serving with the old spec.
TEST(ServiceTest, FailedReloadKeepsTheOldInstancesServing) {
  Result<std::unique_ptr<Service>> started =
      Service::Start(ServeSpec(ListenMode::kRoundRobin, 1), kClock);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  std::unique_ptr<Service>& service = *started;
  ASSERT_TRUE(service->WaitReady(kReadyWithin).ok()) << service->Describe();
  const std::vector<pid_t> before = Pids(*service);

  ServiceSpec never = service->spec();
  never.command = {"sleep", "60"};
  never.ready.timeout = milliseconds(500);
  Status replaced = service->Reload(never);
  EXPECT_EQ(replaced.code(), StatusCode::kUnavailable) << replaced.ToString();
  EXPECT_NE(replaced.message().find("stopped at instance 0"), std::string::npos)
      << replaced.ToString();
  EXPECT_NE(replaced.message().find("the old instance keeps serving"), std::string::npos)
      << replaced.ToString();

  ServiceSpec crash = service->spec();
  crash.instances = 2;
  crash.command = {"/bin/sh", "-c", "echo 'bad flag' >&2; exit 2"};
  Status grown = service->Reload(crash);
  EXPECT_EQ(grown.code(), StatusCode::kUnavailable) << grown.ToString();
  EXPECT_NE(grown.message().find("stopped while adding instance 1"), std::string::npos)
      << grown.ToString();
  EXPECT_NE(grown.message().find("exit 2; stderr: bad flag"), std::string::npos)
      << grown.ToString();
  EXPECT_NE(grown.message().find("nothing was replaced"), std::string::npos) << grown.ToString();

  EXPECT_EQ(Pids(*service), before);
  EXPECT_EQ(service->spec().command[2], "hello");
  EXPECT_TRUE(service->WaitReady(seconds(1)).ok());
  Reply r = Request(service->port());
  EXPECT_TRUE(r.ok && r.status == 200 && r.pid == before[0]) << r.error;
  ShutdownAndExpectReaped(service, {before.begin(), before.end()});
}

}  // namespace
}  // namespace drover::services

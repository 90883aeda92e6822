// The cluster backend behind the worker's ServiceHost, as a worker runs
// them, with real services (`drover serve`, node, sh) on loopback ports
// picked by the kernel, real HTTP requests, and a real spawn backend for
// `${services.NAME.port}` in a spawn task. Every service is stopped (and
// its instances reaped) by the host's Shutdown in TearDown, also when an
// assertion failed.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>

#include <gtest/gtest.h>

#include "backends/cluster/cluster_attempt.h"
#include "backends/cluster/cluster_backend.h"
#include "backends/cluster/http_request.h"
#include "backends/services/service_host.h"
#include "backends/spawn/spawn_backend.h"
#include "tests/integration/cli_test_util.h"

namespace drover {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Collects OnFinished of every backend under test, and then, as the
// worker does once the RESULT is out, tells `ended` (the host's
// AttemptEnded).
class Recorder final : public BackendEvents {
 public:
  void OnStarted(uint64_t, int) override {}
  void OnFinished(uint64_t id, AttemptOutcome outcome) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_[id] = std::move(outcome);
      cv_.notify_all();
    }
    if (ended) ended(id);
  }
  std::function<void(uint64_t)> ended;
  // The outcome of `id`, or nullopt (and a test failure) after `timeout`.
  std::optional<AttemptOutcome> Wait(uint64_t id, Duration timeout = seconds(20)) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return done_.count(id) != 0; })) {
      ADD_FAILURE() << "attempt " << id << " did not finish within "
                    << FormatDuration(timeout);
      return std::nullopt;
    }
    return done_[id];
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, AttemptOutcome> done_;  // GUARDED_BY(mu_)
};

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

spec::ServiceDecl Hello(std::string name = "hello") {
  spec::ServiceDecl s;
  s.name = std::move(name);
  s.command = {DROVER_BIN, "serve", "hello"};
  s.instances = 2;
  s.ready_timeout = seconds(10);
  return s;
}

class ClusterBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("drover-cluster-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    BackendConfig config;
    config.slots = 4;
    backend_ = std::make_unique<ClusterBackend>(config);
    ASSERT_TRUE(backend_->Start(&events_).ok());
    ASSERT_TRUE(host_.Start(&events_).ok());
    events_.ended = [this](uint64_t id) { host_.AttemptEnded(id); };
  }
  void TearDown() override {
    host_.Shutdown(seconds(1));  // stops and reaps every service
    backend_->Shutdown(seconds(1));
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // A cluster attempt: `request` to `service` of job `job`.
  TaskAttempt Request(uint64_t id, const std::string& service, std::string job = "job1",
                      const cluster::HttpRequestSpec& request = {}) {
    TaskAttempt a;
    a.attempt_id = id;
    a.job_id = std::move(job);
    a.task = "t" + std::to_string(id);
    a.payload = cluster::ClusterPayload(service, request);
    a.stdout_path = dir_ / (std::to_string(id) + ".out");
    a.stderr_path = dir_ / (std::to_string(id) + ".err");
    return a;
  }
  // Submits `attempt` to `target` through the host, needing `service`.
  Status Submit(Backend& target, TaskAttempt attempt, const spec::ServiceDecl& service) {
    return host_.Submit(target, std::move(attempt), services::ServiceNeeds{{service}, {}});
  }
  // Submits a request to `service` (of job `job`) to the cluster backend.
  Status SubmitRequest(uint64_t id, const spec::ServiceDecl& service, std::string job = "job1",
                       const cluster::HttpRequestSpec& request = {}) {
    return Submit(*backend_, Request(id, service.name, std::move(job), request), service);
  }
  // A spawn attempt of job1 running `argv`.
  TaskAttempt Spawn(uint64_t id, std::vector<std::string> argv,
                    std::vector<std::pair<std::string, std::string>> env = {}) {
    SpawnAttempt a;
    a.attempt_id = id;
    a.job_id = "job1";
    a.task = "t" + std::to_string(id);
    a.argv = std::move(argv);
    a.env = std::move(env);
    a.stdout_path = dir_ / (std::to_string(id) + ".out");
    a.stderr_path = dir_ / (std::to_string(id) + ".err");
    return EncodeSpawnAttempt(std::move(a));
  }

  fs::path dir_;
  Recorder events_;
  std::unique_ptr<ClusterBackend> backend_;
  RealClock clock_;
  services::ServiceHost host_{clock_, 4};
};

// Given a job's service of 2 `drover serve hello` instances, should answer
// two requests with the response body as output, and start the service
// once for both.
TEST_F(ClusterBackendTest, RequestsShareTheJobsService) {
  ASSERT_TRUE(SubmitRequest(1, Hello()).ok());
  const auto first = events_.Wait(1);
  ASSERT_TRUE(first.has_value());
  EXPECT_TRUE(first->ok()) << first->Describe();
  EXPECT_EQ(ReadFile(dir_ / "1.out"), "Hello World");
  EXPECT_EQ(first->out.bytes, 11u);

  ASSERT_TRUE(SubmitRequest(2, Hello()).ok());
  const auto second = events_.Wait(2);
  ASSERT_TRUE(second.has_value());
  EXPECT_TRUE(second->ok()) << second->Describe();
  EXPECT_EQ(host_.registry().size(), 1u);

  // Another job gets its own instance of the service.
  ASSERT_TRUE(SubmitRequest(3, Hello(), "job2").ok());
  ASSERT_TRUE(events_.Wait(3).has_value());
  EXPECT_EQ(host_.registry().size(), 2u);
}

// Given a spawn task whose run holds ${services.hello.host} and
// ${services.hello.port}, should start the service first and give the
// task its real address: the task itself gets "Hello World" from it.
TEST_F(ClusterBackendTest, ServicePortReachesSpawnTask) {
  BackendConfig config;
  config.slots = 1;
  SpawnBackend spawn(config);
  ASSERT_TRUE(spawn.Start(&events_).ok());
  TaskAttempt a = Spawn(7,
                        {"bash", "-c",
                         "exec 3<>/dev/tcp/${services.hello.host}/${services.hello.port} && "
                         "printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3"},
                        {{"HELLO_PORT", "${services.hello.port}"}});
  ASSERT_TRUE(Submit(spawn, std::move(a), Hello()).ok());
  const auto outcome = events_.Wait(7);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_TRUE(outcome->ok()) << outcome->Describe() << ReadFile(dir_ / "7.err");
  const std::string out = ReadFile(dir_ / "7.out");
  EXPECT_NE(out.find("200 OK"), std::string::npos) << out;
  EXPECT_NE(out.find("Hello World"), std::string::npos) << out;
  host_.Shutdown(seconds(1));  // before the spawn backend it submits to
  spawn.Shutdown(seconds(1));
}

// Given `expect: 201` against a server answering 200, should fail the task
// with request-failed naming both statuses, and keep the body.
TEST_F(ClusterBackendTest, UnexpectedStatusFails) {
  cluster::HttpRequestSpec request;
  request.expect = 201;
  ASSERT_TRUE(SubmitRequest(1, Hello(), "job1", request).ok());
  const auto outcome = events_.Wait(1);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(outcome->reason, FailureReason::kRequestFailed);
  EXPECT_NE(outcome->message.find("status 200, expected 201"), std::string::npos)
      << outcome->message;
  EXPECT_NE(outcome->message.find("GET / on service 'hello'"), std::string::npos)
      << outcome->message;
  EXPECT_TRUE(IsRetryable(outcome->reason));
  EXPECT_EQ(ReadFile(dir_ / "1.out"), "Hello World");
}

// Given a port nobody listens on, should fail with "connection refused".
TEST_F(ClusterBackendTest, RefusedConnectionFails) {
  // A port that was free a moment ago and is closed now.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);
  ::close(fd);

  cluster::ClusterAttempt a;
  a.attempt_id = 1;
  a.service = "hello";
  a.request.timeout = seconds(5);
  a.stdout_path = dir_ / "1.out";
  cluster::RequestControl control;
  const AttemptOutcome outcome =
      cluster::SendRequest(a, ServiceAddress{"127.0.0.1", port}, &control);
  EXPECT_EQ(outcome.reason, FailureReason::kRequestFailed) << outcome.Describe();
  EXPECT_NE(outcome.message.find("connection refused"), std::string::npos) << outcome.message;
  EXPECT_NE(outcome.message.find(std::to_string(port)), std::string::npos) << outcome.message;
}

// Given a service that accepts connections and never answers, should time
// the request out after its timeout with reason timeout.
TEST_F(ClusterBackendTest, SilentServiceTimesOut) {
  spec::ServiceDecl silent;
  silent.name = "silent";
  silent.command = {"node", "-e", "require('net').createServer(() => {}).listen({fd: 3})"};
  silent.ready_timeout = seconds(10);
  cluster::HttpRequestSpec request;
  request.timeout = milliseconds(300);
  ASSERT_TRUE(SubmitRequest(1, silent, "job1", request).ok());
  const auto outcome = events_.Wait(1);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(outcome->reason, FailureReason::kTimeout) << outcome->Describe();
  EXPECT_NE(outcome->message.find("no response within"), std::string::npos) << outcome->message;
  EXPECT_LT(outcome->wall, seconds(5));
}

// Given a service whose command exits at once, should fail every task
// waiting for it with launch-failed and the service's name, not hang; a
// later attempt (a retry) tries the service again.
TEST_F(ClusterBackendTest, ServiceThatExitsAtOnceFailsItsTasks) {
  spec::ServiceDecl bad;
  bad.name = "bad";
  bad.command = {"sh", "-c", "echo cannot start >&2; exit 3"};
  bad.instances = 2;
  // The supervisor may respawn a crashing instance for a while; the
  // ready timeout bounds how long the tasks wait either way.
  bad.ready_timeout = seconds(2);
  ASSERT_TRUE(SubmitRequest(1, bad).ok());
  ASSERT_TRUE(SubmitRequest(2, bad).ok());
  for (uint64_t id : {1, 2}) {
    const auto outcome = events_.Wait(id);
    ASSERT_TRUE(outcome.has_value());
    EXPECT_EQ(outcome->reason, FailureReason::kLaunchFailed) << outcome->Describe();
    EXPECT_NE(outcome->message.find("service 'bad'"), std::string::npos) << outcome->message;
  }
  EXPECT_EQ(host_.registry().size(), 0u);
  ASSERT_TRUE(SubmitRequest(3, bad).ok());
  const auto retry = events_.Wait(3);
  ASSERT_TRUE(retry.has_value());
  EXPECT_EQ(retry->reason, FailureReason::kLaunchFailed);
}

// Given a service that runs but never passes its HTTP readiness check,
// should fail its task after the ready timeout with a clear reason.
TEST_F(ClusterBackendTest, ServiceNeverReadyFailsItsTask) {
  spec::ServiceDecl asleep;
  asleep.name = "asleep";
  asleep.command = {"sleep", "60"};
  asleep.ready = "http";
  asleep.ready_path = "/health";
  asleep.ready_timeout = milliseconds(500);
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(SubmitRequest(1, asleep).ok());
  const auto outcome = events_.Wait(1);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(outcome->reason, FailureReason::kLaunchFailed) << outcome->Describe();
  EXPECT_NE(outcome->message.find("service 'asleep' is not serving"), std::string::npos)
      << outcome->message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(10));
}

// Given a service with a short idle_timeout, should stop it once its last
// task is done, and start it again for the next one.
TEST_F(ClusterBackendTest, IdleServiceStopsAndRestarts) {
  spec::ServiceDecl hello = Hello();
  hello.idle_timeout = milliseconds(200);
  ASSERT_TRUE(SubmitRequest(1, hello).ok());
  ASSERT_TRUE(events_.Wait(1).has_value());
  // The janitor stops it on its own clock: nothing to wait on but the count.
  EXPECT_TRUE(testing::WaitUntil([&] { return host_.registry().size() == 0; },
                                 milliseconds(10'000)));
  EXPECT_EQ(host_.registry().size(), 0u);
  ASSERT_TRUE(SubmitRequest(2, hello).ok());
  const auto again = events_.Wait(2);
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(again->ok()) << again->Describe();
}

// Given a spawn attempt waiting in the host for a service that is never
// ready, Cancel should end it as cancelled at once (not
// after the ready timeout), and the spawn backend should never see it.
TEST_F(ClusterBackendTest, CancelEndsAnAttemptWaitingForItsServices) {
  BackendConfig config;
  config.slots = 1;
  SpawnBackend spawn(config);
  ASSERT_TRUE(spawn.Start(&events_).ok());
  spec::ServiceDecl asleep;
  asleep.name = "asleep";
  asleep.command = {"sleep", "60"};
  asleep.ready = "http";
  asleep.ready_path = "/health";
  asleep.ready_timeout = seconds(30);
  TaskAttempt a = Spawn(5, {"sh", "-c", "echo ran > " + (dir_ / "ran").string()});
  ASSERT_TRUE(Submit(spawn, std::move(a), asleep).ok());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(host_.Cancel(5));
  const auto outcome = events_.Wait(5, seconds(5));
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(outcome->reason, FailureReason::kCancelled) << outcome->Describe();
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(5));
  EXPECT_FALSE(host_.Cancel(5));   // once
  EXPECT_FALSE(host_.Cancel(99));  // unknown
  host_.Shutdown(seconds(1));  // before the spawn backend it submits to
  spawn.Shutdown(seconds(1));
  EXPECT_FALSE(fs::exists(dir_ / "ran"));
}

// Given two jobs' services and JobDone for one, should stop that job's
// service and keep the other's.
TEST_F(ClusterBackendTest, JobDoneStopsThatJobsServices) {
  ASSERT_TRUE(SubmitRequest(1, Hello(), "job1").ok());
  ASSERT_TRUE(SubmitRequest(2, Hello(), "job2").ok());
  ASSERT_TRUE(events_.Wait(1).has_value());
  ASSERT_TRUE(events_.Wait(2).has_value());
  ASSERT_EQ(host_.registry().size(), 2u);
  host_.JobDone("job1");
  EXPECT_TRUE(testing::WaitUntil([&] { return host_.registry().size() == 1; },
                                 milliseconds(10'000)));
  ASSERT_TRUE(SubmitRequest(3, Hello(), "job2").ok());
  const auto again = events_.Wait(3);
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(again->ok()) << again->Describe();
  EXPECT_EQ(host_.registry().size(), 1u);
}

// Given JobDone while the job's service is still starting (its instances
// take a second to listen), should stop the service as soon as it has
// started and fail the attempt waiting for it, not leave it running until
// its idle timeout.
TEST_F(ClusterBackendTest, JobDoneWhileStartingStopsTheServiceOnceStarted) {
  spec::ServiceDecl slow = Hello("slow");
  slow.command = {"sh", "-c", std::string("sleep 1; exec '") + DROVER_BIN + "' serve hello"};
  slow.idle_timeout = seconds(600);
  ASSERT_TRUE(SubmitRequest(1, slow, "job1").ok());
  // The registry lists it from the moment it starts starting.
  ASSERT_TRUE(testing::WaitUntil([&] { return host_.registry().size() == 1; },
                                 milliseconds(10'000)));
  host_.JobDone("job1");
  const auto outcome = events_.Wait(1);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_FALSE(outcome->ok()) << outcome->Describe();
  EXPECT_NE(outcome->message.find("job job1 ended while it started"), std::string::npos)
      << outcome->Describe();
  EXPECT_TRUE(testing::WaitUntil([&] { return host_.registry().size() == 0; },
                                 milliseconds(10'000)));
}

// Given a job with a node hello service, a spawn task using its port and a
// cluster task that expects the wrong status with one retry, `drover run`
// should run the spawn task, retry the cluster task once, and fail the job
// with the reason.
TEST(ClusterRunTest, RetriesApplyAndPortsReachTasks) {
  const fs::path dir = fs::temp_directory_path() /
                       ("drover-cluster-run-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path spec = dir / "job.yaml";
  std::ofstream(spec) << R"(version: 1
services:
  hello:
    command: [node, )" << DROVER_SOURCE_DIR << R"(/configs/examples/hello_server.js]
    instances: 2
tasks:
  probe:
    run: "test -n '${services.hello.port}' && echo port=${services.hello.port}"
  wrong:
    backend: cluster
    service: hello
    request: {path: /, expect: 404}
    retries: 1
    retry_backoff: 100ms
)";
  testing::ChildProcess run({DROVER_BIN, "run", spec.string(), "--state-dir",
                             (dir / "state").string(), "--no-progress"},
                            dir, dir);
  ASSERT_TRUE(run.Start());
  const testing::ProcessResult result = run.Wait(milliseconds(60'000));
  EXPECT_EQ(result.exit_code, 1) << result.Describe();
  EXPECT_NE(result.out.find("retry"), std::string::npos) << result.Describe();
  EXPECT_NE(result.out.find("request-failed: status 200, expected 404"), std::string::npos)
      << result.Describe();
  EXPECT_NE(result.out.find("(attempt 2)"), std::string::npos) << result.Describe();
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace drover

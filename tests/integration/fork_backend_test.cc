// ForkBackend's process pools against real processes: Node children
// written for child_process.fork and Python workers. The fixture, and how
// the tests wait and clean up, are fork_backend_fixture.h; the cow pools'
// tests are fork_cow_test.cc. This file forks the tests' zygote.
#include <gtest/gtest.h>

#include "tests/integration/fork_backend_fixture.h"

namespace drover {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;
using testing::ChildPids;
using testing::ForkBackendTest;
using testing::g_zygote;
using testing::Gone;
using testing::In;
using testing::kSource;
using testing::kWait;
using testing::ReadFile;
using testing::WaitGone;

// ---------------------------------------------------------------------------
// The zygote, forked once per test process before any thread exists.

Status AddTestFunctions(FunctionRegistry& registry) {
  // A crash the threads backend could not survive; here it takes down one
  // pool process only.
  DROVER_RETURN_IF_ERROR(registry.Add(
      "test.crash",
      [](const json&, const CancelToken&) -> Result<json> {
        ::raise(SIGSEGV);
        return json(nullptr);
      },
      "test"));
  DROVER_RETURN_IF_ERROR(registry.Add(
      "test.pid", [](const json&, const CancelToken&) -> Result<json> { return json(::getpid()); },
      "test"));
  return registry.Add(
      "test.print",
      [](const json& args, const CancelToken&) -> Result<json> {
        std::cout << args.value("out", "") << "\n";
        std::fprintf(stderr, "%s\n", args.value("err", "").c_str());
        return json("printed");
      },
      "test");
}

class ZygoteEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    ZygoteOptions options;
    options.add_functions = AddTestFunctions;
    Result<std::shared_ptr<Zygote>> zygote = StartZygote(options);
    ASSERT_TRUE(zygote.ok()) << zygote.status().ToString();
    zygote_ = *zygote;
    g_zygote = &zygote_;
  }
  void TearDown() override {
    g_zygote = nullptr;
    zygote_.reset();
  }

 private:
  std::shared_ptr<Zygote> zygote_;
};

const ::testing::Environment* const kZygoteEnv =
    ::testing::AddGlobalTestEnvironment(new ZygoteEnvironment);

INSTANTIATE_TEST_SUITE_P(Modes, ForkBackendTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Driven" : "Threaded";
                         });

// ---------------------------------------------------------------------------
// Process pools: Node and Python.

// Given the classic Node fork child, should return the message sorted.
TEST_P(ForkBackendTest, NodeSortChildReturnsSortedNumbers) {
  StartBackend(2);
  PoolSpec spec;
  spec.name = "sorter";
  spec.command = {"node", (kSource / "configs/examples/fork_sort.js").string()};
  spec.instances = 2;
  Send(1, spec, "[5, 3, 10, 1, 4]");
  Send(2, spec, "[2,\n1]");  // a newline in the message must not split it
  EXPECT_EQ(ResultOf(1), "[1,3,4,5,10]");
  EXPECT_EQ(ResultOf(2), "[1,2]");
  std::optional<int> pid = events_.WaitStarted(1);
  ASSERT_TRUE(pid.has_value());
  EXPECT_GT(*pid, 0);
}

// Given a Node child that sends one of Node's internal messages before its
// reply, should ignore it and take the reply; its console.log output
// should be the task's stdout.
TEST_P(ForkBackendTest, NodeInternalMessageIsIgnoredAndOutputCaptured) {
  const fs::path script = dir_ / "chatty.js";
  std::ofstream(script) << "process.on('message', (m) => {\n"
                           "  console.log('got', JSON.stringify(m));\n"
                           "  process.send({cmd: 'NODE_TEST_INTERNAL', x: 1});\n"
                           "  process.send({answer: m.q * 2});\n"
                           "});\n";
  StartBackend(1);
  PoolSpec spec;
  spec.name = "chatty";
  spec.command = {"node", script.string()};
  Send(1, spec, R"({"q": 21})");
  EXPECT_EQ(ResultOf(1), R"({"answer":42})");
  EXPECT_EQ(ReadFile(dir_ / "1.out"), "got {\"q\":21}\n");
}

// Given the example Python worker, should answer text and number messages.
TEST_P(ForkBackendTest, PythonExampleWorkerAnswers) {
  StartBackend(2);
  PoolSpec spec;
  spec.name = "stats";
  spec.command = {"python3", (kSource / "configs/examples/ipc_worker.py").string()};
  Send(1, spec, "[4, 8, 15, 16, 23, 42]");
  Send(2, spec, R"({"text": "the cat and the hat\nthe end"})");
  json stats = json::parse(ResultOf(1));
  EXPECT_EQ(stats["count"], 6);
  EXPECT_EQ(stats["sum"], 108.0);
  EXPECT_EQ(stats["max"], 42.0);
  json text = json::parse(ResultOf(2));
  EXPECT_EQ(text["lines"], 2);
  EXPECT_EQ(text["words"], 7);
  EXPECT_EQ(text["top"][0], json::array({"the", 3}));
}

// Given a pool process that prints while it holds a task, should capture
// stdout and stderr into that attempt's files.
TEST_P(ForkBackendTest, OutputIsCapturedPerAttempt) {
  StartBackend(1);
  PoolSpec spec = PythonPool("printer");
  Send(1, spec, R"({"op": "print", "out": "hello out", "err": "hello err"})");
  EXPECT_EQ(ResultOf(1), R"("printed")");
  EXPECT_EQ(ReadFile(dir_ / "1.out"), "hello out\n");
  EXPECT_EQ(ReadFile(dir_ / "1.err"), "hello err\n");
  Send(2, spec, R"({"op": "pid"})");
  ResultOf(2);
  EXPECT_FALSE(fs::exists(dir_ / "2.out"));  // printed nothing: no file
}

// Given a pool with room for one process and three tasks, should run them
// one at a time in submission order on the same warm process.
TEST_P(ForkBackendTest, QueuedAttemptsRunInOrderOnTheWarmProcess) {
  StartBackend(3);
  PoolSpec spec = PythonPool("fifo");
  Send(1, spec, R"({"op": "pid"})");
  Send(2, spec, R"({"op": "pid"})");
  Send(3, spec, R"({"op": "pid"})");
  const std::string pid = ResultOf(1);
  EXPECT_EQ(ResultOf(2), pid);
  EXPECT_EQ(ResultOf(3), pid);
  EXPECT_EQ(events_.StartOrder(), (std::vector<uint64_t>{1, 2, 3}));
}

// Given the backend's slots are all taken, Submit should refuse the next
// attempt with kUnavailable.
TEST_P(ForkBackendTest, SubmitBeyondCapacityIsRefused) {
  StartBackend(1);
  PoolSpec spec = PythonPool("full");
  Send(1, spec, R"({"op": "sleep", "seconds": 0.2})");
  ForkAttempt extra;
  extra.attempt_id = 2;
  extra.pool = spec.name;
  extra.pool_spec = spec;
  EXPECT_EQ(backend_->Submit(EncodeForkAttempt(std::move(extra))).code(),
            StatusCode::kUnavailable);
  ResultOf(1);
}

// Given max_tasks 2, should recycle the process after two tasks: the third
// runs on a new pid and the old process is gone.
TEST_P(ForkBackendTest, MaxTasksRecyclesTheProcess) {
  StartBackend(3);
  PoolSpec spec = PythonPool("recycled");
  spec.max_tasks = 2;
  for (uint64_t id = 1; id <= 3; ++id) Send(id, spec, R"({"op": "pid"})");
  const int first = std::stoi(ResultOf(1));
  EXPECT_EQ(std::stoi(ResultOf(2)), first);
  const int third = std::stoi(ResultOf(3));
  EXPECT_NE(third, first);
  EXPECT_TRUE(WaitGone(first));
}

// Given a process that exits mid-task, should fail that task with
// process-crashed naming the exit code, and the next task should succeed
// on a new process.
TEST_P(ForkBackendTest, ProcessDyingMidTaskFailsOnlyThatTask) {
  StartBackend(1);
  PoolSpec spec = PythonPool("fragile");
  Send(1, spec, R"({"op": "pid"})");
  const int first = std::stoi(ResultOf(1));
  Send(3, spec, R"({"op": "exit", "code": 3})");
  std::optional<AttemptOutcome> crashed = events_.WaitFor(3);
  ASSERT_TRUE(crashed.has_value());
  EXPECT_EQ(crashed->reason, FailureReason::kProcessCrashed);
  EXPECT_EQ(crashed->exit_code, 3);
  EXPECT_NE(crashed->message.find("exited with code 3"), std::string::npos)
      << crashed->message;
  EXPECT_EQ(crashed->message.find("crash-looping"), std::string::npos);
  Send(4, spec, R"({"op": "pid"})");
  EXPECT_NE(std::stoi(ResultOf(4)), first);
  EXPECT_TRUE(Gone(first));
}

// Given a process killed by a signal mid-task, the failure should name it.
TEST_P(ForkBackendTest, DeathBySignalIsNamed) {
  StartBackend(1);
  PoolSpec spec = PythonPool("segv");
  Send(1, spec, R"({"op": "signal", "name": "SIGSEGV"})");
  std::optional<AttemptOutcome> o = events_.WaitFor(1);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, FailureReason::kProcessCrashed);
  EXPECT_EQ(o->signal, SIGSEGV);
  EXPECT_NE(o->message.find("SIGSEGV"), std::string::npos) << o->message;
}

// Given a command that exits at once, should restart it with a growing
// backoff and say that the pool is crash-looping.
TEST_P(ForkBackendTest, CrashLoopIsBackedOffAndReported) {
  StartBackend(1);
  PoolSpec spec;
  spec.name = "looping";
  spec.command = {"sh", "-c", "exit 7"};
  std::vector<AttemptOutcome> outcomes;
  std::vector<SteadyTime> finished;
  for (uint64_t id = 1; id <= 3; ++id) {
    Send(id, spec, "1");
    std::optional<AttemptOutcome> o = events_.WaitFor(id);
    ASSERT_TRUE(o.has_value());
    outcomes.push_back(*o);
    finished.push_back(events_.FinishedAt(id));
  }
  for (const AttemptOutcome& o : outcomes) {
    EXPECT_EQ(o.reason, FailureReason::kProcessCrashed) << o.Describe();
    EXPECT_EQ(o.exit_code, 7);
  }
  EXPECT_EQ(outcomes[0].message.find("crash-looping"), std::string::npos);
  EXPECT_NE(outcomes[1].message.find("crash-looping (2 quick exits in a row), next start in 200ms"),
            std::string::npos)
      << outcomes[1].message;
  EXPECT_NE(outcomes[2].message.find("(3 quick exits in a row), next start in 400ms"),
            std::string::npos)
      << outcomes[2].message;
  // The restarts waited out their backoff. The backoff runs from a
  // process's exit, and `finished` is when its OnFinished was recorded, a
  // little later (CI saw 197.9 ms for a 200 ms backoff): the bounds leave a
  // quarter for that.
  EXPECT_GE(finished[1] - finished[0], milliseconds(75));
  EXPECT_GE(finished[2] - finished[1], milliseconds(150));
}

// Given a task that runs past its timeout, should kill the process (TERM),
// report timeout, and serve the next task from a new process.
TEST_P(ForkBackendTest, TimeoutKillsAndReplacesTheProcess) {
  StartBackend(1);
  PoolSpec spec = PythonPool("slow");
  Send(1, spec, R"({"op": "sleep", "seconds": 60})", milliseconds(300));
  std::optional<int> pid = events_.WaitStarted(1);
  ASSERT_TRUE(pid.has_value());
  std::optional<AttemptOutcome> o = events_.WaitFor(1);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, FailureReason::kTimeout);
  EXPECT_EQ(o->message, "timed out after 0.30s");
  EXPECT_EQ(o->signal, SIGTERM);
  EXPECT_TRUE(Gone(*pid));
  Send(2, spec, R"({"op": "pid"})");
  EXPECT_NE(std::stoi(ResultOf(2)), *pid);
}

// Given a process that ignores SIGTERM at its timeout, should SIGKILL it
// after the kill grace and say so.
TEST_P(ForkBackendTest, TimeoutKillsAProcessThatIgnoresTerm) {
  StartBackend(1);
  PoolSpec spec = PythonPool("stubborn");
  Send(1, spec, R"({"op": "pid"})");  // the process is up and reading
  ResultOf(1);
  Send(2, spec, R"({"op": "trap", "seconds": 60})", milliseconds(500), milliseconds(200));
  std::optional<AttemptOutcome> o = events_.WaitFor(2);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, FailureReason::kTimeout);
  EXPECT_EQ(o->signal, SIGKILL);
  EXPECT_NE(o->message.find("killed after ignoring SIGTERM"), std::string::npos);
}

// Given a FakeClock, a 10 s timeout and a 5 s kill grace, and a pool
// process that notes SIGTERM and goes on: SIGTERM should come only once the
// clock is past the timeout and SIGKILL only once it is past the grace, the
// reason timeout, the wall time the clock's. No sleeps: each Advance wakes
// the reactor, and the test waits on what the process writes.
TEST_P(ForkBackendTest, FakeClockTimeoutTermsThenKillsAfterTheGrace) {
  FakeClock& clock = clock_;
  StartBackend(1, true, &clock);
  PoolSpec spec = PythonPool("fake-clock");
  Send(1, spec, R"({"op": "note_term", "seconds": 60})", seconds(10), seconds(5));
  const fs::path out = dir_ / "1.out";
  auto out_is = [&](const std::string& text) {
    for (SteadyTime end = In(kWait); steady_clock::now() < end;) {
      if (ReadFile(out) == text) return true;
      std::this_thread::sleep_for(milliseconds(5));  // a bounded poll of a file
    }
    return false;
  };
  ASSERT_TRUE(out_is("ready\n"));

  clock.Advance(seconds(9));  // not yet
  EXPECT_EQ(events_.FinishCount(1), 0u);
  clock.Advance(seconds(1));  // the timeout: SIGTERM, which the process notes
  ASSERT_TRUE(out_is("ready\nterm\n")) << ReadFile(out);
  clock.Advance(seconds(4));  // within the grace
  EXPECT_EQ(events_.FinishCount(1), 0u);
  clock.Advance(seconds(1));  // the grace is over: SIGKILL

  std::optional<AttemptOutcome> o = events_.WaitFor(1);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, FailureReason::kTimeout) << o->Describe();
  EXPECT_EQ(o->message, "timed out after 10.00s; killed after ignoring SIGTERM");
  EXPECT_EQ(o->signal, SIGKILL);
  EXPECT_EQ(o->wall, seconds(15));
}

// Given a running task and a queued one, Cancel should stop the running
// one's process (cancelled) and drop the queued one without starting it.
TEST_P(ForkBackendTest, CancelStopsRunningAndDropsQueued) {
  StartBackend(2);
  PoolSpec spec = PythonPool("cancel");
  Send(1, spec, R"({"op": "sleep", "seconds": 60})");
  Send(2, spec, R"({"op": "pid"})");
  std::optional<int> pid = events_.WaitStarted(1);
  ASSERT_TRUE(pid.has_value());
  backend_->Cancel(2);
  std::optional<AttemptOutcome> queued = events_.WaitFor(2);
  ASSERT_TRUE(queued.has_value());
  EXPECT_EQ(queued->reason, FailureReason::kCancelled);
  EXPECT_FALSE(events_.WasStarted(2));
  backend_->Cancel(1);
  std::optional<AttemptOutcome> running = events_.WaitFor(1);
  ASSERT_TRUE(running.has_value());
  EXPECT_EQ(running->reason, FailureReason::kCancelled);
  EXPECT_TRUE(Gone(*pid));
  Send(3, spec, R"({"op": "pid"})");
  EXPECT_NE(std::stoi(ResultOf(3)), *pid);
}

// Given a reply that is not JSON, should fail the task (internal, with the
// reason) and keep the process, which answers the next task.
TEST_P(ForkBackendTest, InvalidJsonReplyFailsTheTaskOnly) {
  StartBackend(1);
  PoolSpec spec = PythonPool("garbled");
  Send(1, spec, R"({"op": "pid"})");
  const std::string pid = ResultOf(1);
  Send(2, spec, R"({"op": "bad"})");
  std::optional<AttemptOutcome> o = events_.WaitFor(2);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, FailureReason::kInternal);
  EXPECT_EQ(o->message.rfind("pool 'garbled' replied with invalid JSON (", 0), 0u)
      << o->message;
  EXPECT_NE(o->message.find("{this is not json"), std::string::npos);
  Send(3, spec, R"({"op": "pid"})");
  EXPECT_EQ(ResultOf(3), pid);
}

// Given a reply over the 16 MiB cap, should fail the task and replace the
// process, whose channel is out of step.
TEST_P(ForkBackendTest, OversizeReplyReplacesTheProcess) {
  StartBackend(1);
  PoolSpec spec = PythonPool("bloated");
  Send(1, spec, R"({"op": "pid"})");
  const int pid = std::stoi(ResultOf(1));
  Send(2, spec, R"({"op": "big", "n": 9000000})");  // 18 MB
  std::optional<AttemptOutcome> o = events_.WaitFor(2);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, FailureReason::kInternal);
  EXPECT_NE(o->message.find("over the 16 MiB cap"), std::string::npos) << o->message;
  Send(3, spec, R"({"op": "pid"})");
  EXPECT_NE(std::stoi(ResultOf(3)), pid);
  EXPECT_TRUE(WaitGone(pid));
}

// Given a pool whose command does not exist, should fail its attempts with
// launch-failed naming the pool and the command, without OnStarted.
TEST_P(ForkBackendTest, CommandNotFoundFailsQueuedAttempts) {
  StartBackend(2);
  PoolSpec spec;
  spec.name = "sorter";
  spec.command = {"drover-no-such-command"};
  spec.instances = 1;
  Send(1, spec, "[1]");
  Send(2, spec, "[2]");
  for (uint64_t id : {1, 2}) {
    std::optional<AttemptOutcome> o = events_.WaitFor(id);
    ASSERT_TRUE(o.has_value());
    EXPECT_EQ(o->reason, FailureReason::kLaunchFailed);
    EXPECT_EQ(o->message, "pool 'sorter': command not found: drover-no-such-command");
    EXPECT_FALSE(events_.WasStarted(id));
  }
}

// Given a message that is not JSON, should refuse it (launch-failed) rather
// than send a line that would crash a Node child.
TEST_P(ForkBackendTest, MessageThatIsNotJsonIsRefused) {
  StartBackend(1);
  Send(1, PythonPool("strict"), "[1, 2");
  std::optional<AttemptOutcome> o = events_.WaitFor(1);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, FailureReason::kLaunchFailed);
  EXPECT_NE(o->message.find("message is not valid JSON"), std::string::npos) << o->message;
}

// Given a pool that already serves attempts (whose declaration is checked
// once, when the pool is made), should still refuse a later attempt's
// message that is not JSON, and keep serving the next one with the same
// process.
TEST_P(ForkBackendTest, MessageThatIsNotJsonIsRefusedByARunningPool) {
  StartBackend(1);
  Send(1, PythonPool("strict"), R"({"op": "pid"})");
  const int pid = std::stoi(ResultOf(1));
  Send(2, PythonPool("strict"), "[1, 2");
  std::optional<AttemptOutcome> o = events_.WaitFor(2);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, FailureReason::kLaunchFailed);
  EXPECT_NE(o->message.find("pool 'strict': the task's message is not valid JSON"),
            std::string::npos)
      << o->message;
  EXPECT_FALSE(events_.WasStarted(2));
  Send(3, PythonPool("strict"), R"({"op": "pid"})");
  EXPECT_EQ(std::stoi(ResultOf(3)), pid);
}

// Given a changed declaration under the same name, should start a new pool
// (new process, new env) and stop the old one's process.
TEST_P(ForkBackendTest, ChangedDeclarationIsANewPool) {
  StartBackend(1);
  PoolSpec spec = PythonPool("evolving");
  spec.env = {{"FLAVOUR", "one"}};
  Send(1, spec, R"({"op": "pid"})");
  const int first = std::stoi(ResultOf(1));
  Send(2, spec, R"({"op": "env", "name": "FLAVOUR"})");
  EXPECT_EQ(ResultOf(2), R"("one")");
  spec.env = {{"FLAVOUR", "two"}};
  Send(3, spec, R"({"op": "env", "name": "FLAVOUR"})");
  EXPECT_EQ(ResultOf(3), R"("two")");
  EXPECT_TRUE(WaitGone(first));
  Send(4, spec, R"({"op": "env", "name": "NODE_CHANNEL_SERIALIZATION_MODE"})");
  EXPECT_EQ(ResultOf(4), R"("json")");
}

// Given idle_timeout, should stop an idle process and start a new one when
// work arrives.
TEST_P(ForkBackendTest, IdleTimeoutStopsIdleProcesses) {
  StartBackend(1);
  PoolSpec spec = PythonPool("sleepy");
  spec.idle_timeout = milliseconds(300);
  Send(1, spec, R"({"op": "pid"})");
  const int first = std::stoi(ResultOf(1));
  EXPECT_TRUE(WaitGone(first));
  Send(2, spec, R"({"op": "pid"})");
  EXPECT_NE(std::stoi(ResultOf(2)), first);
}

// Given running tasks, Shutdown should cancel them, stop every process and
// return only when all are reaped.
TEST_P(ForkBackendTest, ShutdownCancelsRunningTasks) {
  StartBackend(3);
  PoolSpec spec = PythonPool("busy", 2);
  Send(1, spec, R"({"op": "sleep", "seconds": 60})");
  Send(2, spec, R"({"op": "trap", "seconds": 60})");
  Send(3, spec, R"({"op": "pid"})");  // queued behind them
  std::optional<int> a = events_.WaitStarted(1);
  std::optional<int> b = events_.WaitStarted(2);
  ASSERT_TRUE(a && b);
  Shutdown(milliseconds(300));
  for (uint64_t id : {1, 2, 3}) {
    std::optional<AttemptOutcome> o = events_.WaitFor(id, Duration(0));
    ASSERT_TRUE(o.has_value()) << id;
    EXPECT_EQ(o->reason, FailureReason::kCancelled);
    EXPECT_EQ(events_.FinishCount(id), 1u);
  }
  EXPECT_TRUE(Gone(*a));
  EXPECT_TRUE(Gone(*b));
  EXPECT_EQ(backend_->Submit(TaskAttempt{}).code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace drover

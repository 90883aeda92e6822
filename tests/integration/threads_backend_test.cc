// ThreadsBackend with real pool threads, the real example plugin and the
// loader's fixture plugins (loaded with dlopen): results, errors, launch
// failures, cooperative and ignored timeouts, lost slots, Cancel, Shutdown
// with running functions, plugin load errors and the plugin ABI's callbacks.
//
// Every wait is on an event with a deadline (or a bounded poll of a
// condition); the only sleeps are inside functions under test, as workload.
// A function that ignores its token blocks on a Gate that the test opens,
// with a bounded wait, so nothing can hang.
#include "backends/threads/threads_backend.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "backends/functions/builtins.h"
#include "backends/functions/plugin_loader.h"

namespace drover {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

// Generous: only reached when something is broken.
constexpr Duration kWait = seconds(60);

SteadyTime In(Duration d) { return steady_clock::now() + d; }

// Records the backend's events, in order; waits on them with deadlines.
class RecordingEvents : public BackendEvents {
 public:
  void OnStarted(uint64_t attempt_id, int pid) override {
    std::lock_guard<std::mutex> lock(mu_);
    log_.emplace_back('S', attempt_id);
    started_[attempt_id].push_back(pid);
    cv_.notify_all();
  }
  void OnFinished(uint64_t attempt_id, AttemptOutcome outcome) override {
    std::lock_guard<std::mutex> lock(mu_);
    log_.emplace_back('F', attempt_id);
    finished_[attempt_id].push_back(std::move(outcome));
    finished_at_[attempt_id] = steady_clock::now();
    ++total_finished_;
    cv_.notify_all();
  }

  // The first outcome of `id`, or nothing by the deadline.
  std::optional<AttemptOutcome> WaitFor(uint64_t id, SteadyTime deadline = In(kWait)) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_until(lock, deadline, [&] { return finished_.count(id) != 0; })) {
      return std::nullopt;
    }
    return finished_[id].front();
  }
  bool WaitStarted(uint64_t id, SteadyTime deadline = In(kWait)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_until(lock, deadline, [&] { return started_.count(id) != 0; });
  }
  bool WaitTotal(size_t n, SteadyTime deadline = In(kWait)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_until(lock, deadline, [&] { return total_finished_ >= n; });
  }
  size_t FinishCount(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = finished_.find(id);
    return it == finished_.end() ? 0 : it->second.size();
  }
  size_t StartCount(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = started_.find(id);
    return it == started_.end() ? 0 : it->second.size();
  }
  std::vector<int> Pids(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    return started_[id];
  }
  SteadyTime FinishedAt(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    return finished_at_[id];
  }
  // True when every OnStarted of an attempt came before its OnFinished.
  bool StartsPrecedeFinishes() {
    std::lock_guard<std::mutex> lock(mu_);
    std::map<uint64_t, bool> finished;
    for (const auto& [kind, id] : log_) {
      if (kind == 'S' && finished[id]) return false;
      if (kind == 'F') finished[id] = true;
    }
    return true;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<char, uint64_t>> log_;
  std::map<uint64_t, std::vector<int>> started_;
  std::map<uint64_t, std::vector<AttemptOutcome>> finished_;
  std::map<uint64_t, SteadyTime> finished_at_;
  size_t total_finished_ = 0;
};

// A function body that ignores its cancellation token: it blocks until the
// test opens the gate (or, so that nothing hangs, for at most kWait).
class Gate {
 public:
  void Pass() {
    std::unique_lock<std::mutex> lock(mu_);
    ++entered_;
    cv_.notify_all();
    cv_.wait_until(lock, In(kWait), [&] { return open_; });
    ++returned_;
    cv_.notify_all();
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  bool WaitEntered(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_until(lock, In(kWait), [&] { return entered_ >= n; });
  }
  bool WaitReturned(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_until(lock, In(kWait), [&] { return returned_ >= n; });
  }
  int returned() {
    std::lock_guard<std::mutex> lock(mu_);
    return returned_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int entered_ = 0;
  int returned_ = 0;
};

// Polls `condition` until it holds or the deadline passes. For state that
// has no event of its own (LostSlots); bounded.
bool PollUntil(const std::function<bool()>& condition, SteadyTime deadline = In(kWait)) {
  while (!condition()) {
    if (steady_clock::now() >= deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

// A threads attempt as these tests build it: the shared fields and the
// ThreadsTask's, which Encode puts into the payload the backend decodes.
struct Call : TaskAttempt {
  std::string fn;
  std::string args_json;
  std::vector<std::string> plugins;
};

TaskAttempt Encode(Call call) {
  std::string payload = ThreadsPayload(call.fn, call.args_json, call.plugins);
  TaskAttempt a = std::move(static_cast<TaskAttempt&>(call));
  a.payload = std::move(payload);
  return a;
}

Call Attempt(uint64_t id, std::string fn, std::string args = "",
             Duration timeout = Duration(0)) {
  Call a;
  a.attempt_id = id;
  a.task = "t" + std::to_string(id);
  a.fn = std::move(fn);
  a.args_json = std::move(args);
  a.timeout = timeout;
  return a;
}

class ThreadsBackendTest : public ::testing::Test {
 protected:
  // The built-ins, the example plugin, the ABI probe fixture, and two
  // test functions: `throw` and `stubborn` (ignores its token, waits on
  // gate_).
  std::shared_ptr<const FunctionRegistry> Registry() {
    auto registry = std::make_shared<FunctionRegistry>();
    EXPECT_TRUE(RegisterBuiltins(*registry).ok());
    Status s = LoadPlugin(DROVER_EXAMPLE_PLUGIN, *registry);
    EXPECT_TRUE(s.ok()) << s.ToString();
    s = LoadPlugin(DROVER_ABI_PROBE_PLUGIN, *registry);
    EXPECT_TRUE(s.ok()) << s.ToString();
    EXPECT_TRUE(registry
                    ->Add("throw",
                          [](const json&, const CancelToken&) -> Result<json> {
                            throw std::runtime_error("kaboom: the input was odd");
                          },
                          "test")
                    .ok());
    // Captures the gate by shared_ptr: a detached pool thread may still be
    // in here after the test body ends.
    std::shared_ptr<Gate> gate = gate_;
    EXPECT_TRUE(registry
                    ->Add("stubborn",
                          [gate](const json&, const CancelToken&) -> Result<json> {
                            gate->Pass();
                            return json("late");
                          },
                          "test")
                    .ok());
    return registry;
  }

  std::unique_ptr<ThreadsBackend> Make(int slots) {
    auto backend = std::make_unique<ThreadsBackend>(slots, Registry());
    const Status s = backend->Start(&events_);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return backend;
  }

  void TearDown() override {
    // Whatever a test left blocked may return now.
    gate_->Open();
  }

  RecordingEvents events_;
  std::shared_ptr<Gate> gate_ = std::make_shared<Gate>();
};

// Given built-in and plugin functions, should report each result as JSON,
// with OnStarted (pid 0) before OnFinished, each exactly once.
TEST_F(ThreadsBackendTest, RecordsResultJsonOfBuiltinsAndPlugins) {
  auto backend = Make(2);
  ASSERT_TRUE(backend->Submit(Encode(Attempt(1, "sort", R"({"numbers": [5, 4, 3, 2, 1]})"))).ok());
  ASSERT_TRUE(backend->Submit(Encode(Attempt(2, "reverse", R"({"string": "héllo"})"))).ok());
  ASSERT_TRUE(backend->Submit(Encode(Attempt(3, "sum", "[1, 2, 3.5]"))).ok());
  ASSERT_TRUE(backend->Submit(Encode(Attempt(4, "sha256", R"({"string": "abc"})"))).ok());
  ASSERT_TRUE(backend->Submit(Encode(Attempt(5, "noop"))).ok());

  const std::map<uint64_t, std::string> expected = {
      {1, "[1,2,3,4,5]"},
      {2, "\"olléh\""},
      {3, "6.5"},
      {4, "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\""},
      {5, "null"}};
  for (const auto& [id, result] : expected) {
    auto o = events_.WaitFor(id);
    ASSERT_TRUE(o.has_value()) << "attempt " << id;
    EXPECT_TRUE(o->ok()) << id << ": " << o->Describe();
    EXPECT_EQ(o->exit_code, 0);
    EXPECT_EQ(o->result_json, result) << "attempt " << id;
    EXPECT_EQ(events_.Pids(id), std::vector<int>{0});
  }
  backend->Shutdown(seconds(5));
  for (const auto& [id, _] : expected) EXPECT_EQ(events_.FinishCount(id), 1u) << id;
  EXPECT_TRUE(events_.StartsPrecedeFinishes());
}

// Given functions that throw or return errors (C++ and through the C ABI),
// should fail each as `exit` 1 with the error text as message.
TEST_F(ThreadsBackendTest, FunctionErrorsAreExitOneWithTheirMessage) {
  auto backend = Make(2);
  ASSERT_TRUE(backend->Submit(Encode(Attempt(1, "throw"))).ok());
  ASSERT_TRUE(backend->Submit(Encode(Attempt(2, "fail_msg"))).ok());
  ASSERT_TRUE(backend->Submit(Encode(Attempt(3, "fail_code"))).ok());
  ASSERT_TRUE(backend->Submit(Encode(Attempt(4, "bad_json"))).ok());
  ASSERT_TRUE(backend->Submit(Encode(Attempt(5, "sort", R"({"numbers": ["x"]})"))).ok());

  auto o = events_.WaitFor(1);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, FailureReason::kExit);
  EXPECT_EQ(o->exit_code, 1);
  EXPECT_EQ(o->message, "kaboom: the input was odd");
  EXPECT_TRUE(IsRetryable(o->reason));

  o = events_.WaitFor(2);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, FailureReason::kExit);
  EXPECT_EQ(o->message, "disk on fire");

  o = events_.WaitFor(3);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->message, "function 'fail_code' failed with code 7");

  o = events_.WaitFor(4);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, FailureReason::kExit);
  EXPECT_NE(o->message.find("plugin " + fs::absolute(DROVER_ABI_PROBE_PLUGIN).string()),
            std::string::npos)
      << o->message;
  EXPECT_NE(o->message.find("'bad_json' returned invalid JSON"), std::string::npos)
      << o->message;

  o = events_.WaitFor(5);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, FailureReason::kExit);
  EXPECT_EQ(o->message.rfind("sort: args must be", 0), 0u) << o->message;
}

// Given an unknown function or args that are not JSON, should fail as
// launch-failed with a clear message and no OnStarted.
TEST_F(ThreadsBackendTest, UnknownFunctionAndBadArgsAreLaunchFailed) {
  auto backend = Make(1);
  ASSERT_TRUE(backend->Submit(Encode(Attempt(1, "sortt", "[1]"))).ok());
  ASSERT_TRUE(backend->Submit(Encode(Attempt(2, "sort", "[1, 2"))).ok());

  auto o = events_.WaitFor(1);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, FailureReason::kLaunchFailed);
  EXPECT_EQ(o->message.rfind("no function 'sortt' (known: ", 0), 0u) << o->message;
  EXPECT_NE(o->message.find("reverse"), std::string::npos) << o->message;
  EXPECT_NE(o->message.find("sort,"), std::string::npos) << o->message;

  o = events_.WaitFor(2);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, FailureReason::kLaunchFailed);
  EXPECT_EQ(o->message.rfind("bad args for 'sort': ", 0), 0u) << o->message;
  EXPECT_NE(o->message.find("parse error"), std::string::npos) << o->message;

  EXPECT_EQ(events_.StartCount(1), 0u);
  EXPECT_EQ(events_.StartCount(2), 0u);
}

// Given a cooperative function (sleep 1h) with a 200ms timeout, should
// report `timeout` at the deadline and get the slot back when it returns.
TEST_F(ThreadsBackendTest, CooperativeTimeoutIsReportedAtTheDeadline) {
  auto backend = Make(1);
  const SteadyTime submitted = steady_clock::now();
  ASSERT_TRUE(
      backend->Submit(Encode(Attempt(1, "sleep", R"({"seconds": 3600})", milliseconds(200))))
          .ok());
  auto o = events_.WaitFor(1);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, FailureReason::kTimeout);
  EXPECT_EQ(o->message, "timed out after 0.20s");
  EXPECT_GE(events_.FinishedAt(1) - submitted, milliseconds(200));
  EXPECT_GE(o->wall, milliseconds(200));

  // The sleep saw its token and returned: the one slot works again.
  EXPECT_TRUE(PollUntil([&] { return backend->LostSlots() == 0; }));
  ASSERT_TRUE(backend->Submit(Encode(Attempt(2, "fib", R"({"n": 20})"))).ok());
  o = events_.WaitFor(2);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->result_json, "6765");
  EXPECT_EQ(events_.FinishCount(1), 1u);
}

// Given a function that ignores its token, should report `timeout` at the
// deadline while the function still runs, count its slot as lost, run other
// tasks on the other slot meanwhile, and discard its late result.
TEST_F(ThreadsBackendTest, IgnoredTimeoutLosesOnlyThatSlot) {
  auto backend = Make(2);
  ASSERT_TRUE(backend->Submit(Encode(Attempt(1, "stubborn", "", milliseconds(100)))).ok());
  ASSERT_TRUE(gate_->WaitEntered(1));
  auto o = events_.WaitFor(1);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, FailureReason::kTimeout);
  // Reported at the deadline, not when the function returned: it has not.
  EXPECT_EQ(gate_->returned(), 0);
  EXPECT_EQ(backend->LostSlots(), 1);
  EXPECT_EQ(backend->Capacity(), 2);

  // Twenty tasks go through the remaining slot.
  for (uint64_t id = 10; id < 30; ++id) {
    ASSERT_TRUE(backend->Submit(Encode(Attempt(id, "sort", "[3, 2, 1]"))).ok());
  }
  for (uint64_t id = 10; id < 30; ++id) {
    auto r = events_.WaitFor(id);
    ASSERT_TRUE(r.has_value()) << id;
    EXPECT_EQ(r->result_json, "[1,2,3]");
  }
  EXPECT_EQ(gate_->returned(), 0);

  // The function returns at last: its result is dropped, the slot is back.
  gate_->Open();
  ASSERT_TRUE(gate_->WaitReturned(1));
  EXPECT_TRUE(PollUntil([&] { return backend->LostSlots() == 0; }));
  backend->Shutdown(seconds(5));
  EXPECT_EQ(events_.FinishCount(1), 1u);
  EXPECT_EQ(events_.WaitFor(1)->reason, FailureReason::kTimeout);
}

// Given one slot held by a function that ignores its token, should keep a
// new task queued (a lost slot takes no work) until the function returns.
TEST_F(ThreadsBackendTest, LostSlotTakesNoWorkUntilTheFunctionReturns) {
  auto backend = Make(1);
  ASSERT_TRUE(backend->Submit(Encode(Attempt(1, "stubborn", "", milliseconds(50)))).ok());
  ASSERT_TRUE(events_.WaitFor(1).has_value());
  ASSERT_TRUE(backend->Submit(Encode(Attempt(2, "noop"))).ok());
  // Attempt 2 cannot start while the only thread is busy: it is queued,
  // and it stays queued as long as the gate is closed.
  EXPECT_EQ(backend->Queued(), 1u);
  EXPECT_EQ(events_.StartCount(2), 0u);
  EXPECT_EQ(backend->LostSlots(), 1);

  gate_->Open();
  auto o = events_.WaitFor(2);
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(o->ok());
  EXPECT_EQ(gate_->returned(), 1);
}

// Given a running cooperative function, a queued task and a running
// stubborn one, Cancel should report each `cancelled` at once, the queued
// one without OnStarted; unknown ids are ignored.
TEST_F(ThreadsBackendTest, CancelReportsCancelledRunningOrQueued) {
  auto backend = Make(2);
  ASSERT_TRUE(backend->Submit(Encode(Attempt(1, "sleep", R"({"seconds": 3600})"))).ok());
  ASSERT_TRUE(backend->Submit(Encode(Attempt(2, "stubborn"))).ok());
  ASSERT_TRUE(events_.WaitStarted(1));
  ASSERT_TRUE(gate_->WaitEntered(1));
  ASSERT_TRUE(backend->Submit(Encode(Attempt(3, "noop"))).ok());  // both threads busy: queued

  backend->Cancel(3);
  auto o = events_.WaitFor(3);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, FailureReason::kCancelled);
  EXPECT_EQ(o->message, "cancelled before it started");
  EXPECT_EQ(events_.StartCount(3), 0u);

  backend->Cancel(1);
  o = events_.WaitFor(1);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, FailureReason::kCancelled);

  backend->Cancel(2);
  o = events_.WaitFor(2);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, FailureReason::kCancelled);
  EXPECT_EQ(gate_->returned(), 0);  // reported while still running

  backend->Cancel(2);     // reported already: ignored
  backend->Cancel(4242);  // unknown: ignored
  gate_->Open();
  ASSERT_TRUE(gate_->WaitReturned(1));
  EXPECT_TRUE(PollUntil([&] { return backend->LostSlots() == 0; }));
  backend->Shutdown(seconds(5));
  for (uint64_t id : {1, 2, 3}) EXPECT_EQ(events_.FinishCount(id), 1u) << id;
  EXPECT_FALSE(events_.WaitFor(3)->ok());
}

// Given a cooperative and a stubborn function running and a task queued,
// Shutdown should report all three `cancelled` before it returns, give up
// on the stubborn one after the grace (detaching its thread), and nothing
// should be reported when that function finally returns.
TEST_F(ThreadsBackendTest, ShutdownReportsEverythingAndAbandonsAStubbornFunction) {
  auto backend = Make(2);
  ASSERT_TRUE(backend->Submit(Encode(Attempt(1, "sleep", R"({"seconds": 3600})"))).ok());
  ASSERT_TRUE(backend->Submit(Encode(Attempt(2, "stubborn"))).ok());
  ASSERT_TRUE(events_.WaitStarted(1));
  ASSERT_TRUE(gate_->WaitEntered(1));
  ASSERT_TRUE(backend->Submit(Encode(Attempt(3, "noop"))).ok());

  const SteadyTime t0 = steady_clock::now();
  backend->Shutdown(milliseconds(200));
  EXPECT_LT(steady_clock::now() - t0, kWait);  // did not wait for the gate
  for (uint64_t id : {1, 2, 3}) {
    ASSERT_EQ(events_.FinishCount(id), 1u) << id;  // reported before Shutdown returned
    auto o = events_.WaitFor(id);
    EXPECT_EQ(o->reason, FailureReason::kCancelled) << id;
  }
  EXPECT_EQ(backend->Submit(Encode(Attempt(4, "noop"))).code(), StatusCode::kFailedPrecondition);
  backend->Shutdown(seconds(1));  // idempotent

  // The abandoned function returns later, into a stopped backend.
  gate_->Open();
  ASSERT_TRUE(gate_->WaitReturned(1));
  EXPECT_TRUE(PollUntil([&] { return backend->LostSlots() == 0; }));
  backend.reset();
  EXPECT_EQ(events_.FinishCount(2), 1u);
}

// Given a plugin function that waits with sleep_ms, Cancel should wake it
// (the token reaches the C ABI) and free its slot; remaining_ms should tell
// the deadline.
TEST_F(ThreadsBackendTest, PluginCallbacksSeeTokenAndDeadline) {
  auto backend = Make(2);
  ASSERT_TRUE(backend->Submit(Encode(Attempt(1, "echo", R"({"a": [1, 2]})"))).ok());
  ASSERT_TRUE(backend->Submit(Encode(Attempt(2, "remaining"))).ok());
  ASSERT_TRUE(backend->Submit(Encode(Attempt(3, "remaining", "", seconds(600)))).ok());
  auto o = events_.WaitFor(1);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->result_json, R"({"a":[1,2]})");
  o = events_.WaitFor(2);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->result_json, "-1");
  o = events_.WaitFor(3);
  ASSERT_TRUE(o.has_value());
  const int64_t left = std::stoll(o->result_json);
  EXPECT_GT(left, 0);
  EXPECT_LE(left, 600'000);

  ASSERT_TRUE(backend->Submit(Encode(Attempt(4, "wait_cancel"))).ok());
  ASSERT_TRUE(events_.WaitStarted(4));
  backend->Cancel(4);
  o = events_.WaitFor(4);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, FailureReason::kCancelled);
  // The function noticed and returned, so its thread is free again.
  EXPECT_TRUE(PollUntil([&] { return backend->LostSlots() == 0; }));
}

// Given many tiny tasks on several threads, should report each exactly once
// and successfully.
TEST_F(ThreadsBackendTest, ManyTasksEachReportedExactlyOnce) {
  auto backend = Make(4);
  constexpr uint64_t kTasks = 20'000;
  for (uint64_t id = 1; id <= kTasks; ++id) {
    ASSERT_TRUE(backend->Submit(Encode(Attempt(id, id % 2 ? "noop" : "sum", id % 2 ? "" : "[1, 2]"))).ok());
  }
  ASSERT_TRUE(events_.WaitTotal(kTasks));
  backend->Shutdown(seconds(5));
  for (uint64_t id = 1; id <= kTasks; ++id) {
    ASSERT_EQ(events_.FinishCount(id), 1u) << id;
    ASSERT_EQ(events_.StartCount(id), 1u) << id;
  }
  EXPECT_EQ(events_.WaitFor(2)->result_json, "3");
  EXPECT_TRUE(events_.StartsPrecedeFinishes());
}

// Given 4 slots and 4 calls submitted at once that each block until the
// test lets them go, all 4 should run at the same time: a thread that is
// about to run a call wakes another for the calls still queued, though
// Submit woke only one.
TEST_F(ThreadsBackendTest, BlockingCallsEachGetAThreadOfTheirOwn) {
  auto backend = Make(4);
  // One running already, so that the next Submit wakes a thread and the
  // two after it (encoded beforehand, submitted back to back) find it
  // searching.
  ASSERT_TRUE(backend->Submit(Encode(Attempt(1, "stubborn"))).ok());
  ASSERT_TRUE(gate_->WaitEntered(1));
  std::vector<TaskAttempt> burst;
  for (uint64_t id = 2; id <= 4; ++id) burst.push_back(Encode(Attempt(id, "stubborn")));
  for (TaskAttempt& a : burst) ASSERT_TRUE(backend->Submit(std::move(a)).ok());
  EXPECT_TRUE(gate_->WaitEntered(4));
  EXPECT_EQ(backend->Queued(), 0u);
  gate_->Open();
  ASSERT_TRUE(events_.WaitTotal(4));
  for (uint64_t id = 1; id <= 4; ++id) EXPECT_TRUE(events_.WaitFor(id)->ok()) << id;
}

// Given misuse, Submit should refuse with a status and send no event.
TEST_F(ThreadsBackendTest, SubmitRefusesBeforeStartAndDuplicateIds) {
  ThreadsBackend idle(1, Registry());
  EXPECT_EQ(idle.Submit(Encode(Attempt(1, "noop"))).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(idle.Capacity(), 1);

  auto backend = Make(1);
  ASSERT_TRUE(backend->Submit(Encode(Attempt(1, "stubborn"))).ok());
  EXPECT_EQ(backend->Submit(Encode(Attempt(1, "noop"))).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(backend->Start(&events_).code(), StatusCode::kFailedPrecondition);
  gate_->Open();
  ASSERT_TRUE(events_.WaitFor(1).has_value());
  EXPECT_EQ(events_.WaitFor(1)->result_json, "\"late\"");
  EXPECT_EQ(events_.FinishCount(1), 1u);
}

// ---------------------------------------------------------------------------
// Plugin loading

std::string Abs(const char* path) { return fs::absolute(path).string(); }

// Given a path that does not exist, should fail naming it.
TEST(PluginLoaderTest, MissingFileIsNamed) {
  FunctionRegistry registry;
  const Status s = LoadPlugin("/nonexistent/drover/plugin.so", registry);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "plugin /nonexistent/drover/plugin.so: no such file");
}

// Given a file that is not a shared library, should fail with dlopen's text.
TEST(PluginLoaderTest, NotALibraryGivesDlopenError) {
  const fs::path file = fs::path(::testing::TempDir()) /
                        ("not_a_plugin_" + std::to_string(::getpid()) + ".so");
  std::ofstream(file) << "this is text, not ELF\n";
  FunctionRegistry registry;
  const Status s = LoadPlugin(file, registry);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message().rfind("plugin " + file.string() + ": cannot load: ", 0), 0u)
      << s.message();
  fs::remove(file);
}

// Given a library without the entry symbol, should fail naming the file and
// the symbol.
TEST(PluginLoaderTest, LibraryWithoutEntrySymbolIsRefused) {
  FunctionRegistry registry;
  const Status s = LoadPlugin(DROVER_NO_ENTRY_PLUGIN, registry);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("plugin " + Abs(DROVER_NO_ENTRY_PLUGIN)), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("no entry symbol 'drover_plugin_entry'"), std::string::npos)
      << s.message();
}

// Given a plugin built for ABI 99, should refuse it saying both versions.
TEST(PluginLoaderTest, WrongAbiVersionIsRefused) {
  FunctionRegistry registry;
  const Status s = LoadPlugin(DROVER_WRONG_ABI_PLUGIN, registry);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "plugin " + Abs(DROVER_WRONG_ABI_PLUGIN) +
                             " was built for plugin ABI 99; this drover speaks 1");
  EXPECT_EQ(registry.size(), 0u);
}

// Given two plugins that define `reverse`, should refuse the second naming
// both files, and register nothing of it.
TEST(PluginLoaderTest, DuplicateNameAcrossPluginsNamesBothFiles) {
  FunctionRegistry registry;
  ASSERT_TRUE(LoadPlugin(DROVER_EXAMPLE_PLUGIN, registry).ok());
  const Status s = LoadPlugin(DROVER_DUP_REVERSE_PLUGIN, registry);
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(s.message(), "function 'reverse' is defined twice: by plugin " +
                             Abs(DROVER_EXAMPLE_PLUGIN) + " and by plugin " +
                             Abs(DROVER_DUP_REVERSE_PLUGIN));
  EXPECT_EQ(registry.SourceOf("reverse"), "plugin " + Abs(DROVER_EXAMPLE_PLUGIN));
  EXPECT_EQ(registry.Names(), (std::vector<std::string>{"reverse", "sum"}));
}

// Given a worker config with a bad plugin, ThreadsBackend::Create should fail
// naming it; with the example plugin it should run its functions.
TEST(PluginLoaderTest, CreateLoadsConfiguredPlugins) {
  BackendConfig bad;
  bad.slots = 1;
  bad.plugins = {DROVER_EXAMPLE_PLUGIN, DROVER_WRONG_ABI_PLUGIN};
  auto failed = ThreadsBackend::Create(bad);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find(Abs(DROVER_WRONG_ABI_PLUGIN)), std::string::npos)
      << failed.status().message();

  BackendConfig zero;
  zero.slots = 0;
  EXPECT_EQ(ThreadsBackend::Create(zero).status().code(), StatusCode::kInvalidArgument);

  BackendConfig good;
  good.slots = 2;
  good.plugins = {DROVER_EXAMPLE_PLUGIN};
  auto backend = ThreadsBackend::Create(good);
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  EXPECT_NE((*backend)->registry()->Find("sum"), nullptr);
  EXPECT_NE((*backend)->registry()->Find("fib"), nullptr);
  RecordingEvents events;
  ASSERT_TRUE((*backend)->Start(&events).ok());
  ASSERT_TRUE((*backend)->Submit(Encode(Attempt(1, "sum", R"({"numbers": [40, 2]})"))).ok());
  auto o = events.WaitFor(1);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->result_json, "42");
  (*backend)->Shutdown(seconds(5));
}

// Given attempts that name the job's plugins, should load each plugin once
// before the lookup (whatever the path's spelling, and also when the
// worker's config loaded it), keep its functions for later attempts, and
// fail an attempt whose plugin does not load as launch-failed naming it.
TEST(PluginLoaderTest, JobPluginsLoadOnceBeforeTheLookup) {
  BackendConfig config;
  config.slots = 2;
  auto created = ThreadsBackend::Create(config);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  ThreadsBackend& backend = **created;
  EXPECT_EQ(backend.registry()->Find("reverse"), nullptr);
  RecordingEvents events;
  ASSERT_TRUE(backend.Start(&events).ok());

  Call a = Attempt(1, "reverse", R"({"string": "abc"})");
  a.plugins = {DROVER_EXAMPLE_PLUGIN};
  ASSERT_TRUE(backend.Submit(Encode(std::move(a))).ok());
  auto o = events.WaitFor(1);
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(o->ok()) << o->Describe();
  EXPECT_EQ(o->result_json, "\"cba\"");

  // Loaded for good: no plugins needed on the next attempt, and another
  // spelling of the same file is not a second copy (no duplicate names).
  ASSERT_TRUE(backend.Submit(Encode(Attempt(2, "sum", "[1, 2]"))).ok());
  const fs::path example(DROVER_EXAMPLE_PLUGIN);
  Call b = Attempt(3, "reverse", R"("xy")");
  b.plugins = {(example.parent_path() / "." / example.filename()).string()};
  ASSERT_TRUE(backend.Submit(Encode(std::move(b))).ok());
  o = events.WaitFor(2);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->result_json, "3");
  o = events.WaitFor(3);
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(o->ok()) << o->Describe();
  EXPECT_EQ(o->result_json, "\"yx\"");

  Call c = Attempt(4, "future");
  c.plugins = {DROVER_WRONG_ABI_PLUGIN};
  ASSERT_TRUE(backend.Submit(Encode(std::move(c))).ok());
  o = events.WaitFor(4);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, FailureReason::kLaunchFailed);
  EXPECT_EQ(o->message, "plugin " + Abs(DROVER_WRONG_ABI_PLUGIN) +
                            " was built for plugin ABI 99; this drover speaks 1");
  EXPECT_EQ(events.StartCount(4), 0u);
  backend.Shutdown(seconds(5));

  // A worker that loaded the plugin from its config takes a job naming it.
  BackendConfig with_example;
  with_example.slots = 1;
  with_example.plugins = {DROVER_EXAMPLE_PLUGIN};
  auto second = ThreadsBackend::Create(with_example);
  ASSERT_TRUE(second.ok());
  RecordingEvents events2;
  ASSERT_TRUE((*second)->Start(&events2).ok());
  Call d = Attempt(1, "sum", "[20, 22]");
  d.plugins = {DROVER_EXAMPLE_PLUGIN};
  ASSERT_TRUE((*second)->Submit(Encode(std::move(d))).ok());
  o = events2.WaitFor(1);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->result_json, "42") << o->Describe();
}

}  // namespace
}  // namespace drover

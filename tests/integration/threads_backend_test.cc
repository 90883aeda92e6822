// ThreadsBackend with real pool threads and the real example plugin:
// results, errors, launch failures, cooperative and ignored timeouts, lost
// slots, Cancel, Shutdown with running functions and the plugin ABI's
// callbacks. The fixture, and how the tests wait, are
// threads_backend_fixture.h; the plugin loader's tests are
// plugin_loader_test.cc.
#include <gtest/gtest.h>

#include "tests/integration/threads_backend_fixture.h"

namespace drover {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;
using testing::Attempt;
using testing::Call;
using testing::Encode;
using testing::Gate;
using testing::In;
using testing::kWait;
using testing::PollUntil;
using testing::RecordingEvents;
using testing::ThreadsBackendTest;

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

// Given 1 slot and 2,000 calls each submitted the moment the one before
// it ended, should run every one: a call that arrives while the pool
// thread looks for one before it sleeps (the spin) is taken by that look,
// one that arrives after it gave up wakes it, and none is left queued.
TEST_F(ThreadsBackendTest, CallsSubmittedOneAfterAnotherEachRun) {
  auto backend = Make(1);
  constexpr uint64_t kCalls = 2'000;
  for (uint64_t id = 1; id <= kCalls; ++id) {
    ASSERT_TRUE(backend->Submit(Encode(Attempt(id, "noop"))).ok());
    auto done = events_.WaitFor(id);
    ASSERT_TRUE(done) << "call " << id << " did not end";
    ASSERT_TRUE(done->ok()) << id;
  }
  EXPECT_EQ(backend->Queued(), 0u);
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

}  // namespace
}  // namespace drover

// The fixture of ThreadsBackend's tests (threads_backend_test.cc) and the
// plugin loader's (plugin_loader_test.cc): real pool threads, the real
// example plugin and the loader's fixture plugins (loaded with dlopen).
//
// Every wait is on an event with a deadline (or a bounded poll of a
// condition); the only sleeps are inside functions under test, as workload.
// A function that ignores its token blocks on a Gate that the test opens,
// with a bounded wait, so nothing can hang.
#ifndef DROVER_TESTS_INTEGRATION_THREADS_BACKEND_FIXTURE_H_
#define DROVER_TESTS_INTEGRATION_THREADS_BACKEND_FIXTURE_H_

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
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "backends/functions/builtins.h"
#include "backends/functions/plugin_loader.h"
#include "backends/threads/threads_backend.h"

namespace drover::testing {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

// Generous: only reached when something is broken.
inline constexpr Duration kWait = seconds(60);

inline SteadyTime In(Duration d) { return steady_clock::now() + d; }

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
inline bool PollUntil(const std::function<bool()>& condition,
                      SteadyTime deadline = In(kWait)) {
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

inline TaskAttempt Encode(Call call) {
  std::string payload = ThreadsPayload(call.fn, call.args_json, call.plugins);
  TaskAttempt a = std::move(static_cast<TaskAttempt&>(call));
  a.payload = std::move(payload);
  return a;
}

inline Call Attempt(uint64_t id, std::string fn, std::string args = "",
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
                    ->Add(
                        "throw",
                        [](const json&, const CancelToken&) -> Result<json> {
                          throw std::runtime_error("kaboom: the input was odd");
                        },
                        "test")
                    .ok());
    // Captures the gate by shared_ptr: a detached pool thread may still be
    // in here after the test body ends.
    std::shared_ptr<Gate> gate = gate_;
    EXPECT_TRUE(registry
                    ->Add(
                        "stubborn",
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

}  // namespace drover::testing

#endif  // DROVER_TESTS_INTEGRATION_THREADS_BACKEND_FIXTURE_H_

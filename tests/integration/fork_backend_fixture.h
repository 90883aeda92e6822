// The fixture of ForkBackend's tests, which run against real pool
// processes: fork_backend_test.cc (process pools: Node children written for
// child_process.fork, Python workers) and fork_cow_test.cc (cow children of
// a real zygote). Every wait is on an event (or a bounded poll of a
// condition) with a deadline; nothing sleeps to synchronise. Each test ends
// by shutting the backend down and checking that no process it started is
// left.
//
// The backend's tests run twice: with its own reactor thread (Threaded),
// and driven (Driven, BackendConfig::driven, as the worker runs it), where
// a thread of the test plays the worker's loop (backend_driver.h).
#ifndef DROVER_TESTS_INTEGRATION_FORK_BACKEND_FIXTURE_H_
#define DROVER_TESTS_INTEGRATION_FORK_BACKEND_FIXTURE_H_

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "backends/fork/cow_child.h"
#include "backends/fork/fork_backend.h"
#include "backends/fork/ipc_channel.h"
#include "backends/fork/json_scan.h"
#include "backends/fork/pool.h"
#include "backends/fork/zygote.h"
#include "backends/functions/builtins.h"
#include "tests/integration/backend_driver.h"

namespace drover::testing {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

inline const fs::path kSource = DROVER_SOURCE_DIR;
inline constexpr Duration kWait = seconds(30);  // generous: the machine may be loaded

inline SteadyTime In(Duration d) { return steady_clock::now() + d; }

// The zygote the tests' cow pools fork from: forked once per test process
// before any thread exists, by the environment fork_backend_test.cc
// registers; null outside it.
inline std::shared_ptr<Zygote>* g_zygote = nullptr;

// ---------------------------------------------------------------------------
// Helpers.

// Records the backend's events; waits on them with deadlines.
class RecordingEvents : public BackendEvents {
 public:
  void OnStarted(uint64_t attempt_id, int pid) override {
    std::lock_guard<std::mutex> lock(mu_);
    started_[attempt_id] = pid;
    start_order_.push_back(attempt_id);
    cv_.notify_all();
  }
  void OnFinished(uint64_t attempt_id, AttemptOutcome outcome) override {
    std::lock_guard<std::mutex> lock(mu_);
    finished_[attempt_id].push_back(std::move(outcome));
    finish_time_[attempt_id] = steady_clock::now();
    cv_.notify_all();
  }

  std::optional<AttemptOutcome> WaitFor(uint64_t id, Duration within = kWait) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_until(lock, In(within), [&] { return finished_.count(id) != 0; })) {
      return std::nullopt;
    }
    return finished_[id].front();
  }
  std::optional<int> WaitStarted(uint64_t id, Duration within = kWait) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_until(lock, In(within), [&] { return started_.count(id) != 0; })) {
      return std::nullopt;
    }
    return started_[id];
  }
  size_t FinishCount(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = finished_.find(id);
    return it == finished_.end() ? 0 : it->second.size();
  }
  bool WasStarted(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    return started_.count(id) != 0;
  }
  std::vector<uint64_t> StartOrder() {
    std::lock_guard<std::mutex> lock(mu_);
    return start_order_;
  }
  SteadyTime FinishedAt(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    return finish_time_.at(id);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, int> started_;
  std::vector<uint64_t> start_order_;
  std::map<uint64_t, std::vector<AttemptOutcome>> finished_;
  std::map<uint64_t, SteadyTime> finish_time_;
};

// Children of this process (any thread), from /proc.
inline std::set<int> ChildPids() {
  std::set<int> pids;
  std::error_code ec;
  for (fs::directory_iterator it("/proc/self/task", ec), end; !ec && it != end;
       it.increment(ec)) {
    std::ifstream in(it->path() / "children");
    int pid;
    while (in >> pid) pids.insert(pid);
  }
  return pids;
}

inline bool Gone(int pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

// Polls until `pid` no longer exists (it was reaped), up to `within`.
inline bool WaitGone(int pid, Duration within = kWait) {
  const SteadyTime deadline = In(within);
  while (!Gone(pid)) {
    if (steady_clock::now() >= deadline) return false;
    std::this_thread::yield();
    // Bounded polling of a condition: this is not a synchronising sleep,
    // it only keeps the loop from spinning a core.
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

inline std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A Python pool process with test behaviours, chosen by the message's "op".
inline constexpr char kTestWorker[] = R"PY(
import json, os, signal, sys, time
fd = int(os.environ["NODE_CHANNEL_FD"])
out = os.fdopen(os.dup(fd), "wb")
def send(text):
    out.write(text.encode() + b"\n"); out.flush()
for line in os.fdopen(fd, "rb"):
    m = json.loads(line)
    op = m.get("op") if isinstance(m, dict) else None
    if op == "pid": send(json.dumps(os.getpid()))
    elif op == "exit": os._exit(m["code"])
    elif op == "signal": os.kill(os.getpid(), getattr(signal, m["name"]))
    elif op == "sleep": time.sleep(m["seconds"]); send("null")
    elif op == "trap":
        signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(m["seconds"]); send("null")
    elif op == "print":
        print(m["out"], flush=True); print(m["err"], file=sys.stderr, flush=True)
        send(json.dumps("printed"))
    elif op == "note_term":
        signal.signal(signal.SIGTERM, lambda *_: print("term", flush=True))
        print("ready", flush=True); time.sleep(m["seconds"]); send("null")
    elif op == "bad": send("{this is not json")
    elif op == "big": out.write(b"[" + b"1," * m["n"] + b"1]\n"); out.flush()
    elif op == "env": send(json.dumps(os.environ.get(m["name"])))
    else: send(json.dumps(m))
)PY";

class ForkBackendTest : public ::testing::TestWithParam<bool> {
 protected:
  bool driven() const { return GetParam(); }

  void SetUp() override {
    // A parameterised test's name has a '/' ("Name/Driven"): one directory,
    // not a parent left behind by TearDown's remove_all.
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(name.begin(), name.end(), '/', '-');
    dir_ = fs::temp_directory_path() /
           ("drover-fork-test-" + std::to_string(::getpid()) + "-" + name);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    worker_ = dir_ / "test_worker.py";
    std::ofstream(worker_) << kTestWorker;
  }

  void TearDown() override {
    if (backend_) Shutdown(seconds(5));
    backend_.reset();
    // Every process the backend started is reaped by Shutdown.
    std::set<int> left = ChildPids();
    if (g_zygote != nullptr && *g_zygote) left.erase((*g_zygote)->pid());
    EXPECT_TRUE(left.empty()) << "processes left behind: " << left.size();
    for (int pid : left) ::kill(pid, SIGKILL);
    fs::remove_all(dir_);
  }

  void StartBackend(int slots, bool with_zygote = true, const Clock* clock = nullptr) {
    BackendConfig config;
    config.slots = slots;
    config.clock = clock;
    if (with_zygote && g_zygote != nullptr) config.zygote = *g_zygote;
    config.driven = driven();
    backend_ = std::make_unique<ForkBackend>(config);
    ASSERT_TRUE(backend_->Start(&events_).ok());
    if (driven()) driver_.Start(backend_.get());
  }

  // Driven: stops the test's driver thread first, so that Shutdown runs the
  // reactor's last turns on this thread alone.
  void Shutdown(Duration grace) {
    driver_.Stop();
    backend_->Shutdown(grace);
  }

  PoolSpec PythonPool(const std::string& name, int instances = 1) {
    PoolSpec spec;
    spec.name = name;
    spec.command = {"python3", worker_.string()};
    spec.instances = instances;
    return spec;
  }

  PoolSpec CowPool(const std::string& name, int instances = 1) {
    PoolSpec spec;
    spec.name = name;
    spec.mode = "cow";
    spec.instances = instances;
    return spec;
  }

  // Submits a message to a process pool; asserts it was accepted.
  void Send(uint64_t id, const PoolSpec& spec, const std::string& message,
            Duration timeout = Duration(0), Duration kill_grace = seconds(5)) {
    ForkAttempt attempt;
    attempt.attempt_id = id;
    attempt.task = "t" + std::to_string(id);
    attempt.pool = spec.name;
    attempt.pool_spec = spec;
    attempt.message_json = message;
    attempt.timeout = timeout;
    attempt.kill_grace = kill_grace;
    attempt.stdout_path = dir_ / (std::to_string(id) + ".out");
    attempt.stderr_path = dir_ / (std::to_string(id) + ".err");
    Status s = backend_->Submit(EncodeForkAttempt(std::move(attempt)));
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  // Submits a function call to a cow pool.
  void Call(uint64_t id, const PoolSpec& spec, const std::string& fn,
            const std::string& args, Duration timeout = Duration(0)) {
    ForkAttempt attempt;
    attempt.attempt_id = id;
    attempt.pool = spec.name;
    attempt.pool_spec = spec;
    attempt.fn = fn;
    attempt.args_json = args;
    attempt.timeout = timeout;
    attempt.stdout_path = dir_ / (std::to_string(id) + ".out");
    attempt.stderr_path = dir_ / (std::to_string(id) + ".err");
    Status s = backend_->Submit(EncodeForkAttempt(std::move(attempt)));
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  // Waits for a successful outcome and returns its result JSON.
  std::string ResultOf(uint64_t id) {
    std::optional<AttemptOutcome> o = events_.WaitFor(id);
    if (!o) {
      ADD_FAILURE() << "attempt " << id << " did not finish";
      return "";
    }
    EXPECT_TRUE(o->ok()) << o->Describe();
    return o->result_json;
  }

  fs::path dir_;
  fs::path worker_;
  RecordingEvents events_;
  FakeClock clock_;  // for the tests that pass it to StartBackend; outlives backend_
  std::unique_ptr<ForkBackend> backend_;
  testing::BackendDriver driver_;  // driven: plays the worker's loop
};

}  // namespace drover::testing

#endif  // DROVER_TESTS_INTEGRATION_FORK_BACKEND_FIXTURE_H_

// The fixture of SpawnBackend's tests, which run against real processes:
// spawn_backend_test.cc (exit codes, signals, timeouts, orphans, output
// capture, environment and cwd) and spawn_lifecycle_test.cc (launch
// failures, cancellation, shutdown, capacity, resource usage and limits).
// Every wait is on an event (or a bounded poll of a condition) with a
// deadline; nothing sleeps to synchronise.
//
// Each test runs twice: with the backend's own reactor thread (Threaded),
// and driven (Driven, BackendConfig::driven, as the worker runs it), where
// a thread of the test plays the worker's loop: it waits on PollFd() for
// at most PollTimeoutMs() and calls Poll(), until the test stops it before
// Shutdown.
#ifndef DROVER_TESTS_INTEGRATION_SPAWN_BACKEND_FIXTURE_H_
#define DROVER_TESTS_INTEGRATION_SPAWN_BACKEND_FIXTURE_H_

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "backends/spawn/spawn_backend.h"
#include "tests/integration/backend_driver.h"

namespace drover::testing {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

inline SteadyTime In(Duration d) { return steady_clock::now() + d; }

// Records the backend's events; waits on them with deadlines.
class RecordingEvents : public BackendEvents {
 public:
  void OnStarted(uint64_t attempt_id, int pid) override {
    std::lock_guard<std::mutex> lock(mu_);
    started_[attempt_id] = pid;
    cv_.notify_all();
  }
  void OnFinished(uint64_t attempt_id, AttemptOutcome outcome) override {
    std::lock_guard<std::mutex> lock(mu_);
    finished_[attempt_id].push_back(std::move(outcome));
    ++total_finished_;
    cv_.notify_all();
  }

  // The first outcome of `attempt_id`, or nothing by `deadline`.
  std::optional<AttemptOutcome> WaitFor(uint64_t attempt_id, SteadyTime deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_until(lock, deadline,
                        [&] { return finished_.count(attempt_id) != 0; })) {
      return std::nullopt;
    }
    return finished_[attempt_id].front();
  }
  // The pid reported by OnStarted, or nothing by `deadline`.
  std::optional<int> WaitStarted(uint64_t attempt_id, SteadyTime deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_until(lock, deadline,
                        [&] { return started_.count(attempt_id) != 0; })) {
      return std::nullopt;
    }
    return started_[attempt_id];
  }
  // Waits until more than `seen` OnFinished calls happened in total.
  bool WaitTotalAbove(size_t seen, SteadyTime deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_until(lock, deadline, [&] { return total_finished_ > seen; });
  }
  size_t FinishCount(uint64_t attempt_id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = finished_.find(attempt_id);
    return it == finished_.end() ? 0 : it->second.size();
  }
  bool WasStarted(uint64_t attempt_id) {
    std::lock_guard<std::mutex> lock(mu_);
    return started_.count(attempt_id) != 0;
  }
  size_t TotalFinished() {
    std::lock_guard<std::mutex> lock(mu_);
    return total_finished_;
  }
  std::vector<int> Pids() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<int> pids;
    for (const auto& [id, pid] : started_) pids.push_back(pid);
    return pids;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, int> started_;
  std::map<uint64_t, std::vector<AttemptOutcome>> finished_;
  size_t total_finished_ = 0;
};

// /proc/PID/stat fields after the command name: state, ppid, pgrp.
struct ProcStat {
  char state = '?';
  int pgrp = 0;
};

inline std::optional<ProcStat> ReadStat(const fs::path& stat_path) {
  std::ifstream in(stat_path);
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  size_t paren = line.rfind(')');  // the command name may hold spaces
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(paren + 1));
  ProcStat stat;
  int ppid = 0;
  if (!(rest >> stat.state >> ppid >> stat.pgrp)) return std::nullopt;
  return stat;
}

// True when `pid` no longer runs: gone, or a zombie waiting for whoever
// inherited it.
inline bool ProcessGone(int pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
  auto stat = ReadStat("/proc/" + std::to_string(pid) + "/stat");
  return !stat || stat->state == 'Z';
}

// True when no live (non-zombie) process is left in process group `pgid`.
inline bool GroupGone(int pgid) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto stat = ReadStat(entry.path() / "stat");
    if (stat && stat->pgrp == pgid && stat->state != 'Z') return false;
  }
  return true;
}

// Polls `condition` every few milliseconds until it holds or `deadline`.
template <typename F>
bool PollUntil(F condition, SteadyTime deadline) {
  while (!condition()) {
    if (steady_clock::now() >= deadline) return condition();
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

inline std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class SpawnBackendTest : public ::testing::TestWithParam<bool> {
 protected:
  bool driven() const { return GetParam(); }
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "drover-spawn-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = fs::canonical(tmpl);
    // SIGABRT tests must not litter the machine with core files.
    rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);
  }

  void TearDown() override {
    if (backend_) Shutdown(Duration(0));
    // Leaders are reaped by the backend; anything a test learned about
    // besides them (grandchildren) is killed by pid if still there.
    for (int pid : extra_pids_) {
      if (pid > 0 && !ProcessGone(pid)) ::kill(pid, SIGKILL);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  SpawnBackend& Make(int slots = 4, const Clock* clock = nullptr) {
    BackendConfig config;
    config.slots = slots;
    config.clock = clock;
    config.driven = driven();
    backend_ = std::make_unique<SpawnBackend>(config);
    Status s = backend_->Start(&events_);
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (s.ok() && driven()) driver_.Start(backend_.get());
    return *backend_;
  }

  // Driven: stops the test's driver thread first, so that Shutdown runs the
  // reactor's last turns on this thread alone.
  void Shutdown(Duration grace) {
    driver_.Stop();
    backend_->Shutdown(grace);
  }

  SpawnAttempt Attempt(uint64_t id, std::vector<std::string> argv) {
    SpawnAttempt attempt;
    attempt.attempt_id = id;
    attempt.job_id = "job";
    attempt.task = "task-" + std::to_string(id);
    attempt.argv = std::move(argv);
    attempt.stdout_path = dir_ / "logs" / (std::to_string(id) + ".out");
    attempt.stderr_path = dir_ / "logs" / (std::to_string(id) + ".err");
    return attempt;
  }

  SpawnAttempt Shell(uint64_t id, const std::string& script) {
    return Attempt(id, {"sh", "-c", script});
  }

  // Submits and waits for the outcome (fails the test on a timeout).
  AttemptOutcome Run(SpawnAttempt attempt, Duration within = seconds(20)) {
    uint64_t id = attempt.attempt_id;
    Status s = backend_->Submit(EncodeSpawnAttempt(std::move(attempt)));
    EXPECT_TRUE(s.ok()) << s.ToString();
    auto outcome = events_.WaitFor(id, In(within));
    EXPECT_TRUE(outcome.has_value()) << "attempt " << id << " never finished";
    return outcome.value_or(AttemptOutcome{});
  }

  fs::path dir_;
  RecordingEvents events_;
  FakeClock clock_;  // for the tests that pass it to Make; outlives backend_
  std::unique_ptr<SpawnBackend> backend_;
  std::vector<int> extra_pids_;
  testing::BackendDriver driver_;  // driven: plays the worker's loop
};

}  // namespace drover::testing

#endif  // DROVER_TESTS_INTEGRATION_SPAWN_BACKEND_FIXTURE_H_

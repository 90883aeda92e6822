// A harness for tests of distributed drover with real processes: a
// `drover coordinator` on an ephemeral loopback port in a temporary state
// directory, N `drover worker`s connected to it, and `drover` client commands
// against it. Any daemon can be killed -9, sent SIGTERM/SIGSTOP/SIGCONT, and
// restarted by pid; the coordinator restarts on the endpoint it first bound
// (same port), so workers and clients find it again. The state store is read
// with SQLite directly, read-only, to count attempt and result rows.
//
// Synchronisation is on events with deadlines: a daemon's output arrives
// through pipes drained by a reader thread (waits block on a condition
// variable, not a poll loop), exits are waited for on a pidfd, and the few
// conditions only a query can see (a task state, a row count) are polled a
// bounded number of times.
//
// Clean-up: the test process makes itself a child subreaper, so the tasks a
// killed worker leaves behind are re-parented to it. TearDown kills (SIGKILL,
// by pid) and reaps every daemon and client it started, then every other
// child that was re-parented to it, even when the test failed.
#ifndef DROVER_TESTS_INTEGRATION_DISTRIBUTED_TEST_UTIL_H_
#define DROVER_TESTS_INTEGRATION_DISTRIBUTED_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/cli_test_util.h"

namespace drover::testing {

// A child process whose stdout and stderr come back through pipes. A reader
// thread drains both into memory for the child's whole life (so a chatty
// child never blocks on a full pipe) and wakes the waiters of WaitFor*.
// The child runs in its own process group, with stdin from /dev/null,
// default signal dispositions and an empty signal mask.
//
// The destructor SIGKILLs the child's group if it still runs and reaps it.
// Not thread-safe, except that the output accessors may be called while the
// reader thread runs.
class DaemonProcess {
 public:
  // `label` names the process in messages ("coordinator", "worker w1").
  // `env` entries replace or add to this process's environment.
  DaemonProcess(std::string label, std::vector<std::string> argv,
                std::filesystem::path cwd, std::map<std::string, std::string> env);
  ~DaemonProcess();
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  // Starts the child. On failure returns false and records a test failure.
  bool Start();
  const std::string& label() const { return label_; }
  const std::vector<std::string>& argv() const { return argv_; }
  // The pid, -1 before Start and after the child was reaped.
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

  // Sends `sig` to the child itself (not its group). False when it is not
  // running or kill(2) fails.
  bool Signal(int sig);
  // Waits up to `timeout` for the child to end and reaps it. On the deadline
  // it records a test failure, SIGKILLs the group, reaps and returns with
  // finished == false. The output is everything read so far.
  ProcessResult Wait(Millis timeout);
  // kill -9 of the process alone (what a crash does), then reaps it. The
  // tasks a worker started die with it only through its guardian
  // (backends/process/guardian.h), which this does not touch.
  ProcessResult Crash();

  // Waits until `pred(stdout, stderr)` holds, the child's output ends, or
  // `timeout` passes; returns whether it held. Called again on every chunk
  // of output, never in a busy loop.
  bool WaitForOutput(
      const std::function<bool(const std::string&, const std::string&)>& pred,
      Millis timeout);
  // Waits for stdout's first complete line and returns it without the
  // newline; nothing (and no failure) on the deadline or end of output.
  std::optional<std::string> WaitForFirstLine(Millis timeout);
  // Waits until stderr contains `needle`.
  bool WaitForStderr(const std::string& needle, Millis timeout);

  std::string Out() const;
  std::string Err() const;
  // The last `bytes` of stderr, for failure messages.
  std::string ErrTail(size_t bytes = 4000) const;

 private:
  void ReaderLoop(int out_fd, int err_fd, int stop_fd);
  void StopReader();
  void KillGroupAndReap(int* status);
  ProcessResult Collect(bool finished, int status);

  std::string label_;
  std::vector<std::string> argv_;
  std::filesystem::path cwd_;
  std::map<std::string, std::string> env_;
  pid_t pid_ = -1;
  int pidfd_ = -1;
  int stop_fd_ = -1;  // eventfd: tells the reader thread to quit
  std::chrono::steady_clock::time_point started_;
  std::thread reader_;

  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::string out_;   // GUARDED_BY(mu_)
  std::string err_;   // GUARDED_BY(mu_)
  bool eof_ = false;  // GUARDED_BY(mu_): both pipes closed
};

// Polls `condition` every `interval` until it holds or `timeout` passes;
// returns whether it held. Bounded: at most timeout / interval + 2 calls.
// For conditions that only a query shows (a client command, a store row).
bool PollUntil(const std::function<bool()>& condition, Millis timeout, Millis interval);
// How often conditions that start a client process are looked at again:
// each look competes for the cores with the processes under test.
inline constexpr Millis kClientPollInterval{100};

// The `drover serve ...` children of `parent` (the instances of a service
// the worker supervises), by pid.
std::set<pid_t> ServeChildren(pid_t parent);

// One row of a query on the state store, column name -> text (NULL: "").
using StoreRow = std::map<std::string, std::string>;

// Runs `sql` on <state_dir>/state.db opened read-only (it never creates or
// changes the file). Records a test failure and returns nothing on error.
std::optional<std::vector<StoreRow>> QueryStore(const std::filesystem::path& state_dir,
                                                const std::string& sql);
// The single integer a `SELECT count(*) ...` returns; -1 (and a test
// failure) on error.
int64_t StoreCount(const std::filesystem::path& state_dir, const std::string& sql);
// `text` as an SQL string literal.
std::string SqlQuote(const std::string& text);

// The job object of a `drover status JOB --output json` document
// ({"job": {...}} or {"jobs": [{...}]}); null when there is none.
nlohmann::json JobOfStatus(const nlohmann::json& doc);

// The fixture. Each test gets a fresh temporary directory: work_ is the
// working directory of every process (tasks write their marker files there),
// state_ the coordinator's --state-dir. Short heartbeats (heartbeat_ x
// liveness_ is how long a silent peer lives) keep failure tests to seconds.
class DistributedTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Starts `drover coordinator --listen L --state-dir state_ --heartbeat H
  // --liveness N EXTRA...`, L = tcp://127.0.0.1:0 the first time, then the
  // endpoint it bound. Waits for the bound endpoint on the first stdout line
  // and keeps it in endpoint_. nullptr (and a test failure) if it does not
  // come up.
  DaemonProcess* StartCoordinator(const std::vector<std::string>& extra = {});
  // Starts `drover worker --connect endpoint_ --name NAME --slots SLOTS
  // --heartbeat H --liveness N EXTRA...`.
  DaemonProcess* StartWorker(const std::string& name,
                             const std::string& slots = "spawn=4",
                             const std::vector<std::string>& extra = {});
  // Starts a new process with the argv of `old`, which must have ended.
  DaemonProcess* Restart(DaemonProcess* old);
  // The running coordinator (the latest started), or nullptr.
  DaemonProcess* coordinator() { return coordinator_; }

  // Writes `yaml` to work_/name and returns `name`.
  std::string Spec(const std::string& name, const std::string& yaml);
  // Runs `drover ARGS...` as a client (DROVER_COORDINATOR=endpoint_) to
  // completion, in work_.
  ProcessResult Drover(const std::vector<std::string>& args, Millis timeout = kDeadline);
  // Starts `drover ARGS...` as a client without waiting for it.
  DaemonProcess* StartClient(const std::vector<std::string>& args);
  // `drover submit SPEC`: the job id it printed, or "" and a test failure.
  std::string Submit(const std::string& spec);
  // `drover status JOB --output json`: a null json and a test failure when
  // it fails or prints no JSON object.
  nlohmann::json Status(const std::string& job);
  // The tasks of Status(job), by name.
  std::map<std::string, nlohmann::json> Tasks(const std::string& job);
  // `drover workers --output json`, as name -> the worker's object.
  std::map<std::string, nlohmann::json> Workers();
  // Polls Status(job) (bounded) until the job's state is one of `states`;
  // returns the last state seen.
  std::string WaitForJobState(const std::string& job,
                              const std::vector<std::string>& states, Millis timeout);
  // Polls Workers() (bounded) until worker `name` is in `state`.
  bool WaitForWorkerState(const std::string& name, const std::string& state,
                          Millis timeout);
  // Polls Workers() (bounded) until worker `name` has `used` slots of
  // `backend` in use (above its slots by what it prefetched).
  bool WaitForSlotsUsed(const std::string& name, const std::string& backend, int used,
                        Millis timeout);
  // Polls the store (bounded) until the job's row has one of `states`:
  // cheaper than Status() when a test polls often or the coordinator is down.
  std::string WaitForStoredJobState(const std::string& job,
                                    const std::vector<std::string>& states,
                                    Millis timeout);

  // Process environment for every drover started here.
  std::map<std::string, std::string> Env() const;
  // Appends the last lines every daemon wrote to stderr to the test output
  // (called by TearDown on failure).
  void DumpDaemonLogs() const;

  std::string heartbeat_ = "200ms";
  int liveness_ = 5;
  std::string log_level_ = "info";
  // Added to (or replacing entries of) Env() for the drovers started after.
  std::map<std::string, std::string> extra_env_;
  // For tests that bound a daemon's RSS: under AddressSanitizer (the CI's
  // build) freed memory waits in a 256 MB quarantine before it is reused,
  // so every buffer a transfer ever freed would count. A 16 MB quarantine
  // still catches a use-after-free of the last few. Applies to the drovers
  // started after; an uninstrumented build ignores it.
  void ShrinkAsanQuarantine();

  std::filesystem::path root_;
  std::filesystem::path work_;
  std::filesystem::path state_;
  std::string endpoint_;  // tcp://127.0.0.1:PORT once a coordinator bound

 private:
  DaemonProcess* Launch(const std::string& label, const std::vector<std::string>& argv);

  std::vector<std::unique_ptr<DaemonProcess>> processes_;
  DaemonProcess* coordinator_ = nullptr;
  std::vector<std::string> coordinator_extra_;  // for Restart
};

}  // namespace drover::testing

#endif  // DROVER_TESTS_INTEGRATION_DISTRIBUTED_TEST_UTIL_H_

// Helpers for end-to-end tests of a binary: start it with posix_spawn in its
// own process group with its output captured to files, wait for it with a
// deadline, signal it, and poll conditions (a file a task writes, a process
// going away) with deadlines instead of sleeping. DroverCliTest, at the end,
// is the fixture of the tests of the `drover` binary.
//
// Failures that make the test meaningless (a spawn that fails, a deadline
// that passes) are reported with ADD_FAILURE, so the caller's test fails with
// a message that says what was being waited for.
#ifndef DROVER_TESTS_INTEGRATION_CLI_TEST_UTIL_H_
#define DROVER_TESTS_INTEGRATION_CLI_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace drover::testing {

using Millis = std::chrono::milliseconds;

// How a child ended, and what it wrote.
struct ProcessResult {
  bool finished = false;  // false: it missed its deadline and was killed
  int exit_code = -1;     // its exit status; -1 unless it exited
  int term_signal = 0;    // the signal that killed it; 0 unless it was killed
  std::string out;        // everything it wrote to stdout
  std::string err;        // everything it wrote to stderr
  Millis elapsed{0};      // from Start to the end of the wait

  // "exit 1", "signal 9" or "did not finish", then both streams: for
  // assertion messages.
  std::string Describe() const;
};

// One child process. It runs in a new process group (its pid is the group
// id), with stdin from /dev/null, default signal dispositions, an empty
// signal mask, and stdout/stderr redirected to files in `capture_dir`.
// The destructor kills the group with SIGKILL if the child is still running
// and reaps it, so a failed assertion never leaves it behind.
//
// Not thread-safe; movable only by being held in a std::unique_ptr.
class ChildProcess {
 public:
  ChildProcess(std::vector<std::string> argv, std::filesystem::path cwd,
               std::filesystem::path capture_dir);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Starts the child. On failure returns false and records a test failure.
  bool Start();
  // The child's pid, -1 before Start or after it was reaped.
  pid_t pid() const { return pid_; }
  // Sends `sig` to the child itself (not its group). False when it is not
  // running or kill(2) fails.
  bool Signal(int sig);
  // Waits up to `timeout` for the child to end. On the deadline it records a
  // test failure, SIGKILLs the group, reaps the child and returns a result
  // with finished == false. Either way the captured output is returned.
  ProcessResult Wait(Millis timeout);
  // The text the child wrote so far (for waiting on a message).
  std::string StdoutSoFar() const;
  std::string StderrSoFar() const;

 private:
  std::string Describe() const;  // the argv, for messages
  void KillGroupAndReap();

  std::vector<std::string> argv_;
  std::filesystem::path cwd_;
  std::filesystem::path out_path_;
  std::filesystem::path err_path_;
  pid_t pid_ = -1;
  std::chrono::steady_clock::time_point started_;
};

// Runs `argv` in `cwd` to completion (see ChildProcess), with a deadline.
ProcessResult RunProcess(const std::vector<std::string>& argv,
                         const std::filesystem::path& cwd,
                         const std::filesystem::path& capture_dir, Millis timeout);

// Polls `condition` every few milliseconds until it holds or `timeout`
// passes. Returns whether it held. Bounded: it calls `condition` at most
// timeout / poll interval + 2 times.
bool WaitUntil(const std::function<bool()>& condition, Millis timeout);

// The contents of `path`, or nothing when it cannot be read.
std::optional<std::string> ReadFile(const std::filesystem::path& path);
// Writes `text` to `path` (replacing it). Records a test failure on error.
void WriteFile(const std::filesystem::path& path, const std::string& text);

// Waits until `path` holds a complete line with a decimal pid in it (a task
// writes `echo $$ > FILE`, which may be seen half-written) and returns the
// pid, or nothing on the deadline.
std::optional<pid_t> WaitForPidFile(const std::filesystem::path& path, Millis timeout);

// A process as /proc shows it.
struct ProcInfo {
  pid_t pid = 0;
  char state = 0;                 // 'R', 'S', ...
  std::string comm;               // the name in /proc/PID/stat
  std::vector<std::string> argv;  // /proc/PID/cmdline
};
// The children of `parent` that are not zombies. A process that exits
// during the scan is left out (its /proc files fail to read with ESRCH).
std::vector<ProcInfo> LiveChildren(pid_t parent);

// True when `pid` no longer runs: kill(pid, 0) fails with ESRCH, or the
// process is a zombie (state 'Z' in /proc/PID/stat) waiting for a parent
// that is not us.
bool ProcessGone(pid_t pid);

// SIGKILLs `pid` if it still runs and its command line (/proc/PID/cmdline,
// arguments joined by spaces) contains `needle`, so that a recycled pid of an
// unrelated process is left alone. For cleaning up processes a task started,
// whose pid a test learned from a file.
void KillIfRunning(pid_t pid, const std::string& needle);

// A fresh directory from mkdtemp under $TMPDIR (or /tmp). Records a test
// failure and returns an empty path on error.
std::filesystem::path MakeTempDir(const std::string& prefix);

// How many regular files the tree under `dir` holds (0 when it is missing).
size_t FilesUnder(const std::filesystem::path& dir);

// --- The `drover` binary ----------------------------------------------------

// Generous next to what a test run needs (well under a second for most, a
// few seconds for a 1,000-task job), so that only a hang reaches it.
inline constexpr Millis kDeadline{60'000};

// The lines of `text` that start with `tag` and contain every one of `parts`.
std::vector<std::string> LinesWith(const std::string& text, const std::string& tag,
                                   const std::vector<std::string>& parts);
// How many lines of `text` equal `line`.
size_t CountLines(const std::string& text, const std::string& line);
// The tasks of a `drover status --output json` document, by name.
std::map<std::string, nlohmann::json> TasksByName(const nlohmann::json& doc);

// A fixture for tests of the `drover` binary (the DROVER_BIN compile
// definition of the test target). Each test gets a fresh temporary
// directory: work_ is the working directory of every drover it starts,
// state_ the --state-dir, capture_ holds their captured output. TearDown
// kills (by pid) the drovers still running and the task processes
// registered with KillLater, then removes the directory.
class DroverCliTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Writes `yaml` to work_/name and returns `name`.
  std::string Spec(const std::string& name, const std::string& yaml);
  // Runs `drover ARGS...` in `cwd` (default: work_) to completion.
  ProcessResult Drover(const std::vector<std::string>& args, Millis timeout = kDeadline,
                       const std::filesystem::path& cwd = {});
  // `drover run SPEC --state-dir STATE --no-progress EXTRA...` in work_.
  ProcessResult Run(const std::string& spec, const std::vector<std::string>& extra = {},
                    Millis timeout = kDeadline);
  // Starts `drover ARGS...` in work_ without waiting for it (nullptr and a
  // test failure if it cannot start). The fixture owns it.
  ChildProcess* StartDrover(const std::vector<std::string>& args);
  // The document of `drover status [JOB] --output json`: a null json (and a
  // test failure) when the command fails or prints something else.
  nlohmann::json Status(const std::string& job = "");
  // Remembers a process a task started, so that TearDown kills it if it is
  // still alive (and its command line still contains `needle`).
  void KillLater(pid_t pid, const std::string& needle);

  std::filesystem::path root_;
  std::filesystem::path work_;
  std::filesystem::path capture_;
  std::filesystem::path state_;

 private:
  std::vector<std::unique_ptr<ChildProcess>> running_;  // from StartDrover
  std::vector<std::pair<pid_t, std::string>> task_pids_;
};

}  // namespace drover::testing

#endif  // DROVER_TESTS_INTEGRATION_CLI_TEST_UTIL_H_

#include "tests/integration/cli_test_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "core/base/files.h"

namespace drover::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// How often bounded polls look at their condition: short next to every
// deadline here, long enough not to burn a core that the child needs.
constexpr Millis kPollInterval{10};

// A new, empty, uniquely named file in `dir`, for one captured stream.
fs::path MakeCaptureFile(const fs::path& dir, const std::string& suffix) {
  std::string name = (dir / ("proc-XXXXXX" + suffix)).string();
  std::vector<char> buf(name.begin(), name.end());
  buf.push_back('\0');
  const int fd = ::mkstemps(buf.data(), static_cast<int>(suffix.size()));
  if (fd < 0) {
    ADD_FAILURE() << "mkstemps in " << dir << ": " << ::strerror(errno);
    return {};
  }
  ::close(fd);
  return fs::path(buf.data());
}

std::string ReadOrEmpty(const fs::path& path) {
  if (path.empty()) return "";
  return ReadFile(path).value_or("");
}

// The state letter of /proc/PID/stat ('R', 'S', 'Z', ...), or 0 when the
// process is not there. The command name in parentheses may itself hold
// spaces and parentheses, so the state is found after the last ')'.
char ProcState(pid_t pid) {
  const std::optional<std::string> stat =
      ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return 0;
  const size_t close = stat->rfind(')');
  if (close == std::string::npos || close + 2 >= stat->size()) return 0;
  return (*stat)[close + 2];
}

}  // namespace

std::string ProcessResult::Describe() const {
  std::ostringstream s;
  if (!finished) {
    s << "did not finish";
  } else if (term_signal != 0) {
    s << "killed by signal " << term_signal;
  } else {
    s << "exit " << exit_code;
  }
  s << " after " << elapsed.count() << "ms\n--- stdout ---\n"
    << out << "\n--- stderr ---\n"
    << err << "\n---";
  return s.str();
}

ChildProcess::ChildProcess(std::vector<std::string> argv, fs::path cwd,
                           fs::path capture_dir)
    : argv_(std::move(argv)), cwd_(std::move(cwd)) {
  out_path_ = MakeCaptureFile(capture_dir, ".out");
  err_path_ = MakeCaptureFile(capture_dir, ".err");
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) KillGroupAndReap();
}

std::string ChildProcess::Describe() const {
  std::string s;
  for (const auto& a : argv_) s += (s.empty() ? "" : " ") + a;
  return s;
}

bool ChildProcess::Start() {
  if (pid_ > 0) {
    ADD_FAILURE() << "ChildProcess::Start called twice for " << Describe();
    return false;
  }
  if (argv_.empty() || out_path_.empty() || err_path_.empty()) {
    ADD_FAILURE() << "cannot start '" << Describe() << "': no argv or no capture files";
    return false;
  }
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);

  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path_.c_str(),
                                   O_WRONLY | O_TRUNC, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path_.c_str(),
                                   O_WRONLY | O_TRUNC, 0);
  if (!cwd_.empty()) posix_spawn_file_actions_addchdir_np(&actions, cwd_.c_str());

  // Its own group, so that a deadline kill reaches whatever it started in
  // its group, and a terminal's Ctrl-C aimed at the test does not reach it.
  // Default dispositions and an empty mask: the test runner may have
  // ignored or blocked signals that the child's behaviour depends on.
  sigset_t all;
  sigfillset(&all);
  sigdelset(&all, SIGKILL);
  sigdelset(&all, SIGSTOP);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(
      &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  std::vector<char*> args;
  args.reserve(argv_.size() + 1);
  for (auto& a : argv_) args.push_back(a.data());
  args.push_back(nullptr);

  started_ = Clock::now();
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    ADD_FAILURE() << "posix_spawn '" << Describe() << "': " << ::strerror(rc);
    return false;
  }
  pid_ = pid;
  return true;
}

bool ChildProcess::Signal(int sig) {
  if (pid_ <= 0) return false;
  return ::kill(pid_, sig) == 0;
}

void ChildProcess::KillGroupAndReap() {
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);  // in case it left its group
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

ProcessResult ChildProcess::Wait(Millis timeout) {
  ProcessResult result;
  if (pid_ <= 0) {
    ADD_FAILURE() << "ChildProcess::Wait without a running child: " << Describe();
    return result;
  }
  const auto deadline = Clock::now() + timeout;
  while (true) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      result.finished = true;
      if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
      if (WIFSIGNALED(status)) result.term_signal = WTERMSIG(status);
      pid_ = -1;
      break;
    }
    if (r < 0 && errno != EINTR) {
      ADD_FAILURE() << "waitpid(" << pid_ << "): " << ::strerror(errno);
      pid_ = -1;
      break;
    }
    const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
    if (left.count() <= 0) {
      ADD_FAILURE() << "'" << Describe() << "' did not finish within " << timeout.count()
                    << "ms; killed its process group";
      KillGroupAndReap();
      break;
    }
    // Wait for the exit itself: a pidfd becomes readable when the child
    // terminates. (Should pidfd_open fail, the loop re-checks each tick.)
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    pollfd pfd{pidfd, POLLIN, 0};
    ::poll(&pfd, pidfd >= 0 ? 1 : 0,
           static_cast<int>(pidfd >= 0 ? left.count() : kPollInterval.count()));
    if (pidfd >= 0) ::close(pidfd);
  }
  result.elapsed = std::chrono::duration_cast<Millis>(Clock::now() - started_);
  result.out = ReadOrEmpty(out_path_);
  result.err = ReadOrEmpty(err_path_);
  return result;
}

std::string ChildProcess::StdoutSoFar() const { return ReadOrEmpty(out_path_); }
std::string ChildProcess::StderrSoFar() const { return ReadOrEmpty(err_path_); }

ProcessResult RunProcess(const std::vector<std::string>& argv, const fs::path& cwd,
                         const fs::path& capture_dir, Millis timeout) {
  ChildProcess child(argv, cwd, capture_dir);
  if (!child.Start()) return ProcessResult{};
  return child.Wait(timeout);
}

bool WaitUntil(const std::function<bool()>& condition, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (Clock::now() >= deadline) return condition();
    std::this_thread::sleep_for(kPollInterval);
  }
}

std::optional<std::string> ReadFile(const fs::path& path) {
  std::string text;
  if (ReadWholeFile(path.string(), &text) != 0) return std::nullopt;
  return text;
}

void WriteFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) ADD_FAILURE() << "cannot write " << path;
}

std::optional<pid_t> WaitForPidFile(const fs::path& path, Millis timeout) {
  pid_t pid = -1;
  const bool seen = WaitUntil(
      [&] {
        const std::optional<std::string> text = ReadFile(path);
        // A complete line: the writer's `echo` may not have finished.
        if (!text || text->empty() || text->back() != '\n') return false;
        char* end = nullptr;
        const long value = std::strtol(text->c_str(), &end, 10);
        if (end == text->c_str() || value <= 0) return false;
        pid = static_cast<pid_t>(value);
        return true;
      },
      timeout);
  if (!seen) return std::nullopt;
  return pid;
}

std::vector<ProcInfo> LiveChildren(pid_t parent) {
  std::vector<ProcInfo> found;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return found;
  while (const dirent* d = ::readdir(proc)) {
    const std::string name = d->d_name;
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos)
      continue;
    const std::optional<std::string> stat = ReadFile("/proc/" + name + "/stat");
    if (!stat) continue;
    // pid (comm) state ppid ...: comm may hold spaces and parentheses.
    const size_t open = stat->find('('), close = stat->rfind(')');
    if (open == std::string::npos || close == std::string::npos || close < open) continue;
    std::istringstream rest(stat->substr(close + 1));
    ProcInfo info;
    long ppid = 0;
    if (!(rest >> info.state >> ppid) || ppid != parent || info.state == 'Z') continue;
    const std::optional<std::string> cmdline = ReadFile("/proc/" + name + "/cmdline");
    if (!cmdline) continue;
    info.pid = static_cast<pid_t>(std::stol(name));
    info.comm = stat->substr(open + 1, close - open - 1);
    for (size_t start = 0; start < cmdline->size();) {
      size_t end = cmdline->find('\0', start);
      if (end == std::string::npos) end = cmdline->size();
      info.argv.push_back(cmdline->substr(start, end - start));
      start = end + 1;
    }
    found.push_back(std::move(info));
  }
  ::closedir(proc);
  return found;
}

bool ProcessGone(pid_t pid) {
  if (pid <= 0) return true;
  if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
  const char state = ProcState(pid);
  return state == 0 || state == 'Z' || state == 'X';
}

void KillIfRunning(pid_t pid, const std::string& needle) {
  if (pid <= 0 || ProcessGone(pid)) return;
  std::string cmdline =
      ReadFile("/proc/" + std::to_string(pid) + "/cmdline").value_or("");
  for (char& c : cmdline) {
    if (c == '\0') c = ' ';
  }
  if (cmdline.find(needle) == std::string::npos) return;  // not ours any more
  ::kill(pid, SIGKILL);
}

fs::path MakeTempDir(const std::string& prefix) {
  const char* tmp = ::getenv("TMPDIR");
  const fs::path base = (tmp && *tmp) ? fs::path(tmp) : fs::path("/tmp");
  std::string pattern = (base / (prefix + ".XXXXXX")).string();
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp " << pattern << ": " << ::strerror(errno);
    return {};
  }
  std::error_code ec;
  const fs::path canonical = fs::canonical(buf.data(), ec);
  return ec ? fs::path(buf.data()) : canonical;
}

size_t FilesUnder(const fs::path& dir) {
  size_t n = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) ++n;
  }
  return n;
}

std::vector<std::string> LinesWith(const std::string& text, const std::string& tag,
                                   const std::vector<std::string>& parts) {
  std::vector<std::string> found;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(tag, 0) != 0) continue;
    if (std::all_of(parts.begin(), parts.end(), [&](const std::string& p) {
          return line.find(p) != std::string::npos;
        })) {
      found.push_back(line);
    }
  }
  return found;
}

size_t CountLines(const std::string& text, const std::string& line) {
  std::istringstream in(text);
  std::string l;
  size_t n = 0;
  while (std::getline(in, l)) n += l == line ? 1 : 0;
  return n;
}

std::map<std::string, nlohmann::json> TasksByName(const nlohmann::json& doc) {
  std::map<std::string, nlohmann::json> tasks;
  if (!doc.is_object() || !doc.contains("tasks") || !doc["tasks"].is_array())
    return tasks;
  for (const auto& t : doc["tasks"]) tasks[t.value("name", "")] = t;
  return tasks;
}

void DroverCliTest::SetUp() {
  root_ = MakeTempDir("drover-run-test");
  ASSERT_FALSE(root_.empty());
  work_ = root_ / "work";
  capture_ = root_ / "capture";
  state_ = root_ / "state";
  fs::create_directory(work_);
  fs::create_directory(capture_);
}

void DroverCliTest::TearDown() {
  running_.clear();  // each kills its drover (by pid) if still running
  for (const auto& [pid, needle] : task_pids_) KillIfRunning(pid, needle);
  std::error_code ec;
  if (!root_.empty()) fs::remove_all(root_, ec);
}

std::string DroverCliTest::Spec(const std::string& name, const std::string& yaml) {
  WriteFile(work_ / name, yaml);
  return name;
}

ProcessResult DroverCliTest::Drover(const std::vector<std::string>& args, Millis timeout,
                                    const fs::path& cwd) {
  std::vector<std::string> argv = {DROVER_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProcess(argv, cwd.empty() ? work_ : cwd, capture_, timeout);
}

ProcessResult DroverCliTest::Run(const std::string& spec,
                                 const std::vector<std::string>& extra, Millis timeout) {
  std::vector<std::string> args = {"run", spec, "--state-dir", state_.string(),
                                   "--no-progress"};
  args.insert(args.end(), extra.begin(), extra.end());
  return Drover(args, timeout);
}

ChildProcess* DroverCliTest::StartDrover(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {DROVER_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  running_.push_back(std::make_unique<ChildProcess>(argv, work_, capture_));
  if (!running_.back()->Start()) return nullptr;
  return running_.back().get();
}

nlohmann::json DroverCliTest::Status(const std::string& job) {
  std::vector<std::string> args = {"status"};
  if (!job.empty()) args.push_back(job);
  args.insert(args.end(), {"--output", "json", "--state-dir", state_.string()});
  const ProcessResult r = Drover(args);
  if (r.exit_code != 0) {
    ADD_FAILURE() << "drover status: " << r.Describe();
    return nlohmann::json();
  }
  nlohmann::json doc = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    ADD_FAILURE() << "drover status printed no JSON object: " << r.out;
    return nlohmann::json();
  }
  return doc;
}

void DroverCliTest::KillLater(pid_t pid, const std::string& needle) {
  task_pids_.emplace_back(pid, needle);
}

}  // namespace drover::testing

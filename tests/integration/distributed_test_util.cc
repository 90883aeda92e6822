#include "tests/integration/distributed_test_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <regex>
#include <set>
#include <sstream>
#include <utility>

namespace drover::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

// How often store polls look again: a read-only SQLite query is cheap.
constexpr Millis kStorePollInterval{20};
// How long a coordinator may take to bind and print its endpoint.
constexpr Millis kStartDeadline{20'000};

Millis Left(Clock::time_point deadline) {
  return std::max(Millis(0), std::chrono::duration_cast<Millis>(deadline - Clock::now()));
}

// "KEY=VALUE" strings: this process's environment with `overrides` applied.
std::vector<std::string> MergedEnvironment(
    const std::map<std::string, std::string>& overrides) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string entry(*e);
    const std::string key = entry.substr(0, entry.find('='));
    if (!overrides.count(key)) env.push_back(entry);
  }
  for (const auto& [k, v] : overrides) env.push_back(k + "=" + v);
  return env;
}

// The parent pid and process group of `pid` from /proc/PID/stat, or nothing.
std::optional<std::pair<pid_t, pid_t>> ParentAndGroup(pid_t pid) {
  const std::optional<std::string> stat =
      ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return std::nullopt;
  const size_t close = stat->rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(stat->substr(close + 1));
  std::string state;
  long ppid = 0;
  long pgrp = 0;
  if (!(rest >> state >> ppid >> pgrp)) return std::nullopt;
  return std::make_pair(static_cast<pid_t>(ppid), static_cast<pid_t>(pgrp));
}

// Our children that nobody started through the harness: tasks of a killed
// worker, re-parented to this subreaper.
std::vector<pid_t> AdoptedChildren() {
  std::vector<pid_t> found;
  DIR* dir = ::opendir("/proc");
  if (!dir) return found;
  const pid_t self = ::getpid();
  while (dirent* e = ::readdir(dir)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || pid <= 0) continue;
    auto pg = ParentAndGroup(static_cast<pid_t>(pid));
    if (pg && pg->first == self) found.push_back(static_cast<pid_t>(pid));
  }
  ::closedir(dir);
  return found;
}

// SIGKILLs and reaps every child re-parented to us (and, for a group leader,
// its group). Killing one may orphan its own children to us in turn, hence
// a few rounds. Our children cannot be recycled before we reap them, so
// killing them by pid is safe.
void KillAdoptedChildren() {
  for (int round = 0; round < 5; ++round) {
    const std::vector<pid_t> children = AdoptedChildren();
    if (children.empty()) return;
    for (pid_t pid : children) {
      auto pg = ParentAndGroup(pid);
      if (pg && pg->second == pid) ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
    }
    for (pid_t pid : children) {
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
  }
}

// The tasks array of a status document, wherever it sits.
json TasksOf(const json& doc) {
  if (doc.is_object() && doc.contains("tasks") && doc["tasks"].is_array())
    return doc["tasks"];
  const json job = JobOfStatus(doc);
  if (job.is_object() && job.contains("tasks") && job["tasks"].is_array())
    return job["tasks"];
  return json::array();
}

}  // namespace

std::set<pid_t> ServeChildren(pid_t parent) {
  std::set<pid_t> pids;
  for (const ProcInfo& p : LiveChildren(parent)) {
    if (std::find(p.argv.begin(), p.argv.end(), "serve") != p.argv.end())
      pids.insert(p.pid);
  }
  return pids;
}

bool PollUntil(const std::function<bool()>& condition, Millis timeout, Millis interval) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::min(interval, Left(deadline) + Millis(1)));
  }
}

json JobOfStatus(const json& doc) {
  if (!doc.is_object()) return json();
  if (doc.contains("job") && doc["job"].is_object()) return doc["job"];
  if (doc.contains("jobs") && doc["jobs"].is_array() && !doc["jobs"].empty()) {
    return doc["jobs"][0];
  }
  return json();
}

// ---- DaemonProcess ----------------------------------------------------------

DaemonProcess::DaemonProcess(std::string label, std::vector<std::string> argv,
                             fs::path cwd, std::map<std::string, std::string> env)
    : label_(std::move(label)),
      argv_(std::move(argv)),
      cwd_(std::move(cwd)),
      env_(std::move(env)) {}

DaemonProcess::~DaemonProcess() {
  if (pid_ > 0) {
    int status = 0;
    KillGroupAndReap(&status);
  }
  StopReader();
  if (pidfd_ >= 0) ::close(pidfd_);
}

bool DaemonProcess::Start() {
  if (pid_ > 0 || reader_.joinable()) {
    ADD_FAILURE() << label_ << ": Start called twice";
    return false;
  }
  int out[2];
  int err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ADD_FAILURE() << label_ << ": pipe: " << ::strerror(errno);
    return false;
  }
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ADD_FAILURE() << label_ << ": pipe: " << ::strerror(errno);
    ::close(out[0]);
    ::close(out[1]);
    return false;
  }
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  // dup2 clears close-on-exec on the target; the pipe ends themselves close.
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
  if (!cwd_.empty()) posix_spawn_file_actions_addchdir_np(&actions, cwd_.c_str());
  // Its own group, so that a terminal's Ctrl-C aimed at the test does not
  // reach it; default dispositions and an empty mask, whatever the test
  // runner set.
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
  for (auto& a : argv_) args.push_back(a.data());
  args.push_back(nullptr);
  std::vector<std::string> env_strings = MergedEnvironment(env_);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  started_ = Clock::now();
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, args[0], &actions, &attr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(out[1]);
  ::close(err[1]);
  if (rc != 0) {
    ::close(out[0]);
    ::close(err[0]);
    ADD_FAILURE() << label_ << ": posix_spawn " << argv_[0] << ": " << ::strerror(rc);
    return false;
  }
  pid_ = pid;
  pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  reader_ =
      std::thread([this, o = out[0], e = err[0], s = stop_fd_] { ReaderLoop(o, e, s); });
  return true;
}

void DaemonProcess::ReaderLoop(int out_fd, int err_fd, int stop_fd) {
  pollfd fds[3] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
  std::string* sinks[2] = {&out_, &err_};
  char buf[1 << 16];
  int open = 2;
  while (open > 0) {
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[2].revents) break;  // StopReader
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;  // poll ignores negative descriptors
        --open;
        continue;
      }
      std::lock_guard<std::mutex> lock(mu_);
      sinks[i]->append(buf, static_cast<size_t>(n));
    }
    changed_.notify_all();
  }
  for (int i = 0; i < 2; ++i) {
    if (fds[i].fd >= 0) ::close(fds[i].fd);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    eof_ = true;
  }
  changed_.notify_all();
}

void DaemonProcess::StopReader() {
  if (!reader_.joinable()) return;
  const uint64_t one = 1;
  (void)!::write(stop_fd_, &one, sizeof one);
  reader_.join();
  ::close(stop_fd_);
  stop_fd_ = -1;
}

bool DaemonProcess::Signal(int sig) {
  if (pid_ <= 0) return false;
  return ::kill(pid_, sig) == 0;
}

void DaemonProcess::KillGroupAndReap(int* status) {
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);  // in case it left its group
  while (::waitpid(pid_, status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

ProcessResult DaemonProcess::Collect(bool finished, int status) {
  ProcessResult r;
  r.finished = finished;
  if (finished && WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (finished && WIFSIGNALED(status)) r.term_signal = WTERMSIG(status);
  r.elapsed = std::chrono::duration_cast<Millis>(Clock::now() - started_);
  // The pipes close when the last writer goes, normally at once; a
  // straggler holding one must not hold the test, hence the short bound.
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait_for(lock, Millis(2000), [&] { return eof_; });
  r.out = out_;
  r.err = err_;
  return r;
}

ProcessResult DaemonProcess::Wait(Millis timeout) {
  if (pid_ <= 0) {
    ADD_FAILURE() << label_ << ": Wait without a running process";
    return Collect(false, 0);
  }
  const auto deadline = Clock::now() + timeout;
  while (true) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return Collect(true, status);
    }
    if (r < 0 && errno != EINTR) {
      ADD_FAILURE() << label_ << ": waitpid(" << pid_ << "): " << ::strerror(errno);
      pid_ = -1;
      return Collect(false, 0);
    }
    const Millis left = Left(deadline);
    if (left.count() <= 0) {
      ADD_FAILURE() << label_ << " (pid " << pid_ << ") did not end within "
                    << timeout.count() << "ms; killed it\n--- its stderr (tail) ---\n"
                    << ErrTail();
      KillGroupAndReap(&status);
      return Collect(false, 0);
    }
    // A pidfd turns readable when the child ends; without one, look again
    // every few milliseconds.
    pollfd pfd{pidfd_, POLLIN, 0};
    ::poll(&pfd, pidfd_ >= 0 ? 1 : 0,
           static_cast<int>(pidfd_ >= 0 ? left.count()
                                        : std::min<int64_t>(left.count(), 10)));
  }
}

ProcessResult DaemonProcess::Crash() {
  if (pid_ <= 0) {
    ADD_FAILURE() << label_ << ": Crash without a running process";
    return Collect(false, 0);
  }
  ::kill(pid_, SIGKILL);
  return Wait(Millis(10'000));
}

bool DaemonProcess::WaitForOutput(
    const std::function<bool(const std::string&, const std::string&)>& pred,
    Millis timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  const auto deadline = Clock::now() + timeout;
  while (true) {
    if (pred(out_, err_)) return true;
    if (eof_) return false;
    if (changed_.wait_until(lock, deadline) == std::cv_status::timeout) {
      return pred(out_, err_);
    }
  }
}

std::optional<std::string> DaemonProcess::WaitForFirstLine(Millis timeout) {
  std::string line;
  const bool seen = WaitForOutput(
      [&](const std::string& out, const std::string&) {
        const size_t nl = out.find('\n');
        if (nl == std::string::npos) return false;
        line = out.substr(0, nl);
        return true;
      },
      timeout);
  if (!seen) return std::nullopt;
  return line;
}

bool DaemonProcess::WaitForStderr(const std::string& needle, Millis timeout) {
  return WaitForOutput(
      [&](const std::string&, const std::string& err) {
        return err.find(needle) != std::string::npos;
      },
      timeout);
}

std::string DaemonProcess::Out() const {
  std::lock_guard<std::mutex> lock(mu_);
  return out_;
}

std::string DaemonProcess::Err() const {
  std::lock_guard<std::mutex> lock(mu_);
  return err_;
}

std::string DaemonProcess::ErrTail(size_t bytes) const {
  std::lock_guard<std::mutex> lock(mu_);
  return err_.size() <= bytes ? err_ : "..." + err_.substr(err_.size() - bytes);
}

// ---- the state store ----------------------------------------------------------

std::optional<std::vector<StoreRow>> QueryStore(const fs::path& state_dir,
                                                const std::string& sql) {
  const fs::path db_path = state_dir / "state.db";
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  if (rc != SQLITE_OK) {
    ADD_FAILURE() << "open " << db_path
                  << " read-only: " << (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    return std::nullopt;
  }
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* stmt = nullptr;
  rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    ADD_FAILURE() << "prepare `" << sql << "` on " << db_path << ": "
                  << sqlite3_errmsg(db);
    sqlite3_close(db);
    return std::nullopt;
  }
  std::vector<StoreRow> rows;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    StoreRow row;
    for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
      const unsigned char* text = sqlite3_column_text(stmt, i);
      row[sqlite3_column_name(stmt, i)] = text ? reinterpret_cast<const char*>(text) : "";
    }
    rows.push_back(std::move(row));
  }
  std::optional<std::vector<StoreRow>> result;
  if (rc == SQLITE_DONE) {
    result = std::move(rows);
  } else {
    ADD_FAILURE() << "`" << sql << "` on " << db_path << ": " << sqlite3_errmsg(db);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return result;
}

int64_t StoreCount(const fs::path& state_dir, const std::string& sql) {
  const auto rows = QueryStore(state_dir, sql);
  if (!rows || rows->size() != 1 || rows->front().size() != 1) {
    if (rows) ADD_FAILURE() << "`" << sql << "` did not return one value";
    return -1;
  }
  return std::strtoll(rows->front().begin()->second.c_str(), nullptr, 10);
}

std::string SqlQuote(const std::string& text) {
  std::string q = "'";
  for (char c : text) q += c == '\'' ? std::string("''") : std::string(1, c);
  return q + "'";
}

// ---- the fixture ----------------------------------------------------------------

void DistributedTest::SetUp() {
  // Tasks of a worker killed -9 are re-parented to us, so TearDown can end
  // them; without this they would go to init and outlive the test.
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0) << ::strerror(errno);
  root_ = MakeTempDir("drover-dist-test");
  ASSERT_FALSE(root_.empty());
  work_ = root_ / "work";
  state_ = root_ / "state";
  fs::create_directory(work_);
}

void DistributedTest::TearDown() {
  if (HasFailure()) DumpDaemonLogs();
  processes_.clear();  // each kills its process group (by pid) and reaps it
  coordinator_ = nullptr;
  KillAdoptedChildren();
  std::error_code ec;
  if (!root_.empty()) fs::remove_all(root_, ec);
}

void DistributedTest::DumpDaemonLogs() const {
  for (const auto& p : processes_) {
    if (p->argv().size() < 2) continue;
    const std::string& verb = p->argv()[1];
    if (verb != "coordinator" && verb != "worker") continue;
    std::printf("--- %s (argv: %s ...), stderr tail ---\n%s\n", p->label().c_str(),
                verb.c_str(), p->ErrTail(3000).c_str());
  }
}

std::map<std::string, std::string> DistributedTest::Env() const {
  std::map<std::string, std::string> env = {{"DROVER_LOG", log_level_}};
  if (!endpoint_.empty()) env["DROVER_COORDINATOR"] = endpoint_;
  for (const auto& [key, value] : extra_env_) env[key] = value;
  return env;
}

void DistributedTest::ShrinkAsanQuarantine() {
  const char* inherited = std::getenv("ASAN_OPTIONS");
  std::string options = inherited != nullptr ? inherited : "";
  if (!options.empty()) options += ":";
  extra_env_["ASAN_OPTIONS"] = options + "quarantine_size_mb=16";
}

DaemonProcess* DistributedTest::Launch(const std::string& label,
                                       const std::vector<std::string>& argv) {
  processes_.push_back(std::make_unique<DaemonProcess>(label, argv, work_, Env()));
  if (!processes_.back()->Start()) return nullptr;
  return processes_.back().get();
}

DaemonProcess* DistributedTest::StartCoordinator(const std::vector<std::string>& extra) {
  if (coordinator_ && coordinator_->running()) {
    ADD_FAILURE() << "StartCoordinator while one runs (pid " << coordinator_->pid()
                  << ")";
    return nullptr;
  }
  const std::string listen = endpoint_.empty() ? "tcp://127.0.0.1:0" : endpoint_;
  std::vector<std::string> argv = {DROVER_BIN,    "coordinator",
                                   "--listen",    listen,
                                   "--state-dir", state_.string(),
                                   "--heartbeat", heartbeat_,
                                   "--liveness",  std::to_string(liveness_)};
  argv.insert(argv.end(), extra.begin(), extra.end());
  DaemonProcess* c = Launch("coordinator", argv);
  if (!c) return nullptr;
  const std::optional<std::string> line = c->WaitForFirstLine(kStartDeadline);
  static const std::regex kEndpoint(R"(tcp://127\.0\.0\.1:([0-9]+))");
  std::smatch m;
  if (!line || !std::regex_search(*line, m, kEndpoint) || m[1] == "0") {
    ADD_FAILURE()
        << "the coordinator printed no bound tcp endpoint as its first stdout line"
        << " (got " << (line ? "'" + *line + "'" : std::string("nothing")) << ")"
        << "\n--- stderr ---\n"
        << c->ErrTail();
    return nullptr;
  }
  if (endpoint_.empty()) {
    endpoint_ = m[0];
  } else if (m[0] != endpoint_) {
    ADD_FAILURE() << "restarted coordinator bound " << m[0] << ", not " << endpoint_;
  }
  coordinator_ = c;
  coordinator_extra_ = extra;
  return c;
}

DaemonProcess* DistributedTest::StartWorker(const std::string& name,
                                            const std::string& slots,
                                            const std::vector<std::string>& extra) {
  if (endpoint_.empty()) {
    ADD_FAILURE() << "StartWorker before a coordinator bound an endpoint";
    return nullptr;
  }
  std::vector<std::string> argv = {DROVER_BIN, "worker",     "--connect",
                                   endpoint_,  "--name",     name,
                                   "--slots",  slots,        "--heartbeat",
                                   heartbeat_, "--liveness", std::to_string(liveness_)};
  // Each worker its own spool, as on separate hosts: two live workers on
  // one spool are refused (ClaimSpool). A restart of `name` finds its own.
  if (std::find(extra.begin(), extra.end(), "--spool-dir") == extra.end()) {
    argv.insert(argv.end(), {"--spool-dir", (work_ / "spool" / name).string()});
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  return Launch("worker " + name, argv);
}

DaemonProcess* DistributedTest::Restart(DaemonProcess* old) {
  if (!old || old->running()) {
    ADD_FAILURE() << "Restart of a process that still runs";
    return nullptr;
  }
  if (old == coordinator_) return StartCoordinator(coordinator_extra_);
  return Launch(old->label(), old->argv());
}

std::string DistributedTest::Spec(const std::string& name, const std::string& yaml) {
  WriteFile(work_ / name, yaml);
  return name;
}

DaemonProcess* DistributedTest::StartClient(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {DROVER_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  return Launch("drover " + (args.empty() ? std::string() : args[0]), argv);
}

ProcessResult DistributedTest::Drover(const std::vector<std::string>& args,
                                      Millis timeout) {
  std::vector<std::string> argv = {DROVER_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  // Not kept in processes_: it is reaped here, and polls start many.
  DaemonProcess p("drover " + (args.empty() ? std::string() : args[0]), argv, work_,
                  Env());
  if (!p.Start()) return ProcessResult{};
  return p.Wait(timeout);
}

std::string DistributedTest::Submit(const std::string& spec) {
  const ProcessResult r = Drover({"submit", spec});
  static const std::regex kJobId(R"([0-9]{8}-[0-9]{6}-[0-9a-f]+)");
  std::smatch m;
  if (r.exit_code != 0 || !std::regex_search(r.out, m, kJobId)) {
    ADD_FAILURE() << "drover submit " << spec << " printed no job id: " << r.Describe();
    return "";
  }
  return m[0];
}

json DistributedTest::Status(const std::string& job) {
  const ProcessResult r = Drover({"status", job, "--output", "json"});
  if (r.exit_code != 0) {
    ADD_FAILURE() << "drover status " << job << ": " << r.Describe();
    return json();
  }
  json doc = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    ADD_FAILURE() << "drover status printed no JSON object: " << r.out;
    return json();
  }
  return doc;
}

std::map<std::string, json> DistributedTest::Tasks(const std::string& job) {
  std::map<std::string, json> tasks;
  for (const auto& t : TasksOf(Status(job))) tasks[t.value("name", "")] = t;
  return tasks;
}

std::map<std::string, json> DistributedTest::Workers() {
  std::map<std::string, json> workers;
  const ProcessResult r = Drover({"workers", "--output", "json"});
  if (r.exit_code != 0) {
    ADD_FAILURE() << "drover workers: " << r.Describe();
    return workers;
  }
  const json doc = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  json list = doc;
  if (doc.is_object() && doc.contains("workers")) list = doc["workers"];
  if (!list.is_array()) {
    ADD_FAILURE() << "drover workers --output json printed no list of workers: " << r.out;
    return workers;
  }
  for (const auto& w : list) workers[w.value("name", "")] = w;
  return workers;
}

std::string DistributedTest::WaitForJobState(const std::string& job,
                                             const std::vector<std::string>& states,
                                             Millis timeout) {
  std::string state;
  PollUntil(
      [&] {
        const json j = JobOfStatus(Status(job));
        state = j.is_object() ? j.value("state", "") : "";
        return std::find(states.begin(), states.end(), state) != states.end();
      },
      timeout, kClientPollInterval);
  return state;
}

bool DistributedTest::WaitForWorkerState(const std::string& name,
                                         const std::string& state, Millis timeout) {
  return PollUntil(
      [&] {
        auto workers = Workers();
        return workers.count(name) && workers[name].value("state", "") == state;
      },
      timeout, kClientPollInterval);
}

bool DistributedTest::WaitForSlotsUsed(const std::string& name, const std::string& backend,
                                       int used, Millis timeout) {
  return PollUntil(
      [&] {
        auto workers = Workers();
        return workers.count(name) &&
               workers[name]["slots"][backend].value("used", 0) == used;
      },
      timeout, kClientPollInterval);
}

std::string DistributedTest::WaitForStoredJobState(const std::string& job,
                                                   const std::vector<std::string>& states,
                                                   Millis timeout) {
  std::string state;
  PollUntil(
      [&] {
        const auto rows =
            QueryStore(state_, "SELECT state FROM jobs WHERE id = " + SqlQuote(job));
        state = rows && rows->size() == 1 ? rows->front().at("state") : "";
        return std::find(states.begin(), states.end(), state) != states.end();
      },
      timeout, kStorePollInterval);
  return state;
}

}  // namespace drover::testing

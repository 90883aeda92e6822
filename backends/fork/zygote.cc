#include "backends/fork/zygote.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <nlohmann/json.hpp>
#include <system_error>
#include <utility>

#include "backends/fork/cow_child.h"
#include "backends/fork/cow_mailbox.h"
#include "backends/fork/ipc_channel.h"
#include "backends/functions/builtins.h"
#include "backends/functions/plugin_loader.h"
#include "backends/process/process_group.h"

namespace drover {
namespace {

using nlohmann::json;

constexpr size_t kMaxControlPacket = 256 * 1024;
// The longest wait for an answer. A fork takes milliseconds; this bounds
// what a zygote that stopped answering costs its caller, which is the
// worker's loop when the fork backend is driven: under the coordinator's
// default liveness (5 heartbeats of 1 s), so the worker is not taken for
// lost while it waits.
constexpr int kForkAnswerMs = 3'000;
constexpr int kStopWaitMs = 2'000;

// Threads of this process, from /proc/self/task; -1 when unknown.
int CountThreads() {
  std::error_code ec;
  int count = 0;
  for (std::filesystem::directory_iterator it("/proc/self/task", ec), end;
       !ec && it != end; it.increment(ec)) {
    ++count;
  }
  return ec ? -1 : count;
}

// Closes every descriptor from `first` up, except `keep` (-1: none).
void CloseFrom(int first, int keep) {
  if (keep >= first) {
    if (keep > first) ::close_range(first, keep - 1, 0);
    ::close_range(keep + 1, ~0U, 0);
  } else {
    ::close_range(first, ~0U, 0);
  }
}

void ResetSignals() {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  // Everything a worker might have caught or ignored goes back to its
  // default; the handlers belong to code that does not run here.
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    ::signal(sig, SIG_DFL);
  }
}

void Send(int control, const json& message, const std::vector<int>& fds = {}) {
  // A failure means the worker is gone; the next receive sees EOF.
  (void)SendPacket(control, message.dump(-1, ' ', false, json::error_handler_t::replace),
                   fds);
}

Status CheckCwd(const std::string& cwd) {
  if (cwd.empty()) return Status::Ok();
  struct stat st;
  if (::stat(cwd.c_str(), &st) != 0) {
    return InvalidArgument("cwd '" + cwd + "': " + std::strerror(errno));
  }
  if (!S_ISDIR(st.st_mode)) {
    return InvalidArgument("cwd '" + cwd + "': " + std::strerror(ENOTDIR));
  }
  return Status::Ok();
}

// The start of a cow pool process, right after the clone. Never returns.
[[noreturn]] void ChildMain(const FunctionRegistry& registry, pid_t worker,
                            const json& request, int channel, int out, int err,
                            int devnull, int mailbox_fd) {
  ::setpgid(0, 0);
  // Die with the worker even when a function hangs and never reads the
  // closed channel.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != worker) _exit(1);
  std::string name = "cow:" + request.value("pool", std::string());
  ::prctl(PR_SET_NAME, name.substr(0, 15).c_str());
  if (::dup2(devnull, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0 ||
      ::dup2(channel, kChannelFd) < 0) {
    _exit(126);
  }
  // Mapped before its descriptor closes; without it, the socket alone.
  std::unique_ptr<CowMailbox> mailbox;
  if (mailbox_fd >= 0) {
    auto mapped = CowMailbox::Map(mailbox_fd, CowMailbox::Side::kProcess);
    if (mapped.ok()) mailbox = std::move(mapped.value());
  }
  CloseFrom(kChannelFd + 1, -1);
  ResetSignals();
  const std::string cwd = request.value("cwd", std::string());
  if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) {
    std::fprintf(stderr, "drover: cow process: cwd '%s': %s\n", cwd.c_str(),
                 std::strerror(errno));
    _exit(126);
  }
  auto env = request.find("env");
  if (env != request.end() && env->is_array()) {
    for (const json& pair : *env) {
      if (pair.is_array() && pair.size() == 2 && pair[0].is_string() &&
          pair[1].is_string()) {
        ::setenv(pair[0].get_ref<const std::string&>().c_str(),
                 pair[1].get_ref<const std::string&>().c_str(), 1);
      }
    }
  }
  RunCowChild(registry, kChannelFd, mailbox.get());
}

// Forks one pool process for `request` and hands its descriptors over.
void ForkChild(int control, const FunctionRegistry& registry, pid_t worker,
               const json& request) {
  Status cwd = CheckCwd(request.value("cwd", std::string()));
  if (!cwd.ok()) {
    Send(control, {{"error", cwd.message()}});
    return;
  }
  UniqueFd ours, theirs, out_r, out_w, err_r, err_w, devnull;
  Status s = MakeSocketPair(SOCK_STREAM, &ours, &theirs);
  int fds[2];
  if (s.ok() && ::pipe2(fds, O_CLOEXEC) == 0) {
    out_r.Reset(fds[0]);
    out_w.Reset(fds[1]);
  } else if (s.ok()) {
    s = ErrnoError("pipe", errno);
  }
  if (s.ok() && ::pipe2(fds, O_CLOEXEC) == 0) {
    err_r.Reset(fds[0]);
    err_w.Reset(fds[1]);
  } else if (s.ok()) {
    s = ErrnoError("pipe", errno);
  }
  if (s.ok()) {
    devnull.Reset(::open("/dev/null", O_RDWR | O_CLOEXEC));
    if (!devnull.valid()) s = ErrnoError("open /dev/null", errno);
  }
  if (!s.ok()) {
    Send(control, {{"error", s.message()}});
    return;
  }
  // The channel works without it (the socket alone), so a failure here is
  // not the fork's.
  Result<UniqueFd> mailbox = CowMailbox::Create();
  const int mailbox_fd = mailbox.ok() ? mailbox->get() : -1;
  // CLONE_PARENT makes the child the worker's, not ours (see zygote.h). A
  // raw clone skips glibc's fork bookkeeping; that is safe here because the
  // zygote has one thread and holds no lock, and it leaves only the cached
  // thread id in the child's TCB stale, which nothing we run depends on
  // (raise, abort, threads and fork in the child are tested).
  long pid = ::syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, nullptr, nullptr, 0);
  if (pid == 0) {
    ChildMain(registry, worker, request, theirs.get(), out_w.get(), err_w.get(),
              devnull.get(), mailbox_fd);
  }
  if (pid < 0) {
    Send(control, {{"error", std::string("clone: ") + std::strerror(errno)}});
    return;
  }
  std::vector<int> handed = {ours.get(), out_r.get(), err_r.get()};
  if (mailbox_fd >= 0) handed.push_back(mailbox_fd);
  Send(control, {{"pid", pid}}, handed);
}

// The zygote's life: load, announce, then fork on request until the
// control socket closes. Never returns.
[[noreturn]] void ZygoteMain(int control, pid_t worker, const ZygoteOptions& options) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != worker) _exit(0);
  ::prctl(PR_SET_NAME, "drover-zygote");
  // Out of the worker's process group: a Ctrl-C at the terminal is the
  // worker's to handle, and it stops us by closing the control socket.
  ::setpgid(0, 0);
  ResetSignals();
  if (control > 2) CloseFrom(3, control);

  FunctionRegistry registry;
  Status s = RegisterBuiltins(registry);
  for (const auto& plugin : options.plugins) {
    if (!s.ok()) break;
    s = LoadPlugin(plugin, registry);
  }
  if (s.ok() && options.add_functions) {
    try {
      s = options.add_functions(registry);
    } catch (const std::exception& e) {
      s = Internal(e.what());
    }
  }
  if (!s.ok()) {
    Send(control, {{"error", s.message()}});
    _exit(1);
  }
  Send(control, {{"ready", true}, {"functions", registry.Names()}});

  std::string packet;
  std::vector<UniqueFd> unused;
  while (true) {
    Status r = ReceivePacket(control, kMaxControlPacket, -1, &packet, &unused);
    if (!r.ok()) _exit(0);  // the worker closed the socket (or is gone)
    json request = json::parse(packet, nullptr, /*allow_exceptions=*/false);
    const std::string op =
        request.is_object() && request.contains("op") && request["op"].is_string()
            ? request["op"].get<std::string>()
            : std::string();
    if (op == "fork") {
      ForkChild(control, registry, worker, request);
      // Children are the worker's to reap, never ours.
    } else if (op == "load" && request.contains("paths") && request["paths"].is_array()) {
      Status loaded = Status::Ok();
      for (const json& path : request["paths"]) {
        if (!loaded.ok()) break;
        loaded = path.is_string() ? LoadPlugin(path.get<std::string>(), registry)
                                  : InvalidArgument("a plugin path must be a string");
      }
      Send(control, loaded.ok() ? json{{"ok", true}} : json{{"error", loaded.message()}});
    } else {
      Send(control, {{"error", "zygote: unknown request"}});
    }
  }
}

}  // namespace

Zygote::Zygote(pid_t pid, UniqueFd pidfd, UniqueFd control,
               std::vector<std::string> functions)
    : pid_(pid),
      functions_(std::move(functions)),
      pidfd_(std::move(pidfd)),
      control_(std::move(control)) {}

Zygote::~Zygote() { Stop(); }

Status Zygote::Ask(const std::string& request, std::string* answer,
                   std::vector<UniqueFd>* fds) {
  if (!broken_.empty()) return FailedPrecondition(broken_);
  if (request.size() > kMaxControlPacket) {
    return InvalidArgument("request too large for the zygote");
  }
  Status s = SendPacket(control_.get(), request, {});
  if (s.ok()) s = ReceivePacket(control_.get(), kMaxControlPacket, kForkAnswerMs, answer, fds);
  if (!s.ok()) {
    // Out of step or gone: no later answer can be trusted.
    broken_ = s.code() == StatusCode::kDeadlineExceeded
                  ? "the zygote (pid " + std::to_string(pid_) + ") stopped answering"
                  : "the zygote (pid " + std::to_string(pid_) + ") is gone";
    return FailedPrecondition(broken_);
  }
  return Status::Ok();
}

Result<CowProcess> Zygote::Fork(const PoolSpec& spec) {
  std::lock_guard<std::mutex> lock(mu_);
  json env = json::array();
  for (const auto& [key, value] : spec.env) env.push_back({key, value});
  json request = {{"op", "fork"}, {"pool", spec.name}, {"env", env}, {"cwd", spec.cwd}};
  std::string text;
  try {
    text = request.dump();
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("pool declaration is not valid UTF-8: ") + e.what());
  }
  std::string answer;
  std::vector<UniqueFd> fds;
  DROVER_RETURN_IF_ERROR(Ask(text, &answer, &fds));
  json reply = json::parse(answer, nullptr, /*allow_exceptions=*/false);
  if (reply.is_object() && reply.contains("error") && reply["error"].is_string()) {
    const std::string& error = reply["error"].get_ref<const std::string&>();
    if (error.rfind("cwd '", 0) == 0) return InvalidArgument(error);
    return IoError("zygote: " + error);
  }
  if (!reply.is_object() || !reply.contains("pid") || !reply["pid"].is_number_integer() ||
      fds.size() < 3 || fds.size() > 4) {
    broken_ = "the zygote sent a malformed answer";
    return FailedPrecondition(broken_);
  }
  CowProcess child;
  child.pid = reply["pid"].get<pid_t>();
  child.channel = std::move(fds[0]);
  child.out = std::move(fds[1]);
  child.err = std::move(fds[2]);
  if (fds.size() == 4) child.mailbox = std::move(fds[3]);
  return child;
}

Status Zygote::LoadPlugins(const std::vector<std::string>& paths) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string text;
  try {
    text = json{{"op", "load"}, {"paths", paths}}.dump();
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("plugin path is not valid UTF-8: ") + e.what());
  }
  std::string answer;
  std::vector<UniqueFd> fds;
  DROVER_RETURN_IF_ERROR(Ask(text, &answer, &fds));
  json reply = json::parse(answer, nullptr, /*allow_exceptions=*/false);
  if (reply.is_object() && reply.value("ok", false)) return Status::Ok();
  if (reply.is_object() && reply.contains("error") && reply["error"].is_string()) {
    return InvalidArgument(reply["error"].get<std::string>());
  }
  broken_ = "the zygote sent a malformed answer";
  return FailedPrecondition(broken_);
}

void Zygote::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  if (reaped_) return;
  control_.Reset();  // EOF: the zygote exits
  if (broken_.empty()) broken_ = "the zygote was stopped";
  pollfd p{pidfd_.get(), POLLIN, 0};
  int ready;
  do {
    ready = ::poll(&p, 1, kStopWaitMs);
  } while (ready < 0 && errno == EINTR);
  if (ready <= 0) ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
  while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
  pidfd_.Reset();
  reaped_ = true;
}

Result<std::shared_ptr<Zygote>> StartZygote(ZygoteOptions options) {
  const int threads = CountThreads();
  if (threads != 1) {
    return FailedPrecondition(
        "StartZygote must run before any other thread starts (this process has " +
        (threads < 0 ? std::string("an unknown number of") : std::to_string(threads)) +
        " threads)");
  }
  UniqueFd ours, theirs;
  DROVER_RETURN_IF_ERROR(MakeSocketPair(SOCK_SEQPACKET, &ours, &theirs));
  std::cout.flush();
  std::fflush(nullptr);
  const pid_t worker = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return ErrnoError("fork", errno);
  if (pid == 0) {
    ::close(ours.Release());
    ZygoteMain(theirs.get(), worker, options);
  }
  theirs.Reset();
  UniqueFd pidfd(PidfdOpen(pid));
  auto fail = [&](Status status) -> Status {
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return status;
  };
  if (!pidfd.valid()) return fail(ErrnoError("pidfd_open", errno));

  const auto timeout_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(options.ready_timeout).count();
  std::string packet;
  std::vector<UniqueFd> fds;
  Status s = ReceivePacket(ours.get(), kMaxControlPacket,
                           static_cast<int>(std::clamp<int64_t>(timeout_ms, 0, INT_MAX)),
                           &packet, &fds);
  if (!s.ok()) {
    return fail(Internal(s.code() == StatusCode::kDeadlineExceeded
                             ? "the zygote did not get ready in time"
                             : "the zygote exited while loading its functions"));
  }
  json ready = json::parse(packet, nullptr, /*allow_exceptions=*/false);
  if (ready.is_object() && ready.contains("error") && ready["error"].is_string()) {
    return fail(InvalidArgument(ready["error"].get<std::string>()));
  }
  if (!ready.is_object() || !ready.value("ready", false)) {
    return fail(Internal("the zygote sent a malformed greeting"));
  }
  std::vector<std::string> functions;
  if (ready.contains("functions") && ready["functions"].is_array()) {
    for (const json& name : ready["functions"]) {
      if (name.is_string()) functions.push_back(name.get<std::string>());
    }
  }
  return std::shared_ptr<Zygote>(
      new Zygote(pid, std::move(pidfd), std::move(ours), std::move(functions)));
}

}  // namespace drover

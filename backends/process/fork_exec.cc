#include "backends/process/fork_exec.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "backends/process/child_env.h"
#include "backends/process/process_group.h"

namespace drover {
namespace {

constexpr int kChildFd = 3;
constexpr int kFirstPrivateFd = 4;

// What the child reports over the exec-error pipe before it _exits.
struct ChildFailure {
  int stage;  // 1 chdir, 2 execve, 3 dup2, 4 setrlimit
  int err;
  int resource;  // stage 4: the RLIMIT_* that failed
};

// Moves `fd` to a number >= kFirstPrivateFd, so that the child's dup2 onto
// 0..3 never clobbers a descriptor it still has to copy.
Status Lift(UniqueFd* fd) {
  if (!fd->valid() || fd->get() >= kFirstPrivateFd) return Status::Ok();
  int moved = ::fcntl(fd->get(), F_DUPFD_CLOEXEC, kFirstPrivateFd);
  if (moved < 0) return ErrnoError("fcntl F_DUPFD", errno);
  fd->Reset(moved);
  return Status::Ok();
}

Result<UniqueFd> Dup(int fd) {
  UniqueFd copy(::fcntl(fd, F_DUPFD_CLOEXEC, kFirstPrivateFd));
  if (!copy.valid()) return ErrnoError("fcntl F_DUPFD", errno);
  return copy;
}

// The program to exec: command[0] itself when it holds a '/', else the
// first executable of that name on $PATH.
Result<std::string> ResolveProgram(const std::string& name) {
  if (name.empty()) return InvalidArgument("empty command");
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), F_OK) != 0) return NotFound("command not found: " + name);
    if (::access(name.c_str(), X_OK) != 0) return InvalidArgument("permission denied: " + name);
    return name;
  }
  const char* path_env = std::getenv("PATH");
  std::string_view path = path_env != nullptr ? path_env : "/usr/local/bin:/usr/bin:/bin";
  bool denied = false;
  while (true) {
    size_t colon = path.find(':');
    std::string dir(path.substr(0, colon));
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    struct stat st;
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
      denied = true;
    }
    if (colon == std::string_view::npos) break;
    path.remove_prefix(colon + 1);
  }
  if (denied) return InvalidArgument("permission denied: " + name);
  return NotFound("command not found: " + name);
}

// Writes `value` in decimal at `out` (which has room for 20 digits and a
// NUL). Async-signal-safe.
void WriteDecimal(char* out, long value) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0 && n < 20);
  for (int i = 0; i < n; ++i) out[i] = digits[n - 1 - i];
  out[n] = '\0';
}

const char* RlimitName(int resource) {
  switch (resource) {
    case RLIMIT_CPU:
      return "RLIMIT_CPU";
    case RLIMIT_DATA:
      return "RLIMIT_DATA";
    case RLIMIT_NOFILE:
      return "RLIMIT_NOFILE";
    case RLIMIT_NPROC:
      return "RLIMIT_NPROC";
    default:
      return "RLIMIT_?";
  }
}

[[noreturn]] void ChildFail(int report_fd, int stage, int resource = 0) {
  ChildFailure failure{stage, errno, resource};
  ssize_t ignored = ::write(report_fd, &failure, sizeof(failure));
  (void)ignored;
  ::_exit(127);
}

}  // namespace

Result<ForkedChild> ForkExec(const ForkExecSpec& spec) {
  if (spec.argv.empty()) return InvalidArgument("empty command");
  Result<std::string> program = ResolveProgram(spec.argv[0]);
  if (!program.ok()) return program.status();
  if (!spec.cwd.empty()) {
    struct stat st;
    if (::stat(spec.cwd.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return InvalidArgument("cwd '" + spec.cwd.string() + "': " +
                             std::strerror(errno != 0 ? errno : ENOTDIR));
    }
  }

  // Every descriptor the child copies onto 0..3, lifted above 3.
  UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!devnull.valid()) return ErrnoError("open /dev/null", errno);
  DROVER_RETURN_IF_ERROR(Lift(&devnull));
  UniqueFd socket;
  if (spec.fd3 >= 0) {
    Result<UniqueFd> copy = Dup(spec.fd3);
    if (!copy.ok()) return copy.status();
    socket = std::move(*copy);
  }
  UniqueFd log;
  if (spec.stdout_fd >= 0) {
    Result<UniqueFd> copy = Dup(spec.stdout_fd);
    if (!copy.ok()) return copy.status();
    log = std::move(*copy);
  }
  int fds[2];
  UniqueFd err_r, err_w;
  if (spec.stderr_fd >= 0) {
    Result<UniqueFd> copy = Dup(spec.stderr_fd);
    if (!copy.ok()) return copy.status();
    err_w = std::move(*copy);
  } else {
    if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoError("pipe", errno);
    err_r.Reset(fds[0]);
    err_w.Reset(fds[1]);
  }
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoError("pipe", errno);
  UniqueFd report_r(fds[0]), report_w(fds[1]);
  DROVER_RETURN_IF_ERROR(Lift(&err_r));
  DROVER_RETURN_IF_ERROR(Lift(&err_w));
  DROVER_RETURN_IF_ERROR(Lift(&report_w));

  std::vector<std::string> argv_storage = spec.argv;
  std::vector<char*> argv;
  for (std::string& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);

  // The child writes its pid's digits over the placeholder (room for 20).
  std::vector<std::pair<std::string, std::string>> vars = spec.env;
  if (!spec.pid_env.empty()) vars.emplace_back(spec.pid_env, std::string(24, '0'));
  ChildEnv env(vars, spec.drop_env);
  char* pid_digits = spec.pid_env.empty() ? nullptr : env.MutableValue(spec.pid_env);
  char* const* envp = env.envp();

  const int out_fd = log.valid() ? log.get() : devnull.get();
  const int err_target = err_w.get();
  const int socket_src = socket.valid() ? socket.get() : -1;
  const std::vector<RlimitSetting>& rlimits = spec.rlimits;
  const int report_fd = report_w.get();
  const char* cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
  const char* path = program->c_str();

  pid_t pid = ::fork();
  if (pid < 0) return ErrnoError("fork", errno);
  if (pid == 0) {
    // The child: async-signal-safe calls only until execve.
    ::setpgid(0, 0);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) {
      if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
    }
    sigset_t empty;
    sigemptyset(&empty);
    ::sigprocmask(SIG_SETMASK, &empty, nullptr);
    if (pid_digits != nullptr) WriteDecimal(pid_digits, ::getpid());
    if (::dup2(devnull.get(), 0) < 0 || ::dup2(out_fd, 1) < 0 ||
        ::dup2(err_target, 2) < 0 ||
        (socket_src >= 0 && ::dup2(socket_src, kChildFd) < 0)) {
      ChildFail(report_fd, 3);
    }
    // Nothing else of ours (or of whoever started us without O_CLOEXEC)
    // reaches the server, except the exec-error pipe, closed by exec.
    for (int fd = socket_src >= 0 ? kFirstPrivateFd : kChildFd; fd < 1024; ++fd) {
      if (fd != report_fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    if (cwd != nullptr && ::chdir(cwd) != 0) ChildFail(report_fd, 1);
    // Last, so that nothing above runs under them (an RLIMIT_NOFILE below
    // the report pipe's number must not stop the dup2s).
    for (const RlimitSetting& r : rlimits) {
      if (::setrlimit(r.resource, &r.value) != 0) ChildFail(report_fd, 4, r.resource);
    }
    ::execve(path, argv.data(), envp);
    ChildFail(report_fd, 2);
  }

  report_w.Reset();
  err_w.Reset();
  ChildFailure failure{};
  ssize_t n;
  do {
    n = ::read(report_r.get(), &failure, sizeof(failure));
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof(failure))) {
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    switch (failure.stage) {
      case 1:
        return InvalidArgument("cwd '" + spec.cwd.string() + "': " + std::strerror(failure.err));
      case 2:
        if (failure.err == EACCES) return InvalidArgument("permission denied: " + spec.argv[0]);
        if (failure.err == ENOENT) return NotFound("command not found: " + spec.argv[0]);
        return InvalidArgument(spec.argv[0] + ": " + std::strerror(failure.err));
      case 4:
        return InvalidArgument(std::string("setrlimit ") + RlimitName(failure.resource) +
                               ": " + std::strerror(failure.err));
      default:
        return ErrnoError("dup2 in the child", failure.err);
    }
  }

  ForkedChild child;
  child.pid = pid;
  child.pidfd.Reset(PidfdOpen(pid));
  if (!child.pidfd.valid()) {
    int err = errno;
    KillAndReap(pid);
    return ErrnoError("pidfd_open", err);
  }
  if (err_r.valid() && ::fcntl(err_r.get(), F_SETFL, O_NONBLOCK) != 0) {
    // Not fatal: the child runs; its stderr is read non-blocking or not at
    // all. Reading it blocking would stall the supervisor.
    err_r.Reset();
  }
  child.err = std::move(err_r);
  return child;
}

}  // namespace drover

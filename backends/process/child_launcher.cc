#include "backends/process/child_launcher.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/process/child_env.h"
#include "backends/process/clone_exec.h"
#include "backends/process/fork_exec.h"
#include "backends/process/process_group.h"

namespace drover {
namespace {

// Moves `fd` to a number above 2. Only needed when the worker runs with
// stdin/stdout/stderr closed: a pipe end numbered 0..2 would be clobbered by
// the child's own dup2 of another stream before being dup'ed itself.
int AboveStdio(int fd) {
  if (fd < 0 || fd > 2) return fd;
  int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  ::close(fd);
  return moved;
}

// A pipe for one output stream: the read end (ours) is non-blocking so that
// draining after the leader exits never waits on a grandchild that still
// holds the write end; the write end stays blocking for the child.
Status MakePipe(UniqueFd* read_end, UniqueFd* write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoError("pipe", errno);
  read_end->Reset(AboveStdio(fds[0]));
  write_end->Reset(AboveStdio(fds[1]));
  if (!read_end->valid() || !write_end->valid()) {
    return ErrnoError("pipe", errno);
  }
  if (::fcntl(read_end->get(), F_SETFL, O_NONBLOCK) != 0) {
    return ErrnoError("pipe", errno);
  }
  return Status::Ok();
}

std::string CwdError(const std::string& cwd, int err) {
  return "cwd '" + cwd + "': " + std::strerror(err);
}

// Checks the attempt's cwd before spawning: a chdir failure inside the
// child comes back as a bare errno that would read like a missing command.
Status CheckCwd(const std::string& cwd) {
  struct stat st;
  if (::stat(cwd.c_str(), &st) != 0) {
    return InvalidArgument(CwdError(cwd, errno));
  }
  if (!S_ISDIR(st.st_mode)) return InvalidArgument(CwdError(cwd, ENOTDIR));
  return Status::Ok();
}

// Names the cause of a failed launch (the clone's, or the child's before
// its exec) the way a shell user expects.
Status SpawnError(const LaunchSpec& spec, int err) {
  const std::string& cmd = spec.argv[0];
  const std::string cwd(spec.cwd);
  if (!cwd.empty() && (err == ENOENT || err == EACCES || err == ENOTDIR)) {
    // The cwd passed CheckCwd, but may have changed since, or may not be
    // searchable: attribute the error to it when it is the cwd's fault.
    Status cwd_status = CheckCwd(cwd);
    if (!cwd_status.ok()) return cwd_status;
    if (err == EACCES && ::access(cwd.c_str(), X_OK) != 0) {
      return InvalidArgument(CwdError(cwd, EACCES));
    }
  }
  switch (err) {
    case ENOENT:
      // A path that exists but cannot be executed for ENOENT has a missing
      // interpreter (#!/no/such/shell).
      if (cmd.find('/') != std::string::npos && ::access(cmd.c_str(), F_OK) == 0) {
        return NotFound("'" + cmd + "': bad interpreter: No such file or directory");
      }
      return NotFound("command not found: " + cmd);
    case EACCES:
      return InvalidArgument("permission denied: " + cmd);
    default:
      return InvalidArgument(cmd + ": " + std::strerror(err));
  }
}

}  // namespace

void BlockChildExitSignal() {
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  pthread_sigmask(SIG_BLOCK, &chld, nullptr);
}

ChildLauncher::~ChildLauncher() = default;

Status ChildLauncher::Init() {
  int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open /dev/null", errno);
  devnull_.Reset(AboveStdio(fd));
  if (!devnull_.valid()) return ErrnoError("open /dev/null", errno);
  // The worker may ignore these; a task must start with the defaults so
  // that our SIGTERM works and shells behave normally.
  sigemptyset(&defaults_);
  for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD}) {
    sigaddset(&defaults_, sig);
  }
  return exec_.Init();
}

Result<LaunchedChild> ChildLauncher::Launch(const LaunchSpec& spec) {
  if (spec.argv.empty()) return InvalidArgument("empty command");
  if (!devnull_.valid()) {
    return Internal("spawn launcher is not initialised");
  }
  const std::string cwd(spec.cwd);
  if (!cwd.empty()) DROVER_RETURN_IF_ERROR(CheckCwd(cwd));

  LaunchedChild child;
  UniqueFd out_w, err_w;
  if (spec.capture_stdout) {
    Status s = MakePipe(&child.out, &out_w);
    if (!s.ok()) return InvalidArgument(s.message());
  }
  if (spec.capture_stderr) {
    Status s = MakePipe(&child.err, &err_w);
    if (!s.ok()) return InvalidArgument(s.message());
  }

  if (!spec.rlimits.empty()) {
    ForkExecSpec fork_spec;
    fork_spec.argv.assign(spec.argv.begin(), spec.argv.end());
    fork_spec.env.assign(spec.env.begin(), spec.env.end());
    fork_spec.cwd = cwd;
    fork_spec.fd3 = spec.channel_fd > 3 ? spec.channel_fd : -1;
    fork_spec.stdout_fd = out_w.valid() ? out_w.get() : devnull_.get();
    fork_spec.stderr_fd = err_w.valid() ? err_w.get() : devnull_.get();
    fork_spec.rlimits.assign(spec.rlimits.begin(), spec.rlimits.end());
    Result<ForkedChild> forked = ForkExec(fork_spec);
    if (!forked.ok()) return forked.status();
    child.pid = forked->pid;
    child.pidfd = std::move(forked->pidfd);
    return child;  // out_w and err_w close here: only the child holds them
  }

  std::vector<char*> argv;
  argv.reserve(spec.argv.size() + 1);
  for (const std::string& arg : spec.argv) {
    argv.push_back(const_cast<char*>(arg.c_str()));
  }
  argv.push_back(nullptr);
  const ChildEnv env(spec.env);

  CloneExecSpec exec;
  exec.argv = argv.data();
  exec.envp = env.envp();
  exec.path = std::getenv("PATH");  // the worker's, as posix_spawnp searched
  exec.cwd = cwd.empty() ? nullptr : cwd.c_str();
  // dup2 clears close-on-exec on the target, so 0..3 survive the exec and
  // every other descriptor of ours (all O_CLOEXEC) does not.
  exec.fds[0] = devnull_.get();
  exec.fds[1] = out_w.valid() ? out_w.get() : devnull_.get();
  exec.fds[2] = err_w.valid() ? err_w.get() : devnull_.get();
  exec.fds[3] = spec.channel_fd > 3 ? spec.channel_fd : -1;
  exec.defaults = defaults_;
  CloneExec::Started started = exec_.Start(exec);
  // Only the child may hold the write ends, or EOF would never come.
  out_w.Reset();
  err_w.Reset();
  if (started.error != 0) return SpawnError(spec, started.error);
  child.pid = started.pid;
  child.pidfd = std::move(started.pidfd);
  return child;
}

}  // namespace drover

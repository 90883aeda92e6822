#include "backends/process/clone_exec.h"

#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

// glibc's clone, under the name sanitizers do not intercept: ThreadSanitizer
// wraps `clone` as if it were a fork, which a child that shares our memory
// must not run. Exported by glibc since 2.2.5.
extern "C" int __clone(int (*fn)(void*), void* stack, int flags, void* arg, ...);

// The child runs none of a sanitizer's code (see clone_exec.h).
#if defined(__clang__)
#define DROVER_CHILD_CODE \
  __attribute__((noinline, no_sanitize("address", "thread", "undefined", "memory")))
#else
#define DROVER_CHILD_CODE \
  __attribute__((noinline, no_sanitize("address", "thread", "undefined")))
#endif

namespace drover {
namespace {

constexpr size_t kStackBytes = 64 * 1024;  // the child's frames and a path buffer
constexpr int kLastSignal = 64;

// The kernel's struct sigaction (rt_sigaction), as x86-64 lays it out.
struct KernelSigaction {
  void (*handler)(int) = SIG_DFL;
  unsigned long flags = 0;
  void (*restorer)() = nullptr;
  uint64_t mask = 0;
};

// What the child reads (all of it prepared before the clone) and writes
// (its failure, read once the parent resumes).
struct ChildArgs {
  const CloneExecSpec* spec;
  uint64_t defaults;  // bit sig-1: reset even when ignored
  int error = 0;
  const char* stage = "";
};

DROVER_CHILD_CODE int Fail(ChildArgs* args, const char* stage) {
  args->error = errno;
  args->stage = stage;
  syscall(SYS_exit_group, 127);
  return 127;
}

// execve of `dir` + "/" + `name` ("" is the current directory). False
// when the path would not fit `buf`.
DROVER_CHILD_CODE bool ExecIn(const char* dir, size_t dir_len, const char* name,
                              char* const* argv, char* const* envp, char* buf,
                              size_t size) {
  size_t name_len = 0;
  while (name[name_len] != '\0') ++name_len;
  if (dir_len + name_len + 3 > size) return false;
  // volatile: no compiler turns these loops into a call to an intercepted
  // memcpy.
  volatile char* out = buf;
  size_t at = 0;
  if (dir_len == 0) out[at++] = '.';
  for (size_t i = 0; i < dir_len; ++i) out[at++] = dir[i];
  out[at++] = '/';
  for (size_t i = 0; i <= name_len; ++i) out[at++] = name[i];
  syscall(SYS_execve, buf, argv, envp);
  return true;
}

DROVER_CHILD_CODE int ChildMain(void* raw) {
  auto* args = static_cast<ChildArgs*>(raw);
  const CloneExecSpec& spec = *args->spec;
  // Every handler back to the default, in one call a signal; an ignored
  // signal stays ignored unless the caller resets it. Signals are blocked
  // (inherited from the parent's block around the clone) until the mask
  // is set below, just before the exec.
  for (int sig = 1; sig <= kLastSignal; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    KernelSigaction dfl;
    KernelSigaction old;
    if (syscall(SYS_rt_sigaction, sig, &dfl, &old, sizeof(uint64_t)) != 0) continue;
    const bool reset = (args->defaults >> (sig - 1)) & 1;
    if (old.handler == SIG_IGN && !reset) {
      syscall(SYS_rt_sigaction, sig, &old, nullptr, sizeof(uint64_t));
    }
  }
  if (syscall(SYS_setpgid, 0, 0) != 0) return Fail(args, "setpgid");
  for (int fd = 0; fd < 4; ++fd) {
    // dup3, which every architecture has (dup2 is not in arm64's table);
    // a source is never its own target (clone_exec.h).
    if (spec.fds[fd] >= 0 && syscall(SYS_dup3, spec.fds[fd], fd, 0) < 0) {
      return Fail(args, "dup2");
    }
  }
  if (spec.cwd != nullptr && syscall(SYS_chdir, spec.cwd) != 0)
    return Fail(args, "chdir");
  const uint64_t none = 0;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, sizeof none);

  const char* name = spec.argv[0];
  bool slash = false;
  for (const char* c = name; *c != '\0'; ++c) slash = slash || *c == '/';
  if (name[0] == '\0') {
    errno = ENOENT;
    return Fail(args, "exec");
  }
  if (slash) {
    syscall(SYS_execve, name, spec.argv, spec.envp);
    return Fail(args, "exec");
  }
  // execvp's search: the first that execs wins; EACCES is remembered and
  // the search goes on, as are the errors that mean "not here"; any other
  // error ends it.
  char buf[4096];
  bool denied = false;
  const char* dir = spec.path != nullptr ? spec.path : "/usr/bin:/bin";
  while (true) {
    size_t len = 0;
    while (dir[len] != '\0' && dir[len] != ':') ++len;
    if (ExecIn(dir, len, name, spec.argv, spec.envp, buf, sizeof buf)) {
      switch (errno) {
        case EACCES:
          denied = true;
          break;
        case ENOENT:
        case ESTALE:
        case ENOTDIR:
        case ENODEV:
        case ETIMEDOUT:
        case ENAMETOOLONG:
        case ELOOP:
          break;
        default:
          return Fail(args, "exec");
      }
    }
    if (dir[len] == '\0') break;
    dir += len + 1;
  }
  errno = denied ? EACCES : ENOENT;
  return Fail(args, "exec");
}

}  // namespace

CloneExec::~CloneExec() {
  if (stack_ != nullptr) ::munmap(stack_, size_);
}

Status CloneExec::Init() {
  if (stack_ != nullptr) return Status::Ok();
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t size = kStackBytes + page;
  void* map = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (map == MAP_FAILED) return ErrnoError("mmap a stack for children", errno);
  // The guard: a child that overflowed its stack faults instead of writing
  // into whatever was mapped below.
  if (::mprotect(map, page, PROT_NONE) != 0) {
    const int err = errno;
    ::munmap(map, size);
    return ErrnoError("mprotect the children's stack guard", err);
  }
  stack_ = map;
  size_ = size;
  return Status::Ok();
}

CloneExec::Started CloneExec::Start(const CloneExecSpec& spec) {
  Started started;
  if (stack_ == nullptr) {
    started.error = EINVAL;
    started.stage = "clone";
    return started;
  }
  ChildArgs args{&spec, 0};
  for (int sig = 1; sig <= kLastSignal; ++sig) {
    if (sigismember(&spec.defaults, sig) == 1) args.defaults |= uint64_t{1} << (sig - 1);
  }
  void* top = static_cast<char*>(stack_) + size_;
  sigset_t all;
  sigset_t old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int pidfd = -1;
  const pid_t pid = __clone(
      ChildMain, top, CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &args, &pidfd);
  const int clone_error = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) {
    started.error = clone_error;
    started.stage = "clone";
    return started;
  }
  UniqueFd owned(pidfd);
  if (args.error != 0) {
    // It exited without exec'ing: reap it here, nobody else knows of it.
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    started.error = args.error;
    started.stage = args.stage;
    return started;
  }
  started.pid = pid;
  started.pidfd = std::move(owned);
  return started;
}

}  // namespace drover

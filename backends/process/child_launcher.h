// ChildLauncher: starts one child process the way posix_spawnp does, with
// less (clone_exec.h: the spawn backend's attempts, the fork backend's
// process pools), or with fork + execve (fork_exec.h) when it must run
// under resource limits.
//
// The child leads a new process group (pgid = pid), starts with an empty
// signal mask and default dispositions for the signals a supervisor relies
// on, reads stdin from /dev/null and writes stdout/stderr into pipes (or to
// /dev/null when the stream is not captured). Every descriptor of ours is
// close-on-exec, so the child gets exactly 0, 1 and 2 (and 3 when asked).
// The environment is the worker's with the launch's `env` added or
// overriding (child_env.h).
//
// Not thread-safe: one reactor owns it.
#ifndef DROVER_BACKENDS_PROCESS_CHILD_LAUNCHER_H_
#define DROVER_BACKENDS_PROCESS_CHILD_LAUNCHER_H_

#include <signal.h>
#include <sys/types.h>

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/process/clone_exec.h"
#include "backends/process/resource_limits.h"
#include "backends/process/unique_fd.h"
#include "core/base/status.h"

namespace drover {

// What to start. Views: the caller's vectors outlive the Launch call.
struct LaunchSpec {
  std::span<const std::string> argv;  // argv[0] is looked up on the worker's PATH
  std::span<const std::pair<std::string, std::string>> env;  // added to the worker's
  std::string_view cwd;                                      // empty: inherit
  bool capture_stdout = false;  // a pipe; else /dev/null
  bool capture_stderr = false;
  // When >= 0, becomes the child's fd 3 (the fork backend's IPC channel); it
  // must be a descriptor numbered above 3.
  int channel_fd = -1;
  // setrlimit calls the child makes before it execs (resource_limits.h).
  std::span<const RlimitSetting> rlimits;
};

// A running child. The leader is not reaped yet: the caller owns that.
struct LaunchedChild {
  pid_t pid = -1;  // also its process group id
  UniqueFd pidfd;  // readable when the leader exits
  UniqueFd out;    // read end of its stdout pipe (O_NONBLOCK), or none
  UniqueFd err;    // read end of its stderr pipe (O_NONBLOCK), or none
};

// Blocks SIGCHLD in the calling thread, and so in every thread it starts
// afterwards: call it from main() before any thread exists. drover watches
// its children through pidfds and never handles SIGCHLD, so the kernel
// drops the signal at a child's exit, except when the thread that started
// the child blocks signals at that moment, which the spawn reactor does
// around each clone (clone_exec.h; glibc's posix_spawn did the same
// around its vfork).
// Then the signal is queued to the process and delivered to some other
// thread, waking it and interrupting its poll: half of all child exits in a
// busy spawn backend (docs/benchmarks.md, "SIGCHLD"). Blocked
// everywhere, it stays pending and wakes nobody. Children start with an
// empty signal mask (ChildLauncher, ForkExec, the zygote), so none of them
// inherits the block.
void BlockChildExitSignal();

class ChildLauncher {
 public:
  ChildLauncher() = default;
  ~ChildLauncher();
  ChildLauncher(const ChildLauncher&) = delete;
  ChildLauncher& operator=(const ChildLauncher&) = delete;

  // Opens /dev/null and maps the children's stack, shared by every
  // launch. On failure the launcher is unusable.
  Status Init();

  // Starts `spec`. On failure no process is left behind, and the Status
  // message is the one users see: "command not found: foo",
  // "permission denied: ./x", "cwd '/nope': No such file or directory",
  // or "argv0: <errno text>". The code is kInternal when drover itself
  // failed (the child could not be watched), another code when the command
  // could not be launched.
  Result<LaunchedChild> Launch(const LaunchSpec& spec);

 private:
  UniqueFd devnull_;  // O_RDWR: stdin, and stdout/stderr nobody captures
  sigset_t defaults_{};  // reset to SIG_DFL in every child, even if ignored
  CloneExec exec_;
};

}  // namespace drover

#endif  // DROVER_BACKENDS_PROCESS_CHILD_LAUNCHER_H_

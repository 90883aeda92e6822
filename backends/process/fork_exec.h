// ForkExec: starts a child with fork + execve, for when something the child
// needs is known only after fork: its own pid (LISTEN_PID of socket
// activation, the cluster service supervisor's instances).
//
// The child leads a new process group (pgid = pid), starts with default
// signal dispositions and an empty mask, reads stdin from /dev/null, and
// gets `fd3` as its fd 3; nothing else of ours survives the exec. It
// makes its setrlimit calls (`rlimits`, resource_limits.h) last, so that
// they bind the program it execs and everything that program starts. The
// caller may be multithreaded, so everything the child needs (argv, envp,
// the resolved program path) is prepared before fork(), and between fork
// and exec the child makes only async-signal-safe calls. An exec failure
// travels back over a close-on-exec pipe, so a missing command is an error
// of ForkExec, not a child that "exits 127".
//
// Thread-safe (no state).
#ifndef DROVER_BACKENDS_PROCESS_FORK_EXEC_H_
#define DROVER_BACKENDS_PROCESS_FORK_EXEC_H_

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/process/resource_limits.h"
#include "backends/process/unique_fd.h"
#include "core/base/status.h"

namespace drover {

struct ForkExecSpec {
  std::vector<std::string> argv;  // argv[0] is looked up on the worker's PATH
  // Added to the worker's environment, or overriding it (child_env.h).
  std::vector<std::pair<std::string, std::string>> env;
  // Inherited variables the child must not see (a parent's own LISTEN_FDS).
  std::vector<std::string_view> drop_env;
  // When set, NAME=<the child's own pid> is added to its environment.
  std::string pid_env;
  std::filesystem::path cwd;  // empty: inherit
  int fd3 = -1;               // becomes the child's fd 3, or -1: none
  int stdout_fd = -1;         // the child's stdout, or -1: /dev/null
  // The child's stderr, or -1: a pipe whose read end is ForkedChild::err.
  int stderr_fd = -1;
  std::vector<RlimitSetting> rlimits;  // made in the child before execve
};

struct ForkedChild {
  pid_t pid = -1;  // leads its own process group; not reaped yet
  UniqueFd pidfd;  // readable when it exits
  UniqueFd err;    // read end of its stderr pipe (O_NONBLOCK), or none if
                   // it could not be made non-blocking or stderr_fd was given
};

// Starts the child. Errors: "command not found: X", "permission denied:
// X", "cwd 'D': ...", "setrlimit RLIMIT_X: ...", or the failing syscall.
// No process is left behind.
Result<ForkedChild> ForkExec(const ForkExecSpec& spec);

}  // namespace drover

#endif  // DROVER_BACKENDS_PROCESS_FORK_EXEC_H_

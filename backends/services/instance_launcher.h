// Starts one service instance with its socket on fd 3.
//
// LISTEN_PID must be the instance's own pid, known only after fork, so this
// uses fork + execve rather than posix_spawn. The supervisor is
// multithreaded, so everything the child needs (argv, envp, the resolved
// program path, the LISTEN_PID digits' buffer) is prepared before fork(),
// and between fork and exec the child only makes async-signal-safe calls.
// An exec failure travels back over a close-on-exec pipe, so a missing
// command is an error of Launch, not an instance that "exits 127".
#ifndef DROVER_BACKENDS_SERVICES_INSTANCE_LAUNCHER_H_
#define DROVER_BACKENDS_SERVICES_INSTANCE_LAUNCHER_H_

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "backends/spawn/unique_fd.h"
#include "core/base/status.h"

namespace drover::services {

struct InstanceLaunch {
  std::vector<std::string> command;
  std::vector<std::pair<std::string, std::string>> env;
  std::filesystem::path cwd;
  int socket_fd = -1;  // becomes fd 3 in the child
  bool handoff = false;  // fd 3 is a hand-off channel, not a listening socket
  int log_fd = -1;       // stdout of the child (O_APPEND file), or -1: /dev/null
};

struct LaunchedInstance {
  pid_t pid = -1;  // leads its own process group; not reaped yet
  UniqueFd pidfd;  // readable when it exits
  UniqueFd err;    // read end of its stderr pipe, O_NONBLOCK
};

// Starts the instance. Errors: "command not found: X", "permission denied:
// X", "cwd 'D': ...", or the failing syscall. No process is left behind.
Result<LaunchedInstance> LaunchInstance(const InstanceLaunch& launch);

// "exit 1", "signal 9 (Killed)" for a waitpid status.
std::string DescribeWaitStatus(int status);

}  // namespace drover::services

#endif  // DROVER_BACKENDS_SERVICES_INSTANCE_LAUNCHER_H_

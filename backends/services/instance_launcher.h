// Starts one service instance with its socket on fd 3, as systemd socket
// activation does (LISTEN_FDS, LISTEN_PID) or as a hand-off channel
// (DROVER_HANDOFF_FD, include/drover/handoff.h).
//
// LISTEN_PID must be the instance's own pid, known only after fork, so this
// uses ForkExec (backends/process/fork_exec.h) rather than posix_spawn.
#ifndef DROVER_BACKENDS_SERVICES_INSTANCE_LAUNCHER_H_
#define DROVER_BACKENDS_SERVICES_INSTANCE_LAUNCHER_H_

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "backends/process/fork_exec.h"
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

using LaunchedInstance = ForkedChild;

// Starts the instance. Errors: "command not found: X", "permission denied:
// X", "cwd 'D': ...", or the failing syscall. No process is left behind.
Result<LaunchedInstance> LaunchInstance(const InstanceLaunch& launch);

// "exit 1", "signal 9 (Killed)" for a waitpid status.
std::string DescribeWaitStatus(int status);

}  // namespace drover::services

#endif  // DROVER_BACKENDS_SERVICES_INSTANCE_LAUNCHER_H_

#include "backends/services/instance_launcher.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>

namespace drover::services {

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* name = ::sigdescr_np(sig);
    return "signal " + std::to_string(sig) +
           (name != nullptr ? std::string(" (") + name + ")" : "");
  }
  return "status " + std::to_string(status);
}

Result<LaunchedInstance> LaunchInstance(const InstanceLaunch& launch) {
  ForkExecSpec spec;
  spec.argv = launch.command;
  // The socket's variables win over the spec's; those our own parent may
  // have passed us are not inherited.
  spec.env = launch.env;
  spec.drop_env = {"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "DROVER_HANDOFF_FD"};
  if (launch.handoff) {
    spec.env.emplace_back("DROVER_HANDOFF_FD", "3");
  } else {
    spec.env.emplace_back("LISTEN_FDS", "1");
    spec.pid_env = "LISTEN_PID";
  }
  spec.cwd = launch.cwd;
  spec.fd3 = launch.socket_fd;
  spec.stdout_fd = launch.log_fd;
  return ForkExec(spec);
}

}  // namespace drover::services

#include "backends/process/process_group.h"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

namespace drover {
namespace {

Duration FromTimeval(const timeval& tv) {
  return std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
}

}  // namespace

void SignalGroup(pid_t pgid, int sig) {
  const bool group_gone = ::kill(-pgid, sig) != 0 && errno == ESRCH;
  // A SIGKILL reaches the leader even if it left its group while others
  // stayed in it; another signal goes to it again only when the group is
  // gone (a second SIGTERM would run its handler twice).
  if (group_gone || sig == SIGKILL) ::kill(pgid, sig);
}

int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

void KillAndReap(pid_t pid) {
  SignalGroup(pid, SIGKILL);
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

bool WaitExited(int pidfd, Duration within) {
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(within).count();
  pollfd p{pidfd, POLLIN, 0};
  int ready;
  do {
    ready = ::poll(&p, 1, static_cast<int>(std::clamp<int64_t>(ms, 0, 1 << 30)));
  } while (ready < 0 && errno == EINTR);
  return ready > 0;
}

Reaped Reap(pid_t pid) {
  Reaped reaped;
  pid_t r;
  do {
    r = ::wait4(pid, &reaped.status, 0, &reaped.usage);
  } while (r < 0 && errno == EINTR);
  reaped.ok = r == pid;
  if (!reaped.ok) reaped.error = errno;
  return reaped;
}

void SetUsage(const rusage& usage, AttemptOutcome& outcome) {
  outcome.cpu_user = FromTimeval(usage.ru_utime);
  outcome.cpu_sys = FromTimeval(usage.ru_stime);
  outcome.max_rss_kb = usage.ru_maxrss;
}

}  // namespace drover

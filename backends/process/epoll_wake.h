// The wake-up channel of a backend reactor (spawn, fork): an epoll instance
// with an eventfd in it, which Submit/Cancel/Shutdown write to from other
// threads after queueing a command.
#ifndef DROVER_BACKENDS_PROCESS_EPOLL_WAKE_H_
#define DROVER_BACKENDS_PROCESS_EPOLL_WAKE_H_

#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <cerrno>
#include <cstdint>

#include "backends/process/unique_fd.h"
#include "core/base/status.h"

namespace drover {

// Creates `epoll_fd` and a non-blocking `wake_fd` registered in it for
// reading under `token`. On failure the message names the syscall.
inline Status OpenEpollWithWake(UniqueFd& epoll_fd, UniqueFd& wake_fd, uint64_t token) {
  epoll_fd.Reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_fd.valid()) return ErrnoError("epoll_create1", errno);
  wake_fd.Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd.valid()) return ErrnoError("eventfd", errno);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = token;
  if (::epoll_ctl(epoll_fd.get(), EPOLL_CTL_ADD, wake_fd.get(), &ev) != 0) {
    return ErrnoError("epoll_ctl", errno);
  }
  return Status::Ok();
}

}  // namespace drover

#endif  // DROVER_BACKENDS_PROCESS_EPOLL_WAKE_H_

// The worker's loop, as far as a driven backend sees it (backend.h,
// BackendConfig::driven), for the backend tests that run each case both
// ways: a thread that waits on the backend's PollFd() for at most its
// PollTimeoutMs() and calls Poll(), until Stop().
//
// Stop() before the backend's Shutdown, so that the last turns run on the
// test's thread alone; the destructor stops it too.
#ifndef DROVER_TESTS_INTEGRATION_BACKEND_DRIVER_H_
#define DROVER_TESTS_INTEGRATION_BACKEND_DRIVER_H_

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <thread>

#include "backends/backend.h"

namespace drover::testing {

class BackendDriver {
 public:
  BackendDriver() = default;
  BackendDriver(const BackendDriver&) = delete;
  BackendDriver& operator=(const BackendDriver&) = delete;
  ~BackendDriver() { Stop(); }

  // Starts driving `backend`, which must be started and driven.
  void Start(Backend* backend) {
    ASSERT_GE(backend->PollFd(), 0) << "the backend is not driven";
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
    ASSERT_GE(stop_fd_, 0);
    thread_ = std::thread([this, backend] {
      for (;;) {
        pollfd fds[2] = {{backend->PollFd(), POLLIN, 0}, {stop_fd_, POLLIN, 0}};
        ::poll(fds, 2, backend->PollTimeoutMs());
        if (fds[1].revents & POLLIN) return;
        backend->Poll();
      }
    });
  }

  void Stop() {
    if (!thread_.joinable()) return;
    const uint64_t one = 1;
    EXPECT_EQ(::write(stop_fd_, &one, sizeof one), 8);
    thread_.join();
    ::close(stop_fd_);
    stop_fd_ = -1;
  }

 private:
  std::thread thread_;
  int stop_fd_ = -1;
};

}  // namespace drover::testing

#endif  // DROVER_TESTS_INTEGRATION_BACKEND_DRIVER_H_

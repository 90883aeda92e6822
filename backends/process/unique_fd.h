// UniqueFd: owns one file descriptor and closes it on destruction.
// Move-only; not thread-safe (one owner at a time).
#ifndef DROVER_BACKENDS_PROCESS_UNIQUE_FD_H_
#define DROVER_BACKENDS_PROCESS_UNIQUE_FD_H_

#include <unistd.h>

#include <utility>

namespace drover {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }

  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) Reset(other.Release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

  // Closes the current descriptor (if any) and takes `fd`.
  void Reset(int fd = -1) {
    // close() errors are not actionable here: the descriptor is gone either
    // way on Linux, and retrying could close a reused number.
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }
  // Gives up ownership without closing.
  int Release() { return std::exchange(fd_, -1); }

 private:
  int fd_ = -1;
};

}  // namespace drover

#endif  // DROVER_BACKENDS_PROCESS_UNIQUE_FD_H_

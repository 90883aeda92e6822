#include "core/base/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace drover {
namespace {

// Reads `fd` to its end into *text; EFBIG once it passes `limit`.
int ReadAll(int fd, size_t limit, std::string* text) {
  const size_t start = text->size();
  char buffer[64 * 1024];
  for (;;) {
    // Never more than one byte past the limit: /dev/zero has no end.
    const size_t read_so_far = text->size() - start;
    const size_t want = limit == SIZE_MAX
                            ? sizeof buffer
                            : std::min(sizeof buffer, limit - read_so_far + 1);
    const ssize_t n = ::read(fd, buffer, want);
    if (n > 0) {
      text->append(buffer, static_cast<size_t>(n));
      if (text->size() - start > limit) return EFBIG;
    } else if (n == 0) {
      return 0;
    } else if (errno != EINTR) {
      return errno;
    }
  }
}

}  // namespace

int ReadWholeFile(const std::string& path, std::string* text, size_t limit) {
  int fd = -1;
  // O_NONBLOCK: opening a FIFO for reading otherwise waits for a writer,
  // forever if none comes. Cleared below, so that a pipe with a writer is
  // waited on and read to its end.
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return errno;
  int err = 0;
  struct stat st {};
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0 ||
      ::fstat(fd, &st) < 0) {
    err = errno;
  } else if (S_ISDIR(st.st_mode)) {
    err = EISDIR;
  } else if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > limit) {
    err = EFBIG;  // refused without reading it
  } else {
    // A regular file's size is a hint (it may change, and /proc reports
    // 0): the read stops at its end or past `limit`, whichever is first.
    if (S_ISREG(st.st_mode))
      text->reserve(text->size() + static_cast<size_t>(st.st_size));
    err = ReadAll(fd, limit, text);
  }
  ::close(fd);
  return err;
}

}  // namespace drover

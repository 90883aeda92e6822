#include "backends/process/output_capture.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace drover {
namespace {

constexpr size_t kCopyBuffer = 64 * 1024;

// Copies `len` bytes at `in_off` of `in` to the end of `out`, in the kernel
// when it can (copy_file_range), through a fixed buffer otherwise.
Status CopyRange(int in, uint64_t in_off, int out, uint64_t out_off, uint64_t len) {
  auto in_pos = static_cast<off64_t>(in_off);
  auto out_pos = static_cast<off64_t>(out_off);
  while (len > 0) {
    ssize_t n = ::copy_file_range(in, &in_pos, out, &out_pos, len, 0);
    if (n > 0) {
      len -= static_cast<uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EXDEV && errno != ENOSYS && errno != EINVAL &&
        errno != EOPNOTSUPP) {
      return ErrnoError("copy_file_range", errno);
    }
    break;  // not supported here (or an unexpected 0): copy by hand
  }
  if (len == 0) return Status::Ok();
  std::vector<char> buffer(kCopyBuffer);
  while (len > 0) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(len, buffer.size()));
    ssize_t n = ::pread(in, buffer.data(), want, in_pos);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("pread", errno);
    if (n == 0) return IoError("capture file shrank while rotating it");
    size_t done = 0;
    while (done < static_cast<size_t>(n)) {
      ssize_t w =
          ::pwrite(out, buffer.data() + done, static_cast<size_t>(n) - done, out_pos);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return ErrnoError("pwrite", errno);
      done += static_cast<size_t>(w);
      out_pos += w;
    }
    in_pos += n;
    len -= static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

}  // namespace

OutputCapture::OutputCapture(std::string path, uint64_t limit)
    : path_(std::move(path)), limit_(limit) {}

Status OutputCapture::Open() {
  // Try the open first: the directory usually exists already, and this is
  // one syscall instead of a stat per directory level.
  int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 && errno == ENOENT) {
    const std::filesystem::path path(path_);
    if (path.has_parent_path()) {
      std::error_code ec;
      std::filesystem::create_directories(path.parent_path(), ec);
      if (ec) {
        return IoError("cannot create " + path.parent_path().string() + ": " +
                       ec.message());
      }
      fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    } else {
      errno = ENOENT;
    }
  }
  if (fd < 0) return ErrnoError("cannot create " + path_, errno);
  fd_.Reset(fd);
  return Status::Ok();
}

Status OutputCapture::WriteAt(const char* data, size_t n, uint64_t offset) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd_.get(), data, n, static_cast<off_t>(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return ErrnoError("cannot write " + path_, errno);
    data += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
  return Status::Ok();
}

Status OutputCapture::Append(const char* data, size_t n) {
  if (n == 0) return Status::Ok();
  uint64_t start = total_;
  total_ += n;
  if (limit_ == 0 || !error_.ok() || finished_) return Status::Ok();
  if (!fd_.valid()) {
    error_ = Open();
    if (!error_.ok()) return error_;
  }
  // Only the last `limit_` bytes of this chunk can survive it.
  if (n > limit_) {
    uint64_t skip = n - limit_;
    data += skip;
    start += skip;
    n = static_cast<size_t>(limit_);
  }
  uint64_t offset = start % limit_;
  size_t first = static_cast<size_t>(std::min<uint64_t>(n, limit_ - offset));
  error_ = WriteAt(data, first, offset);
  if (error_.ok() && n > first) error_ = WriteAt(data + first, n - first, 0);
  return error_;
}

Status OutputCapture::Rotate(uint64_t head) {
  // The oldest kept byte sits at `head`: the tail in order is
  // [head, limit) followed by [0, head). Copy it into a sibling file and
  // rename that over the original, so memory stays bounded and a reader
  // never sees a half-rotated file.
  const std::string tmp = path_ + ".rotating";
  UniqueFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!out.valid()) return ErrnoError("cannot create " + tmp, errno);
  Status s = CopyRange(fd_.get(), head, out.get(), 0, limit_ - head);
  if (s.ok()) s = CopyRange(fd_.get(), 0, out.get(), limit_ - head, head);
  if (s.ok() && ::rename(tmp.c_str(), path_.c_str()) != 0) {
    s = ErrnoError("cannot rename " + tmp, errno);
  }
  if (!s.ok()) ::unlink(tmp.c_str());
  return s;
}

Status OutputCapture::Finish() {
  if (finished_) return Status::Ok();
  finished_ = true;
  if (!fd_.valid()) return error_;
  Status s = error_;
  if (s.ok() && total_ > limit_ && total_ % limit_ != 0) {
    s = Rotate(total_ % limit_);
  }
  fd_.Reset();
  if (!s.ok()) {
    ::unlink(path_.c_str());
    error_ = s;
  }
  return s;
}

StreamInfo OutputCapture::info() const {
  StreamInfo info;
  info.bytes = error_.ok() ? std::min(total_, limit_) : 0;
  info.dropped = total_ - info.bytes;
  return info;
}

}  // namespace drover

#include "core/artifacts/transfer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace drover::artifacts {

std::optional<std::string> BadArtifactPath(std::string_view path) {
  if (path.empty()) return "an artifact path cannot be empty";
  if (path.size() > kMaxPathBytes) {
    return "an artifact path is at most " + std::to_string(kMaxPathBytes) + " bytes";
  }
  if (path.find('\0') != std::string_view::npos)
    return "an artifact path cannot contain NUL";
  if (path.front() == '/') {
    return "artifact path '" + std::string(path) +
           "' is absolute: artifacts are relative to the task's working directory";
  }
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view part = path.substr(start, end - start);
    if (part == "..") {
      return "artifact path '" + std::string(path) +
             "' leaves the task's working directory ('..')";
    }
    if (part == "." || part.empty()) {
      return "artifact path '" + std::string(path) + "' has an empty or '.' component";
    }
    start = end + 1;
  }
  return std::nullopt;
}

Result<std::unique_ptr<ChunkSource>> ChunkSource::Open(
    const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open " + path.string(), errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return IoError(path.string() + " is not a regular file");
  }
  // The whole file is read once, front to back.
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  return std::unique_ptr<ChunkSource>(new ChunkSource(fd, path, st));
}

bool ChunkSource::Unchanged() const {
  struct stat st {};
  return ::fstat(fd_, &st) == 0 && FileStamp::Of(st) == stamp_;
}

ChunkSource::~ChunkSource() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::string> ChunkSource::Next() {
  started_ = true;
  const uint64_t want = std::min<uint64_t>(kChunkSize, size_ - offset_);
  std::string chunk(want, '\0');
  size_t got = 0;
  while (got < want) {
    const ssize_t n =
        ::pread(fd_, chunk.data() + got, want - got, static_cast<off_t>(offset_ + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read " + path_.string(), errno);
    }
    if (n == 0) {
      return FailedPrecondition(path_.string() + " shrank while it was being sent");
    }
    got += static_cast<size_t>(n);
  }
  offset_ += want;
  if (hashing_) hash_.Update(chunk);
  return chunk;
}

}  // namespace drover::artifacts

#include "core/artifacts/blob_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <random>
#include <system_error>

namespace drover::artifacts {
namespace fs = std::filesystem;

BlobWriter::BlobWriter(int fd, fs::path temp, fs::path root)
    : fd_(fd), temp_(std::move(temp)), root_(std::move(root)) {}

BlobWriter::~BlobWriter() { Abort(); }

Status BlobWriter::Append(std::string_view data) {
  if (done_) return FailedPrecondition("blob writer already finished");
  hash_.Update(data);
  size_ += data.size();
  while (!data.empty()) {
    const ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write " + temp_.string(), errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Result<fs::path> BlobWriter::Commit(std::string_view sha256, uint64_t size) {
  if (done_) return FailedPrecondition("blob writer already finished");
  const std::string got = hash_.Final();
  if (size_ != size) {
    Abort();
    return InvalidArgument("size mismatch: received " + std::to_string(size_) +
                           " bytes, the sender announced " + std::to_string(size));
  }
  if (got != sha256) {
    Abort();
    return InvalidArgument("sha256 mismatch: received content hashes to " + got +
                           ", the sender announced " + std::string(sha256));
  }
  if (::close(fd_) != 0) {
    const int err = errno;
    fd_ = -1;
    Abort();
    return ErrnoError("close " + temp_.string(), err);
  }
  fd_ = -1;
  const fs::path dest =
      root_ / "sha256" / std::string(sha256.substr(0, 2)) / std::string(sha256);
  std::error_code ec;
  fs::create_directories(dest.parent_path(), ec);
  if (ec) {
    Abort();
    return IoError("create " + dest.parent_path().string() + ": " + ec.message());
  }
  if (fs::exists(dest, ec)) {
    // Same name, same bytes: keep the one already there.
    Abort();
    return dest;
  }
  fs::rename(temp_, dest, ec);
  if (ec) {
    Abort();
    return IoError("rename " + temp_.string() + " to " + dest.string() + ": " +
                   ec.message());
  }
  done_ = true;
  return dest;
}

void BlobWriter::Abort() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!done_) {
    std::error_code ec;
    fs::remove(temp_, ec);
    done_ = true;
  }
}

Result<std::unique_ptr<BlobStore>> BlobStore::Open(const fs::path& root) {
  std::error_code ec;
  fs::create_directories(root / "sha256", ec);
  if (!ec) fs::create_directories(root / "tmp", ec);
  if (ec)
    return IoError("cannot create the artifact store " + root.string() + ": " +
                   ec.message());
  for (const auto& entry : fs::directory_iterator(root / "tmp", ec)) {
    std::error_code ignored;
    fs::remove(entry.path(), ignored);
  }
  return std::unique_ptr<BlobStore>(new BlobStore(root));
}

fs::path BlobStore::Path(std::string_view sha256) const {
  if (sha256.size() < 2) return root_ / "sha256" / "invalid";
  return root_ / "sha256" / std::string(sha256.substr(0, 2)) / std::string(sha256);
}

bool BlobStore::Has(std::string_view sha256) const {
  std::error_code ec;
  return IsSha256Hex(sha256) && fs::is_regular_file(Path(sha256), ec);
}

Result<std::unique_ptr<BlobWriter>> BlobStore::Begin() {
  // A name no other writer of this root uses: the pid, a counter and a
  // random part (a restarted process must not reuse a live name).
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  const fs::path temp = root_ / "tmp" /
                        (std::to_string(::getpid()) + "-" + std::to_string(next_temp_++) +
                         "-" + std::to_string(rng() % 1000000) + ".part");
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("create " + temp.string(), errno);
  return std::make_unique<BlobWriter>(fd, temp, root_);
}

BlobStore::Usage BlobStore::Scan() const { return CountFiles(root_ / "sha256"); }

BlobStore::Usage BlobStore::CountFiles(const fs::path& dir) {
  Usage u;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code e2;
    if (!it->is_regular_file(e2)) continue;
    // A file removed since it was listed (a spool being written) is not
    // counted; file_size's error value is not a size.
    const uintmax_t size = it->file_size(e2);
    if (e2) continue;
    ++u.blobs;
    u.bytes += size;
  }
  return u;
}

BlobStore::Usage BlobStore::RemoveUnreferenced(const std::set<std::string>& referenced,
                                               std::chrono::seconds min_age) const {
  Usage removed;
  std::error_code ec;
  const auto now = fs::file_time_type::clock::now();
  for (auto it = fs::recursive_directory_iterator(root_ / "sha256", ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code e2;
    if (!it->is_regular_file(e2)) continue;
    const std::string name = it->path().filename().string();
    if (referenced.count(name)) continue;
    const auto mtime = it->last_write_time(e2);
    if (e2 || now - mtime < min_age) continue;
    const uint64_t size = it->file_size(e2);
    if (fs::remove(it->path(), e2)) {
      ++removed.blobs;
      removed.bytes += size;
    }
  }
  return removed;
}

}  // namespace drover::artifacts

#include "core/artifacts/blob_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
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

Result<size_t> BlobWriter::HashNext(size_t max) {
  if (done_) return FailedPrecondition("blob writer already finished");
  buffer_.resize(max);
  for (;;) {
    const ssize_t n = ::read(fd_, buffer_.data(), max);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read " + temp_.string(), errno);
    }
    hash_.Update(std::string_view(buffer_.data(), static_cast<size_t>(n)));
    size_ += static_cast<uint64_t>(n);
    return static_cast<size_t>(n);
  }
}

const std::string& BlobWriter::Digest() {
  if (!digest_) digest_ = hash_.Final();
  return *digest_;
}

Result<fs::path> BlobWriter::Commit(std::string_view sha256, uint64_t size) {
  if (done_) return FailedPrecondition("blob writer already finished");
  const std::string got = Digest();
  if (sha256.empty()) sha256 = got;
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
  const fs::path dest = BlobPath(root_, sha256);
  std::error_code ec;
  fs::create_directories(dest.parent_path(), ec);
  if (ec) {
    Abort();
    return IoError("create " + dest.parent_path().string() + ": " + ec.message());
  }
  // A blob of that name may exist: same name, same bytes, unless the disk
  // changed them since (blobs are not fsynced). These were just verified,
  // so they replace it: storing the content again repairs a damaged blob.
  // Readers that have the old file open keep reading it.
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

fs::path BlobPath(const fs::path& root, std::string_view sha256) {
  if (sha256.size() < 2) return root / "sha256" / "invalid";
  return root / "sha256" / std::string(sha256.substr(0, 2)) / std::string(sha256);
}

fs::path BlobStore::Path(std::string_view sha256) const {
  return BlobPath(root_, sha256);
}

bool BlobStore::Has(std::string_view sha256) const {
  std::error_code ec;
  return IsSha256Hex(sha256) && fs::is_regular_file(Path(sha256), ec);
}

void BlobStore::NoteVerified(std::string_view sha256, const FileStamp& stamp) {
  std::string key(sha256);
  if (verified_.size() >= kMaxVerified && !verified_.count(key)) verified_.clear();
  verified_.insert_or_assign(std::move(key), stamp);
}

bool BlobStore::NoteVerified(std::string_view sha256) {
  struct stat st {};
  if (::stat(Path(sha256).c_str(), &st) != 0) return false;
  NoteVerified(sha256, FileStamp::Of(st));
  return true;
}

bool BlobStore::Verified(std::string_view sha256, const FileStamp& stamp) const {
  auto it = verified_.find(std::string(sha256));
  return it != verified_.end() && it->second == stamp;
}

fs::path BlobStore::TempName() {
  // A name no other writer of this root uses: the pid, a counter and a
  // random part (a restarted process must not reuse a live name).
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return root_ / "tmp" /
         (std::to_string(::getpid()) + "-" + std::to_string(next_temp_++) + "-" +
          std::to_string(rng() % 1000000) + ".part");
}

Result<std::unique_ptr<BlobWriter>> BlobStore::BeginLinked(const fs::path& source,
                                                           uint64_t size) {
  const fs::path temp = TempName();
  if (::link(source.c_str(), temp.c_str()) != 0) {
    return Unavailable("link " + source.string() + " into " +
                       temp.parent_path().string() + ": " + std::strerror(errno));
  }
  const int fd = ::open(temp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    return ErrnoError("open " + temp.string(), err);
  }
  auto writer = std::make_unique<BlobWriter>(fd, temp, root_);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != size) {
    return FailedPrecondition(source.string() + " holds " + std::to_string(st.st_size) +
                              " bytes, not the " + std::to_string(size) + " announced");
  }
  return writer;  // its destructor removes the link on every other path
}

Result<std::unique_ptr<BlobWriter>> BlobStore::Begin() {
  const fs::path temp = TempName();
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

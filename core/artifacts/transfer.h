// The shared parts of an artifact transfer (docs/protocol.md, "Artifact
// transfer"): the chunk size, the credit window, the path rules, and a
// reader that sends a file in chunks while hashing it.
//
// Details callers may rely on:
//  - kChunkSize bytes per ARTIFACT-CHUNK at most; a receiver grants at most
//    kMaxCredit chunks ahead, so a transfer holds at most
//    kChunkSize * kMaxCredit bytes in flight, whatever the file's size.
//  - ChunkSource reads one chunk per call: the caller's loop is never held
//    for a whole file.
#ifndef DROVER_CORE_ARTIFACTS_TRANSFER_H_
#define DROVER_CORE_ARTIFACTS_TRANSFER_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/artifacts/file_stamp.h"
#include "core/artifacts/sha256.h"
#include "core/base/status.h"

namespace drover::artifacts {

inline constexpr size_t kChunkSize = 256u << 10;
// What a receiver grants when a transfer starts, and the most it may have
// granted and not yet received.
inline constexpr uint32_t kWindow = 8;
inline constexpr uint32_t kMaxCredit = 16;
// A task may declare at most this many files (after glob expansion).
inline constexpr size_t kMaxFilesPerAttempt = 1000;
inline constexpr size_t kMaxPathBytes = 1024;

// Why `path` may not name an artifact, or nullopt when it may: it must be
// relative, non-empty, at most kMaxPathBytes, without a "." or ".."
// component, an empty component ("a//b") or a NUL. Used for a spec's
// patterns and for every path on the wire.
std::optional<std::string> BadArtifactPath(std::string_view path);

// A file read in chunks, hashed as it goes.
class ChunkSource {
 public:
  // Opens `path`; kIoError naming it when it cannot.
  static Result<std::unique_ptr<ChunkSource>> Open(const std::filesystem::path& path);
  ~ChunkSource();
  ChunkSource(const ChunkSource&) = delete;
  ChunkSource& operator=(const ChunkSource&) = delete;

  uint64_t size() const { return size_; }      // at Open
  uint64_t offset() const { return offset_; }  // of the next chunk
  uint32_t mode() const { return mode_; }      // permission bits
  bool done() const { return offset_ >= size_ && started_; }
  // The next chunk (at most kChunkSize bytes). A file that changes size
  // while it is read is an error (kFailedPrecondition): what was announced
  // would not match.
  Result<std::string> Next();
  // The sha256 of every byte Next returned; call once, after done(), and
  // only while hashing().
  std::string Final() { return hash_.Final(); }

  // The file's stamp when it was opened (file_stamp.h), and whether it
  // still has it (false also when it cannot be told).
  const FileStamp& stamp() const { return stamp_; }
  bool Unchanged() const;
  // Reads without hashing from here on: for a file whose content its stamp
  // vouches for (BlobStore::Verified). Call before the first Next.
  void SkipHash() { hashing_ = false; }
  bool hashing() const { return hashing_; }

 private:
  ChunkSource(int fd, std::filesystem::path path, const struct stat& st)
      : fd_(fd),
        path_(std::move(path)),
        size_(static_cast<uint64_t>(st.st_size)),
        mode_(static_cast<uint32_t>(st.st_mode & 07777)),
        stamp_(FileStamp::Of(st)) {}
  int fd_;
  std::filesystem::path path_;
  uint64_t size_;
  uint32_t mode_;
  FileStamp stamp_;
  uint64_t offset_ = 0;
  bool started_ = false;
  bool hashing_ = true;
  Sha256 hash_;
};

}  // namespace drover::artifacts

#endif  // DROVER_CORE_ARTIFACTS_TRANSFER_H_

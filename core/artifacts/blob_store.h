// BlobStore: content-addressed files, named by the sha256 of their bytes.
// The coordinator keeps artifacts in one (STATE/artifacts, docs/state.md);
// each worker keeps its cache of staged inputs in another (SPOOL/cache).
//
//   ROOT/sha256/ab/abcdef...   a blob: the file whose sha256 is abcdef...
//   ROOT/tmp/NNN.part          a blob being written (never read)
//
// Details callers may rely on:
//  - No partial blob is ever visible: a BlobWriter writes ROOT/tmp/, and
//    Commit renames the file into place only after its size and sha256
//    match what the sender announced. A writer destroyed without Commit,
//    and a failed Commit, remove their temporary file.
//  - The same content is stored once: committing a blob that exists
//    already replaces it with the new, just verified copy (same name, same
//    bytes, unless the disk damaged the old one: this repairs it).
//  - Blobs are not fsynced (a 2 GiB fsync would stall the coordinator's
//    loop); after a power loss a blob may hold other bytes than its name
//    says. Every receiver verifies the sha256 of what it gets, so such a
//    blob is refused, never passed on; a sender hashes a blob as it reads
//    it unless Verified vouches for it (below), which a restarted process
//    never does.
//  - Open() removes what ROOT/tmp/ holds: uploads cut by a crash.
//  - BeginLinked adopts a file already on the store's file system (a hard
//    link, no byte copied: `drover run`, docs/state.md): the blob then
//    shares its inode with that file, and the same rules hold (hashed
//    before it is named, readers verify).
//  - Not thread-safe; one owner. Several processes may read the same
//    root; only one (the coordinator, or one worker) writes it.
#ifndef DROVER_CORE_ARTIFACTS_BLOB_STORE_H_
#define DROVER_CORE_ARTIFACTS_BLOB_STORE_H_

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/artifacts/file_stamp.h"
#include "core/artifacts/sha256.h"
#include "core/base/status.h"

namespace drover::artifacts {

class BlobWriter {
 public:
  BlobWriter(int fd, std::filesystem::path temp, std::filesystem::path root);
  ~BlobWriter();
  BlobWriter(const BlobWriter&) = delete;
  BlobWriter& operator=(const BlobWriter&) = delete;

  // Appends `data`. kIoError naming the cause ("No space left on device")
  // when the write fails; the writer is then useless (Abort it).
  Status Append(std::string_view data);
  uint64_t size() const { return size_; }
  // Checks the bytes appended (or hashed) against `sha256` and `size` and,
  // when they match, makes them the blob `sha256`; an empty `sha256` takes
  // whatever they hash to (a linked writer: nobody announced one). kInvalidArgument
  // ("sha256 mismatch ...") or kIoError otherwise; either way the temporary file is gone
  // afterwards. Returns the blob's path.
  Result<std::filesystem::path> Commit(std::string_view sha256, uint64_t size);
  // A linked writer (BlobStore::BeginLinked): reads and hashes at most
  // `max` more bytes of its file, writing none; returns how many (0 at the
  // end). kIoError when the file cannot be read.
  Result<size_t> HashNext(size_t max);
  // The sha256 of every byte appended or hashed so far; call once they
  // are all there (Commit uses the same value).
  const std::string& Digest();
  // Removes the temporary file. Idempotent.
  void Abort();

 private:
  int fd_;
  std::filesystem::path temp_;
  std::filesystem::path root_;
  uint64_t size_ = 0;
  Sha256 hash_;
  bool done_ = false;
  std::string buffer_;  // HashNext's
  std::optional<std::string> digest_;
};

// Where blob `sha256` lives in the store at `root` (whether or not it
// exists): ROOT/sha256/ab/abcdef...
std::filesystem::path BlobPath(const std::filesystem::path& root,
                               std::string_view sha256);

class BlobStore {
 public:
  // Creates ROOT/sha256 and ROOT/tmp and empties ROOT/tmp.
  static Result<std::unique_ptr<BlobStore>> Open(const std::filesystem::path& root);

  const std::filesystem::path& root() const { return root_; }
  // Where blob `sha256` lives (whether or not it exists).
  std::filesystem::path Path(std::string_view sha256) const;
  bool Has(std::string_view sha256) const;
  // A writer of a new blob in ROOT/tmp.
  Result<std::unique_ptr<BlobWriter>> Begin();
  // A writer whose temporary file is `source` itself, hard-linked into
  // ROOT/tmp: hash it with HashNext, then Commit("", size). kUnavailable
  // when it cannot be linked (another file system, a file system without
  // hard links: the caller then copies the bytes), kFailedPrecondition
  // when its size is not `size`.
  Result<std::unique_ptr<BlobWriter>> BeginLinked(const std::filesystem::path& source,
                                                  uint64_t size);

  struct Usage {
    uint64_t blobs = 0;
    uint64_t bytes = 0;
  };
  // What the store holds: blobs and their bytes. Walks ROOT/sha256.
  Usage Scan() const;
  // The regular files under `dir` (recursively) and their bytes; 0 for a
  // directory that does not exist. Only reads: any thread may call it
  // on any directory, such as a worker's spool while the worker writes it.
  static Usage CountFiles(const std::filesystem::path& dir);
  // Removes every blob whose name is not in `referenced` and whose file is
  // older than `min_age` (a blob just committed may not be indexed yet).
  // Returns what was removed.
  Usage RemoveUnreferenced(const std::set<std::string>& referenced,
                           std::chrono::seconds min_age) const;

  // Blobs whose bytes this object's owner saw hash to their name (a
  // Commit, a read that checked them), each with its file's stamp then
  // (file_stamp.h). A reader may send a blob without hashing it again
  // while its file still has that stamp. Kept in memory only, so a
  // restarted owner hashes each blob once more (blobs are not fsynced).
  // At most kMaxVerified are kept; one more forgets them all (each is then
  // hashed once more when next sent).
  static constexpr size_t kMaxVerified = 65536;
  void NoteVerified(std::string_view sha256, const FileStamp& stamp);
  // NoteVerified of blob `sha256` with its file's stamp now; false when
  // the file cannot be stat'ed.
  bool NoteVerified(std::string_view sha256);
  bool Verified(std::string_view sha256, const FileStamp& stamp) const;

 private:
  explicit BlobStore(std::filesystem::path root) : root_(std::move(root)) {}
  std::filesystem::path TempName();
  std::filesystem::path root_;
  uint64_t next_temp_ = 0;
  std::unordered_map<std::string, FileStamp> verified_;
};

}  // namespace drover::artifacts

#endif  // DROVER_CORE_ARTIFACTS_BLOB_STORE_H_

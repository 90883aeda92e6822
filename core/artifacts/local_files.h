// LocalFiles: the hand-off of artifact files between a worker and a
// coordinator that share one process and one disk (`drover run`), so that
// bytes already on that disk are linked, not copied (docs/protocol.md,
// "Artifact transfer", In-process).
//
//  - Uploads: the worker lists each file of an upload (attempt, path as
//    sent in ARTIFACT-PUT -> the file on disk) before it sends the PUT; the
//    coordinator, on that PUT, hard-links the listed file into its store
//    and hashes it there instead of asking for chunks.
//  - Staging: the worker links an input from the coordinator's store
//    (store_root()) into its cache instead of downloading it.
//
// Details callers may rely on:
//  - Thread-safe: the worker's and the coordinator's loops call it from
//    their own threads.
//  - It holds names only; a file it lists may be gone by the time it is
//    looked up, and a caller that cannot link falls back to the transfer
//    over the socket.
#ifndef DROVER_CORE_ARTIFACTS_LOCAL_FILES_H_
#define DROVER_CORE_ARTIFACTS_LOCAL_FILES_H_

#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

namespace drover::artifacts {

class LocalFiles {
 public:
  // `store_root`: the coordinator's artifact store (STATE/artifacts).
  explicit LocalFiles(std::filesystem::path store_root)
      : store_root_(std::move(store_root)) {}

  const std::filesystem::path& store_root() const { return store_root_; }
  void Add(uint64_t attempt, const std::string& path, std::filesystem::path file);
  // Forgets every file of `attempt`.
  void Forget(uint64_t attempt);
  std::optional<std::filesystem::path> Find(uint64_t attempt,
                                            const std::string& path) const;

 private:
  const std::filesystem::path store_root_;
  mutable std::mutex mu_;
  // (attempt, path) -> file.
  std::map<std::pair<uint64_t, std::string>, std::filesystem::path>
      files_;  // GUARDED_BY(mu_)
};

}  // namespace drover::artifacts

#endif  // DROVER_CORE_ARTIFACTS_LOCAL_FILES_H_

// ArtifactTransfers: the worker's side of artifact transfer
// (docs/protocol.md, "Artifact transfer"): uploading a finished attempt's
// files to the coordinator, and staging the inputs of an attempt about to
// start from the worker's cache (SPOOL/cache, a BlobStore) or, when it
// lacks them, from the coordinator. Internal to worker/.
//
// Details callers may rely on:
//  - Runs on the worker's I/O thread only (not thread-safe); never blocks
//    it for a whole file: each call reads or writes at most the chunks the
//    peer granted (kMaxCredit * 256 KiB).
//  - One file at a time per attempt; several attempts transfer at once.
//  - `done` is called exactly once per Stage/Upload, unless Cancel comes
//    first, and may be called from inside any method (OnMessage, Pump,
//    Stage when everything is cached already).
//  - Restart() (after the worker registered again with a coordinator)
//    starts every unfinished file over: the coordinator forgot it.
//  - With `local` (`drover run`: the coordinator in this process, on this
//    disk), each uploaded file is listed there before its ARTIFACT-PUT, so
//    the coordinator links it instead of asking for its chunks, and an
//    input the coordinator's store holds is linked into the cache instead
//    of downloaded.
#ifndef DROVER_WORKER_ARTIFACT_TRANSFERS_H_
#define DROVER_WORKER_ARTIFACT_TRANSFERS_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/artifacts/blob_store.h"
#include "core/artifacts/local_files.h"
#include "core/artifacts/transfer.h"
#include "core/protocol/codec.h"
#include "core/protocol/drover.pb.h"
#include "worker/artifact_files.h"

namespace drover {

class ArtifactTransfers {
 public:
  using SendFn = std::function<void(protocol::Message)>;
  using DoneFn = std::function<void(Status)>;

  ArtifactTransfers(std::filesystem::path cache_dir, SendFn send,
                    std::shared_ptr<artifacts::LocalFiles> local = nullptr);
  // Opens the cache (emptying its temporary files).
  Status Open();

  // Stages `inputs` as DIR/TASK/PATH (read-only: hard links into the
  // cache, which a task must not change), fetching what the cache lacks.
  void Stage(uint64_t attempt, std::vector<wire::ArtifactRef> inputs,
             std::filesystem::path dir, DoneFn done);
  // Uploads `files` for `attempt`; done(ok) once the coordinator stored
  // them all, or the first error.
  void Upload(uint64_t attempt, std::vector<ArtifactFile> files, DoneFn done);
  // Forgets the attempt's transfers; its `done` is not called.
  void Cancel(uint64_t attempt);
  bool Active(uint64_t attempt) const { return jobs_.count(attempt) != 0; }

  // ARTIFACT-CREDIT, ARTIFACT-CHUNK and ARTIFACT-DONE from the coordinator.
  void OnMessage(const protocol::Message& m);
  // Sends the chunks uploads have credit for.
  void Pump();
  void Restart();
  // Whether Restart is needed (set by Disconnected).
  void Disconnected() { connected_ = false; }

 private:
  struct Job {
    bool upload = false;
    std::vector<wire::ArtifactRef> inputs;  // staging
    std::filesystem::path dir;              // staging: the inputs directory
    std::vector<ArtifactFile> files;        // upload
    size_t next = 0;                        // the item in progress
    uint64_t transfer_id = 0;               // of the item in progress, 0 none
    DoneFn done;
    // Upload in progress.
    std::unique_ptr<artifacts::ChunkSource> source;
    uint32_t credit = 0;
    // Download in progress.
    std::unique_ptr<artifacts::BlobWriter> writer;
  };

  // Starts the job's current item, or ends the job when there is none.
  void Advance(uint64_t attempt);
  void Fail(uint64_t attempt, const std::string& why);
  void Finish(uint64_t attempt);
  // Under `drover run`: links the coordinator's blob of `ref` into the
  // cache. False when there is none (of that size) or it cannot be linked.
  bool LinkFromStore(const wire::ArtifactRef& ref);
  // Links blob `sha256` of the cache to `dest` (a copy across devices).
  Status Place(const wire::ArtifactRef& ref, const std::filesystem::path& dest);
  Job* ByTransfer(uint64_t transfer_id, uint64_t* attempt);

  std::filesystem::path cache_dir_;
  SendFn send_;
  std::shared_ptr<artifacts::LocalFiles> local_;  // null: none
  std::unique_ptr<artifacts::BlobStore> cache_;
  std::map<uint64_t, Job> jobs_;  // by attempt id
  uint64_t next_transfer_ = 1;
  bool connected_ = true;
};

}  // namespace drover

#endif  // DROVER_WORKER_ARTIFACT_TRANSFERS_H_

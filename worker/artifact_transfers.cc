#include "worker/artifact_transfers.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

namespace drover {
namespace fs = std::filesystem;
using protocol::Command;

ArtifactTransfers::ArtifactTransfers(fs::path cache_dir, SendFn send,
                                     std::shared_ptr<artifacts::LocalFiles> local)
    : cache_dir_(std::move(cache_dir)),
      send_(std::move(send)),
      local_(std::move(local)) {}

Status ArtifactTransfers::Open() {
  auto cache = artifacts::BlobStore::Open(cache_dir_);
  if (!cache.ok()) return cache.status();
  cache_ = std::move(cache.value());
  return Status::Ok();
}

void ArtifactTransfers::Stage(uint64_t attempt, std::vector<wire::ArtifactRef> inputs,
                              fs::path dir, DoneFn done) {
  Job& job = jobs_[attempt];
  job.upload = false;
  job.inputs = std::move(inputs);
  job.dir = std::move(dir);
  job.done = std::move(done);
  Advance(attempt);
}

void ArtifactTransfers::Upload(uint64_t attempt, std::vector<ArtifactFile> files,
                               DoneFn done) {
  Job& job = jobs_[attempt];
  job.upload = true;
  job.files = std::move(files);
  job.done = std::move(done);
  Advance(attempt);
}

void ArtifactTransfers::Cancel(uint64_t attempt) {
  auto it = jobs_.find(attempt);
  if (it == jobs_.end()) return;
  if (it->second.transfer_id != 0) {
    wire::ArtifactDone abort;
    abort.set_transfer_id(it->second.transfer_id);
    abort.set_error("cancelled");
    send_(protocol::Make(Command::kArtifactDone, abort));
  }
  if (local_) local_->Forget(attempt);
  jobs_.erase(it);
}

void ArtifactTransfers::Fail(uint64_t attempt, const std::string& why) {
  auto it = jobs_.find(attempt);
  if (it == jobs_.end()) return;
  DoneFn done = std::move(it->second.done);
  Cancel(attempt);
  done(Unavailable(why));
}

void ArtifactTransfers::Finish(uint64_t attempt) {
  auto it = jobs_.find(attempt);
  if (it == jobs_.end()) return;
  DoneFn done = std::move(it->second.done);
  if (local_) local_->Forget(attempt);
  jobs_.erase(it);
  done(Status::Ok());
}

Status ArtifactTransfers::Place(const wire::ArtifactRef& ref, const fs::path& dest) {
  std::error_code ec;
  fs::create_directories(dest.parent_path(), ec);
  if (ec) return IoError("create " + dest.parent_path().string() + ": " + ec.message());
  const fs::path blob = cache_->Path(ref.sha256());
  // Read-only, so that a task cannot change the cached bytes through its
  // link; the execute bits are kept.
  (void)::chmod(blob.c_str(), (ref.mode() & 0555) | 0444);
  fs::remove(dest, ec);
  if (::link(blob.c_str(), dest.c_str()) == 0) return Status::Ok();
  fs::copy_file(blob, dest, fs::copy_options::overwrite_existing, ec);
  if (ec)
    return IoError("copy " + blob.string() + " to " + dest.string() + ": " +
                   ec.message());
  return Status::Ok();
}

bool ArtifactTransfers::LinkFromStore(const wire::ArtifactRef& ref) {
  if (!local_) return false;
  // The coordinator verified these bytes when it stored them; the size is
  // checked again as a cheap guard against a blob cut short on disk.
  const fs::path blob = artifacts::BlobPath(local_->store_root(), ref.sha256());
  struct stat st {};
  if (::stat(blob.c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<uint64_t>(st.st_size) != ref.size()) {
    return false;
  }
  const fs::path dest = cache_->Path(ref.sha256());
  std::error_code ec;
  fs::create_directories(dest.parent_path(), ec);
  return ::link(blob.c_str(), dest.c_str()) == 0 || errno == EEXIST;
}

void ArtifactTransfers::Advance(uint64_t attempt) {
  for (;;) {
    auto it = jobs_.find(attempt);
    if (it == jobs_.end()) return;
    Job& job = it->second;
    job.source.reset();
    job.writer.reset();
    job.credit = 0;
    job.transfer_id = 0;
    if (job.upload) {
      if (job.next >= job.files.size()) return Finish(attempt);
      const ArtifactFile& f = job.files[job.next];
      auto source = artifacts::ChunkSource::Open(f.file);
      if (!source.ok())
        return Fail(attempt, "artifact '" + f.path + "': " + source.status().message());
      job.source = std::move(source.value());
      job.transfer_id = next_transfer_++;
      wire::ArtifactPut put;
      put.set_transfer_id(job.transfer_id);
      put.set_attempt_id(attempt);
      put.set_path(f.path);
      put.set_size(job.source->size());
      put.set_mode(job.source->mode());
      if (local_) local_->Add(attempt, f.path, f.file);
      send_(protocol::Make(Command::kArtifactPut, put));
      return;
    }
    if (job.next >= job.inputs.size()) return Finish(attempt);
    const wire::ArtifactRef& ref = job.inputs[job.next];
    const fs::path dest = job.dir / ref.task() / ref.path();
    if (auto bad = artifacts::BadArtifactPath(ref.path());
        bad || ref.task().empty() || ref.task().find('/') != std::string::npos) {
      return Fail(attempt,
                  "input '" + ref.task() + "/" + ref.path() + "' has a bad name");
    }
    if (!artifacts::IsSha256Hex(ref.sha256())) {
      return Fail(attempt,
                  "input '" + ref.task() + "/" + ref.path() + "' has a bad sha256");
    }
    if (cache_->Has(ref.sha256()) || LinkFromStore(ref)) {
      if (Status s = Place(ref, dest); !s.ok()) {
        return Fail(attempt,
                    "input '" + ref.task() + "/" + ref.path() + "': " + s.message());
      }
      ++job.next;
      continue;
    }
    auto writer = cache_->Begin();
    if (!writer.ok()) {
      return Fail(attempt,
                  "input '" + ref.task() + "/" + ref.path() +
                      "': the worker cannot cache it: " + writer.status().message());
    }
    job.writer = std::move(writer.value());
    job.transfer_id = next_transfer_++;
    wire::ArtifactGet get;
    get.set_transfer_id(job.transfer_id);
    get.set_sha256(ref.sha256());
    get.set_credit(artifacts::kWindow);
    send_(protocol::Make(Command::kArtifactGet, get));
    return;
  }
}

ArtifactTransfers::Job* ArtifactTransfers::ByTransfer(uint64_t transfer_id,
                                                      uint64_t* attempt) {
  if (transfer_id == 0) return nullptr;
  for (auto& [id, job] : jobs_) {
    if (job.transfer_id == transfer_id) {
      *attempt = id;
      return &job;
    }
  }
  return nullptr;
}

void ArtifactTransfers::OnMessage(const protocol::Message& m) {
  uint64_t attempt = 0;
  switch (m.command) {
    case Command::kArtifactCredit: {
      auto credit = protocol::Parse<wire::ArtifactCredit>(m);
      if (!credit.ok()) return;
      Job* job = ByTransfer(credit->transfer_id(), &attempt);
      if (job == nullptr || !job->upload) return;
      job->credit =
          std::min<uint32_t>(job->credit + credit->chunks(), artifacts::kMaxCredit);
      return Pump();
    }
    case Command::kArtifactDone: {
      auto done = protocol::Parse<wire::ArtifactDone>(m);
      if (!done.ok()) return;
      Job* job = ByTransfer(done->transfer_id(), &attempt);
      if (job == nullptr) return;
      const std::string name = job->upload ? job->files[job->next].path
                                           : job->inputs[job->next].task() + "/" +
                                                 job->inputs[job->next].path();
      if (!done->error().empty()) {
        return Fail(attempt, (job->upload ? "artifact '" : "input '") + name +
                                 "': the coordinator says: " + done->error());
      }
      if (!job->upload) return;  // a download ends with its last chunk
      // Stored. Keep a link in the cache too: a dependent on this worker
      // then stages it without a download.
      if (job->files[job->next].own && !cache_->Has(done->sha256()) &&
          artifacts::IsSha256Hex(done->sha256())) {
        const fs::path blob = cache_->Path(done->sha256());
        std::error_code ec;
        fs::create_directories(blob.parent_path(), ec);
        (void)::link(job->files[job->next].file.c_str(), blob.c_str());
      }
      ++job->next;
      return Advance(attempt);
    }
    case Command::kArtifactChunk: {
      auto chunk = protocol::Parse<wire::ArtifactChunk>(m);
      if (!chunk.ok() || m.payloads.size() != 1) return;
      Job* job = ByTransfer(chunk->transfer_id(), &attempt);
      if (job == nullptr || job->upload || !job->writer) return;
      const wire::ArtifactRef& ref = job->inputs[job->next];
      const std::string name = ref.task() + "/" + ref.path();
      if (chunk->offset() != job->writer->size()) {
        return Fail(attempt, "input '" + name + "': chunk at offset " +
                                 std::to_string(chunk->offset()) + ", expected " +
                                 std::to_string(job->writer->size()));
      }
      if (Status s = job->writer->Append(m.payloads[0]); !s.ok()) {
        return Fail(attempt,
                    "input '" + name + "': the worker cannot cache it: " + s.message());
      }
      if (!chunk->last()) {
        wire::ArtifactCredit credit;
        credit.set_transfer_id(chunk->transfer_id());
        credit.set_chunks(1);
        send_(protocol::Make(Command::kArtifactCredit, credit));
        return;
      }
      if (chunk->sha256() != ref.sha256()) {
        return Fail(attempt, "input '" + name + "': the coordinator sent " +
                                 chunk->sha256() + " for " + ref.sha256());
      }
      auto stored = job->writer->Commit(ref.sha256(), ref.size());
      job->writer.reset();
      job->transfer_id = 0;  // ended: nothing to abort
      // The bytes came from the coordinator: say so, since a mismatch
      // there is the link's or the coordinator's fault, not the task's.
      if (!stored.ok()) {
        return Fail(attempt, "input '" + name +
                                 "' from the coordinator: " + stored.status().message());
      }
      if (Status s = Place(ref, job->dir / ref.task() / ref.path()); !s.ok()) {
        return Fail(attempt, "input '" + name + "': " + s.message());
      }
      ++job->next;
      return Advance(attempt);
    }
    default:
      return;
  }
}

void ArtifactTransfers::Pump() {
  std::vector<uint64_t> ids;
  for (const auto& [id, job] : jobs_) {
    if (job.upload && job.source && job.credit > 0) ids.push_back(id);
  }
  for (uint64_t id : ids) {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) continue;
    Job& job = it->second;
    while (job.source && job.credit > 0 && !job.source->done()) {
      wire::ArtifactChunk chunk;
      chunk.set_transfer_id(job.transfer_id);
      chunk.set_offset(job.source->offset());
      chunk.set_size(job.source->size());
      auto data = job.source->Next();
      if (!data.ok()) {
        Fail(id,
             "artifact '" + job.files[job.next].path + "': " + data.status().message());
        break;
      }
      if (job.source->done()) {
        chunk.set_last(true);
        chunk.set_sha256(job.source->Final());
      }
      protocol::Message m = protocol::Make(Command::kArtifactChunk, chunk);
      m.payloads.push_back(std::move(data.value()));
      send_(std::move(m));
      --job.credit;
    }
  }
}

void ArtifactTransfers::Restart() {
  if (connected_) return;
  connected_ = true;
  std::vector<uint64_t> ids;
  for (const auto& [id, job] : jobs_) ids.push_back(id);
  for (uint64_t id : ids) {
    spdlog::info("artifacts: attempt {}: starting its transfer over after a reconnection",
                 id);
    Advance(id);
  }
}

}  // namespace drover

// Coordinator::Loop, artifacts: the content-addressed store in
// STATE/artifacts (core/artifacts/blob_store.h), uploads from workers
// after a successful attempt, downloads by workers staging inputs and by
// clients, and the inputs a DISPATCH lists (docs/protocol.md, "Artifact
// transfer").
//
// The loop is never held for a whole file: each received chunk is one
// write of at most 256 KiB, each sent chunk one read, and a download sends
// only while its peer has credit left and room in its send budget. Under
// `drover run` an upload is a hard link of the embedded worker's file,
// hashed a few chunks' worth a turn.
#include <sys/statvfs.h>

#include <algorithm>
#include <cstdio>

#include "core/artifacts/local_files.h"
#include "core/coordinator/loop.h"

namespace drover {
namespace {

using protocol::Command;

// Room an upload must leave on the state directory's file system, so that
// the store (SQLite, logs) never runs out because of an artifact.
constexpr uint64_t kDiskReserve = 64ull << 20;

// What PumpLocalUploads hashes of a linked file per loop turn: a few ms.
constexpr size_t kLocalBytesPerTurn = 16 * artifacts::kChunkSize;

std::string HumanBytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace

Status Coordinator::Loop::OpenArtifacts() {
  auto blobs = artifacts::BlobStore::Open(options_.state_dir / "artifacts");
  if (!blobs.ok()) return blobs.status();
  blobs_ = std::move(blobs.value());
  blob_usage_ = blobs_->Scan();
  blob_counted_ = clock_.Now();
  spdlog::info("coordinator: artifact store {}: {} blobs, {}", blobs_->root().string(),
               blob_usage_.blobs, HumanBytes(blob_usage_.bytes));
  return Status::Ok();
}

void Coordinator::Loop::EndTransfer(const std::string& rid, uint64_t transfer_id,
                                    const std::string& error, const std::string& sha256,
                                    uint64_t size) {
  wire::ArtifactDone done;
  done.set_transfer_id(transfer_id);
  done.set_error(error);
  done.set_sha256(sha256);
  done.set_size(size);
  Reply(rid, Command::kArtifactDone, done);
}

bool Coordinator::Loop::HandleArtifactPut(WorkerConn& w, const Message& m) {
  auto put = protocol::Parse<wire::ArtifactPut>(m);
  if (!put.ok()) {
    stats_.malformed.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  BeginUpload(w, *put);
  return true;
}

void Coordinator::Loop::BeginUpload(WorkerConn& w, const wire::ArtifactPut& put) {
  const TransferKey key{w.rid, put.transfer_id()};
  auto refuse = [&](const std::string& why) {
    Note(w.rid, "artifact refusals", spdlog::level::warn,
         "refused artifact '" + put.path() + "' of attempt " +
             std::to_string(put.attempt_id()) + " from worker " + w.name + ": " + why);
    EndTransfer(w.rid, put.transfer_id(), why);
  };
  if (uploads_.count(key))
    return refuse("transfer id " + std::to_string(key.second) + " is in use");
  auto a = attempts_.find(put.attempt_id());
  if (a == attempts_.end() || a->second.worker_rid != w.rid) {
    return refuse("attempt " + std::to_string(put.attempt_id()) +
                  " is not running on this worker (no longer current)");
  }
  if (auto bad = artifacts::BadArtifactPath(put.path())) return refuse(*bad);
  // In-process (`drover run`): the file is on this disk already; link it
  // instead of asking for its bytes. It needs no room, so this comes
  // before the free-space check.
  if (options_.local_artifacts) {
    if (auto file = options_.local_artifacts->Find(put.attempt_id(), put.path())) {
      auto linked = blobs_->BeginLinked(*file, put.size());
      if (linked.ok()) {
        uploads_[key] = Upload{put.attempt_id(),
                               put.path(),
                               put.size(),
                               put.mode() & 07777,
                               std::move(linked.value()),
                               /*local=*/true};
        return;  // no ARTIFACT-CREDIT: PumpLocalUploads ends it with ARTIFACT-DONE
      }
      spdlog::info("coordinator: artifact '{}' of attempt {} is copied, not linked: {}",
                   put.path(), put.attempt_id(), linked.status().message());
    }
  }
  struct statvfs vfs {};
  if (::statvfs(blobs_->root().c_str(), &vfs) == 0) {
    const uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    if (free_bytes < put.size() + kDiskReserve) {
      return refuse("the coordinator's artifact store (" + blobs_->root().string() +
                    ") has " + HumanBytes(free_bytes) + " free; " +
                    HumanBytes(put.size()) + " plus a reserve of " +
                    HumanBytes(kDiskReserve) + " are needed");
    }
  }
  auto writer = blobs_->Begin();
  if (!writer.ok())
    return refuse("the coordinator cannot store it: " + writer.status().message());
  uploads_[key] =
      Upload{put.attempt_id(),          put.path(),     put.size(), put.mode() & 07777,
             std::move(writer.value()), /*local=*/false};
  wire::ArtifactCredit credit;
  credit.set_transfer_id(key.second);
  credit.set_chunks(artifacts::kWindow);
  Reply(w.rid, Command::kArtifactCredit, credit);
}

bool Coordinator::Loop::HandleArtifactChunk(WorkerConn& w, const Message& m) {
  auto chunk = protocol::Parse<wire::ArtifactChunk>(m);
  if (!chunk.ok() || m.payloads.size() != 1) {
    stats_.malformed.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  TakeChunk(w, *chunk, m.payloads[0]);
  return true;
}

void Coordinator::Loop::TakeChunk(WorkerConn& w, const wire::ArtifactChunk& chunk,
                                  const std::string& data) {
  const TransferKey key{w.rid, chunk.transfer_id()};
  auto it = uploads_.find(key);
  if (it == uploads_.end()) {
    // Aborted here already (its ARTIFACT-DONE is on its way) or never
    // started: say so once more, so the sender stops.
    Note(w.rid, "unknown transfers", spdlog::level::info,
         "worker " + w.name + " sent a chunk of unknown transfer " +
             std::to_string(key.second));
    return EndTransfer(w.rid, key.second, "unknown transfer");
  }
  Upload& u = it->second;
  auto fail = [&](const std::string& why) {
    spdlog::warn("coordinator: upload of '{}' (attempt {}) from worker {} failed: {}",
                 u.path, u.attempt_id, w.name, why);
    EndTransfer(w.rid, key.second, why);
    uploads_.erase(it);  // the writer removes its temporary file
  };
  if (!attempts_.count(u.attempt_id)) return fail("the attempt is no longer current");
  if (chunk.offset() != u.writer->size()) {
    return fail("chunk at offset " + std::to_string(chunk.offset()) + ", expected " +
                std::to_string(u.writer->size()));
  }
  if (data.size() > artifacts::kChunkSize || u.writer->size() + data.size() > u.size) {
    return fail("chunk of " + std::to_string(data.size()) + " bytes at offset " +
                std::to_string(chunk.offset()) + " passes the announced size " +
                std::to_string(u.size) + " or the chunk limit");
  }
  if (Status s = u.writer->Append(data); !s.ok()) {
    return fail("the coordinator cannot store it: " + s.message());
  }
  if (!chunk.last()) {
    wire::ArtifactCredit credit;
    credit.set_transfer_id(key.second);
    credit.set_chunks(1);
    return Reply(w.rid, Command::kArtifactCredit, credit);
  }
  StoreUpload(it, chunk.sha256());
}

void Coordinator::Loop::StoreUpload(std::map<TransferKey, Upload>::iterator it,
                                    const std::string& sha256) {
  const std::string rid = it->first.first;
  const uint64_t transfer_id = it->first.second;
  Upload& u = it->second;
  auto fail = [&](const std::string& why) {
    spdlog::warn("coordinator: upload of '{}' (attempt {}) from {} failed: {}", u.path,
                 u.attempt_id, PeerName(rid), why);
    EndTransfer(rid, transfer_id, why);
    uploads_.erase(it);  // the writer removes its temporary file
  };
  if (!attempts_.count(u.attempt_id)) return fail("the attempt is no longer current");
  const bool existed = blobs_->Has(sha256.empty() ? u.writer->Digest() : sha256);
  auto stored = u.writer->Commit(sha256, u.size);
  if (!stored.ok()) return fail(stored.status().message());
  // Its bytes were just hashed: sent as they are while its file is as now.
  blobs_->NoteVerified(stored->filename().string());
  const AttemptRef& ref = attempts_.at(u.attempt_id);
  store::ArtifactRecord rec;
  rec.attempt_id = u.attempt_id;
  rec.job_id = ref.job->record.id;
  rec.task = ref.job->spec.tasks.Name(ref.task);
  rec.path = u.path;
  rec.sha256 = stored->filename().string();
  rec.size = u.size;
  rec.mode = u.mode;
  rec.created_ms = WallMillis(clock_);
  // Indexed in this turn's batch; the DONE that lets the worker send its
  // RESULT leaves only after the batch commits (Flush follows Commit).
  Check(store_->InsertArtifact(rec), "index artifact");
  if (!existed) {
    ++blob_usage_.blobs;
    blob_usage_.bytes += u.size;
  }
  spdlog::info(
      "coordinator: stored artifact {}/{} {} ({}, sha256 {}{}{}); the store holds {} "
      "blobs, {}",
      rec.job_id, rec.task, rec.path, HumanBytes(rec.size), rec.sha256.substr(0, 12),
      u.local ? ", linked from the worker's disk" : "",
      existed ? ", content already stored" : "", blob_usage_.blobs,
      HumanBytes(blob_usage_.bytes));
  EndTransfer(rid, transfer_id, "", rec.sha256, rec.size);
  uploads_.erase(it);
}

bool Coordinator::Loop::LocalUploadsPending() const {
  for (const auto& [key, u] : uploads_) {
    if (u.local) return true;
  }
  return false;
}

void Coordinator::Loop::PumpLocalUploads() {
  for (auto it = uploads_.begin(); it != uploads_.end();) {
    auto next = std::next(it);
    if (!it->second.local) {
      it = next;
      continue;
    }
    Upload& u = it->second;
    size_t left = kLocalBytesPerTurn;
    while (left > 0) {
      auto n = u.writer->HashNext(std::min(left, artifacts::kChunkSize));
      if (!n.ok()) {
        spdlog::warn("coordinator: upload of '{}' (attempt {}) from {} failed: {}",
                     u.path, u.attempt_id, PeerName(it->first.first),
                     n.status().message());
        EndTransfer(it->first.first, it->first.second,
                    "the coordinator cannot read it: " + n.status().message());
        uploads_.erase(it);
        break;
      }
      if (*n == 0) {
        StoreUpload(it, "");
        break;
      }
      left -= *n;
    }
    it = next;
  }
}

void Coordinator::Loop::HandleArtifactGet(const Message& m) {
  auto get = protocol::Parse<wire::ArtifactGet>(m);
  if (!get.ok()) {
    stats_.malformed.fetch_add(1, std::memory_order_relaxed);
    return ReplyError(m.routing_id, "malformed ARTIFACT-GET body");
  }
  const TransferKey key{m.routing_id, get->transfer_id()};
  if (downloads_.count(key)) {
    return EndTransfer(m.routing_id, key.second,
                       "transfer id " + std::to_string(key.second) + " is in use");
  }
  std::string sha = get->sha256();
  uint32_t mode = 0644;
  if (sha.empty()) {
    auto found = store_->Artifacts(get->job_id(), get->task());
    if (!found.ok())
      return EndTransfer(m.routing_id, key.second, found.status().message());
    for (const auto& r : *found) {
      if (r.path == get->path()) {
        sha = r.sha256;
        mode = r.mode;
      }
    }
    if (sha.empty()) {
      return EndTransfer(m.routing_id, key.second,
                         "no artifact '" + get->path() + "' of task '" + get->task() +
                             "' in job " + get->job_id());
    }
  }
  if (!artifacts::IsSha256Hex(sha) || !blobs_->Has(sha)) {
    return EndTransfer(m.routing_id, key.second,
                       "the coordinator's store has no blob " + sha +
                           " (removed by drover gc, or never stored)");
  }
  auto source = artifacts::ChunkSource::Open(blobs_->Path(sha));
  if (!source.ok())
    return EndTransfer(m.routing_id, key.second, source.status().message());
  // A blob whose file is as it was when its bytes were last hashed here is
  // sent without hashing it again; the downloader checks what it gets.
  if (blobs_->Verified(sha, (*source)->stamp())) (*source)->SkipHash();
  Download& d = downloads_[key];
  d.source = std::move(source.value());
  d.sha256 = sha;
  d.mode = mode;
  d.credit = std::min(get->credit() == 0 ? artifacts::kWindow : get->credit(),
                      artifacts::kMaxCredit);
}

void Coordinator::Loop::HandleArtifactCredit(const Message& m) {
  auto credit = protocol::Parse<wire::ArtifactCredit>(m);
  if (!credit.ok()) {
    stats_.malformed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  auto it = downloads_.find({m.routing_id, credit->transfer_id()});
  if (it == downloads_.end()) return;  // ended meanwhile
  // A peer granting more than the window is capped: it cannot make us
  // queue more than kMaxCredit chunks for it.
  it->second.credit =
      std::min<uint32_t>(it->second.credit + credit->chunks(), artifacts::kMaxCredit);
}

void Coordinator::Loop::HandleArtifactDone(const Message& m) {
  auto done = protocol::Parse<wire::ArtifactDone>(m);
  if (!done.ok()) {
    stats_.malformed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // The peer aborts a transfer: either direction.
  const TransferKey key{m.routing_id, done->transfer_id()};
  downloads_.erase(key);
  uploads_.erase(key);
}

void Coordinator::Loop::PumpDownloads() {
  const int64_t room = static_cast<int64_t>(options_.peer_send_budget / 2);
  for (auto it = downloads_.begin(); it != downloads_.end();) {
    const std::string& rid = it->first.first;
    Download& d = it->second;
    bool ended = false;
    while (d.credit > 0) {
      PeerQueue& q = peer_queues_[rid];
      if (q.dropped || q.Queued() + static_cast<int64_t>(artifacts::kChunkSize) > room)
        break;
      wire::ArtifactChunk chunk;
      chunk.set_transfer_id(it->first.second);
      chunk.set_offset(d.source->offset());
      chunk.set_size(d.source->size());
      chunk.set_mode(d.mode);
      auto data = d.source->Next();
      if (!data.ok()) {
        EndTransfer(rid, it->first.second,
                    "the coordinator cannot read it: " + data.status().message());
        ended = true;
        break;
      }
      if (d.source->done()) {
        if (d.source->hashing()) {
          const std::string got = d.source->Final();
          if (got != d.sha256) {
            spdlog::error(
                "coordinator: artifact blob {} is corrupt (its content hashes to {}); "
                "refusing to send it",
                d.sha256, got);
            EndTransfer(rid, it->first.second,
                        "the coordinator's copy of " + d.sha256 + " is corrupt");
            ended = true;
            break;
          }
          blobs_->NoteVerified(d.sha256, d.source->stamp());
        } else if (!d.source->Unchanged()) {
          spdlog::error(
              "coordinator: artifact blob {} changed while it was being sent; "
              "refusing to send it",
              d.sha256);
          EndTransfer(rid, it->first.second,
                      "the coordinator's copy of " + d.sha256 +
                          " changed while it was being sent");
          ended = true;
          break;
        }
        chunk.set_last(true);
        chunk.set_sha256(d.sha256);
      }
      Reply(rid, Command::kArtifactChunk, chunk, {std::move(data.value())});
      --d.credit;
      if (chunk.last()) {
        ended = true;
        break;
      }
    }
    it = ended ? downloads_.erase(it) : std::next(it);
  }
}

void Coordinator::Loop::AbortTransfers(const std::set<std::string>& gone) {
  for (auto it = uploads_.begin(); it != uploads_.end();) {
    it = gone.count(it->first.first) ? uploads_.erase(it) : std::next(it);
  }
  for (auto it = downloads_.begin(); it != downloads_.end();) {
    it = gone.count(it->first.first) ? downloads_.erase(it) : std::next(it);
  }
}

void Coordinator::Loop::AddArtifacts(const Job& job, const spec::TaskSpec& ts,
                                     wire::Dispatch* body) {
  for (const std::string& pattern : ts.artifacts) body->add_artifacts(pattern);
  if (!ts.artifacts.empty()) body->set_artifacts_dir(ts.cwd);
  for (uint32_t need : ts.needs) {
    // A task that declares no artifacts has none: no query on the
    // dispatch path of jobs that do not use them.
    if (!job.spec.tasks.HasArtifacts(need)) continue;
    const std::string task = job.spec.tasks.Name(need);
    auto found = store_->Artifacts(job.record.id, task);
    if (!found.ok()) {
      Check(found.status(), "read artifacts");
      continue;
    }
    for (const auto& r : *found) {
      wire::ArtifactRef* ref = body->add_inputs();
      ref->set_task(r.task);
      ref->set_path(r.path);
      ref->set_sha256(r.sha256);
      ref->set_size(r.size);
      ref->set_mode(r.mode);
    }
  }
}

}  // namespace drover

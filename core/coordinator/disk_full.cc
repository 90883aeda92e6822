// Coordinator::Loop, a full state disk (docs/operations.md, "When the state
// disk is full").
//
// The rule is commit before send. When a turn's commit finds no room, the
// store keeps the turn's writes (Store::Pending) and the loop keeps what the
// turn would have sent: its ACKs, dispatches and replies are held, so no
// peer learns of a decision that is not durable, and memory never runs
// ahead of what a restarted coordinator would read back. Until the held
// turn commits, each loop turn first retries it; meanwhile the loop writes
// nothing: it answers heartbeats, refuses client requests with an ERROR
// that names the cause, and puts worker messages aside to handle once the
// turn is committed. Task output that cannot be kept under logs/ fails its
// attempt with "state disk full: ...".
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/coordinator/loop.h"

namespace drover {
namespace {

// Messages read per stalled turn, and worker messages put aside at most
// (a worker sends one RESULT per attempt it holds, so the bound is only hit
// by a peer that floods; what is over it is dropped: RESULTs are resent
// after the worker reconnects).
constexpr int kMaxMessagesPerStalledTurn = 4096;
constexpr size_t kMaxDeferred = 65536;

bool IsClientRequest(protocol::Command c) {
  using protocol::Command;
  switch (c) {
    case Command::kSubmit:
    case Command::kCancelJob:
    case Command::kWatch:
    case Command::kStatusRequest:
    case Command::kWorkersRequest:
    case Command::kRetryJob:
    case Command::kLogsRequest:
    case Command::kServiceReload:
      return true;
    default:
      return false;
  }
}

// Writes all of `data` to a new file at `path`; the errno of the failure.
int WriteFile(const std::filesystem::path& path, const std::string& data) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  size_t done = 0;
  int err = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      err = errno;
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0 && err == 0) err = errno;
  return err;
}

}  // namespace

void Coordinator::Loop::Stall(const Status& why) {
  stalled_ = true;
  stall_reason_ = why.message();
  spdlog::error(
      "coordinator: cannot commit: {}; this turn's results, dispatches and replies are "
      "held until it is committed, and clients are answered with ERROR meanwhile",
      stall_reason_);
}

bool Coordinator::Loop::Unstall() {
  Status s = store_->Begin();  // redoes the held turn's writes
  if (s.ok()) s = store_->Commit();
  if (!s.ok() && store_->Pending()) {
    stall_reason_ = s.message();
    return false;
  }
  stalled_ = false;
  if (!s.ok()) {
    // Lost for another reason than room: as for any failed commit (Run).
    spdlog::error("coordinator: commit failed, the held turn is lost: {}", s.ToString());
    acks_.clear();
    outbox_.clear();
    event_batches_.clear();
    return true;
  }
  spdlog::warn("coordinator: the held turn is committed ({} worker messages waited)",
               deferred_.size());
  Flush();
  return true;
}

void Coordinator::Loop::ServeStalled() {
  // The held turn's messages stay held; this turn's replies go out now.
  CloseEventBatches();  // the held turn's
  std::vector<Message> held = std::move(outbox_);
  auto held_acks = std::move(acks_);
  outbox_.clear();
  acks_.clear();
  const SteadyTime now = clock_.Now();
  for (int i = 0; i < kMaxMessagesPerStalledTurn; ++i) {
    std::optional<std::string> wrong_version;
    std::string from;
    auto received =
        protocol::Receive(*router_, /*router=*/true, {}, &wrong_version, &from);
    if (!received) break;
    if (auto q = peer_queues_.find(from); q != peer_queues_.end() && q->second.dropped) {
      stats_.ignored.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (!received->ok()) {
      stats_.malformed.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    Message m = std::move(received->value());
    if (HoldBehindRead(m)) continue;  // answered in order once the turn commits
    if (!Authorize(m)) continue;
    auto w = workers_.find(m.routing_id);
    if (w != workers_.end()) w->second.last_seen = now;
    if (IsClientRequest(m.command)) {
      ReplyError(m.routing_id, "the coordinator cannot record anything now (" +
                                   stall_reason_ +
                                   "); try again when the state disk has room");
    } else if (m.command == Command::kHeartbeat) {
      // Liveness is noted above; the starts it reports change no record.
      if (w != workers_.end()) HandleHeartbeat(w->second, m);
    } else if (m.command == Command::kOutput) {
      // Live output is not kept (RESULT has it).
    } else if (deferred_.size() < kMaxDeferred) {
      deferred_.push_back(std::move(m));
    } else {
      stats_.ignored.fetch_add(1, std::memory_order_relaxed);
    }
  }
  // Workers and watchers must not take the silence for a dead coordinator.
  if (now >= next_heartbeat_) {
    SendHeartbeats();
    next_heartbeat_ = now + options_.heartbeat_interval;
  }
  Flush();
  outbox_ = std::move(held);
  acks_ = std::move(held_acks);
}

void Coordinator::Loop::HandleDeferred() {
  if (deferred_.empty()) return;
  std::vector<Message> deferred = std::move(deferred_);
  deferred_.clear();
  for (Message& m : deferred) Handle(std::move(m));
}

Status Coordinator::Loop::KeepLogs(const std::string& job_id, const std::string& task,
                                   uint32_t number,
                                   const std::vector<std::string>& payloads) {
  bool any = false;
  for (size_t s = 0; s < 2 && s < payloads.size(); ++s) any = any || !payloads[s].empty();
  if (!any) return Status::Ok();
  if (store_->SpaceLow() && !store_->RestoreReserve().ok()) {
    // What room is left is the store's: results must still be recorded.
    return Unavailable("state disk full: the output was not kept (" +
                       store_->dir().string() + " is short of space)");
  }
  std::vector<std::filesystem::path> written;
  for (size_t s = 0; s < 2 && s < payloads.size(); ++s) {
    if (payloads[s].empty()) continue;
    const auto path = store_->LogPath(job_id, task, number, s == 1);
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    int err = ec ? ec.value() : WriteFile(path, payloads[s]);
    if (err == 0) {
      written.push_back(path);
      continue;
    }
    written.push_back(path);
    for (const auto& p : written) std::filesystem::remove(p, ec);
    const std::string what = "cannot write " + path.string() + ": " + std::strerror(err);
    spdlog::error("coordinator: {}", what);
    return Unavailable(err == ENOSPC || err == EDQUOT ? "state disk full: " + what
                                                      : "output not kept: " + what);
  }
  return Status::Ok();
}

void Coordinator::Loop::WatchSpace() {
  if (store_->SpaceLow() && !space_low_logged_) {
    space_low_logged_ = true;
    spdlog::error(
        "coordinator: the state disk {} is full: its reserve went to the store; task "
        "output is not kept (those attempts fail) until there is room again",
        store_->dir().string());
  }
  if (store_->SpaceLow() && !store_->RestoreReserve().ok()) return;
  if (space_low_logged_) {
    space_low_logged_ = false;
    spdlog::warn("coordinator: the state disk {} has room again; task output is kept",
                 store_->dir().string());
  }
}

}  // namespace drover

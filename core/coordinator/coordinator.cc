// Coordinator: set-up, the loop turn, and routing each message to its
// handler. Sending is in sending.cc; the handlers live in workers.cc,
// results.cc, placement.cc, client_api.cc and recovery.cc (see loop.h).
#include "core/coordinator/coordinator.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string_view>
#include <unordered_map>

#include "core/base/allocator.h"
#include "core/coordinator/loop.h"
#include "core/dag/plan.h"
#include "core/protocol/codec.h"
#include "core/store/store.h"

namespace drover {
namespace {

// Messages handled per loop turn at most, so one turn's transaction stays
// small and timers are not starved under a flood.
constexpr int kMaxMessagesPerTurn = 4096;
constexpr uint64_t kMinResultsPerTurn = 16;  // the turn's budget, below

// Commands a worker sends once registered. From a peer that is not
// registered they are answered with DISCONNECT, so that it says HELLO
// (docs/protocol.md, "Registration").
bool IsWorkerCommand(protocol::Command c) {
  using protocol::Command;
  return c == Command::kHeartbeat || c == Command::kResult || c == Command::kOutput ||
         c == Command::kDraining || c == Command::kServiceReloaded ||
         c == Command::kArtifactPut || c == Command::kArtifactChunk;
}

// Checks 6 and 7 of docs/protocol.md, "Malformed messages", for a worker
// command from a peer that is not registered: its body parses, and its
// payload frames are those of its command. (A registered worker's handler
// parses the body itself, once.)
bool WorkerMessageParses(const protocol::Message& m) {
  using protocol::Command;
  auto parses = [&](auto&& message) { return message.ParseFromString(m.body); };
  switch (m.command) {
    case Command::kHeartbeat:
      return m.body.empty() || parses(wire::Heartbeat());
    case Command::kResult:
      return m.payloads.size() == 2 && parses(wire::Result());
    case Command::kOutput:
      return m.payloads.size() == 1 && parses(wire::Output());
    case Command::kDraining:
      return parses(wire::Draining());
    case Command::kServiceReloaded:
      return parses(wire::ServiceReloaded());
    case Command::kArtifactPut:
      return parses(wire::ArtifactPut());
    case Command::kArtifactChunk:
      return m.payloads.size() == 1 && parses(wire::ArtifactChunk());
    default:
      return true;
  }
}

}  // namespace

// ---- set-up --------------------------------------------------------------

Status Coordinator::Loop::Open() {
  // One coordinator per state directory: a second one would take the first
  // one's running jobs for interrupted ones.
  std::error_code ec;
  std::filesystem::create_directories(options_.state_dir, ec);
  const auto lock_path = options_.state_dir / "coordinator.lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) return ErrnoError("open " + lock_path.string(), errno);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    char owner[32] = {};
    (void)!::pread(lock_fd_, owner, sizeof owner - 1, 0);
    return FailedPrecondition("the state directory " + options_.state_dir.string() +
                              " is in use by another drover (pid " +
                              std::string(owner).substr(0, std::string(owner).find('\n')) +
                              "); wait for it or pass another --state-dir");
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  (void)!::ftruncate(lock_fd_, 0);
  (void)!::pwrite(lock_fd_, pid.data(), pid.size(), 0);

  char instance[17];
  std::snprintf(instance, sizeof instance, "%016llx",
                static_cast<unsigned long long>(rng_()));
  instance_ = instance;

  auto store = store::Store::Open(options_.state_dir);
  if (!store.ok()) return store.status();
  store_ = std::move(store.value());
  if (Status r = store_->KeepReserve(options_.state_reserve); !r.ok()) {
    spdlog::warn(
        "coordinator: no room for the state disk reserve: {}; task output is not "
        "kept until there is",
        r.ToString());
  }
  auto max_id = store_->MaxAttemptId();
  if (!max_id.ok()) return max_id.status();
  next_attempt_id_ = *max_id + 1;
  DROVER_RETURN_IF_ERROR(OpenArtifacts());
  if (options_.recover_jobs) {
    Recover();
  } else {
    Interrupt();
  }
  if (store_failed_) return Internal("could not recover the state store");
  DROVER_RETURN_IF_ERROR(OpenPipelines());

  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) return ErrnoError("eventfd", errno);
  spec_loader_ = std::make_unique<SpecLoader>(options_.spec_options, wake_fd_,
                                              options_.before_spec_load);
  if (auto reader = store::Store::OpenReader(options_.state_dir); reader.ok()) {
    reader_ = std::make_unique<StoreReader>(
        std::move(reader).value(), options_.spec_options, wake_fd_,
        options_.before_store_read, options_.after_store_read);
  } else {
    spdlog::warn(
        "coordinator: no second connection to the state file ({}); the loop "
        "answers every STATUS and LOGS itself",
        reader.status().ToString());
  }
  try {
    router_.emplace(context_, zmq::socket_type::router);
    router_->set(zmq::sockopt::router_mandatory, 1);
    router_->set(zmq::sockopt::linger, 0);
    // No count limit: what waits for each peer is bounded in bytes by
    // peer_send_budget (Queue), which a count cannot do.
    router_->set(zmq::sockopt::sndhwm, 0);
    router_->set(zmq::sockopt::rcvhwm, 0);
    router_->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(protocol::Limits{}.max_message));
    if (options_.configure_socket) {
      if (Status s = options_.configure_socket(*router_); !s.ok()) {
        router_.reset();
        return s;
      }
    }
    for (const auto& ep : options_.endpoints) {
      router_->bind(ep);
      bound_.push_back(router_->get(zmq::sockopt::last_endpoint));
    }
  } catch (const zmq::error_t& e) {
    const std::string failed = bound_.size() < options_.endpoints.size()
                                   ? options_.endpoints[bound_.size()]
                                   : std::string("endpoint");
    router_.reset();
    bound_.clear();
    return Unavailable("cannot bind " + failed + ": " + e.what());
  }
  return Status::Ok();
}

// ---- the loop ------------------------------------------------------------

Status Coordinator::Loop::Run() {
  if (!router_) return FailedPrecondition("Run() before a successful Open()");
  next_heartbeat_ = clock_.Now() + options_.heartbeat_interval;
  version_errors_.emplace(options_.heartbeat_interval);
  while (!stop_.load(std::memory_order_acquire)) {
    // 0. While the last turn left a hold (turn_hold.h), the rest of it is
    // waited out on the wake fd alone, before the socket is looked at: the
    // RESULTs that come meanwhile wake nobody (each would otherwise wake
    // the loop only to start the hold, on a vCPU that a task is about to
    // need), and this turn takes them all.
    if (turn_hold_ > Duration(0) && !stalled_) HoldTurn();
    // 1. Wait for a message, the wake fd or the next timer.
    long timeout_ms = -1;
    if (auto deadline = NextDeadline()) {
      const auto left = *deadline - clock_.Now();
      timeout_ms = std::max<long>(
          0, std::chrono::ceil<std::chrono::milliseconds>(left).count());
    }
    zmq::pollitem_t items[] = {{router_->handle(), 0, ZMQ_POLLIN, 0},
                               {nullptr, wake_fd_, ZMQ_POLLIN, 0}};
    try {
      socket_wait_.Wait(items, std::chrono::milliseconds(timeout_ms));
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) break;
      if (e.num() != EINTR) spdlog::warn("coordinator: poll: {}", e.what());
      continue;
    }
    if (items[1].revents & ZMQ_POLLIN) {
      uint64_t n;
      (void)!::read(wake_fd_, &n, sizeof n);
    }

    // A turn whose commit found the state disk full is held (disk_full.cc).
    if (stalled_ && !Unstall()) {
      ServeStalled();
      continue;
    }

    // 2. One transaction for everything this turn decides.
    ++turn_;
    Check(store_->Begin(), "begin");
    HandleDeferred();
    AdmitLoaded();  // SUBMITs whose specs the loader has read, in order
    AnswerReads();  // and the reads the store reader has answered
    // At most half the attempts in flight end in one turn, or 16 when that
    // is more (RESULTs of attempts no longer current do not count).
    // Nothing a turn decides leaves before its commit, so a turn that took
    // every result waiting would give the workers their next tasks only
    // once it had written all of them, and workers quicker than that would
    // wait on it while it then waited on them. Half keeps the other half
    // coming back while this half is written; 16 spreads a turn's commit
    // over enough results when few are in flight (docs/benchmarks.md,
    // session 18).
    const uint64_t result_budget =
        std::max<uint64_t>(kMinResultsPerTurn, attempts_.size() / 2);
    ended_this_turn_ = 0;
    for (int i = 0; i < kMaxMessagesPerTurn; ++i) {
      // Never past a due heartbeat: uploads keep chunks coming as fast as
      // they are written, and workers must keep hearing from us meanwhile.
      if (i > 0 && clock_.Now() >= next_heartbeat_) break;
      if (ended_this_turn_ >= result_budget) break;
      std::optional<std::string> wrong_version;
      std::string from;
      auto received =
          protocol::Receive(*router_, /*router=*/true, {}, &wrong_version, &from);
      if (!received) break;
      if (auto q = peer_queues_.find(from); q != peer_queues_.end() && q->second.dropped) {
        stats_.ignored.fetch_add(1, std::memory_order_relaxed);
        continue;  // a dropped peer is not heard (its drop was logged)
      }
      if (!received->ok()) {
        stats_.malformed.fetch_add(1, std::memory_order_relaxed);
        Note(from, "malformed", spdlog::level::warn,
             "dropped a malformed message from " + PeerName(from) + ": " +
                 received->status().message());
        // One ERROR per peer per heartbeat interval (Versioning).
        if (wrong_version && version_errors_->Allow(*wrong_version, "version", clock_.Now())) {
          ReplyError(*wrong_version, received->status().message());
        }
        continue;
      }
      Handle(std::move(received->value()));
    }
    const SteadyTime now = clock_.Now();
    ExpireWorkers(now);
    ExpireOrphans(now);
    ExpireReloads(now);
    for (Job* job : order_) job->plan->Promote(now);
    TickPipelines();  // after the messages: a run queued behind a job just ended starts
    Schedule();
    PumpDownloads();
    PumpLocalUploads();
    if (now >= next_heartbeat_) {
      SendHeartbeats();
      next_heartbeat_ = now + options_.heartbeat_interval;
      WatchSpace();
      version_errors_->Prune(now);
      for (const auto& s : log_limit_.Sweep(now)) {
        spdlog::warn("coordinator: {}: {} more {} not logged in the last minute",
                     PeerName(s.peer), s.suppressed, s.reason);
      }
    }

    // 3. Commit, then tell the world.
    const SteadyTime commit_start = clock_.Now();
    const Status committed = store_->Commit();
    if (reader_) reader_->Committed(turn_);  // what it read of this turn is written
    metrics_.commit_seconds.Observe(
        std::chrono::duration<double>(clock_.Now() - commit_start).count());
    if (!committed.ok() && store_->Pending()) {
      Stall(committed);
      continue;
    }
    if (!committed.ok()) {
      ++metrics_.commit_failures;
      // Nothing of this turn is durable: do not ACK it. Workers resend
      // unACKed results; dispatches are dropped and their tasks re-run.
      spdlog::error("coordinator: commit failed, this turn is lost: {}",
                    committed.ToString());
      acks_.clear();
      outbox_.clear();
      event_batches_.clear();
      for (auto& [rid, q] : peer_queues_) q.pending = 0;
      continue;
    }
    // Jobs that finished this turn leave memory now that they are durable.
    for (auto it = jobs_.begin(); it != jobs_.end();) {
      if (it->second->plan->Finished() && !JobRunning(*it->second)) {
        order_.erase(std::remove(order_.begin(), order_.end(), it->second.get()),
                     order_.end());
        it = jobs_.erase(it);
      } else {
        ++it;
      }
    }
    Flush();
    turn_ended_ = clock_.Now();
    turn_hold_ = NextTurnHold();
  }
  // A clean stop: every registered worker and every client waiting on us
  // hears it, instead of waiting out its liveness (docs/protocol.md,
  // "Closing").
  if (stop_.load(std::memory_order_acquire)) SayGoodbye();
  return Status::Ok();
}

std::optional<SteadyTime> Coordinator::Loop::NextDeadline() const {
  // A linked upload is hashed a slice a turn: the next turn is now.
  if (LocalUploadsPending()) return clock_.Now();
  std::optional<SteadyTime> next = next_heartbeat_;
  for (const Job* job : order_) {
    if (auto t = job->plan->NextRetryAt(); t && *t < *next) next = t;
  }
  if (!orphans_.empty() && orphan_deadline_ < *next) next = orphan_deadline_;
  for (const auto& [id, reload] : reloads_) {
    if (reload.deadline < *next) next = reload.deadline;
  }
  // A scheduled pipeline's next run: its wall time, as a steady deadline
  // (re-read every turn, so a wall clock that jumps is followed within a
  // heartbeat interval). Not while stalled: no run starts then, and a due
  // one would make the wait 0.
  if (pipelines_ && !stalled_) {
    if (auto wake = pipelines_->NextWake()) {
      const auto left = std::max(
          Duration(0), std::chrono::duration_cast<Duration>(*wake - clock_.WallNow()));
      next = std::min(*next, clock_.Now() + left);
    }
  }
  // A download with credit waits only for its peer's queue to drain.
  for (const auto& [key, d] : downloads_) {
    if (d.credit > 0) {
      next = std::min(*next, clock_.Now() + std::chrono::milliseconds(2));
      break;
    }
  }
  return next;
}

void Coordinator::Loop::TouchWorker(const std::string& rid) {
  if (auto w = workers_.find(rid); w != workers_.end())
    w->second.last_seen = clock_.Now();
}

void Coordinator::Loop::Handle(Message m) {
  if (HoldBehindRead(m)) return;  // its sender waits for a read (reads.cc)
  // A command outside the sender's role reaches no handler (docs/security.md).
  if (!Authorize(m)) return;
  switch (m.command) {
    case Command::kHello: return HandleHello(m);
    case Command::kSubmit: return HandleSubmit(m);
    case Command::kCancelJob: return HandleCancelJob(m);
    case Command::kWatch: return HandleWatch(m);
    case Command::kStatusRequest: return HandleStatus(m);
    case Command::kWorkersRequest: return HandleWorkersRequest(m);
    case Command::kRetryJob: return HandleRetryJob(m);
    case Command::kLogsRequest: return HandleLogs(m);
    case Command::kServiceReload: return HandleServiceReload(m);
    // From a client or a worker. A worker's counts as a sign of life: one
    // staging a large input sends little else.
    case Command::kArtifactGet:
      TouchWorker(m.routing_id);
      return HandleArtifactGet(m);
    case Command::kArtifactCredit:
      TouchWorker(m.routing_id);
      return HandleArtifactCredit(m);
    case Command::kArtifactDone:
      TouchWorker(m.routing_id);
      return HandleArtifactDone(m);
    case Command::kPipelinesRequest: return HandlePipelines(m);
    case Command::kPipelineRun: return HandlePipelineRun(m);
    default: break;
  }
  auto it = workers_.find(m.routing_id);
  if (it == workers_.end()) {
    // A worker we do not know (we restarted, or we declared it dead): it
    // must say HELLO again before anything else counts. Never answer a
    // DISCONNECT or an ERROR (no loops), nor a command that no peer sends
    // the coordinator (WELCOME, DISPATCH, ...): those are dropped.
    if (IsWorkerCommand(m.command)) {
      // The body is checked before the registration (docs/protocol.md,
      // "Malformed messages", checks 6 and 7): a malformed one gets no reply.
      if (!WorkerMessageParses(m)) {
        stats_.malformed.fetch_add(1, std::memory_order_relaxed);
        Note(m.routing_id, "bad bodies", spdlog::level::warn,
             PeerName(m.routing_id) + " sent a malformed " +
                 std::string(protocol::CommandName(m.command)) + "; dropped");
        return;
      }
      wire::Disconnect d;
      d.set_reason("not registered: send HELLO");
      Reply(m.routing_id, Command::kDisconnect, d);
    } else if (m.command != Command::kDisconnect && m.command != Command::kError) {
      stats_.malformed.fetch_add(1, std::memory_order_relaxed);
      Note(m.routing_id, "unexpected", spdlog::level::warn,
           PeerName(m.routing_id) + " sent " + std::string(protocol::CommandName(m.command)) +
               ", which the coordinator does not receive; dropped");
    }
    return;
  }
  WorkerConn& w = it->second;
  bool well_formed = true;
  switch (m.command) {
    case Command::kResult:
      well_formed = HandleResult(w, m);
      break;
    case Command::kOutput:
      well_formed = HandleOutput(w, m);
      break;
    case Command::kHeartbeat:
      well_formed = HandleHeartbeat(w, m);
      break;
    case Command::kDraining:
      well_formed = HandleDraining(w, m);
      break;
    case Command::kDisconnect:
      return HandleDisconnect(w, m);  // the registration ends
    case Command::kServiceReloaded:
      well_formed = HandleServiceReloaded(w, m);
      break;
    case Command::kArtifactPut:
      well_formed = HandleArtifactPut(w, m);
      break;
    case Command::kArtifactChunk:
      well_formed = HandleArtifactChunk(w, m);
      break;
    case Command::kError: {
      auto e = protocol::Parse<wire::Error>(m);
      well_formed = e.ok();
      Note(m.routing_id, "error reports", spdlog::level::warn,
           "worker " + w.name + " reports an error: " +
               (e.ok() ? e->message() : std::string("(malformed)")));
      break;
    }
    default:
      stats_.malformed.fetch_add(1, std::memory_order_relaxed);
      Note(m.routing_id, "unexpected", spdlog::level::warn,
           "worker " + w.name + " sent " + std::string(protocol::CommandName(m.command)) +
               ", which workers do not send; dropped");
      return;
  }
  // Only a well-formed message is a sign of life (docs/protocol.md,
  // "Heartbeating"): a worker that sends nothing else is lost in time.
  // `w` is still registered: only DISCONNECT (returned above) and
  // ExpireWorkers, outside Handle, end a registration.
  if (well_formed) w.last_seen = clock_.Now();
}

// ---- Coordinator ---------------------------------------------------------

Coordinator::Coordinator(zmq::context_t& context, CoordinatorOptions options,
                         const Clock& clock)
    : loop_(std::make_unique<Loop>(context, std::move(options), clock)) {}
Coordinator::~Coordinator() = default;
Status Coordinator::Open() { return loop_->Open(); }
std::vector<std::string> Coordinator::endpoints() const { return loop_->endpoints(); }
Status Coordinator::Run() { return loop_->Run(); }
void Coordinator::Stop() { loop_->Stop(); }
void Coordinator::Poke() { loop_->Poke(); }
void Coordinator::ReloadPipelines() { loop_->ReloadPipelines(); }
void Coordinator::HandOver(std::string file, std::string text, spec::JobSpec spec) {
  loop_->HandOver(std::move(file), std::move(text), std::move(spec));
}
const CoordinatorStats& Coordinator::stats() const { return loop_->stats(); }

void Coordinator::Loop::ForgetClients(const std::set<std::string>& gone) {
  DropReloads(gone);
  AbortTransfers(gone);
  for (const auto& rid : gone) {
    for (auto& [id, job] : jobs_) {
      job->watchers.erase(rid);
      job->output_watchers.erase(rid);
      job->quiet_watchers.erase(rid);
      job->batch_watchers.erase(rid);
      for (auto it = job->log_followers.begin(); it != job->log_followers.end();) {
        it->second.erase(rid);
        it = it->second.empty() ? job->log_followers.erase(it) : std::next(it);
      }
    }
  }
}

}  // namespace drover

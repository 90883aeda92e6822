// Coordinator::Loop: the coordinator's state and its loop. Private to
// core/coordinator (coordinator.h is the public face); its methods are
// spread over files by concern:
//   coordinator.cc  set-up, the loop turn, message routing
//   sending.cc      the outbox and Flush, peer budgets, replies, heartbeats
//   authorization.cc  the role check before routing (docs/security.md)
//   workers.cc      registration, heartbeats, draining, loss, WORKERS
//   results.cc      RESULT, OUTPUT, attempt outcomes, events to clients
//   placement.cc    scheduling, placement, pending reasons
//   client_api.cc   SUBMIT, WATCH, STATUS, RETRY-JOB, CANCEL-JOB, LOGS
//   recovery.cc     what a restarted coordinator does with the store
//   services.cc     JOB-DONE, SERVICE-RELOAD fan-out and gathering
//   disk_full.cc    a turn held while the state disk is full, kept logs
//   artifacts.cc    the artifact store: uploads, downloads, DISPATCH inputs
//   pipeline_api.cc scheduled pipelines (pipelines.h) hosted by the loop:
//                   their jobs, PIPELINES, PIPELINE-RUN, SIGHUP's reload
//   cache.cc        `cache: true` tasks: lookups, hits, entries, decisions
// Everything runs on the loop thread, except Stop(), Poke() and
// ReloadPipelines() (an atomic and an eventfd write).
#ifndef DROVER_CORE_COORDINATOR_LOOP_H_
#define DROVER_CORE_COORDINATOR_LOOP_H_

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>
#include <zmq.hpp>

#include "core/artifacts/blob_store.h"
#include "core/artifacts/transfer.h"
#include "core/base/outcome.h"
#include "core/coordinator/coordinator.h"
#include "core/coordinator/job_state.h"
#include "core/coordinator/job_views.h"
#include "core/coordinator/live_status.h"
#include "core/coordinator/load_index.h"
#include "core/coordinator/log_limiter.h"
#include "core/coordinator/metrics.h"
#include "core/coordinator/pipelines.h"
#include "core/coordinator/prefetch_grant.h"
#include "core/coordinator/spec_loader.h"
#include "core/coordinator/store_reader.h"
#include "core/protocol/codec.h"
#include "core/protocol/socket_wait.h"
#include "core/store/store.h"

namespace drover {

inline int64_t WallMillis(const Clock& clock) { return ToUnixMillis(clock.WallNow()); }

// Options for a protobuf arena whose first block is `block` (on the stack,
// or kept by its owner): messages built on it cost no allocation until it
// is full.
// The arena of a STATUS-REPLY: blocks from 64 KiB to 1 MiB.
inline google::protobuf::ArenaOptions StatusArena() {
  google::protobuf::ArenaOptions o;
  o.start_block_size = size_t{64} << 10;
  o.max_block_size = size_t{1} << 20;
  return o;
}

inline google::protobuf::ArenaOptions ArenaOn(char* block, size_t size) {
  google::protobuf::ArenaOptions o;
  o.initial_block = block;
  o.initial_block_size = size;
  return o;
}

class Coordinator::Loop : private PipelineHost {
 public:
  Loop(zmq::context_t& context, CoordinatorOptions options, const Clock& clock)
      : context_(context), options_(std::move(options)), clock_(clock) {}

  ~Loop() {
    spec_loader_.reset();  // its thread writes wake_fd_, as reader_'s does
    reader_.reset();
    if (wake_fd_ >= 0) ::close(wake_fd_);
    if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
  }

  Status Open();
  Status Run();
  void Stop() {
    stop_.store(true, std::memory_order_release);
    Poke();
  }
  void Poke() {
    const uint64_t one = 1;
    if (wake_fd_ >= 0) (void)!::write(wake_fd_, &one, sizeof one);
  }
  void ReloadPipelines() {
    reload_pipelines_.store(true, std::memory_order_release);
    Poke();
  }
  void HandOver(std::string file, std::string text, spec::JobSpec spec) {
    std::lock_guard<std::mutex> lock(handover_mu_);
    handed_over_.emplace(HandedOver{std::move(file), std::move(text), std::move(spec)});
  }
  std::vector<std::string> endpoints() const { return bound_; }
  const CoordinatorStats& stats() const { return stats_; }

 private:
  using Message = protocol::Message;
  using Command = protocol::Command;
  using Job = JobState;

  // The most attempts in one DISPATCH and results in one RESULT this
  // coordinator sends and takes (docs/protocol.md, "Batches").
  static constexpr uint32_t kMaxBatch = 256;

  struct WorkerConn {
    std::string rid;      // ROUTER routing id of its connection
    std::string name;
    std::string session;
    std::string hostname;
    std::string address;  // transport address of its connection, "" on inproc
    std::string version;
    uint32_t pid = 0;
    std::map<std::string, uint32_t> slots;
    // Of Hello.prefetch (slots beyond its slots), what it is given now, by
    // backend: its grant's granted() (prefetch_grant.h), kept here for
    // LoadIndex::Put and WORKERS.
    std::map<std::string, uint32_t> prefetch;
    std::map<std::string, PrefetchGrant> grants;  // by backend, for those it offers
    bool takes_recall = false;                 // Hello.takes_recall
    bool reports_starts = false;               // Hello.reports_starts
    bool takes_dispatch_acks = false;          // Hello.takes_dispatch_acks
    uint32_t recalling = 0;                    // its attempts recalled, not ended yet
    std::map<std::string, uint32_t> used;      // may pass slots by prefetch
    std::map<std::string, std::string> labels;
    std::set<std::string> services;  // its own (Hello.services)
    std::set<std::string> pools;     // its own (Hello.pools)
    std::unordered_set<uint64_t> attempts;
    SteadyTime last_seen{};
    // Its own heartbeat interval (Hello.heartbeat_ms): it is dead after
    // liveness of these without a message.
    Duration heartbeat = std::chrono::seconds(1);
    bool draining = false;  // said DRAINING: gets no more DISPATCH
    // Attempts it takes in one DISPATCH (Hello.max_batch, at most
    // kMaxBatch); 1: a DISPATCH each.
    uint32_t max_batch = 1;
    // This turn's DISPATCH to it, sent by FlushDispatches (placement.cc);
    // on dispatch_arena_.
    wire::Dispatch* batch = nullptr;
    size_t batch_bytes = 0;
    bool in_batched = false;  // listed in batched_
  };

  // What is queued for one peer: the bytes ZeroMQ holds (decremented by
  // ZeroMQ's I/O threads as it frees them, see protocol::SendCounted) and
  // the bytes of this turn's outbox, not yet handed over.
  struct PeerQueue {
    std::shared_ptr<std::atomic<int64_t>> in_zmq = std::make_shared<std::atomic<int64_t>>(0);
    int64_t pending = 0;
    // Over its budget: it gets nothing and is not heard until in_zmq has
    // drained to 0 (it read what was queued, or its connection closed).
    bool dropped = false;
    int64_t Queued() const { return in_zmq->load(std::memory_order_relaxed) + pending; }
  };

  // A worker that left (drained, lost), shown by WORKERS for a while.
  struct Departed {
    wire::WorkerInfo info;
    SteadyTime at{};
  };

  // A client's SERVICE-RELOAD, forwarded to workers and waiting for their
  // SERVICE-RELOADED (services.cc).
  struct PendingReload {
    std::string client;   // routing id of the client that asked
    std::string job_id;   // as asked; empty: every job's and the workers' own
    std::string service;
    std::map<std::string, std::string> waiting;  // worker rid -> worker name
    wire::ServiceReloaded reply;                 // what the answers gathered
    SteadyTime deadline{};
  };

  struct AttemptRef {
    Job* job = nullptr;
    uint32_t task = 0;
    uint32_t number = 0;
    std::string worker_rid;  // empty while an orphan (recovery.cc)
    std::string backend;
    uint32_t slots = 1;
    std::string owner;       // the worker's name
    bool recalled = false;   // Cancel.recall sent for it (Recall)
    // Placed beyond its worker's slots on a worker with Hello.reports_starts,
    // and not reported started (Heartbeat.started): it waits there. Lost
    // with its worker, it is placed again without spending a retry.
    bool waiting = false;
  };

  // coordinator.cc
  void Handle(Message m);
  // Puts `m` in this turn's outbox, unless its peer is dropped or `m`
  // would take the peer past options_.peer_send_budget (then the peer is
  // dropped: DropPeer).
  void Queue(Message m);
  // Queue's work once no event batch of m's peer is open.
  void Enqueue(Message m);
  // A TASK-EVENT, encoded in `body`, to `rid`: a message of its own, or,
  // for a client that takes batches (max_batch > 1), an entry of the batch
  // open for it this turn (docs/protocol.md, TASK-EVENT).
  void SendTaskEvent(const std::string& rid, uint32_t max_batch, const std::string& body);
  // Puts the batch open for `rid` (if any), or every open batch, in the
  // outbox. A batch is closed when another message is queued for its
  // client, so that the client gets its messages in the order they were
  // made; when it is full; and at the turn's end (Flush).
  void CloseEventBatch(const std::string& rid);
  void CloseEventBatches();
  void DropPeer(const std::string& rid, PeerQueue& q, size_t next_bytes);
  // Forgets the dropped peers whose queue has drained (Flush), and the
  // registration of a dropped worker (ExpireWorkers).
  void SweepPeers();
  // Logs `text` at `level` unless a line of `reason` from peer `rid` was
  // logged in the last minute (LogLimiter); counts what it does not log.
  void Note(const std::string& rid, std::string_view reason, spdlog::level::level_enum level,
            const std::string& text);
  // "worker w1" for a registered worker, else "peer 0x0080000029".
  std::string PeerName(const std::string& rid) const;
  void Reply(const std::string& rid, Command c, const google::protobuf::Message& body,
             std::vector<std::string> payloads = {});
  void ReplyError(const std::string& rid, const std::string& text);
  // A client request whose body does not parse (`malformed` says how):
  // counted, logged (rate-limited per peer) and answered with ERROR.
  void RefuseMalformed(const std::string& rid, const Status& malformed);
  void Flush();
  // The peers that hear from us every heartbeat interval: registered
  // workers, and clients watching a job, following a log or waiting for a
  // reload.
  std::set<std::string> Listeners() const;
  void SendHeartbeats();
  // DISCONNECT to every listener, at a clean stop.
  void SayGoodbye();
  void Check(const Status& s, const char* what) {
    if (!s.ok()) {
      spdlog::error("coordinator: {}: {}", what, s.ToString());
      store_failed_ = true;
    }
  }
  std::optional<SteadyTime> NextDeadline() const;
  // What the next turn may wait, from what the workers hold now
  // (turn_hold.h), and the wait itself: on wake_fd_ only, so that the
  // messages it gathers wake nobody.
  Duration NextTurnHold();
  void HoldTurn();

  // authorization.cc
  // Whether m.peer's role allows m.command. When not: counts it, logs it
  // (rate-limited by log_limit_) and answers an ERROR to a request; the
  // message must then be dropped before anything else sees it.
  bool Authorize(const Message& m);

  // workers.cc
  void HandleHello(const Message& m);
  void HandleDisconnect(WorkerConn& w, const Message& m);
  // The handlers of the other worker commands from a registered worker
  // return false when the message is malformed (its body does not parse,
  // or a RESULT without its 2 payload frames): that is no sign of life
  // (Handle; docs/protocol.md, "Malformed messages").
  bool HandleDraining(WorkerConn& w, const Message& m);
  // A worker's HEARTBEAT: Heartbeat.started clears AttemptRef::waiting.
  bool HandleHeartbeat(WorkerConn& w, const Message& m);
  // Attempts of `w` that waited for a slot start now (Heartbeat.started,
  // Result.started): they count as attempts if `w` is lost.
  void NoteStarts(WorkerConn& w,
                  const google::protobuf::RepeatedField<uint64_t>& started);
  void HandleWorkersRequest(const Message& m);
  void ExpireWorkers(SteadyTime now);
  // Fails every attempt of `w` as worker-lost (those still waiting in it,
  // AttemptRef::waiting, as not started), remembers it as departed in
  // `state`, and erases it.
  void RemoveWorker(WorkerConn& w, const std::string& why, const std::string& state);
  wire::WorkerInfo Info(const WorkerConn& w, SteadyTime now) const;

  // results.cc
  bool HandleResult(WorkerConn& w, Message& m);  // takes m's payloads
  // One result of a RESULT (its head or an entry of Result.more), with
  // its stdout and stderr.
  void HandleOneResult(WorkerConn& w, const wire::Result& result,
                       std::vector<std::string> payloads);
  bool HandleOutput(WorkerConn& w, const Message& m);
  // Applies the outcome of the current attempt `id` (a result, a lost
  // worker, a cancel that never reached a worker).
  void Finish(uint64_t id, const AttemptOutcome& outcome, const std::string& worker,
              const std::vector<std::string>* payloads);
  void MaybeFinishJob(Job& job);
  void SyncRows(Job& job);  // store rows of tasks the plan moved silently
  void EmitTask(Job& job, uint32_t task, const AttemptOutcome* outcome);
  // TASK-EVENT `running` of a task just dispatched, to the job's watchers
  // that asked for output (docs/protocol.md, TASK-EVENT).
  void EmitStarted(Job& job, uint32_t task, const std::string& worker);
  void CancelRunning(Job& job, const std::vector<uint32_t>& tasks);
  // Sends LOGS for attempt `number` of task `t` to `rid`, with the output
  // kept in the log files (or `payloads` when given).
  void SendLogs(const std::string& rid, const store::JobRecord& record,
                const std::string& task, uint32_t number, bool done,
                const std::string& state, const std::vector<std::string>* payloads);

  // placement.cc
  void Schedule();
  // Expands the job's fan-out placeholders whose upstream tasks have
  // succeeded (fanout.h) and stores their rows; one that cannot be
  // expanded fails as missing-input with the reason.
  void ExpandFanouts(Job& job);
  WorkerConn* PickWorker(const Placement& p);
  // After placement: takes back, one a worker and backend a turn, the
  // newest attempt waiting beyond a prefetching worker's slots when another
  // worker that could run it has a slot this turn left free
  // (Cancel.recall, docs/protocol.md "Prefetch").
  void Recall();
  // Files w in load_index_ again after its slots, load or draining changed.
  void Refile(WorkerConn& w) {
    load_index_.Put(&w, w.slots, w.prefetch, w.used, !w.draining);
  }
  void Dispatch(Job& job, uint32_t task, WorkerConn& w);
  // Queues `body` for `w`: into this turn's batch when it takes batches,
  // else as a DISPATCH of its own.
  void QueueDispatch(WorkerConn& w, wire::Dispatch* body);  // body: on dispatch_arena_
  // Queues the batches Dispatch gathered this turn, one DISPATCH each.
  void FlushDispatches();
  // Ends ready task `task` without a worker (an output it refers to is
  // missing): an attempt is recorded with `reason` and `message`, and the
  // task fails as if a worker had reported it.
  void FailUndispatched(Job& job, uint32_t task, FailureReason reason,
                        std::string message);
  // Why a ready task of class `p` is not placed; cheap (O(workers)).
  std::string PendingReason(const Placement& p) const;
  void OrderJobs();

  // client_api.cc
  // A SUBMIT: its spec is the one handed over (HandOver) when that was
  // loaded from exactly its text and file; else a small spec is loaded
  // here and a big one (more than kLoadHereBytes), or any while the loader
  // is busy, by spec_loader_, and admitted when it is loaded (in order).
  void HandleSubmit(const Message& m);
  static constexpr size_t kLoadHereBytes = 16 * 1024;  // a few ms of yaml-cpp
  // The handed-over spec, when `submit` is the SUBMIT of its text and file.
  std::optional<spec::JobSpec> TakeHandedOver(const wire::Submit& submit);
  // Admits the job of SUBMIT `r` whose spec loaded as `loaded` (or answers
  // with its errors); `built`, when not null, is its state as the spec
  // loader built it (record.id, spec, plan and rows: SpecLoader::Done::job).
  void AdmitSubmitted(const SpecLoader::Request& r, spec::LoadResult loaded,
                      std::unique_ptr<Job> built = nullptr);
  // Admits the SUBMITs whose specs spec_loader_ has loaded since.
  void AdmitLoaded();
  // Admits `job`, built for SUBMIT `r` (record.id, spec, plan and rows):
  // a resume of `previous` when it is set, with `carried` tasks carried
  // over. Answers with an ERROR instead when the SUBMIT's inputs are bad.
  void AdmitBuilt(const SpecLoader::Request& r, std::unique_ptr<Job> job,
                  const std::optional<store::JobRecord>& previous, size_t carried);
  // A SUBMIT that resumes, whose job the reader built (reads.cc).
  void AdmitResumed(StoreReader::Answer& a);
  void ReplyStillRunning(const std::string& rid, const store::JobRecord& latest);
  void HandleRetryJob(const Message& m);
  // A new job that runs again what `old` did not finish (RETRY-JOB):
  // `job`, its state built from old's spec loaded again and its rows
  // (BuildJobState, with `carried` tasks carried over).
  // `req` says how its client watches the new job.
  void AdmitRetry(const std::string& rid, const protocol::PeerKey& peer,
                  const wire::RetryJob& req, const store::JobRecord& old,
                  std::unique_ptr<Job> job, size_t carried);
  // An id for a new job: no job that runs or waits to be admitted has it
  // (pending_ids_), nor `avoid`.
  std::string FreshJobId(const std::string& avoid = {});
  void HandleCancelJob(const Message& m);
  void HandleWatch(const Message& m);
  void HandleStatus(const Message& m);
  void HandleLogs(const Message& m);
  // What the submitting client is sent about its job: TASK-EVENTs and the
  // JOB-EVENT (`events`), only the TASK-EVENTs of problems
  // (`problems_only`), and OUTPUT of the tasks (`output`).
  struct WatchMode {
    bool events = false;
    bool output = false;
    bool problems_only = false;
    uint32_t max_batch = 0;  // Submit/Watch.max_batch: events a TASK-EVENT may carry
  };
  // Registers `rid` as a watcher of `job` in `mode`.
  static void AddWatcher(Job& job, const std::string& rid, WatchMode mode);
  // Stores a job built by InitJobState (inserting it, or replacing the
  // rows of the job being resumed), answers SUBMITTED and makes it run.
  // With an empty `rid` (a scheduled run) nothing is answered. Returns
  // false, having answered ERROR, when the job could not be stored.
  bool Admit(std::unique_ptr<Job> job, bool replace, const std::string& rid, WatchMode watch,
             uint32_t carried);
  // The job's status; with `with_tasks` the tasks `page` selects (its
  // states filter applied before the listing's size bound, so a big job's
  // few failed tasks are all shown), with `with_groups` its DAG (job_views.h).
  // Filled into `out` (a caller's message, on its arena: StatusArena).
  void StatusOf(const store::JobRecord& record, bool with_tasks, const TaskPage& page,
                bool with_groups, wire::JobStatus* out);
  // What only the loop knows of running `job`'s status (live_status.h), for
  // RenderLiveStatus; the arguments as StatusOf's.
  std::unique_ptr<LiveStatus> SnapshotStatus(const Job& job, bool with_tasks,
                                             const TaskPage& page, bool with_groups);
  // reads.cc: the reads of jobs the loop does not run, answered by
  // reader_ on its thread. ReadOffLoop hands `r` over and holds the
  // client's later messages until its answer is sent (AnswerReads), so
  // that its replies keep its requests' order. Only with a reader_.
  void ReadOffLoop(StoreReader::Read r);
  // Sends the answers reader_ has ready, each with the live jobs it lists
  // made current, then handles the messages held behind it.
  void AnswerReads();
  // Handles the messages `rid` sent while one of its requests was served
  // off the loop, in order, until one of them is served off the loop too.
  void ReleaseHeld(const std::string& rid);
  void SendAnswer(StoreReader::Answer& a);
  // Whether `m` waits behind its sender's read (then it is kept, or
  // dropped past kMaxHeld messages or kMaxHeldBytes).
  bool HoldBehindRead(Message& m);
  // What a client may send while its read is answered: messages, and their
  // bytes (protocol::CountedBytes; a message may be 64 MiB).
  static constexpr size_t kMaxHeld = 256;
  static constexpr size_t kMaxHeldBytes = size_t{16} << 20;

  // Cancels every task of running `job` not yet ended (CANCEL-JOB of a
  // whole job); does nothing when it is already being cancelled.
  void CancelWholeJob(Job& job);

  // pipeline_api.cc
  // Loads options_.pipelines_dir, when set (Open()).
  Status OpenPipelines();
  // A loop turn's part: the reload SIGHUP asked for, then Pipelines::Tick.
  void TickPipelines();
  void HandlePipelines(const Message& m);
  void HandlePipelineRun(const Message& m);
  // PipelineHost
  Result<std::string> StartPipelineJob(const PipelineDef& def) override;
  bool PipelineJobRunning(const std::string& job_id) const override;
  void CancelPipelineJob(const std::string& job_id) override;

  // metrics_export.cc
  // The Prometheus text of metrics_ and of gauges computed now from the
  // jobs and workers in memory: O(tasks of running jobs + workers).
  std::string MetricsText();

  // services.cc
  // JOB-DONE {job_id} to every registered worker, when `job` declares
  // services of its own (its workers then stop them).
  void SendJobDone(const Job& job);
  // JOB-DONE of the jobs that ended while recovering to a worker that
  // registers during the recovery grace.
  void SendRecoveredJobDone(const std::string& rid);
  void HandleServiceReload(const Message& m);
  bool HandleServiceReloaded(WorkerConn& w, const Message& m);
  // `w` will not answer the pending reloads it was asked (lost, left or on
  // a new connection): it is listed as missing with `why`.
  void AbandonReloads(const WorkerConn& w, const std::string& why);
  // Answers the reloads past their deadline, listing who did not answer.
  void ExpireReloads(SteadyTime now);
  // Drops the reloads asked by clients in `gone` (their connection left).
  void DropReloads(const std::set<std::string>& gone);
  // Peers in `gone` (disconnected, or dropped over their send budget) stop
  // watching and following jobs, and their reloads are forgotten.
  void ForgetClients(const std::set<std::string>& gone);
  void FinishReload(uint64_t id);

  // disk_full.cc
  // The turn's commit found the state disk full (the store keeps the batch,
  // Store::Pending): its ACKs and messages are held, not sent.
  void Stall(const Status& why);
  // Retries the held turn's commit; on success sends what it held. Returns
  // whether the loop may go on with normal turns.
  bool Unstall();
  // A turn while stalled: heartbeats are kept up, clients get ERROR, worker
  // messages that change state wait in deferred_ (bounded), OUTPUT is
  // dropped. Nothing is written.
  void ServeStalled();
  // The messages ServeStalled put aside, handled in the turn open now.
  void HandleDeferred();
  // Writes the captured output of an attempt under <state_dir>/logs. Fails,
  // writing nothing (a partial file is removed), with "state disk full: ..."
  // when the disk has no room or the store is short of space.
  Status KeepLogs(const std::string& job_id, const std::string& task, uint32_t number,
                  const std::vector<std::string>& payloads);
  // Once per heartbeat: logs when the store used its reserve, and gets the
  // reserve back when the disk has room again.
  void WatchSpace();
  // artifacts.cc
  // An upload in progress (ARTIFACT-PUT received, ARTIFACT-DONE not sent).
  struct Upload {
    uint64_t attempt_id = 0;
    std::string path;
    uint64_t size = 0;
    uint32_t mode = 0644;
    std::unique_ptr<artifacts::BlobWriter> writer;
    // Linked from the embedded worker's disk (`drover run`): no chunks come;
    // PumpLocalUploads hashes the file, a few chunks' worth a turn.
    bool local = false;
  };
  // A download in progress: chunks go out while `credit` lasts.
  struct Download {
    std::unique_ptr<artifacts::ChunkSource> source;
    std::string sha256;
    uint32_t mode = 0644;
    uint32_t credit = 0;
  };
  using TransferKey = std::pair<std::string, uint64_t>;  // peer rid, transfer id
  Status OpenArtifacts();
  // ARTIFACT-PUT and ARTIFACT-CHUNK from a registered worker (false when
  // malformed), and what each asks for once parsed.
  bool HandleArtifactPut(WorkerConn& w, const Message& m);
  bool HandleArtifactChunk(WorkerConn& w, const Message& m);
  void BeginUpload(WorkerConn& w, const wire::ArtifactPut& put);
  void TakeChunk(WorkerConn& w, const wire::ArtifactChunk& chunk,
                 const std::string& data);
  // ARTIFACT-GET, ARTIFACT-CREDIT, ARTIFACT-DONE from any peer.
  void HandleArtifactGet(const Message& m);
  void HandleArtifactCredit(const Message& m);
  void HandleArtifactDone(const Message& m);
  // Sends the chunks downloads have credit for, while their peer's queue
  // has room (half its budget): one chunk read per message, never a file.
  void PumpDownloads();
  // Hashes linked uploads (at most kLocalBytesPerTurn a turn, so the loop
  // is never held for a whole file) and stores those that are complete.
  void PumpLocalUploads();
  bool LocalUploadsPending() const;
  // The end of an upload whose bytes are all in its writer: commits the
  // blob (named `sha256`, or what it hashes to when empty), indexes it for
  // its attempt and answers ARTIFACT-DONE. Erases the upload.
  void StoreUpload(std::map<TransferKey, Upload>::iterator it, const std::string& sha256);
  // Ends every transfer of the peers in `gone` (left, lost, dropped).
  void AbortTransfers(const std::set<std::string>& gone);
  // A message from `rid` came: if it is a registered worker, it is alive.
  void TouchWorker(const std::string& rid);
  void EndTransfer(const std::string& rid, uint64_t transfer_id, const std::string& error,
                   const std::string& sha256 = "", uint64_t size = 0);
  // Fills a DISPATCH's artifacts, artifacts_dir and inputs.
  void AddArtifacts(const Job& job, const spec::TaskSpec& ts, wire::Dispatch* body);

  // cache.cc
  // Looks ready task `t` up in the cache once per run when it has
  // `cache: true`: on a hit it becomes cached (not dispatched: its
  // outputs and artifacts are the entry's) and true is returned. Every
  // lookup records its decision (`drover explain`).
  bool TryCache(Job& job, uint32_t t);
  // The cache key of task `t` now (its upstream tasks have succeeded);
  // kFailedPrecondition with the reason when none can be made.
  Result<cache::CacheKey> KeyOf(const Job& job, uint32_t t);
  // After a success of attempt `id` (number `number`) of a `cache: true`
  // task: records it as an entry under the key its lookup computed.
  void RecordCacheEntry(const Job& job, uint32_t t, uint64_t id, uint32_t number,
                        const AttemptOutcome& outcome);
  // Stores the job's caching inputs (Admit) when one of its tasks caches;
  // reads them back for a recovered job.
  void StoreJobCache(const Job& job);
  void LoadJobCache(Job& job);

  // recovery.cc
  void Recover();    // keeps the jobs left running (options_.recover_jobs)
  void Interrupt();  // marks them interrupted (!options_.recover_jobs)
  // Fails the orphaned attempts no worker claimed within the grace.
  void ExpireOrphans(SteadyTime now);

  zmq::context_t& context_;
  CoordinatorOptions options_;
  const Clock& clock_;
  CoordinatorStats stats_;
  CoordinatorMetrics metrics_;  // metrics.h; loop thread only
  std::atomic<bool> stop_{false};
  int wake_fd_ = -1;
  int lock_fd_ = -1;  // flock on <state_dir>/coordinator.lock while open
  std::optional<zmq::socket_t> router_;
  protocol::SocketWait socket_wait_;  // Run()'s wait on router_ and wake_fd_
  std::vector<std::string> bound_;
  std::unique_ptr<store::Store> store_;
  bool store_failed_ = false;
  // disk_full.cc: a turn is held (stalled_) because its commit found the
  // state disk full; stall_reason_ says why; deferred_ holds the worker
  // messages received meanwhile.
  bool stalled_ = false;
  std::string stall_reason_;
  std::vector<Message> deferred_;
  bool space_low_logged_ = false;

  std::unordered_map<std::string, WorkerConn> workers_;  // by routing id
  // Routing ids of the workers Recall looks at (prefetch and takes_recall),
  // so that a turn does not walk every worker; one that left is dropped
  // from it when Recall finds it gone.
  std::set<std::string> recallable_;
  // The workers of workers_ that take work, by backend and load, for
  // PickWorker (Refile keeps it current; RemoveWorker forgets).
  LoadIndex<WorkerConn*> load_index_;
  std::deque<Departed> departed_;                          // oldest first
  std::map<std::string, std::unique_ptr<Job>> jobs_;      // running jobs by id
  std::vector<Job*> order_;  // running jobs by priority, then submission
  std::unordered_map<uint64_t, AttemptRef> attempts_;     // current attempts
  uint64_t ended_this_turn_ = 0;  // current attempts a RESULT ended this turn (Run)
  // Recovered attempts not yet claimed by a worker, by worker name; the
  // grace ends at orphan_deadline_.
  std::map<std::string, std::set<uint64_t>> orphans_;
  SteadyTime orphan_deadline_{};
  // Jobs with services of their own that ended in Recover(), before any
  // worker could register: workers registering before orphan_deadline_ get
  // their JOB-DONE (services.cc).
  std::vector<std::string> recovered_done_;
  std::map<uint64_t, PendingReload> reloads_;  // by the request_id sent to workers
  // Scheduled pipelines (pipeline_api.cc); null without options_.pipelines_dir.
  std::unique_ptr<Pipelines> pipelines_;
  std::atomic<bool> reload_pipelines_{false};  // SIGHUP: re-read the directory
  // A spec its embedding process loaded already (HandOver), for the SUBMIT
  // of its text; taken by that SUBMIT.
  struct HandedOver {
    std::string file, text;
    spec::JobSpec spec;
  };
  std::mutex handover_mu_;
  std::optional<HandedOver> handed_over_;  // GUARDED_BY(handover_mu_)
  // Loads big SUBMITs' specs off this thread (Open() starts it; destroyed
  // before wake_fd_ is closed, which it writes).
  std::unique_ptr<SpecLoader> spec_loader_;
  // Answers the reads of jobs not running (reads.cc), with its own
  // connection; null when that could not be opened (the loop answers
  // them). held_: the messages of each client whose read it answers,
  // received since, in order.
  std::unique_ptr<StoreReader> reader_;
  // Turns begun: a read of a running job's status waits in reader_ for
  // this turn's commit (StoreReader::Read::after_turn).
  uint64_t turn_ = 0;
  // When the last turn ended, and how long after that the next may wait
  // for more results (HoldTurn).
  SteadyTime turn_ended_{};
  Duration turn_hold_{0};
  std::string hold_breaker_;  // the worker that last ruled a hold out
  struct Held {
    std::deque<Message> messages;
    size_t bytes = 0;
  };
  std::unordered_map<std::string, Held> held_;
  // The artifact store (STATE/artifacts) and its transfers (artifacts.cc).
  std::unique_ptr<artifacts::BlobStore> blobs_;
  artifacts::BlobStore::Usage blob_usage_;  // what it holds, kept up to date
  SteadyTime blob_counted_{};               // when blob_usage_ was last Scan()ned
  std::map<TransferKey, Upload> uploads_;
  std::map<TransferKey, Download> downloads_;
  uint64_t next_reload_id_ = 1;
  std::vector<Message> outbox_;
  // Workers with a DISPATCH batch gathered this turn (placement.cc); only
  // within Schedule(), where no worker is removed.
  std::vector<WorkerConn*> batched_;
  // Where a turn's DISPATCH bodies are built (Dispatch): emptied by
  // FlushDispatches, its first block kept from turn to turn, so that a
  // dispatch costs no allocation for the message and its strings' objects.
  struct DispatchArena {
    DispatchArena() : arena(ArenaOn(block, sizeof block)) {}
    alignas(16) char block[32 << 10];
    google::protobuf::Arena arena;
  };
  DispatchArena dispatch_arena_;
  wire::TaskEvent task_event_;  // EmitTask's, reused from task to task
  std::string task_event_body_;  // an event encoded once for all its watchers
  // TASK-EVENTs gathered this turn for clients that take them in batches:
  // the message's body is the head event with each later one appended as
  // an entry of `more` (protocol::AppendTaskEventEntry). At most one open
  // batch per client.
  struct EventBatch {
    Message message;
    uint32_t events = 0;
    uint32_t max = 0;
  };
  std::vector<EventBatch> event_batches_;
  std::unordered_map<std::string, PeerQueue> peer_queues_;  // by routing id
  // At most one log line per peer per reason per minute; at most one
  // version ERROR per peer per heartbeat interval.
  LogLimiter log_limit_{std::chrono::minutes(1)};
  std::optional<LogLimiter> version_errors_;  // window: the heartbeat interval
  SteadyTime next_log_sweep_{};
  std::map<std::string, std::vector<uint64_t>> acks_;     // by worker rid
  uint64_t next_attempt_id_ = 1;
  std::string instance_;  // new at every Open(): Welcome.coordinator
  SteadyTime next_heartbeat_{};
  std::mt19937_64 rng_{std::random_device{}()};
  // The ids drawn for jobs whose state is built off the loop (a SUBMIT on
  // the spec loader, a RETRY-JOB or a resuming SUBMIT on the reader) until
  // they are admitted or refused: FreshJobId draws none of them again.
  std::unordered_set<std::string> pending_ids_;
};

}  // namespace drover

#endif  // DROVER_CORE_COORDINATOR_LOOP_H_

// Worker::Loop, the worker's I/O loop and everything it owns (worker.h
// says how it works). Internal to worker/: worker.cc has the connection,
// dispatch and results; worker_services.cc the services side (the
// worker's own services, SIGHUP, SERVICE-RELOAD, JOB-DONE).
#ifndef DROVER_WORKER_WORKER_LOOP_H_
#define DROVER_WORKER_WORKER_LOOP_H_

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>
#include <zmq.hpp>

#include "backends/backend.h"
#include "backends/services/service_host.h"
#include "core/protocol/codec.h"
#include "core/protocol/drover.pb.h"
#include "core/protocol/socket_wait.h"
#include "worker/artifact_transfers.h"
#include "worker/output_tail.h"
#include "worker/worker.h"
#include "worker/worker_metrics.h"

namespace drover {

class Worker::Loop final : public BackendEvents {
 public:
  Loop(zmq::context_t& context, WorkerOptions options, const BackendRegistry& registry,
       const Clock& clock);
  ~Loop() override {
    // The services first: their threads submit to the backends.
    services_.Shutdown(Duration(0));
    for (auto& [name, b] : backends_) b->Shutdown(Duration(0));
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }

  Status Start();
  Status Run();
  void Stop() {
    stop_.store(true, std::memory_order_release);
    Wake();
  }
  void Drain(Duration timeout) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (drain_timeout_) return;
      drain_timeout_ = timeout;
    }
    Wake();
  }
  const std::string& name() const { return options_.name; }
  std::string MetricsText() const { return metrics_->Render(); }
  std::vector<Status> UpdateServices(const std::vector<spec::ServiceDecl>& next);
  std::vector<std::string> ServiceNames() const {
    return services_.registry().WorkerServiceNames();
  }

  // BackendEvents: called on backend threads.
  void OnStarted(uint64_t, int) override {}
  void OnFinished(uint64_t attempt_id, AttemptOutcome outcome) override {
    bool first;
    {
      std::lock_guard<std::mutex> lock(mu_);
      first = done_.empty();
      done_.emplace_back(attempt_id, std::move(outcome));
    }
    // A driven backend reports on the loop's own thread, inside a turn: the
    // loop does not wait again before it takes the completion (Run), so it
    // needs no wake-up, and no write(2) and read(2) of the eventfd.
    if (current_loop == this) {
      completed_here_ = true;
      return;
    }
    // Only the first completion since the loop last took them wakes it:
    // the loop takes them all at once (DrainCompletions), after reading
    // the wake fd, so the others are taken by the turn this one wakes. One
    // write(2) a burst instead of one a task.
    if (first) Wake();
  }

 private:
  struct Running {
    std::string backend;
    std::string out, err;           // the capture files (TaskAttempt::stdout_path)
    OutputTail out_tail, err_tail;  // what was streamed as OUTPUT so far
    // It holds a lease on services (Dispatch.services or worker_services),
    // which services_ releases when it ends.
    bool uses_services = false;
    // Its $DROVER_OUTPUT file (worker/outputs.h), read and removed when it
    // ends; empty for an attempt that never reached a backend.
    std::filesystem::path outputs_file;
    // Artifacts (worker_artifacts.cc): the patterns to upload after a
    // success and the directory they are relative to; the attempt's own
    // fresh working directory and its $DROVER_INPUTS (empty when none).
    std::vector<std::string> artifacts;
    std::filesystem::path artifacts_dir, work_dir, inputs_dir;
    bool staging = false;    // its inputs are being staged: not started yet
    bool uploading = false;  // it ended; its artifacts are being uploaded
    bool uploaded = false;   // the upload ended (Complete may now report)
    // Slots of its backend it holds until it ends (Dispatch.slots, at
    // least 1); 0 for one that ended before it started.
    uint32_t slots = 0;
  };

  // A backend's slots in use, and the attempts dispatched beyond them
  // (Hello.prefetch) that wait, in dispatch order, for slots to free.
  struct Backlog {
    uint32_t capacity = 0;  // Backend::Capacity()
    uint32_t used = 0;      // slots held by its started attempts
    std::deque<wire::Dispatch> waiting;
  };

  void Wake() {
    const uint64_t one = 1;
    if (wake_fd_ >= 0) (void)!::write(wake_fd_, &one, sizeof one);
  }
  void Connect();
  void SendHello();
  // Queues `m` for the coordinator from any thread; Run() sends it.
  void Post(protocol::Message m);
  // Sends what Post queued, and HELLO again when UpdateServices asked.
  void DrainOutbox();
  void HandleServiceReload(const protocol::Message& m);
  // Why the DISPATCH cannot run here: a worker_services name this worker
  // does not run (SIGHUP may have removed it since the last HELLO).
  std::optional<std::string> MissingWorkerService(const wire::Dispatch& d) const;
  // Starts the worker's own services (Start()).
  Status StartServices();
  void Send(const protocol::Message& m);
  void Handle(const protocol::Message& m);
  void HandleDispatch(const protocol::Message& m);
  // Hands it to its backend (or ends it at once when it cannot run here).
  void StartDispatch(wire::Dispatch& d);
  // worker_prefetch.cc. One attempt of a DISPATCH (its head or an entry of
  // Dispatch.more): started now, or left waiting when its backend's slots
  // are taken.
  void HandleOneDispatch(wire::Dispatch& d);
  // Starts the waiting attempts that now fit, oldest first, after telling
  // the coordinator (ReportStarts).
  void StartWaiting();
  // StartWaiting's first half: takes the waiting attempts that now fit out
  // of their backlog, oldest first, and adds them to starts_unreported_.
  // The caller tells the coordinator, then starts them.
  std::vector<wire::Dispatch> TakeStartable();
  // Sends starts_unreported_ in a HEARTBEAT (Heartbeat.started), when
  // registered.
  void ReportStarts();
  // Ends the waiting attempts: `reason` (worker-lost when this worker
  // drains or stops: the coordinator places them again) with `message`.
  void EndWaiting(FailureReason reason, const std::string& message);
  // Ends waiting attempt `id` (CANCEL: cancelled; Welcome.unknown:
  // forgotten, with no result). False when it is not waiting.
  bool EndOneWaiting(uint64_t id, std::optional<AttemptOutcome> outcome);
  // Hands a dispatched attempt to its backend (through services_ when it
  // needs services).
  void SubmitAttempt(uint64_t id, TaskAttempt a, services::ServiceNeeds needs,
                     Backend& backend);
  // worker_artifacts.cc. Sets up the attempt's own directories when it
  // declares or receives artifacts, and stages its inputs; calls `start`
  // (now, or once they are staged). False when it failed the attempt.
  void PrepareArtifacts(uint64_t id, const wire::Dispatch& d, TaskAttempt& a,
                        std::function<void(TaskAttempt)> start);
  // For Complete: true when the attempt's artifacts are being uploaded
  // (Complete is called again with the final outcome when they are done).
  bool UploadArtifacts(uint64_t id, Running& r, AttemptOutcome& outcome);
  // Ends an attempt that is staging or uploading (CANCEL, WELCOME unknown).
  bool CancelTransfers(uint64_t id, Running& r);
  void RemoveAttemptDirs(const Running& r);
  // A turn of each driven backend that has something to do: its
  // descriptor was readable in the last wait (`ready`, in driven_'s order,
  // when given), or its PollTimeoutMs() is 0 (a command this thread
  // queued, a deadline due). A turn of one with nothing to do would cost
  // an epoll_wait(2) for nothing, three times a loop turn.
  void PollBackends(const zmq::pollitem_t* ready = nullptr);
  // The loop's wait on `items` (the socket, the wake descriptor, the driven
  // backends' descriptors) for at most `timeout`. When a driven backend
  // expects an answer within microseconds (Backend::SpinBeforeWait), the
  // wait first looks without blocking, that long at most: a wake-up from a
  // blocking wait costs more than that on many machines.
  void WaitForTurn(std::vector<zmq::pollitem_t>& items,
                   std::chrono::milliseconds timeout);
  // Makes `file` an empty $DROVER_OUTPUT for a new attempt: a spare one
  // renamed, or a new one (see spare_outputs_).
  void MakeOutputsFile(const std::string& file);
  // Ends attempt `id`: its RESULT is kept until ACKed and, when
  // registered, goes out with SendResults.
  void Complete(uint64_t id, AttemptOutcome outcome);
  // Sends the RESULTs Complete kept this turn: in batches of at most
  // coordinator_batch_ (Result.more) when the coordinator takes them,
  // else one each. The last batch carries starts_unreported_
  // (Result.started) when the coordinator takes them there.
  void SendResults();
  void DrainCompletions();
  void SendDraining(SteadyTime now);
  // Sends OUTPUT chunks of what running attempts printed since last time.
  void StreamOutput();
  void StreamOutputOf(uint64_t id, Running& r);
  // One step of a drain; true when Run() may say goodbye.
  bool DrainStep(SteadyTime now);

  zmq::context_t& context_;
  WorkerOptions options_;
  const BackendRegistry& registry_;
  const Clock& clock_;
  std::string session_;
  std::atomic<bool> stop_{false};
  int wake_fd_ = -1;
  // The loop whose Run() this thread is in: OnFinished from it is a driven
  // backend's, on the loop's thread.
  static thread_local const Loop* current_loop;
  // A completion was reported on the loop's thread since the loop last took
  // them (loop thread only): the next wait does not block.
  bool completed_here_ = false;
  bool started_ = false;  // Start() succeeded
  std::optional<zmq::socket_t> dealer_;
  protocol::SocketWait socket_wait_;  // Run()'s wait on dealer_ and the descriptors
  std::map<std::string, std::unique_ptr<Backend>> backends_;
  // The services tasks of every backend use (declared after backends_, so
  // destroyed before them: its threads submit to them).
  services::ServiceHost services_;

  std::mutex mu_;
  std::deque<std::pair<uint64_t, AttemptOutcome>> done_;  // GUARDED_BY(mu_)
  std::optional<Duration> drain_timeout_;                 // GUARDED_BY(mu_)
  std::deque<protocol::Message> outbox_;                  // GUARDED_BY(mu_)
  bool hello_again_ = false;                              // GUARDED_BY(mu_)

  // The drain, once Run() has seen the request (loop thread only).
  bool draining_ = false;
  bool drain_cancelled_ = false;          // the rest was cancelled at the deadline
  SteadyTime drain_deadline_{};           // running attempts get until then
  std::optional<SteadyTime> ack_deadline_;  // set once nothing runs any more
  SteadyTime next_output_{};                // next look at running output

  // The backends that run on this loop's thread (Backend::PollFd), of
  // backends_.
  std::vector<Backend*> driven_;
  std::unordered_map<uint64_t, Running> running_;
  // $DROVER_OUTPUT files that ended attempts left empty (CollectOutputs's
  // keep_empty), each renamed to the next attempt's name: a rename costs a
  // third of creating a file and removing it, which on ext4 took a spawn
  // task 60 us of CPU (docs/benchmarks.md, "One outputs file fewer").
  // Removed when the loop ends.
  std::vector<std::string> spare_outputs_;
  static constexpr size_t kMaxSpareOutputs = 64;
  std::map<std::string, Backlog> backlog_;    // by backend, made by Start()
  std::unordered_set<uint64_t> waiting_ids_;  // of every backlog's waiting
  // Attempts that left waiting and started, not yet reported to the
  // coordinator (ReportStarts).
  std::vector<uint64_t> starts_unreported_;
  // Uploads of finished attempts' artifacts and staging of inputs, from
  // and to the cache in SPOOL/cache (created in the constructor).
  std::unique_ptr<ArtifactTransfers> transfers_;
  // What `drover worker --metrics` serves; read from other threads
  // (thread-safe), made in the constructor.
  std::unique_ptr<WorkerMetrics> metrics_;
  std::map<uint64_t, protocol::Message> unacked_;  // RESULTs until ACKed, in order
  std::vector<uint64_t> unsent_;  // of unacked_: completed this turn, not yet sent
  // Results the coordinator takes in one RESULT (Welcome.max_batch).
  uint32_t coordinator_batch_ = 1;
  // The coordinator reads Result.started (Welcome.takes_result_starts).
  bool coordinator_takes_starts_ = false;
  // Attempts this worker takes in one DISPATCH (Hello.max_batch).
  static constexpr uint32_t kMaxBatch = 256;
  bool registered_ = false;
  SteadyTime last_heard_{};
  SteadyTime next_heartbeat_{};
  SteadyTime next_hello_{};
  Duration backoff_{};
};

}  // namespace drover

#endif  // DROVER_WORKER_WORKER_LOOP_H_

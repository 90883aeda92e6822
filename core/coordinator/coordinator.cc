#include "core/coordinator/coordinator.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <random>
#include <set>
#include <unordered_set>

#include <spdlog/spdlog.h>

#include "core/base/outcome.h"
#include "core/coordinator/dispatch_wire.h"
#include "core/coordinator/job_ids.h"
#include "core/coordinator/job_state.h"
#include "core/dag/plan.h"
#include "core/protocol/codec.h"
#include "core/protocol/convert.h"
#include "core/store/store.h"

namespace drover {
namespace {

using protocol::Command;
using protocol::Message;

// Messages handled per loop turn at most, so one turn's transaction stays
// small and timers are not starved under a flood.
constexpr int kMaxMessagesPerTurn = 4096;

int64_t WallMillis(const Clock& clock) { return ToUnixMillis(clock.WallNow()); }

bool IsClientCommand(Command c) {
  return c == Command::kSubmit || c == Command::kCancelJob;
}

}  // namespace

// The coordinator's state and loop. Everything here runs on the loop
// thread, except Stop() (an atomic and an eventfd write).
class Coordinator::Loop {
 public:
  Loop(zmq::context_t& context, CoordinatorOptions options, const Clock& clock)
      : context_(context), options_(std::move(options)), clock_(clock) {}

  ~Loop() {
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
  std::vector<std::string> endpoints() const { return bound_; }
  const CoordinatorStats& stats() const { return stats_; }

 private:
  struct WorkerConn {
    std::string rid;      // ROUTER routing id of its connection
    std::string name;
    std::string session;
    std::string hostname;
    std::map<std::string, uint32_t> slots;
    std::map<std::string, uint32_t> used;
    std::map<std::string, std::string> labels;
    std::unordered_set<uint64_t> attempts;
    SteadyTime last_seen{};
  };

  using Job = JobState;

  struct AttemptRef {
    Job* job = nullptr;
    uint32_t task = 0;
    uint32_t number = 0;
    std::string worker_rid;
    std::string backend;
  };

  // Message handlers; each runs inside the turn's transaction.
  void Handle(Message m);
  void HandleHello(const Message& m);
  void HandleResult(WorkerConn& w, const Message& m);
  void HandleSubmit(const Message& m);
  void HandleCancelJob(const Message& m);
  void HandleDisconnect(WorkerConn& w, const Message& m);

  // Applies the outcome of the current attempt `id` (a result, a lost
  // worker, a cancel that never reached a worker).
  void Finish(uint64_t id, const AttemptOutcome& outcome, const std::string& worker,
              const std::vector<std::string>* payloads);
  void Schedule();
  WorkerConn* PickWorker(const std::string& backend);
  void Dispatch(Job& job, uint32_t task, WorkerConn& w);
  void ExpireWorkers(SteadyTime now);
  void DropWorker(WorkerConn& w, const std::string& why);
  void MaybeFinishJob(Job& job);
  void SyncRows(Job& job);  // store rows of tasks the plan moved silently
  void EmitTask(Job& job, uint32_t task, const AttemptOutcome* outcome);
  void CancelRunning(Job& job, const std::vector<uint32_t>& tasks);
  void Interrupt();  // marks jobs left running by an earlier process

  void Queue(Message m) { outbox_.push_back(std::move(m)); }
  void Reply(const std::string& rid, Command c, const google::protobuf::Message& body);
  void ReplyError(const std::string& rid, const std::string& text);
  void Flush();
  void Check(const Status& s, const char* what) {
    if (!s.ok()) {
      spdlog::error("coordinator: {}: {}", what, s.ToString());
      store_failed_ = true;
    }
  }
  std::optional<SteadyTime> NextDeadline() const;

  zmq::context_t& context_;
  CoordinatorOptions options_;
  const Clock& clock_;
  CoordinatorStats stats_;
  std::atomic<bool> stop_{false};
  int wake_fd_ = -1;
  int lock_fd_ = -1;  // flock on <state_dir>/coordinator.lock while open
  std::optional<zmq::socket_t> router_;
  std::vector<std::string> bound_;
  std::unique_ptr<store::Store> store_;
  bool store_failed_ = false;

  std::unordered_map<std::string, WorkerConn> workers_;  // by routing id
  std::map<std::string, std::unique_ptr<Job>> jobs_;      // running jobs by id
  std::vector<Job*> order_;  // running jobs by priority, then age
  std::unordered_map<uint64_t, AttemptRef> attempts_;     // current attempts
  std::vector<Message> outbox_;
  std::map<std::string, std::vector<uint64_t>> acks_;     // by worker rid
  uint64_t next_attempt_id_ = 1;
  std::string instance_;  // new at every Open(): Welcome.coordinator
  SteadyTime next_heartbeat_{};
  std::mt19937_64 rng_{std::random_device{}()};
};

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
  auto max_id = store_->MaxAttemptId();
  if (!max_id.ok()) return max_id.status();
  next_attempt_id_ = *max_id + 1;
  Interrupt();
  if (store_failed_) return Internal("could not recover the state store");

  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) return ErrnoError("eventfd", errno);
  try {
    router_.emplace(context_, zmq::socket_type::router);
    router_->set(zmq::sockopt::router_mandatory, 1);
    router_->set(zmq::sockopt::linger, 0);
    router_->set(zmq::sockopt::sndhwm, 0);  // events are bounded by jobs
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

void Coordinator::Loop::Interrupt() {
  auto running = store_->JobsInState("running");
  if (!running.ok()) {
    Check(running.status(), "list running jobs");
    return;
  }
  if (running->empty()) return;
  Check(store_->Begin(), "begin");
  auto unfinished = store_->UnfinishedAttempts();
  if (unfinished.ok()) {
    AttemptOutcome lost;
    lost.reason = FailureReason::kWorkerLost;
    lost.message = "interrupted: the coordinator stopped before the attempt ended";
    for (const auto& a : *unfinished) {
      Check(store_->FinishAttempt(a.id, a.worker, lost, WallMillis(clock_)).status(),
            "finish interrupted attempt");
    }
  }
  for (const auto& job : *running) {
    auto tasks = store_->Tasks(job.id);
    if (!tasks.ok()) continue;
    for (auto row : *tasks) {
      if (row.state == "running") {
        row.state = "failed";
        row.reason = std::string(ReasonName(FailureReason::kWorkerLost));
        row.detail = "worker-lost: interrupted";
        Check(store_->UpdateTask(row), "update interrupted task");
      }
    }
    Check(store_->SetJobState(job.id, "interrupted", WallMillis(clock_)), "interrupt job");
    spdlog::warn("job {} was left running by an earlier coordinator; marked interrupted "
                 "(drover run --resume re-runs what did not finish)", job.id);
  }
  Check(store_->Commit(), "commit");
}

// ---- the loop ------------------------------------------------------------

Status Coordinator::Loop::Run() {
  if (!router_) return FailedPrecondition("Run() before a successful Open()");
  next_heartbeat_ = clock_.Now() + options_.heartbeat_interval;
  while (!stop_.load(std::memory_order_acquire)) {
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
      zmq::poll(items, 2, std::chrono::milliseconds(timeout_ms));
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) break;
      if (e.num() != EINTR) spdlog::warn("coordinator: poll: {}", e.what());
      continue;
    }
    if (items[1].revents & ZMQ_POLLIN) {
      uint64_t n;
      (void)!::read(wake_fd_, &n, sizeof n);
    }

    // 2. One transaction for everything this turn decides.
    Check(store_->Begin(), "begin");
    for (int i = 0; i < kMaxMessagesPerTurn; ++i) {
      std::optional<std::string> wrong_version;
      auto received = protocol::Receive(*router_, /*router=*/true, {}, &wrong_version);
      if (!received) break;
      if (!received->ok()) {
        stats_.malformed.fetch_add(1, std::memory_order_relaxed);
        spdlog::warn("coordinator: dropped a malformed message: {}",
                     received->status().message());
        if (wrong_version) ReplyError(*wrong_version, received->status().message());
        continue;
      }
      Handle(std::move(received->value()));
    }
    const SteadyTime now = clock_.Now();
    ExpireWorkers(now);
    for (Job* job : order_) job->plan->Promote(now);
    Schedule();
    if (now >= next_heartbeat_) {
      // Workers, and the clients watching a job, so that they can tell a
      // quiet job from a dead coordinator.
      std::set<std::string> peers;
      for (const auto& [rid, w] : workers_) peers.insert(rid);
      for (const Job* job : order_) peers.insert(job->watchers.begin(), job->watchers.end());
      for (const auto& rid : peers) {
        Message hb;
        hb.routing_id = rid;
        hb.command = Command::kHeartbeat;
        Queue(std::move(hb));
      }
      next_heartbeat_ = now + options_.heartbeat_interval;
    }

    // 3. Commit, then tell the world.
    const Status committed = store_->Commit();
    if (!committed.ok()) {
      // Nothing of this turn is durable: do not ACK it. Workers resend
      // unACKed results; dispatches are dropped and their tasks re-run.
      spdlog::error("coordinator: commit failed, this turn is lost: {}",
                    committed.ToString());
      acks_.clear();
      outbox_.clear();
      continue;
    }
    // Jobs that finished this turn leave memory now that they are durable.
    for (auto it = jobs_.begin(); it != jobs_.end();) {
      if (it->second->plan->Finished() && it->second->record.state != "running") {
        order_.erase(std::remove(order_.begin(), order_.end(), it->second.get()),
                     order_.end());
        it = jobs_.erase(it);
      } else {
        ++it;
      }
    }
    Flush();
  }
  return Status::Ok();
}

std::optional<SteadyTime> Coordinator::Loop::NextDeadline() const {
  std::optional<SteadyTime> next = next_heartbeat_;
  for (const Job* job : order_) {
    if (auto t = job->plan->NextRetryAt(); t && *t < *next) next = t;
  }
  return next;
}

void Coordinator::Loop::Flush() {
  for (auto& [rid, ids] : acks_) {
    wire::Ack ack;
    for (uint64_t id : ids) ack.add_attempt_ids(id);
    Message m = protocol::Make(Command::kAck, ack);
    m.routing_id = rid;
    outbox_.insert(outbox_.begin(), std::move(m));  // ACKs first
  }
  acks_.clear();
  for (auto& m : outbox_) {
    const Status s = protocol::Send(*router_, m);
    if (!s.ok()) {
      spdlog::debug("coordinator: {} not delivered: {}", protocol::CommandName(m.command),
                    s.message());
      // A client that went away stops watching.
      for (auto& [id, job] : jobs_) job->watchers.erase(m.routing_id);
    }
  }
  outbox_.clear();
}

void Coordinator::Loop::Reply(const std::string& rid, Command c,
                              const google::protobuf::Message& body) {
  Message m;
  m.routing_id = rid;
  m.command = c;
  body.SerializeToString(&m.body);
  Queue(std::move(m));
}

void Coordinator::Loop::ReplyError(const std::string& rid, const std::string& text) {
  wire::Error e;
  e.set_message(text);
  Reply(rid, Command::kError, e);
}

void Coordinator::Loop::Handle(Message m) {
  if (m.command == Command::kHello) return HandleHello(m);
  if (m.command == Command::kSubmit) return HandleSubmit(m);
  if (m.command == Command::kCancelJob) return HandleCancelJob(m);
  auto it = workers_.find(m.routing_id);
  if (it == workers_.end()) {
    if (IsClientCommand(m.command)) return;
    // A worker we do not know (we restarted, or we declared it dead): it
    // must say HELLO again before anything else counts.
    if (m.command != Command::kDisconnect) {
      wire::Disconnect d;
      d.set_reason("not registered: send HELLO");
      Reply(m.routing_id, Command::kDisconnect, d);
    }
    return;
  }
  WorkerConn& w = it->second;
  w.last_seen = clock_.Now();
  switch (m.command) {
    case Command::kResult:
      return HandleResult(w, m);
    case Command::kHeartbeat:
      return;
    case Command::kDisconnect:
      return HandleDisconnect(w, m);
    default:
      stats_.malformed.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("coordinator: worker {} sent {}, which workers do not send", w.name,
                   protocol::CommandName(m.command));
  }
}

// ---- workers -------------------------------------------------------------

void Coordinator::Loop::HandleHello(const Message& m) {
  auto hello = protocol::Parse<wire::Hello>(m);
  if (!hello.ok()) {
    stats_.malformed.fetch_add(1, std::memory_order_relaxed);
    return ReplyError(m.routing_id, hello.status().message());
  }
  // The same worker process (same session) on a new connection adopts its
  // attempts.
  std::unordered_set<uint64_t> adopted;
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (it->second.name != hello->name() || it->first == m.routing_id) {
      ++it;
      continue;
    }
    if (it->second.session != hello->session()) {
      // Another live process has this name. Names identify workers in the
      // store and in `drover workers`, so the newcomer waits (it retries
      // HELLO) until the old registration is gone or expires.
      return ReplyError(m.routing_id, "worker name \"" + hello->name() +
                                          "\" is in use by a live worker");
    }
    adopted = std::move(it->second.attempts);
    it->second.attempts.clear();
    it = workers_.erase(it);
  }
  WorkerConn& w = workers_[m.routing_id];
  const bool known = !w.name.empty();
  w.rid = m.routing_id;
  w.name = hello->name();
  w.session = hello->session();
  w.hostname = hello->hostname();
  w.slots.clear();
  for (const auto& [backend, n] : hello->slots()) w.slots[backend] = n;
  w.labels.clear();
  for (const auto& [k, v] : hello->labels()) w.labels[k] = v;
  w.last_seen = clock_.Now();
  for (uint64_t id : adopted) w.attempts.insert(id);
  wire::Welcome welcome;
  welcome.set_heartbeat_ms(static_cast<uint32_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(options_.heartbeat_interval)
          .count()));
  welcome.set_liveness(static_cast<uint32_t>(options_.liveness));
  welcome.set_coordinator(instance_);
  w.used.clear();
  for (uint64_t id : w.attempts) {
    auto a = attempts_.find(id);
    if (a != attempts_.end()) {
      a->second.worker_rid = w.rid;
      ++w.used[a->second.backend];
    }
  }
  for (uint64_t id : hello->running()) {
    if (!w.attempts.count(id)) welcome.add_unknown(id);
  }
  Reply(m.routing_id, Command::kWelcome, welcome);
  if (!known) {
    spdlog::info("coordinator: worker {} ({}) registered", w.name, w.hostname);
  }
}

void Coordinator::Loop::HandleDisconnect(WorkerConn& w, const Message& m) {
  auto d = protocol::Parse<wire::Disconnect>(m);
  spdlog::info("coordinator: worker {} disconnected{}: {}", w.name,
               d.ok() && d->drained() ? " (drained)" : "",
               d.ok() ? d->reason() : std::string("?"));
  DropWorker(w, "worker disconnected");
  workers_.erase(w.rid);
}

void Coordinator::Loop::ExpireWorkers(SteadyTime now) {
  const auto limit = options_.heartbeat_interval * options_.liveness;
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (now - it->second.last_seen > limit) {
      stats_.workers_lost.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("coordinator: worker {} missed {} heartbeats; its attempts are lost",
                   it->second.name, options_.liveness);
      DropWorker(it->second, "worker " + it->second.name + " stopped heartbeating");
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
}

// Fails every attempt of `w` as worker-lost. The caller erases `w`.
void Coordinator::Loop::DropWorker(WorkerConn& w, const std::string& why) {
  AttemptOutcome lost;
  lost.reason = FailureReason::kWorkerLost;
  lost.message = why;
  const std::vector<uint64_t> ids(w.attempts.begin(), w.attempts.end());
  for (uint64_t id : ids) Finish(id, lost, w.name, nullptr);
  w.attempts.clear();
}

// ---- results -------------------------------------------------------------

void Coordinator::Loop::HandleResult(WorkerConn& w, const Message& m) {
  auto result = protocol::Parse<wire::Result>(m);
  if (!result.ok()) {
    stats_.malformed.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("coordinator: worker {}: {}", w.name, result.status().message());
    return;
  }
  if (m.payloads.size() != 2) {
    stats_.malformed.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("coordinator: worker {}: RESULT with {} payload frames (2 expected), "
                 "dropped", w.name, m.payloads.size());
    return;
  }
  const uint64_t id = result->attempt_id();
  acks_[w.rid].push_back(id);  // committed below, or stale: ACK either way
  const AttemptOutcome outcome = protocol::OutcomeFromWire(*result);
  if (!attempts_.count(id)) {
    // Not current: re-queued meanwhile, or from before a restart. Record it
    // if the store still waits for it, never apply it to the task.
    stats_.stale_results.fetch_add(1, std::memory_order_relaxed);
    auto recorded = store_->FinishAttempt(id, w.name, outcome, WallMillis(clock_));
    spdlog::info("coordinator: ignored the result of attempt {} from {}: it is no "
                 "longer current{}",
                 id, w.name, recorded.ok() && *recorded ? " (recorded in history)" : "");
    return;
  }
  if (attempts_[id].worker_rid != w.rid) {
    // Only the worker holding an attempt may finish it; anything else would
    // free a slot that is still busy.
    stats_.stale_results.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("coordinator: worker {} sent a result for attempt {}, which it does "
                 "not hold; ignored", w.name, id);
    return;
  }
  std::vector<std::string> payloads = m.payloads;
  Finish(id, outcome, w.name, &payloads);
}

void Coordinator::Loop::Finish(uint64_t id, const AttemptOutcome& outcome,
                               const std::string& worker,
                               const std::vector<std::string>* payloads) {
  auto it = attempts_.find(id);
  if (it == attempts_.end()) return;
  const AttemptRef ref = it->second;
  attempts_.erase(it);
  if (auto w = workers_.find(ref.worker_rid); w != workers_.end()) {
    w->second.attempts.erase(id);
    auto& used = w->second.used[ref.backend];
    if (used > 0) --used;
  }
  Job& job = *ref.job;
  const uint32_t t = ref.task;
  job.current[t] = 0;
  stats_.results.fetch_add(1, std::memory_order_relaxed);

  auto recorded = store_->FinishAttempt(id, worker, outcome, WallMillis(clock_));
  Check(recorded.status(), "record result");

  // Captured output: the RESULT's two payload frames, stdout then stderr.
  if (payloads) {
    for (size_t s = 0; s < 2 && s < payloads->size(); ++s) {
      const std::string& data = (*payloads)[s];
      if (data.empty()) continue;
      const auto path = store_->LogPath(job.record.id, job.rows[t].name, ref.number, s == 1);
      std::error_code ec;
      std::filesystem::create_directories(path.parent_path(), ec);
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out.write(data.data(), static_cast<std::streamsize>(data.size()));
      if (!out) spdlog::error("coordinator: cannot write {}", path.string());
    }
  }

  dag::Plan& plan = *job.plan;
  const uint32_t silent_before = plan.counts().blocked + plan.counts().skipped;
  bool failed_for_good = false;
  if (outcome.ok()) {
    plan.OnSucceeded(t);
  } else if (outcome.reason == FailureReason::kCancelled || job.cancelling) {
    plan.OnCancelled(t);
    failed_for_good = true;
  } else {
    const auto retry_at = plan.OnFailed(t, clock_.Now(), IsRetryable(outcome.reason));
    failed_for_good = !retry_at.has_value();
  }

  store::TaskRecord& row = job.rows[t];
  row.state = std::string(dag::TaskStateName(plan.state(t)));
  row.reason = std::string(ReasonName(outcome.reason));
  row.exit_code = outcome.exit_code;
  row.signal = outcome.signal;
  row.detail = outcome.Describe();
  row.wall_us = std::chrono::duration_cast<std::chrono::microseconds>(outcome.wall).count();
  row.result_json = outcome.result_json;
  row.worker = worker;
  row.finished_ms = WallMillis(clock_);
  Check(store_->UpdateTask(row), "update task");
  EmitTask(job, t, &outcome);

  if (failed_for_good) {
    if (job.spec.fail_fast && !job.cancelling) {
      CancelRunning(job, plan.CancelPending());
    }
    // Dependents were blocked (and, with fail_fast, the rest skipped): their
    // rows follow. A failure that moved nothing (the common case in a big
    // matrix) skips the O(tasks) scan.
    if (plan.counts().blocked + plan.counts().skipped != silent_before) SyncRows(job);
  }
  MaybeFinishJob(job);
}

void Coordinator::Loop::CancelRunning(Job& job, const std::vector<uint32_t>& tasks) {
  std::map<std::string, wire::Cancel> by_worker;
  for (uint32_t t : tasks) {
    const uint64_t id = job.current[t];
    if (!id) continue;
    auto a = attempts_.find(id);
    if (a == attempts_.end()) continue;
    by_worker[a->second.worker_rid].add_attempt_ids(id);
  }
  for (auto& [rid, cancel] : by_worker) Reply(rid, Command::kCancel, cancel);
}

void Coordinator::Loop::SyncRows(Job& job) {
  for (uint32_t t = 0; t < job.rows.size(); ++t) {
    const dag::TaskState s = job.plan->state(t);
    if (s != dag::TaskState::kBlocked && s != dag::TaskState::kSkipped) continue;
    const std::string_view name = dag::TaskStateName(s);
    if (job.rows[t].state == name) continue;
    job.rows[t].state = std::string(name);
    Check(store_->UpdateTask(job.rows[t]), "update task");
    EmitTask(job, t, nullptr);
  }
}

void Coordinator::Loop::EmitTask(Job& job, uint32_t t, const AttemptOutcome* outcome) {
  if (job.watchers.empty()) return;
  wire::TaskEvent ev;
  ev.set_job_id(job.record.id);
  ev.set_task(job.rows[t].name);
  ev.set_state(std::string(dag::TaskStateName(job.plan->state(t))));
  ev.set_attempt(job.attempt_base[t] + static_cast<uint32_t>(job.plan->attempts(t)));
  if (outcome) {
    ev.set_reason(std::string(ReasonName(outcome->reason)));
    ev.set_detail(outcome->Describe());
    ev.set_wall_us(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(outcome->wall).count()));
    ev.set_worker(job.rows[t].worker);
  }
  *ev.mutable_counts() = CountsToWire(job.plan->counts());
  for (const auto& rid : job.watchers) Reply(rid, Command::kTaskEvent, ev);
}

void Coordinator::Loop::MaybeFinishJob(Job& job) {
  if (!job.plan->Finished() || job.record.state != "running") return;
  job.record.state = job.cancelling          ? "cancelled"
                     : job.plan->Succeeded() ? "succeeded"
                                             : "failed";
  job.record.finished_ms = WallMillis(clock_);
  Check(store_->SetJobState(job.record.id, job.record.state, job.record.finished_ms),
        "finish job");
  spdlog::info("coordinator: job {} {}", job.record.id, job.record.state);
  wire::JobEvent ev;
  ev.set_job_id(job.record.id);
  ev.set_state(job.record.state);
  *ev.mutable_counts() = CountsToWire(job.plan->counts());
  for (const auto& rid : job.watchers) Reply(rid, Command::kJobEvent, ev);
}

// ---- scheduling ----------------------------------------------------------

Coordinator::Loop::WorkerConn* Coordinator::Loop::PickWorker(const std::string& backend) {
  WorkerConn* best = nullptr;
  double best_load = 2.0;
  for (auto& [rid, w] : workers_) {
    auto s = w.slots.find(backend);
    if (s == w.slots.end() || s->second == 0) continue;
    const uint32_t used = w.used[backend];
    if (used >= s->second) continue;
    const double load = static_cast<double>(used) / s->second;
    if (load < best_load) {
      best_load = load;
      best = &w;
    }
  }
  return best;
}

void Coordinator::Loop::Schedule() {
  // Jobs in priority order; within a job, tasks in the order they became
  // ready. A task no worker can take now waits at the head of its job.
  for (Job* job : order_) {
    if (job->cancelling) continue;
    while (auto t = job->plan->PeekReady()) {
      WorkerConn* w = PickWorker(job->spec.tasks[*t].backend);
      if (!w) break;
      Dispatch(*job, *t, *w);
    }
  }
}

void Coordinator::Loop::Dispatch(Job& job, uint32_t t, WorkerConn& w) {
  const spec::TaskSpec& ts = job.spec.tasks[t];
  job.plan->Start(t);
  const uint64_t id = next_attempt_id_++;
  const uint32_t number = job.attempt_base[t] + static_cast<uint32_t>(job.plan->attempts(t));
  const int64_t now_ms = WallMillis(clock_);

  store::AttemptRecord rec;
  rec.id = id;
  rec.job_id = job.record.id;
  rec.task = ts.name;
  rec.number = number;
  rec.worker = w.name;
  rec.started_ms = now_ms;
  Check(store_->InsertAttempt(rec), "insert attempt");

  store::TaskRecord& row = job.rows[t];
  row.state = "running";
  row.attempts = number;
  row.worker = w.name;
  if (row.started_ms == 0) row.started_ms = now_ms;
  Check(store_->UpdateTask(row), "update task");

  attempts_[id] = AttemptRef{&job, t, number, w.rid, ts.backend};
  w.attempts.insert(id);
  ++w.used[ts.backend];
  job.current[t] = id;
  stats_.dispatched.fetch_add(1, std::memory_order_relaxed);

  Message m = protocol::Make(Command::kDispatch,
                             DispatchToWire(job.spec, job.record.id, ts, id, number));
  m.routing_id = w.rid;
  Queue(std::move(m));
}

// ---- clients -------------------------------------------------------------

void Coordinator::Loop::HandleSubmit(const Message& m) {
  auto submit = protocol::Parse<wire::Submit>(m);
  if (!submit.ok()) return ReplyError(m.routing_id, submit.status().message());
  wire::Submitted reply;
  auto loaded = spec::LoadString(submit->spec_text(), submit->spec_file(),
                                 options_.spec_options);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) reply.add_errors(e.ToString());
    return Reply(m.routing_id, Command::kSubmitted, reply);
  }

  auto job = std::make_unique<Job>();
  job->spec = std::move(*loaded.spec);
  const spec::JobSpec& spec = job->spec;
  const uint32_t n = static_cast<uint32_t>(spec.tasks.size());

  // Resume: the latest job of this name gives the tasks already done.
  std::optional<store::JobRecord> previous;
  std::unordered_map<std::string, store::TaskRecord> old_rows;
  if (submit->resume()) {
    auto latest = store_->LatestJob(spec.name);
    if (!latest.ok()) return ReplyError(m.routing_id, latest.status().ToString());
    if (*latest) {
      if (jobs_.count((*latest)->id)) {
        return ReplyError(m.routing_id, "job " + (*latest)->id + " (" + spec.name +
                                            ") is still running; cannot resume it");
      }
      previous = **latest;
      auto rows = store_->Tasks(previous->id);
      if (!rows.ok()) return ReplyError(m.routing_id, rows.status().ToString());
      for (auto& r : *rows) old_rows.emplace(r.name, std::move(r));
    }
  }

  store::JobRecord& rec = job->record;
  rec.id = previous ? previous->id : NewJobId(clock_.WallNow(), rng_);
  rec.name = spec.name;
  rec.spec_file = submit->spec_file();
  rec.spec_text = submit->spec_text();
  rec.cwd = submit->cwd();
  rec.state = "running";
  rec.priority = spec.priority;
  rec.created_ms = previous ? previous->created_ms : WallMillis(clock_);

  const std::vector<uint32_t> carried = InitJobState(
      *job, old_rows, options_.jitter_seed ? options_.jitter_seed : rng_());

  const Status stored = previous ? store_->ReplaceTasks(rec, job->rows)
                                 : store_->InsertJob(rec, job->rows);
  if (!stored.ok()) {
    return ReplyError(m.routing_id, "cannot store the job: " + stored.ToString());
  }
  if (previous) {
    Check(store_->SetJobState(rec.id, "running", 0), "reopen job");
  }
  reply.set_job_id(rec.id);
  reply.set_tasks(n);
  reply.set_carried_over(static_cast<uint32_t>(carried.size()));
  Reply(m.routing_id, Command::kSubmitted, reply);
  if (submit->watch()) job->watchers.insert(m.routing_id);
  spdlog::info("coordinator: job {} ({}) submitted: {} tasks, {} carried over", rec.id,
               rec.name, n, carried.size());

  Job* raw = job.get();
  jobs_.emplace(rec.id, std::move(job));
  order_.push_back(raw);
  std::stable_sort(order_.begin(), order_.end(), [](const Job* a, const Job* b) {
    return a->record.priority > b->record.priority;
  });
  MaybeFinishJob(*raw);  // everything carried over: done at once
}

void Coordinator::Loop::HandleCancelJob(const Message& m) {
  auto req = protocol::Parse<wire::CancelJob>(m);
  if (!req.ok()) return ReplyError(m.routing_id, req.status().message());
  auto it = jobs_.find(req->job_id());
  if (it == jobs_.end()) {
    return ReplyError(m.routing_id, "job " + req->job_id() + " is not running");
  }
  Job& job = *it->second;
  job.watchers.insert(m.routing_id);
  job.cancelling = true;
  CancelRunning(job, job.plan->CancelPending());
  SyncRows(job);
  MaybeFinishJob(job);
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
const CoordinatorStats& Coordinator::stats() const { return loop_->stats(); }

}  // namespace drover

#include "worker/worker.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/base/version.h"
#include "core/protocol/codec.h"
#include "core/protocol/convert.h"
#include "core/protocol/hello_limits.h"
#include "worker/output_tail.h"
#include "worker/outputs.h"
#include "worker/worker_loop.h"

namespace drover {
namespace {

using protocol::Command;
using protocol::Message;

std::string DefaultName() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0)
    std::snprintf(host, sizeof host, "worker");
  return std::string(host) + "-" + std::to_string(::getpid());
}

// How often running attempts' output is looked at and streamed, and the
// most one OUTPUT carries: live enough for `drover logs -f`, cheap for a
// worker running thousands of quiet tasks.
constexpr Duration kOutputInterval = std::chrono::milliseconds(250);
constexpr size_t kMaxOutputChunk = 1 << 20;

std::string RandomSession() {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  return buf;
}

// How many attempts may wait for their services at once: as many as the
// worker runs.
int ServiceThreads(const WorkerOptions& options) {
  int slots = 0;
  for (const auto& [name, n] : options.slots) slots += std::max(0, n);
  return std::max(2, slots);
}

}  // namespace

Worker::Loop::Loop(zmq::context_t& context, WorkerOptions options,
                   const BackendRegistry& registry, const Clock& clock)
    : context_(context),
      options_(std::move(options)),
      registry_(registry),
      clock_(clock),
      services_(clock_, ServiceThreads(options_), options_.guardian) {
  if (options_.name.empty()) options_.name = DefaultName();
  // Absolute: paths under it reach tasks ($DROVER_OUTPUT, $DROVER_INPUTS),
  // and a task with artifacts runs in a directory of its own, where the
  // default relative `.drover/spool` would name nothing.
  std::error_code ec;
  if (auto absolute = std::filesystem::absolute(options_.spool_dir, ec); !ec) {
    options_.spool_dir = std::move(absolute);
  }
  session_ = RandomSession();
  metrics_ = std::make_unique<WorkerMetrics>(options_.slots, options_.spool_dir);
  transfers_ = std::make_unique<ArtifactTransfers>(
      options_.spool_dir / "cache", [this](protocol::Message m) { Send(m); },
      options_.local_artifacts);
}

Status Worker::Loop::Start() {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) return ErrnoError("eventfd", errno);
  std::error_code ec;
  std::filesystem::create_directories(options_.spool_dir, ec);
  if (ec) {
    return IoError("cannot create the spool directory " + options_.spool_dir.string() +
                   ": " + ec.message());
  }
  // Attempts' own directories of an earlier run of this worker: their
  // tasks died with it.
  std::filesystem::remove_all(options_.spool_dir / "work", ec);
  std::filesystem::remove_all(options_.spool_dir / "inputs", ec);
  // An offer the coordinator would refuse (protocol/hello_limits.h) is a
  // configuration error, said now, not a HELLO refused for ever after.
  wire::Hello offer;
  offer.set_name(options_.name);
  for (const auto& [name, slots] : options_.slots) (*offer.mutable_slots())[name] = 1;
  for (const auto& [k, v] : options_.labels) (*offer.mutable_labels())[k] = v;
  for (const auto& [name, pool] : options_.pools) offer.add_pools(name);
  for (const auto& service : options_.services) offer.add_services(service.name);
  if (std::string problem = protocol::HelloProblem(offer); !problem.empty()) {
    return InvalidArgument("the coordinator would refuse this worker's offer: " +
                           problem);
  }
  DROVER_RETURN_IF_ERROR(transfers_->Open());
  for (const auto& [name, slots] : options_.slots) {
    if (slots <= 0) continue;
    BackendConfig config;
    config.slots = slots;
    config.zygote = options_.zygote;
    config.guardian = options_.guardian;
    config.plugins = options_.plugins;
    config.pools = options_.pools;
    // A backend that can runs on this loop's thread (Backend::PollFd): the
    // spawn backend's exits and launches then cross no thread.
    config.driven = true;
    auto backend = registry_.Create(name, config);
    Status s = backend.ok() ? (*backend)->Start(this) : backend.status();
    if (!s.ok()) {
      for (auto& [n, b] : backends_) b->Shutdown(Duration(0));
      backends_.clear();
      driven_.clear();
      return s.WithContext("backend " + name);
    }
    backlog_[name].capacity = static_cast<uint32_t>(std::max(1, (*backend)->Capacity()));
    if ((*backend)->PollFd() >= 0) driven_.push_back(backend->get());
    backends_.emplace(name, std::move(backend.value()));
  }
  if (backends_.empty() && options_.services.empty()) {
    return InvalidArgument("the worker has no slots for any backend");
  }
  Status s = services_.Start(this);
  if (s.ok()) s = StartServices();
  if (!s.ok()) {
    services_.Shutdown(Duration(0));
    for (auto& [n, b] : backends_) b->Shutdown(Duration(0));
    backends_.clear();
    driven_.clear();
    return s;
  }
  started_ = true;
  return Status::Ok();
}

void Worker::Loop::Connect() {
  dealer_.reset();
  dealer_.emplace(context_, zmq::socket_type::dealer);
  dealer_->set(zmq::sockopt::linger, 0);
  dealer_->set(zmq::sockopt::sndhwm, 0);
  dealer_->set(zmq::sockopt::rcvhwm, 0);
  // libzmq's own TCP reconnects back off like our HELLOs do.
  dealer_->set(zmq::sockopt::reconnect_ivl,
               static_cast<int>(ToMillis(options_.reconnect_min)));
  dealer_->set(zmq::sockopt::reconnect_ivl_max,
               static_cast<int>(ToMillis(options_.reconnect_max)));
  if (options_.configure_socket) {
    if (Status s = options_.configure_socket(*dealer_); !s.ok()) {
      spdlog::error("worker {}: cannot configure the connection: {}", options_.name,
                    s.message());
    }
  }
  dealer_->connect(options_.coordinator);
  registered_ = false;
  metrics_->SetRegistered(false);
  transfers_->Disconnected();
}

void Worker::Loop::Send(const Message& m) {
  const Status s = protocol::Send(*dealer_, m);
  if (!s.ok()) {
    spdlog::debug("worker {}: {} not sent: {}", options_.name,
                  protocol::CommandName(m.command), s.message());
  }
}

void Worker::Loop::SendHello() {
  wire::Hello hello;
  hello.set_name(options_.name);
  char host[256] = {};
  (void)::gethostname(host, sizeof host - 1);
  hello.set_hostname(host);
  hello.set_pid(static_cast<uint32_t>(::getpid()));
  hello.set_session(session_);
  for (const auto& [name, b] : backends_) {
    const auto slots = static_cast<uint32_t>(b->Capacity());
    (*hello.mutable_slots())[name] = slots;
    const uint32_t prefetch = options_.prefetch == WorkerOptions::kPrefetchDefault
                                  ? WorkerOptions::kDefaultPrefetchPerSlot * slots
                                  : static_cast<uint32_t>(std::max(0, options_.prefetch));
    if (prefetch > 0) (*hello.mutable_prefetch())[name] = prefetch;
  }
  for (std::string& service : ServiceNames()) hello.add_services(std::move(service));
  // Its own pools: fork tasks naming a pool their job does not declare are
  // placed only on workers that have it (options_.pools is sorted by name).
  for (const auto& [name, pool] : options_.pools) hello.add_pools(name);
  for (const auto& [k, v] : options_.labels) (*hello.mutable_labels())[k] = v;
  for (const auto& [id, r] : running_) hello.add_running(id);
  for (const auto& [id, m] : unacked_) hello.add_running(id);
  for (uint64_t id : waiting_ids_) {
    hello.add_running(id);
    hello.add_waiting(id);
  }
  hello.set_max_batch(kMaxBatch);
  hello.set_takes_recall(true);
  hello.set_reports_starts(true);
  hello.set_takes_dispatch_acks(true);
  hello.set_heartbeat_ms(static_cast<uint32_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(options_.heartbeat_interval)
          .count()));
  hello.set_version(DroverVersion());
  Send(protocol::Make(Command::kHello, hello));
  // Until a WELCOME arrives, say HELLO again with growing pauses.
  next_hello_ = clock_.Now() + backoff_;
  backoff_ = std::min(backoff_ * 2, options_.reconnect_max);
}

Status Worker::Loop::Run() {
  if (wake_fd_ < 0 || !started_) return FailedPrecondition("Run() before Start()");
  try {
    Connect();
  } catch (const zmq::error_t& e) {
    return Unavailable("cannot connect to " + options_.coordinator + ": " + e.what());
  }
  const SteadyTime start = clock_.Now();
  last_heard_ = start;
  next_heartbeat_ = start + options_.heartbeat_interval;
  backoff_ = options_.reconnect_min;
  SendHello();

  bool drained = false;
  std::vector<zmq::pollitem_t> items;
  // Driven backends report on this thread from here on (OnFinished).
  current_loop = this;
  struct LeaveLoop {
    ~LeaveLoop() { current_loop = nullptr; }
  } leave_loop;
  while (!stop_.load(std::memory_order_acquire)) {
    // What this loop asked of a driven backend since its last turn (a
    // submit, a cancel) woke nothing: it happens before the wait.
    PollBackends();
    const SteadyTime now0 = clock_.Now();
    SteadyTime deadline = next_heartbeat_;
    if (!registered_) deadline = std::min(deadline, next_hello_);
    deadline =
        std::min(deadline, last_heard_ + options_.heartbeat_interval * options_.liveness);
    if (draining_ && !drain_cancelled_) deadline = std::min(deadline, drain_deadline_);
    if (ack_deadline_) deadline = std::min(deadline, *ack_deadline_);
    if (!running_.empty() && registered_) deadline = std::min(deadline, next_output_);
    auto wait = std::max<long>(
        0, std::chrono::ceil<std::chrono::milliseconds>(deadline - now0).count());
    for (Backend* b : driven_) {
      if (const int ms = b->PollTimeoutMs(); ms >= 0) wait = std::min<long>(wait, ms);
    }
    // A driven backend reported since the completions were last taken (in
    // the turn after they were): no wake-up says so.
    if (completed_here_) wait = 0;
    items.resize(2);
    items[0] = {dealer_->handle(), 0, ZMQ_POLLIN, 0};
    items[1] = {nullptr, wake_fd_, ZMQ_POLLIN, 0};
    for (Backend* b : driven_) items.push_back({nullptr, b->PollFd(), ZMQ_POLLIN, 0});
    try {
      WaitForTurn(items, std::chrono::milliseconds(wait));
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) break;
      continue;
    }
    // The driven backends' exits, output and timers; their completions
    // come now, on this thread, and are taken below with the others.
    PollBackends(items.data() + 2);
    if (items[1].revents & ZMQ_POLLIN) {
      // Read before the completions are taken: a completion from another
      // thread after it wakes the next turn.
      uint64_t n;
      (void)!::read(wake_fd_, &n, sizeof n);
    }
    DrainCompletions();
    // The results go out with the starts of the attempts whose slots they
    // freed, and before those start: in the last RESULT when the
    // coordinator takes them there (Welcome.takes_result_starts), else in
    // a HEARTBEAT right after it. Either way the coordinator reads both in
    // one turn; a HEARTBEAT of its own woke it for another turn (a commit
    // and a message back) as often as not.
    std::vector<wire::Dispatch> starting = TakeStartable();  // slots freed
    SendResults();
    ReportStarts();
    for (wire::Dispatch& d : starting) StartDispatch(d);
    PollBackends();  // and the driven backends launch them now
    DrainOutbox();
    // At most 4096 messages, and never past a due heartbeat: a download
    // keeps chunks coming as fast as they are taken, and a turn that only
    // ends when the socket is empty would let the coordinator declare this
    // worker dead in the middle of a large file.
    for (int i = 0; i < 4096; ++i) {
      if (i > 0 && clock_.Now() >= next_heartbeat_) break;
      auto received = protocol::Receive(*dealer_, /*router=*/false);
      if (!received) break;
      last_heard_ = clock_.Now();
      if (!received->ok()) {
        spdlog::warn("worker {}: dropped a malformed message: {}", options_.name,
                     received->status().message());
        continue;
      }
      Handle(received->value());
    }
    StartWaiting();
    // The results of this turn (completions, and dispatches refused at
    // once), together.
    SendResults();

    const SteadyTime now = clock_.Now();
    if (now - last_heard_ > options_.heartbeat_interval * options_.liveness) {
      // The coordinator is silent: start over on a fresh connection.
      spdlog::warn("worker {}: no word from the coordinator at {} for {}; reconnecting",
                   options_.name, options_.coordinator,
                   FormatDuration(now - last_heard_));
      Connect();
      last_heard_ = now;
      SendHello();
    } else if (!registered_ && now >= next_hello_) {
      SendHello();
    }
    if (now >= next_heartbeat_) {
      Message hb;
      hb.command = Command::kHeartbeat;
      Send(hb);
      next_heartbeat_ = now + options_.heartbeat_interval;
    }
    if (now >= next_output_) {
      StreamOutput();
      next_output_ = now + kOutputInterval;
    }
    if (DrainStep(now)) {
      drained = true;
      break;
    }
  }

  // Shut down: running attempts get shutdown_grace, then their results and a
  // DISCONNECT go out (best effort: the coordinator may be gone already).
  // After a drain nothing runs any more. The services first: their threads
  // submit to the backends, and the attempts waiting for them end.
  EndWaiting(FailureReason::kWorkerLost, "worker " + options_.name + " is stopping");
  services_.Shutdown(options_.shutdown_grace);
  for (auto& [name, b] : backends_) b->Shutdown(options_.shutdown_grace);
  DrainCompletions();
  SendResults();
  wire::Disconnect bye;
  bye.set_reason(drained ? "worker drained" : "worker stopping");
  bye.set_drained(drained && unacked_.empty());
  if (drained && !unacked_.empty()) {
    spdlog::error(
        "worker {}: {} results were not acknowledged by {}; their tasks will be "
        "re-run",
        options_.name, unacked_.size(), options_.coordinator);
  }
  Send(protocol::Make(Command::kDisconnect, bye));
  for (const std::string& spare : spare_outputs_) ::unlink(spare.c_str());
  spare_outputs_.clear();
  // The goodbye (and any last RESULT) must leave before the socket closes:
  // give them a bounded linger instead of the usual none.
  try {
    dealer_->set(zmq::sockopt::linger, 1000);
  } catch (const zmq::error_t&) {
  }
  return Status::Ok();
}

void Worker::Loop::StreamOutput() {
  if (!registered_) return;
  for (auto& [id, r] : running_) StreamOutputOf(id, r);
}

void Worker::Loop::StreamOutputOf(uint64_t id, Running& r) {
  for (uint32_t stream : {1u, 2u}) {
    OutputTail& tail = stream == 1 ? r.out_tail : r.err_tail;
    wire::Output out;
    out.set_attempt_id(id);
    out.set_stream(stream);
    out.set_offset(tail.offset());
    std::string chunk = tail.Read(kMaxOutputChunk);
    if (chunk.empty()) continue;
    Message m = protocol::Make(Command::kOutput, out);
    m.payloads.push_back(std::move(chunk));
    Send(m);
  }
}

void Worker::Loop::SendDraining(SteadyTime now) {
  wire::Draining d;
  d.set_deadline_ms(
      static_cast<uint64_t>(std::max<int64_t>(0, ToMillis(drain_deadline_ - now))));
  Send(protocol::Make(Command::kDraining, d));
}

bool Worker::Loop::DrainStep(SteadyTime now) {
  if (!draining_) {
    std::optional<Duration> timeout;
    {
      std::lock_guard<std::mutex> lock(mu_);
      timeout = drain_timeout_;
    }
    if (!timeout) return false;
    draining_ = true;
    drain_deadline_ = now + *timeout;
    spdlog::info("worker {}: draining: {} attempts running, waiting up to {}",
                 options_.name, running_.size(), FormatDuration(*timeout));
    if (registered_) SendDraining(now);
    // Those that have not started go back to be placed elsewhere, like a
    // DISPATCH that crosses our DRAINING.
    EndWaiting(FailureReason::kWorkerLost, "worker " + options_.name + " is draining");
  }
  if (!running_.empty()) {
    if (!drain_cancelled_ && now >= drain_deadline_) {
      spdlog::warn("worker {}: drain deadline reached; cancelling {} attempts",
                   options_.name, running_.size());
      for (const auto& [id, r] : running_) backends_[r.backend]->Cancel(id);
      drain_cancelled_ = true;
    }
    return false;
  }
  // Nothing runs: wait (bounded) for the last results' ACKs.
  if (!ack_deadline_) ack_deadline_ = now + options_.drain_ack_timeout;
  return unacked_.empty() || now >= *ack_deadline_;
}

void Worker::Loop::Handle(const Message& m) {
  switch (m.command) {
    case Command::kWelcome: {
      auto welcome = protocol::Parse<wire::Welcome>(m);
      if (!welcome.ok()) return;
      if (!registered_) {
        spdlog::info("worker {}: registered with {}", options_.name,
                     options_.coordinator);
      }
      registered_ = true;
      metrics_->SetRegistered(true);
      backoff_ = options_.reconnect_min;
      coordinator_batch_ = std::clamp<uint32_t>(welcome->max_batch(), 1, kMaxBatch);
      coordinator_takes_starts_ = welcome->takes_result_starts();
      ReportStarts();  // those started since the HELLO was sent
      for (uint64_t id : welcome->unknown()) {
        // The coordinator no longer wants these: stop them, forget results.
        if (EndOneWaiting(id, std::nullopt)) continue;
        auto r = running_.find(id);
        if (r != running_.end()) {
          spdlog::info(
              "worker {}: attempt {} is no longer current at the coordinator; "
              "cancelling it",
              options_.name, id);
          if (!CancelTransfers(id, r->second)) backends_[r->second.backend]->Cancel(id);
        }
        if (unacked_.erase(id)) {
          spdlog::info(
              "worker {}: attempt {} is no longer current at the coordinator; "
              "its result is dropped",
              options_.name, id);
        }
      }
      // Every unACKed RESULT goes again, those of this turn too.
      unsent_.clear();
      for (const auto& [id, result] : unacked_) Send(result);
      if (draining_) SendDraining(clock_.Now());
      // Transfers cut by the reconnection start over.
      transfers_->Restart();
      return;
    }
    case Command::kDispatch:
      return HandleDispatch(m);
    case Command::kCancel: {
      auto cancel = protocol::Parse<wire::Cancel>(m);
      if (!cancel.ok()) return;
      for (uint64_t id : cancel->attempt_ids()) {
        AttemptOutcome cancelled;
        cancelled.reason = FailureReason::kCancelled;
        cancelled.message = "cancelled before it started";
        if (EndOneWaiting(id, std::move(cancelled))) continue;
        auto r = running_.find(id);
        if (r == running_.end()) continue;
        // One still waiting for its services has not reached its backend
        // yet: services_ ends it.
        if (r->second.uses_services && services_.Cancel(id)) continue;
        if (CancelTransfers(id, r->second)) continue;
        backends_[r->second.backend]->Cancel(id);
      }
      for (uint64_t id : cancel->recall()) {
        // Only one still waiting goes back; one that started runs on.
        AttemptOutcome back;
        back.reason = FailureReason::kWorkerLost;
        back.message = "handed back before it started: a slot is free on another worker";
        back.not_started = true;
        EndOneWaiting(id, std::move(back));
      }
      return;
    }
    case Command::kJobDone: {
      auto done = protocol::Parse<wire::JobDone>(m);
      if (!done.ok() || done->job_id().empty()) return;
      // Off this thread: stopping services takes their grace periods.
      services_.JobDone(done->job_id());
      return;
    }
    case Command::kServiceReload:
      return HandleServiceReload(m);
    case Command::kAck: {
      auto ack = protocol::Parse<wire::Ack>(m);
      if (!ack.ok()) return;
      for (uint64_t id : ack->attempt_ids()) unacked_.erase(id);
      return;
    }
    case Command::kHeartbeat:
      return;
    case Command::kDisconnect: {
      auto d = protocol::Parse<wire::Disconnect>(m);
      spdlog::info("worker {}: the coordinator says: {}; registering again",
                   options_.name, d.ok() ? d->reason() : std::string("disconnect"));
      registered_ = false;
      metrics_->SetRegistered(false);
      transfers_->Disconnected();
      SendHello();
      return;
    }
    case Command::kArtifactCredit:
    case Command::kArtifactChunk:
    case Command::kArtifactDone:
      return transfers_->OnMessage(m);
    case Command::kError: {
      auto e = protocol::Parse<wire::Error>(m);
      spdlog::error("worker {}: coordinator error: {}", options_.name,
                    e.ok() ? e->message() : std::string("?"));
      return;
    }
    default:
      spdlog::warn("worker {}: unexpected {} from the coordinator", options_.name,
                   protocol::CommandName(m.command));
  }
}

Worker::Worker(zmq::context_t& context, WorkerOptions options,
               const BackendRegistry& registry, const Clock& clock)
    : loop_(std::make_unique<Loop>(context, std::move(options), registry, clock)) {}
Worker::~Worker() = default;
Status Worker::Start() { return loop_->Start(); }
Status Worker::Run() { return loop_->Run(); }
void Worker::Stop() { loop_->Stop(); }
void Worker::Drain(Duration timeout) { loop_->Drain(timeout); }
std::vector<Status> Worker::UpdateServices(const std::vector<spec::ServiceDecl>& next) {
  return loop_->UpdateServices(next);
}
std::vector<std::string> Worker::ServiceNames() const { return loop_->ServiceNames(); }
const std::string& Worker::name() const { return loop_->name(); }
std::string Worker::MetricsText() const { return loop_->MetricsText(); }

}  // namespace drover

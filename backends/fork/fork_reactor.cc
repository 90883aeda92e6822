// The fork reactor's loop, commands, pools and timers (fork_reactor.h).
#include "backends/fork/fork_reactor.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>

#include "backends/fork/json_scan.h"
#include "backends/fork/pool.h"

namespace drover {
namespace {

constexpr int kMaxEvents = 64;

}  // namespace

ForkReactor::ForkReactor(int slots, std::shared_ptr<Zygote> zygote, const Clock& clock,
                         std::shared_ptr<Guardian> guardian)
    : mailbox_("fork", slots, clock),
      clock_(clock),
      zygote_(std::move(zygote)),
      guardian_(std::move(guardian)) {}

// ---------------------------------------------------------------------------
// Caller side.

Status ForkReactor::Start(BackendEvents* events, bool driven) {
  if (events == nullptr) return InvalidArgument("fork backend: no events sink");
  auto init = [&]() -> Status {
    DROVER_RETURN_IF_ERROR(launcher_.Init());
    buffer_ = std::make_unique_for_overwrite<char[]>(64 * 1024);
    events_ = events;
    return Status::Ok();
  };
  driven_ = driven;
  if (driven) return mailbox_.StartDriven(init);
  return mailbox_.Start(
      init, [this] { Run(); }, "drover-fork");
}

void ForkReactor::Shutdown(Duration grace) {
  if (driven_) {
    mailbox_.ShutdownDriven(grace, [this] { Run(); });
  } else {
    mailbox_.Shutdown(grace);
  }
}

void ForkReactor::Poll() {
  if (!driven_ || failed_ || Done()) return;
  mailbox_.Drive();
  try {
    Turn(0);
  } catch (const std::exception& e) {
    Fail(e.what());
  }
}

int ForkReactor::PollTimeoutMs() const {
  if (!driven_ || failed_) return -1;
  return TimeoutMs(clock_.Now());
}

AdaptiveSpin::Duration ForkReactor::SpinBeforeWait() const {
  const AdaptiveSpin::Duration budget = spin_.Budget();
  if (failed_ || running_in_.empty() || budget <= AdaptiveSpin::Duration(0)) {
    return AdaptiveSpin::Duration(0);
  }
  const auto since = std::chrono::steady_clock::now() - last_sent_;
  return since < budget ? budget - since : AdaptiveSpin::Duration(0);
}

void ForkReactor::Spinning(bool on) {
  for (auto& [serial, proc] : procs_) {
    if (proc->shared && (proc->running || !on)) proc->shared->Looking(on);
  }
}

// ---------------------------------------------------------------------------
// Reactor thread: the loop.

void ForkReactor::Run() {
  if (failed_) return;  // driven: a Poll failed, and Fail reported everything
  std::string failure;
  try {
    Loop();
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (failure.empty() && Done()) {
    mailbox_.DropQueued();  // only Cancels can be left: Submit is refused by now
    return;
  }
  Fail(failure.empty() ? "its event loop failed" : failure);
}

void ForkReactor::Fail(const std::string& failure) {
  failed_ = true;
  spdlog::error("fork backend: {}; stopping every pool", failure);
  mailbox_.Abandon();
  try {
    shutting_down_ = true;
    give_up_at_ = clock_.Now();
    KillRemaining();
    for (uint64_t id : mailbox_.InFlight()) {
      Report(id, Failed(FailureReason::kInternal, "fork backend failed: " + failure));
    }
  } catch (const std::exception& e) {
    spdlog::error("fork backend: cleanup failed: {}", e.what());
  }
}

void ForkReactor::Loop() {
  while (!Done()) Turn(TimeoutMs(clock_.Now()));
}

void ForkReactor::Turn(int timeout_ms) {
  std::array<epoll_event, kMaxEvents> events;
  int n = 0;
  // The cow processes whose reply waits in shared memory are noted before
  // each look at epoll, and only theirs are taken this turn: what they
  // printed before replying is then in the events seen, and read first.
  auto wait = [&](int ms) {
    NoteSharedReplies();
    do {
      n = ::epoll_wait(mailbox_.epoll_fd(), events.data(), kMaxEvents, ms);
    } while (n < 0 && errno == EINTR && ms == 0);
  };
  // A reply that comes within microseconds is looked for before the wait
  // blocks (the reactor's thread; a driven reactor's owner does the same
  // with SpinBeforeWait).
  if (AdaptiveSpin::Duration spin = SpinBeforeWait(); timeout_ms != 0) {
    // Never past the wait's own timeout: the timers still hold.
    if (timeout_ms > 0) {
      spin = std::min<AdaptiveSpin::Duration>(spin, std::chrono::milliseconds(timeout_ms));
    }
    if (spin > AdaptiveSpin::Duration(0)) {
      Spinning(true);
      SpinUntil(spin, [&] {
        if (SharedWaiting()) return true;
        wait(0);
        if (n < 0 && errno == EINTR) n = 0;
        return n != 0;
      });
      // Cow processes ring from here on; a reply posted before they knew
      // is taken without blocking.
      Spinning(false);
      if (SharedWaiting()) timeout_ms = 0;
    }
  }
  if (n == 0) {
    do {
      wait(timeout_ms);
    } while (n < 0 && errno == EINTR);
  }
  if (n < 0) throw std::runtime_error(std::string("epoll_wait: ") + std::strerror(errno));
  // Output, then replies, then exits, then commands (fork_reactor.h).
  bool wake = false;
  for (int i = 0; i < n; ++i) {
    const uint64_t token = events[i].data.u64;
    const uint64_t kind = token & 3;
    if (token == kWakeToken) {
      wake = true;
    } else if (kind == kOut || kind == kErr) {
      if (Proc* proc = FindProc(token >> 2)) OnOutput(*proc, kind == kErr, 16);
    }
  }
  // Replies in shared memory before the channels' events: a process that
  // replied and then closed its channel (exited) has its reply taken first.
  TakeShared();
  for (int i = 0; i < n; ++i) {
    const uint64_t token = events[i].data.u64;
    if (token == kWakeToken || (token & 3) != kChannel) continue;
    if (Proc* proc = FindProc(token >> 2)) OnChannel(*proc, events[i].events);
  }
  for (int i = 0; i < n; ++i) {
    const uint64_t token = events[i].data.u64;
    if (token == kWakeToken || (token & 3) != kPidfd) continue;
    if (Proc* proc = FindProc(token >> 2)) Reap(*proc);
  }
  if (wake || mailbox_.more()) HandleCommands(wake);
  const SteadyTime now = clock_.Now();
  Expire(now);
  if (shutting_down_ && !procs_.empty() && now >= give_up_at_) KillRemaining();
}

int ForkReactor::TimeoutMs(SteadyTime now) const {
  if (mailbox_.more() || SharedWaiting()) return 0;
  std::optional<SteadyTime> next = deadlines_.Next();
  if (!restarts_.empty()) next = Earliest(next, std::get<0>(*restarts_.begin()));
  if (shutting_down_) next = Earliest(next, give_up_at_);
  return EpollTimeoutMs(next, now);
}

void ForkReactor::HandleCommands(bool read_wake) {
  std::vector<Command>& batch = mailbox_.Take(read_wake);
  const SteadyTime now = clock_.Now();
  for (const Command& command : batch) {
    if (command.kind == Command::Kind::kShutdown) BeginShutdown(command.grace, now);
  }
  // Commands that callbacks queue while this batch runs set mailbox_.more()
  // and wait for the next turn, so a callback that always resubmits cannot
  // starve the timers.
  for (Command& command : batch) {
    switch (command.kind) {
      case Command::Kind::kSubmit:
        Enqueue(std::move(command.attempt));
        break;
      case Command::Kind::kCancel:
        CancelAttempt(command.attempt_id);
        break;
      case Command::Kind::kShutdown:
        break;  // handled above
    }
  }
}

// ---------------------------------------------------------------------------
// Pools.

void ForkReactor::Enqueue(ForkAttempt attempt) {
  const uint64_t id = attempt.attempt_id;
  if (shutting_down_) {
    Report(id, Failed(FailureReason::kCancelled, "cancelled at shutdown before it started"));
    return;
  }
  if (attempt.pool.empty()) {
    Report(id, Failed(FailureReason::kLaunchFailed, "a fork task must name its pool"));
    return;
  }
  // The common case, every attempt of a pool after its first: the attempt
  // carries the declaration of the pool that serves its name now, which was
  // checked when that pool was made. A name lookup and a comparison, instead
  // of a copy, a check and a fingerprint of the declaration.
  if (auto it = current_pool_.find(attempt.pool); it != current_pool_.end()) {
    Pool* pool = FindPool(it->second);
    if (pool != nullptr && attempt.pool_spec == pool->spec) {
      if (Status s = CheckAttempt(attempt, pool->cow); !s.ok()) {
        Report(id, Failed(FailureReason::kLaunchFailed, s.message()));
        return;
      }
      pool->queue.push_back(std::move(attempt));
      Replenish(pool->id);
      return;
    }
  }
  PoolSpec spec = attempt.pool_spec;
  if (spec.name.empty()) spec.name = attempt.pool;
  if (spec.name != attempt.pool) {
    Report(id, Failed(FailureReason::kLaunchFailed,
                      "the task names " + PoolLabel(attempt.pool) +
                          " but carries the declaration of " + PoolLabel(spec.name)));
    return;
  }
  if (Status s = CheckPoolSpec(spec); !s.ok()) {
    Report(id, Failed(FailureReason::kLaunchFailed,
                      PoolLabel(attempt.pool) + ": " + s.message()));
    return;
  }
  if (Status s = CheckAttempt(attempt, spec.mode == "cow"); !s.ok()) {
    Report(id, Failed(FailureReason::kLaunchFailed, s.message()));
    return;
  }
  Pool& pool = PoolFor(spec);
  pool.queue.push_back(std::move(attempt));
  const uint64_t pool_id = pool.id;
  Replenish(pool_id);
}

Status ForkReactor::CheckAttempt(const ForkAttempt& attempt, bool cow) {
  // Built only for a failure: this runs for every attempt.
  auto label = [&attempt] { return PoolLabel(attempt.pool); };
  if (cow) {
    if (attempt.fn.empty()) {
      return InvalidArgument(label() +
                             " is a cow pool: the task must name a function (fn)");
    }
    if (!attempt.plugins.empty()) {
      if (Status s = EnsureZygotePlugins(attempt.plugins); !s.ok()) {
        return InvalidArgument(label() + ": " + s.message());
      }
    }
    const size_t size = attempt.fn.size() + attempt.args_json.size() + 16;
    if (size > kMaxMessageBytes) {
      return InvalidArgument(label() + ": the task's args are " + std::to_string(size) +
                             " bytes, over the " +
                             std::to_string(kMaxMessageBytes >> 20) + " MiB message cap");
    }
    return Status::Ok();
  }
  std::string_view message =
      attempt.message_json.empty() ? kJsonNull : std::string_view(attempt.message_json);
  if (message.size() > kMaxMessageBytes) {
    return InvalidArgument(label() + ": the task's message is " +
                           std::to_string(message.size()) + " bytes, over the " +
                           std::to_string(kMaxMessageBytes >> 20) + " MiB message cap");
  }
  // An unmodified Node child dies on a line it cannot JSON.parse: refuse
  // the message here, with the reason, rather than crash the process.
  if (Status s = ValidateJson(message); !s.ok()) {
    return InvalidArgument(label() +
                           ": the task's message is not valid JSON: " + s.message());
  }
  return Status::Ok();
}

ForkReactor::Pool& ForkReactor::PoolFor(const PoolSpec& spec) {
  char fingerprint[17];
  std::snprintf(fingerprint, sizeof fingerprint, "%016llx",
                static_cast<unsigned long long>(PoolFingerprint(spec)));
  const std::string key = spec.name + "#" + fingerprint;
  if (auto it = pool_by_key_.find(key); it != pool_by_key_.end()) {
    if (Pool* pool = FindPool(it->second)) return *pool;
  }
  auto pool = std::make_unique<Pool>();
  pool->id = next_pool_id_++;
  pool->key = key;
  pool->spec = spec;
  pool->cow = spec.mode == "cow";
  pool->slots.resize(static_cast<size_t>(spec.instances));
  Pool& ref = *pool;
  pools_.emplace(ref.id, std::move(pool));
  pool_by_key_[key] = ref.id;
  // A changed declaration of the same name: the old pool serves what it
  // has queued, then stops.
  if (auto it = current_pool_.find(spec.name); it != current_pool_.end()) {
    if (Pool* old = FindPool(it->second)) {
      old->superseded = true;
      pool_by_key_.erase(old->key);
      RetireIdle(*old);
      spdlog::info("{}: declaration changed; replacing its processes", PoolLabel(spec.name));
      const uint64_t old_id = old->id;
      current_pool_[spec.name] = ref.id;
      MaybeDropPool(old_id);  // now, if it has nothing left to finish
    }
  }
  current_pool_[spec.name] = ref.id;
  return ref;
}

void ForkReactor::Fill(Pool& pool) {
  if (shutting_down_) return;
  for (size_t i = 0; i < pool.slots.size(); ++i) {
    Slot& slot = pool.slots[i];
    if (slot.proc != 0 || !slot.wanted || slot.restart_at) continue;
    if (!SpawnInto(pool, i)) return;  // launch failure: reported, slots idle
  }
}

void ForkReactor::Dispatch(Pool& pool) {
  while (!pool.queue.empty()) {
    Proc* idle = nullptr;
    for (const Slot& slot : pool.slots) {
      if (slot.proc == 0) continue;
      Proc* proc = FindProc(slot.proc);
      if (proc != nullptr && !proc->running && proc->stop == StopKind::kNone &&
          !proc->exited) {
        idle = proc;
        break;
      }
    }
    if (idle == nullptr) {
      // No free process: start one in an empty slot (after an idle
      // timeout, or a launch failure), unless it is backing off.
      if (shutting_down_) return;
      for (size_t i = 0; i < pool.slots.size() && idle == nullptr; ++i) {
        Slot& slot = pool.slots[i];
        if (slot.proc != 0 || slot.restart_at) continue;
        slot.wanted = true;
        if (!SpawnInto(pool, i)) return;
        idle = FindProc(slot.proc);
      }
      if (idle == nullptr) return;  // all busy, starting later, or backing off
    }
    ForkAttempt attempt = std::move(pool.queue.front());
    pool.queue.pop_front();
    Assign(*idle, std::move(attempt));
  }
}

void ForkReactor::Replenish(uint64_t pool_id) {
  if (Pool* pool = FindPool(pool_id)) Fill(*pool);
  if (Pool* pool = FindPool(pool_id)) Dispatch(*pool);
}

void ForkReactor::RetireIdle(Pool& pool) {
  for (Slot& slot : pool.slots) {
    slot.wanted = false;
    if (slot.proc == 0) continue;
    Proc* proc = FindProc(slot.proc);
    if (proc != nullptr && !proc->running && proc->stop == StopKind::kNone) {
      Stop(*proc, StopKind::kRetire, "", kRetireGrace);
    }
  }
}

void ForkReactor::FailQueued(Pool& pool, FailureReason reason, const std::string& message) {
  std::deque<ForkAttempt> queued;
  queued.swap(pool.queue);
  for (ForkAttempt& attempt : queued) Report(attempt.attempt_id, Failed(reason, message));
}

void ForkReactor::MaybeDropPool(uint64_t pool_id) {
  Pool* pool = FindPool(pool_id);
  if (pool == nullptr || !pool->superseded || !pool->queue.empty() || pool->procs > 0) {
    return;
  }
  if (auto it = current_pool_.find(pool->spec.name);
      it != current_pool_.end() && it->second == pool_id) {
    current_pool_.erase(it);
  }
  for (auto it = restarts_.begin(); it != restarts_.end();) {
    it = std::get<1>(*it) == pool_id ? restarts_.erase(it) : std::next(it);
  }
  pools_.erase(pool_id);
}

Status ForkReactor::EnsureZygotePlugins(const std::vector<std::string>& paths) {
  std::vector<std::string> missing;
  for (const std::string& path : paths) {
    if (zygote_plugins_.count(path) == 0) missing.push_back(path);
  }
  if (missing.empty()) return Status::Ok();  // the common case: a set lookup
  if (zygote_ == nullptr) {
    return FailedPrecondition(
        "mode cow needs the worker's zygote, and this worker started none");
  }
  DROVER_RETURN_IF_ERROR(zygote_->LoadPlugins(missing));
  zygote_plugins_.insert(missing.begin(), missing.end());
  ++zygote_generation_;
  RetireStale();
  return Status::Ok();
}

void ForkReactor::RetireStale() {
  // Cow processes forked before the load lack the new functions: idle ones
  // go now (their slots refill with fresh forks), busy ones after their
  // task (AfterTask).
  std::vector<uint64_t> stale;
  for (const auto& [serial, proc] : procs_) {
    if (proc->cow && proc->generation < zygote_generation_ && !proc->running &&
        proc->stop == StopKind::kNone && !proc->exited) {
      stale.push_back(serial);
    }
  }
  std::set<uint64_t> pools;
  for (uint64_t serial : stale) {
    Proc* proc = FindProc(serial);
    if (proc == nullptr) continue;
    pools.insert(proc->pool_id);
    Stop(*proc, StopKind::kRetire, "", kRetireGrace);
  }
  for (uint64_t pool_id : pools) Replenish(pool_id);
}

ForkReactor::Proc* ForkReactor::FindProc(uint64_t serial) {
  auto it = procs_.find(serial);
  return it == procs_.end() ? nullptr : it->second.get();
}

ForkReactor::Pool* ForkReactor::FindPool(uint64_t id) {
  auto it = pools_.find(id);
  return it == pools_.end() ? nullptr : it->second.get();
}

void ForkReactor::Report(uint64_t attempt_id, AttemptOutcome outcome) {
  mailbox_.Release(attempt_id);  // before the event: the receiver may Submit at once
  events_->OnFinished(attempt_id, std::move(outcome));
}

}  // namespace drover

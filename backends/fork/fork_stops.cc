// What stops work in the fork reactor (fork_reactor.h): timers (task
// timeouts, idle timeouts, kill graces, crash-loop restarts), Cancel and
// Shutdown.
#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "backends/fork/fork_reactor.h"
#include "backends/fork/pool.h"
#include "backends/process/process_group.h"

namespace drover {
namespace {

// How long the reactor waits for SIGKILLed processes at shutdown before
// reporting them and giving up on reaping them.
constexpr Duration kKillWait = std::chrono::seconds(5);

}  // namespace

void ForkReactor::Expire(SteadyTime now) {
  while (std::optional<uint64_t> serial = deadlines_.PopDue(now)) {
    Proc* proc = FindProc(*serial);
    if (proc == nullptr) continue;
    if (proc->signals.phase() == GroupStop::Phase::kTerminating) {
      proc->signals.GraceOver();
    } else if (proc->stop == StopKind::kChannelLost) {
      // It closed its channel but did not exit: make it.
      deadlines_.Set(*serial, proc->signals.Terminate(kRetireGrace, now));
    } else if (proc->stop == StopKind::kNone && proc->running) {
      const Duration timeout = proc->running->attempt.timeout;
      char text[64];
      std::snprintf(text, sizeof text, "timed out after %.2fs",
                    std::chrono::duration<double>(timeout).count());
      const uint64_t pool_id = proc->pool_id;
      Stop(*proc, StopKind::kTimeout, text, proc->running->attempt.kill_grace);
      Replenish(pool_id);
    } else if (proc->stop == StopKind::kNone && !proc->exited) {
      // Idle for idle_timeout: stop it; the slot waits for demand.
      if (Pool* pool = FindPool(proc->pool_id); pool != nullptr && proc->slot >= 0) {
        pool->slots[static_cast<size_t>(proc->slot)].wanted = false;
      }
      Stop(*proc, StopKind::kRetire, "", kRetireGrace);
    }
  }
  while (!restarts_.empty() && std::get<0>(*restarts_.begin()) <= now) {
    auto [when, pool_id, index] = *restarts_.begin();
    restarts_.erase(restarts_.begin());
    Pool* pool = FindPool(pool_id);
    if (pool == nullptr || index >= pool->slots.size()) continue;
    pool->slots[index].restart_at.reset();
    Replenish(pool_id);
  }
}

void ForkReactor::CancelAttempt(uint64_t attempt_id) {
  if (auto it = running_in_.find(attempt_id); it != running_in_.end()) {
    Proc* proc = FindProc(it->second);
    if (proc == nullptr || !proc->running) return;
    const uint64_t pool_id = proc->pool_id;
    Stop(*proc, StopKind::kCancel, "cancelled", proc->running->attempt.kill_grace);
    Replenish(pool_id);
    return;
  }
  for (auto& [id, pool] : pools_) {
    auto& queue = pool->queue;
    auto it = std::find_if(queue.begin(), queue.end(), [&](const ForkAttempt& a) {
      return a.attempt_id == attempt_id;
    });
    if (it == queue.end()) continue;
    queue.erase(it);
    Report(attempt_id, Failed(FailureReason::kCancelled, "cancelled before it started"));
    return;
  }
}

void ForkReactor::BeginShutdown(Duration grace, SteadyTime now) {
  if (shutting_down_) return;
  shutting_down_ = true;
  shutdown_grace_ = grace;
  give_up_at_ = After(After(now, grace), kKillWait);
  restarts_.clear();
  for (auto& [id, pool] : pools_) {
    for (Slot& slot : pool->slots) {
      slot.wanted = false;
      slot.restart_at.reset();
    }
    FailQueued(*pool, FailureReason::kCancelled, "cancelled at shutdown before it started");
  }
  std::vector<uint64_t> serials;
  for (const auto& [serial, proc] : procs_) serials.push_back(serial);
  for (uint64_t serial : serials) {
    Proc* proc = FindProc(serial);
    if (proc == nullptr) continue;
    if (proc->running && (proc->stop == StopKind::kNone ||
                          proc->stop == StopKind::kChannelLost)) {
      Stop(*proc, StopKind::kShutdown, "cancelled at shutdown",
           std::min(grace, proc->running->attempt.kill_grace));
    } else if (proc->stop == StopKind::kNone || proc->stop == StopKind::kChannelLost) {
      Stop(*proc, StopKind::kRetire, "", std::min(grace, kRetireGrace));
    } else if (proc->signals.phase() == GroupStop::Phase::kTerminating) {
      deadlines_.Lower(serial, After(now, grace));  // the shutdown grace caps it
    }
  }
}

void ForkReactor::KillRemaining() {
  std::vector<uint64_t> serials;
  for (auto& [serial, proc] : procs_) {
    proc->signals.Kill();
    if (proc->running && proc->running->stop_reason == FailureReason::kNone) {
      proc->running->stop_reason = FailureReason::kCancelled;
      proc->running->stop_message = "cancelled at shutdown";
    }
    serials.push_back(serial);
  }
  const SteadyTime give_up = std::max(give_up_at_, clock_.Now() + kKillWait);
  for (uint64_t serial : serials) {
    Proc* proc = FindProc(serial);
    if (proc == nullptr) continue;
    if (WaitExited(proc->pidfd.get(), give_up - clock_.Now())) {
      Reap(*proc);
      continue;
    }
    // Stuck (uninterruptible I/O): report and leave it rather than hang.
    spdlog::error("{}: pid {} did not exit after SIGKILL", PoolLabel(proc->pool_name),
                  proc->pid);
    if (proc->running) {
      const uint64_t id = proc->running->attempt.attempt_id;
      AttemptOutcome outcome = Failed(
          proc->running->stop_reason,
          proc->running->stop_message + "; pid " + std::to_string(proc->pid) +
              " did not exit after SIGKILL");
      running_in_.erase(id);
      proc->running.reset();
      Report(id, std::move(outcome));
    }
    Forget(*proc);
  }
}

}  // namespace drover

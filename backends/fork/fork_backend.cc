#include "backends/fork/fork_backend.h"

#include <utility>

#include "backends/fork/fork_reactor.h"

namespace drover {

ForkBackend::ForkBackend(const BackendConfig& config)
    : reactor_(std::make_unique<ForkReactor>(
          config.slots, config.zygote,
          config.clock != nullptr ? *config.clock : real_clock_, config.guardian)),
      slots_(config.slots),
      driven_(config.driven),
      worker_pools_(config.pools) {}

ForkBackend::~ForkBackend() { Shutdown(Duration(0)); }

Status ForkBackend::Start(BackendEvents* events) {
  Status s = reactor_->Start(events, driven_);
  if (s.ok()) events_ = events;
  return s;
}

int ForkBackend::Capacity() const { return slots_; }

Status ForkBackend::Submit(TaskAttempt attempt) {
  if (events_ == nullptr) return FailedPrecondition("fork backend is not started");
  const uint64_t id = attempt.attempt_id;
  Result<ForkAttempt> decoded = DecodeForkAttempt(std::move(attempt), worker_pools_);
  if (!decoded.ok()) {
    events_->OnFinished(
        id, AttemptFailure(FailureReason::kLaunchFailed, decoded.status().message()));
    return Status::Ok();
  }
  return reactor_->Submit(std::move(decoded).value());
}

void ForkBackend::Cancel(uint64_t attempt_id) { reactor_->Cancel(attempt_id); }

void ForkBackend::Shutdown(Duration grace) { reactor_->Shutdown(grace); }

int ForkBackend::PollFd() const { return reactor_->PollFd(); }
void ForkBackend::Poll() { reactor_->Poll(); }
int ForkBackend::PollTimeoutMs() const { return reactor_->PollTimeoutMs(); }

void ForkBackend::Spinning(bool on) {
  if (reactor_->PollFd() >= 0) reactor_->Spinning(on);
}

std::chrono::nanoseconds ForkBackend::SpinBeforeWait() const {
  return reactor_->PollFd() >= 0 ? reactor_->SpinBeforeWait()
                                 : std::chrono::nanoseconds(0);
}

}  // namespace drover

#include "backends/fork/fork_backend.h"

#include <utility>

#include "backends/fork/fork_reactor.h"

namespace drover {

ForkBackend::ForkBackend(const BackendConfig& config)
    : reactor_(std::make_unique<ForkReactor>(
          config.slots, config.zygote,
          config.clock != nullptr ? *config.clock : real_clock_)),
      slots_(config.slots) {}

ForkBackend::~ForkBackend() { Shutdown(Duration(0)); }

Status ForkBackend::Start(BackendEvents* events) { return reactor_->Start(events); }

int ForkBackend::Capacity() const { return slots_; }

Status ForkBackend::Submit(TaskAttempt attempt) {
  return reactor_->Submit(std::move(attempt));
}

void ForkBackend::Cancel(uint64_t attempt_id) { reactor_->Cancel(attempt_id); }

void ForkBackend::Shutdown(Duration grace) { reactor_->Shutdown(grace); }

}  // namespace drover

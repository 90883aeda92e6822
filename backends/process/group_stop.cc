#include "backends/process/group_stop.h"

#include <signal.h>

#include "backends/process/deadline_set.h"
#include "backends/process/process_group.h"

namespace drover {

std::optional<SteadyTime> GroupStop::Terminate(Duration grace, SteadyTime now) {
  if (phase_ == Phase::kKilled) return std::nullopt;
  if (grace <= Duration(0)) {
    Kill();
    return std::nullopt;
  }
  if (phase_ == Phase::kAlive) {
    SignalGroup(pgid_, SIGTERM);
    SignalGroup(pgid_, SIGCONT);
    phase_ = Phase::kTerminating;
  }
  return After(now, grace);
}

void GroupStop::GraceOver() {
  if (phase_ != Phase::kTerminating) return;
  Kill();
  term_ignored_ = true;
}

void GroupStop::Kill() {
  SignalGroup(pgid_, SIGKILL);
  phase_ = Phase::kKilled;
}

}  // namespace drover

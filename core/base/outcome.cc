#include "core/base/outcome.h"

#include <array>
#include <cstring>
#include <utility>

namespace drover {
namespace {

constexpr std::array<std::pair<FailureReason, std::string_view>, 14> kNames = {{
    {FailureReason::kNone, "ok"},
    {FailureReason::kExit, "exit"},
    {FailureReason::kSignal, "signal"},
    {FailureReason::kTimeout, "timeout"},
    {FailureReason::kCancelled, "cancelled"},
    {FailureReason::kWorkerLost, "worker-lost"},
    {FailureReason::kLaunchFailed, "launch-failed"},
    {FailureReason::kProcessCrashed, "process-crashed"},
    {FailureReason::kInternal, "internal"},
    {FailureReason::kRequestFailed, "request-failed"},
    {FailureReason::kBadOutputs, "bad-outputs"},
    {FailureReason::kMissingInput, "missing-input"},
    {FailureReason::kArtifactFailed, "artifact-failed"},
    {FailureReason::kLimit, "limit"},
}};

}  // namespace

std::string_view ReasonName(FailureReason reason) {
  for (const auto& [r, name] : kNames) {
    if (r == reason) return name;
  }
  return "unknown";
}

std::optional<FailureReason> ParseReason(std::string_view name) {
  for (const auto& [r, n] : kNames) {
    if (n == name) return r;
  }
  return std::nullopt;
}

bool IsRetryable(FailureReason reason) {
  return reason != FailureReason::kCancelled && reason != FailureReason::kNone &&
         reason != FailureReason::kMissingInput;
}

std::string AttemptOutcome::Describe() const {
  std::string out;
  switch (reason) {
    case FailureReason::kNone:
      // A process exited 0; a function or a pool reply has no exit code.
      out = exit_code >= 0 ? "exit 0" : "ok";
      break;
    case FailureReason::kExit:
      out = "exit " + std::to_string(exit_code);
      break;
    case FailureReason::kSignal: {
      const char* abbrev = sigabbrev_np(signal);
      out = std::string("signal SIG") + (abbrev ? abbrev : std::to_string(signal).c_str());
      break;
    }
    default:
      out = std::string(ReasonName(reason));
      break;
  }
  if (!message.empty() && reason != FailureReason::kNone &&
      reason != FailureReason::kExit) {
    out += ": ";
    out += message;
  }
  return out;
}

}  // namespace drover

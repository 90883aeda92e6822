#include "core/dag/states.h"

#include <array>
#include <utility>

namespace drover::dag {
namespace {

constexpr std::array<std::pair<TaskState, std::string_view>, 10> kTaskStateNames = {{
    {TaskState::kWaiting, "waiting"},
    {TaskState::kReady, "ready"},
    {TaskState::kRunning, "running"},
    {TaskState::kRetryWait, "retry-wait"},
    {TaskState::kSucceeded, "succeeded"},
    {TaskState::kFailed, "failed"},
    {TaskState::kBlocked, "blocked"},
    {TaskState::kSkipped, "skipped"},
    {TaskState::kCancelled, "cancelled"},
    {TaskState::kCached, "cached"},
}};

constexpr std::array<std::pair<JobState, std::string_view>, 5> kJobStateNames = {{
    {JobState::kRunning, "running"},
    {JobState::kSucceeded, "succeeded"},
    {JobState::kFailed, "failed"},
    {JobState::kCancelled, "cancelled"},
    {JobState::kInterrupted, "interrupted"},
}};

template <typename State, size_t N>
std::string_view NameOf(const std::array<std::pair<State, std::string_view>, N>& names,
                        State s) {
  for (const auto& [state, name] : names) {
    if (state == s) return name;
  }
  return "unknown";
}

template <typename State, size_t N>
std::optional<State> Parse(const std::array<std::pair<State, std::string_view>, N>& names,
                           std::string_view name) {
  for (const auto& [state, n] : names) {
    if (n == name) return state;
  }
  return std::nullopt;
}

}  // namespace

std::string_view TaskStateName(TaskState s) { return NameOf(kTaskStateNames, s); }

std::optional<TaskState> ParseTaskState(std::string_view name) {
  return Parse(kTaskStateNames, name);
}

bool IsTerminal(TaskState s) {
  switch (s) {
    case TaskState::kSucceeded:
    case TaskState::kFailed:
    case TaskState::kBlocked:
    case TaskState::kSkipped:
    case TaskState::kCancelled:
    case TaskState::kCached:
      return true;
    case TaskState::kWaiting:
    case TaskState::kReady:
    case TaskState::kRunning:
    case TaskState::kRetryWait:
      return false;
  }
  return false;
}

bool IsSuccess(TaskState s) {
  return s == TaskState::kSucceeded || s == TaskState::kCached;
}

std::string_view JobStateName(JobState s) { return NameOf(kJobStateNames, s); }

std::optional<JobState> ParseJobState(std::string_view name) {
  return Parse(kJobStateNames, name);
}

}  // namespace drover::dag

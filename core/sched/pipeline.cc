#include "core/sched/pipeline.h"

#include <algorithm>

namespace drover::sched {

std::optional<Concurrency> ParseConcurrency(std::string_view name) {
  if (name == "skip") return Concurrency::kSkip;
  if (name == "queue") return Concurrency::kQueue;
  if (name == "replace") return Concurrency::kReplace;
  return std::nullopt;
}

std::string_view ConcurrencyName(Concurrency c) {
  switch (c) {
    case Concurrency::kSkip:
      return "skip";
    case Concurrency::kQueue:
      return "queue";
    case Concurrency::kReplace:
      return "replace";
  }
  return "skip";
}

Decision OnDue(Concurrency c, bool running, bool queued) {
  if (!running) return Decision::kStart;
  switch (c) {
    case Concurrency::kSkip:
      return Decision::kSkip;
    case Concurrency::kQueue:
      return queued ? Decision::kAlreadyQueued : Decision::kQueue;
    case Concurrency::kReplace:
      return Decision::kCancelAndStart;
  }
  return Decision::kSkip;
}

std::optional<WallTime> MissedRun(const Schedule& schedule, const cctz::time_zone& zone,
                                  WallTime last_run, WallTime now, bool catchup) {
  if (!catchup || now <= last_run) return std::nullopt;
  if (schedule.is_interval()) {
    // The latest multiple at or before now, directly.
    const auto next = schedule.Next(now, zone);
    if (!next) return std::nullopt;
    const WallTime latest = *next - schedule.interval();
    return latest > last_run ? std::optional<WallTime>(latest) : std::nullopt;
  }
  // Look back over growing windows, so a frequent schedule walks few fire
  // times: the latest one in the first window that has any. A year bounds
  // the walk after a very long downtime.
  using std::chrono::hours;
  for (const Duration back : {Duration(hours(1)), Duration(hours(24)),
                              Duration(hours(24 * 31)), Duration(hours(24 * 366))}) {
    const WallTime from = std::max(last_run, now - back);
    std::optional<WallTime> latest;
    for (auto t = schedule.Next(from, zone); t && *t <= now;
         t = schedule.Next(*t, zone)) {
      latest = t;
    }
    if (latest || from == last_run) return latest;
  }
  return std::nullopt;
}

}  // namespace drover::sched

// The decisions of a scheduled pipeline, as plain data: what to do when a
// run comes due while the previous one still runs (`concurrency:`), and
// which missed run, if any, to start after downtime (`catchup:`).
// docs/spec.md ("Schedules") and docs/operations.md ("Schedules") are the
// user's view of these rules.
#ifndef DROVER_CORE_SCHED_PIPELINE_H_
#define DROVER_CORE_SCHED_PIPELINE_H_

#include <optional>
#include <string_view>

#include "core/base/clock.h"
#include "core/sched/cron.h"

namespace drover::sched {

// `concurrency:` of a scheduled pipeline.
enum class Concurrency {
  kSkip,     // the default: the due run is not started, and recorded as skipped
  kQueue,    // the due run starts when the previous one ends (at most one waits)
  kReplace,  // the previous run is cancelled, the due run starts
};
std::optional<Concurrency> ParseConcurrency(std::string_view name);  // skip|queue|replace
std::string_view ConcurrencyName(Concurrency c);

// What happens to a run that comes due.
enum class Decision {
  kStart,           // nothing of the pipeline runs: start it
  kSkip,            // record it as skipped
  kQueue,           // start it when the running one ends
  kCancelAndStart,  // cancel the running one, then start it
  kAlreadyQueued,   // one already waits (queue): this one is folded into it
};
// `running`: a run of the pipeline has not ended; `queued`: one already
// waits for it.
Decision OnDue(Concurrency c, bool running, bool queued);

// The run to start now for the fire times missed while no coordinator ran,
// between `last_run` (the last fire time recorded in the store) and `now`:
// without catchup, none; with it, the latest one at or before `now` (at
// most one, however long the downtime). Only fire times within a year
// before `now` are looked at.
std::optional<WallTime> MissedRun(const Schedule& schedule, const cctz::time_zone& zone,
                                  WallTime last_run, WallTime now, bool catchup);

}  // namespace drover::sched

#endif  // DROVER_CORE_SCHED_PIPELINE_H_

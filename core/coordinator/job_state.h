// JobState: what the coordinator holds in memory for a running job.
#ifndef DROVER_CORE_COORDINATOR_JOB_STATE_H_
#define DROVER_CORE_COORDINATOR_JOB_STATE_H_

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/dag/plan.h"
#include "core/spec/job_spec.h"
#include "core/store/store.h"

namespace drover {

struct JobState {
  store::JobRecord record;
  spec::JobSpec spec;
  std::unique_ptr<dag::Plan> plan;
  std::vector<store::TaskRecord> rows;  // mirror of the task rows in the store
  std::vector<uint64_t> current;        // current attempt id per task, or 0
  std::vector<uint32_t> attempt_base;   // attempts made by earlier runs
  std::set<std::string> watchers;       // routing ids of watching clients
  bool cancelling = false;
};

// Builds rows, current, attempt_base and plan of `job` from job.spec and
// job.record.id. `old_rows` (by task name) are the rows of the run being
// resumed, empty for a new job: a task that succeeded there with the same
// fingerprint is carried over (its row kept, marked succeeded in the plan),
// and every other task continues its attempt numbering. Returns the
// indices of the carried-over tasks.
std::vector<uint32_t> InitJobState(
    JobState& job, const std::unordered_map<std::string, store::TaskRecord>& old_rows,
    uint64_t jitter_seed);

}  // namespace drover

#endif  // DROVER_CORE_COORDINATOR_JOB_STATE_H_

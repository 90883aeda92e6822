// JobState: what the coordinator holds in memory for a running job.
#ifndef DROVER_CORE_COORDINATOR_JOB_STATE_H_
#define DROVER_CORE_COORDINATOR_JOB_STATE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/base/status.h"
#include "core/coordinator/cache_key.h"
#include "core/dag/plan.h"
#include "core/spec/job_spec.h"
#include "core/store/store.h"

namespace drover {

// What a worker must offer to take a task: a placement class. The tasks of
// a job that share one are one ready queue of its Plan (PlanTask::queue),
// so the scheduler looks at a class once per turn, not at each task.
struct Placement {
  std::string backend;
  spec::EnvList on;    // labels the worker must have, sorted by key
  uint32_t slots = 1;  // slots of `backend` the task holds
  // Services the worker must offer itself (Hello.services): the task's
  // `from: worker` ones, sorted.
  std::vector<std::string> worker_services;
  // A fork pool the worker must offer itself (Hello.pools): the task's
  // `pool` when its job does not declare it; empty otherwise.
  std::string worker_pool;
};

struct JobState {
  store::JobRecord record;
  spec::JobSpec spec;
  std::unique_ptr<dag::Plan> plan;
  // Task rows (docs/state.md, "tasks"). A task's row is held here from when
  // it leaves its first state until it ends, and is in the store from its
  // first write on. A task without a held row has either not left its
  // first state (waiting, no attempt in this run: FirstRow says its row)
  // or ended (`ended`: the store's row is its record, and ended_outputs
  // keeps what later tasks read of it). A million waiting tasks cost a
  // pointer and a bit each.
  std::vector<std::unique_ptr<store::TaskRecord>> held;
  // Records of ended rows, kept (at most kSpareRows) to hold the next
  // ones: a task's row then costs no allocation.
  std::vector<std::unique_ptr<store::TaskRecord>> spare_rows;
  static constexpr size_t kSpareRows = 64;
  std::vector<bool> ended;
  // The outputs_json of ended tasks that other tasks need (only they can
  // read them: docs/spec.md, "Outputs"), when not empty.
  std::unordered_map<uint32_t, std::string> ended_outputs;
  std::vector<uint64_t> current;        // current attempt id per task, or 0
  std::vector<uint32_t> attempt_base;   // attempts made by earlier runs
  std::vector<Placement> queues;        // by Plan queue index
  std::set<std::string> watchers;       // routing ids of watching clients
  std::set<std::string> output_watchers;  // watchers that asked for OUTPUT
  // Watchers that asked only for the TASK-EVENTs of problems
  // (Watch.problems_only); each is in `watchers` too.
  std::set<std::string> quiet_watchers;
  // Watchers that take TASK-EVENTs in batches: their max_batch (> 1).
  std::map<std::string, uint32_t> batch_watchers;
  // `drover logs -f`: routing ids following the next or current attempt of
  // a task, by task index. They get LOGS done=true when it ends.
  std::map<uint32_t, std::set<std::string>> log_followers;
  // Running tasks a CANCEL-JOB of one task asked to stop: their attempt
  // ends as cancelled whatever the worker reports (unless it succeeded).
  std::set<uint32_t> cancel_requested;
  bool cancelling = false;
  // Dynamic fan-out (fanout.h): the placeholders not expanded yet, and the
  // rows of the run being resumed or retried that were instances of a
  // dynamic task, by name (their attempts go on; a success may carry over).
  std::vector<uint32_t> fanouts;
  std::unordered_map<std::string, store::TaskRecord> fanout_old;
  // Caching (cache.cc): whether the client said --no-cache, the hashes of
  // the `inputs` it sent, and the `cache: true` tasks already looked up in
  // this run (a miss is not looked up again while it waits for a worker).
  bool no_cache = false;
  cache::InputHashes inputs;
  std::vector<bool> cache_looked_up;

  uint32_t size() const { return static_cast<uint32_t>(spec.tasks.size()); }
  // Task t's row, held from now until EndRow. t must not have ended.
  // `name`, when given, is the task's name (a made instance's), which
  // saves making it again.
  store::TaskRecord& Row(uint32_t t, const std::string* name = nullptr);
  // Task t's held row, or nullptr.
  const store::TaskRecord* HeldRow(uint32_t t) const {
    return t < held.size() ? held[t].get() : nullptr;
  }
  // The row of a task in its first state: waiting, with the attempts of
  // earlier runs.
  store::TaskRecord FirstRow(uint32_t t) const;
  void FillFirstRow(uint32_t t, const std::string* name, store::TaskRecord* row) const;
  // Task t's row after its ended state is written: no longer held, its
  // outputs kept for the tasks that read them, and its matrix instance, if
  // one was made, released (TaskList::Release): a million-instance job
  // holds only the rows and instances of the tasks in flight.
  void EndRow(uint32_t t);
  bool RowEnded(uint32_t t) const { return t < ended.size() && ended[t]; }
  // The outputs (OutputsToJson) of task t's last finished attempt, "" for
  // none; of an ended task, those a task that needs it reads (KeepOutputs).
  std::string_view OutputsJson(uint32_t t) const;
  // Keeps `outputs_json` as ended task t's when a task needs t.
  void KeepOutputs(uint32_t t, std::string outputs_json);
  // Sizes held, ended, current, attempt_base and cache_looked_up to the
  // spec's tasks (after a fan-out added some).
  void GrowRows();
};

// Builds the rows, current, attempt_base, queues and plan of `job` from
// job.spec and job.record.id. `old_rows` (by task name) are the rows of the
// run being resumed or retried, empty for a new job: a task that succeeded
// (or was cached) there with the same fingerprint is carried over (its row
// kept, marked so in the plan), and every other task continues its attempt
// numbering. A dynamic task's placeholder row says what it waits for
// (pending_reason). The rows that differ from their first state are held
// (the caller stores them, then ends the carried ones). Returns the
// indices of the carried-over tasks.
std::vector<uint32_t> InitJobState(
    JobState& job, const std::unordered_map<std::string, store::TaskRecord>& old_rows,
    uint64_t jitter_seed);

// A job's state as InitJobState builds it, for a job `id` of `spec`:
// `previous` are the rows of the run it resumes or retries (as Store::Tasks
// returns them), empty for a new job. Sets *carried to the number of tasks
// carried over. Plain data: the spec loader and the store reader build
// jobs with it off the coordinator's loop (a job of 100,000 tasks that all
// carry over: about a third of its admission).
std::unique_ptr<JobState> BuildJobState(spec::JobSpec spec, std::string id,
                                        std::vector<store::TaskRecord> previous,
                                        uint64_t jitter_seed, size_t* carried);

// Rebuilds a running job after a coordinator restart from job.spec and
// its task rows as stored (`rows`, as Store::Tasks returns them: by index,
// none for tasks still in their first state): the expansions of
// dynamic tasks the rows show are made again (ReplayFanouts); succeeded,
// cached, failed and
// cancelled tasks keep their state (dependents stay blocked), rows that
// say `running` are started again in the plan with their attempts counted,
// and the rest is planned afresh (a task in retry-wait is ready at once).
// A job with skipped tasks and no fail_fast failure was being cancelled:
// it is cancelled again (job.cancelling). Returns the running tasks, whose
// attempts the caller places; kFailedPrecondition when the rows do not
// match the spec (another drover wrote them).
Result<std::vector<uint32_t>> RestoreJobState(JobState& job,
                                              std::vector<store::TaskRecord> rows,
                                              uint64_t jitter_seed, SteadyTime now);

// True until the job has ended: its record's state is `running`.
bool JobRunning(const JobState& job);

// Counts of rows by state, as CountsToWire groups them; for jobs that are
// no longer in memory. `total` is the job's task count (JobRecord::tasks):
// tasks without a row are waiting.
dag::PlanCounts CountRows(const std::vector<store::TaskRecord>& rows, uint32_t total);
// The same counts from Store::TaskStateCounts (state name -> tasks), which
// SQLite adds up without a record made for each row: for a view of a job
// that lists none of its tasks.
dag::PlanCounts CountStates(const std::vector<std::pair<std::string, uint64_t>>& counts);

// `rows` as Store::Tasks returns them, one per task index: of `total`
// tasks, or up to the highest index (state files from before schema 8).
// A task without a row gets a waiting one with no name; a second row
// for one index is dropped.
std::vector<store::TaskRecord> DenseRows(std::vector<store::TaskRecord> rows,
                                         uint32_t total, const std::string& job_id);

}  // namespace drover

#endif  // DROVER_CORE_COORDINATOR_JOB_STATE_H_

// Scheduled pipelines: the job specs of `drover coordinator --pipelines
// DIR` that carry `schedule:`, and the decisions that run them on it
// (docs/operations.md, "Schedules"). The when comes from core/sched (cron,
// time zones, DST, OnDue, MissedRun); this file applies it: a run comes
// due, is started, queued or skipped as `concurrency` says, and is
// recorded in the store (pipeline_runs, docs/state.md) so that a restarted
// coordinator knows each pipeline's last run.
//
// Pipelines is plain data plus the store: it knows no socket and no job.
// What it needs of the coordinator (start a job, is a job running, cancel
// one) goes through PipelineHost, which the coordinator's loop implements
// and a test may fake. Wall time is passed in by the caller: the loop reads
// its Clock, so a FakeClock drives minutes and DST transitions at once.
//
// Not thread-safe: the coordinator's loop thread owns it. Every store write
// is made inside the loop turn's batch (Store::Begin .. Commit).
#ifndef DROVER_CORE_COORDINATOR_PIPELINES_H_
#define DROVER_CORE_COORDINATOR_PIPELINES_H_

#include <cctz/time_zone.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/base/clock.h"
#include "core/base/status.h"
#include "core/sched/cron.h"
#include "core/sched/pipeline.h"
#include "core/spec/job_spec.h"
#include "core/store/store.h"

namespace drover {

// One pipeline spec as loaded from its file.
struct PipelineDef {
  std::string name;  // the spec's `name`: a pipeline's identity
  std::filesystem::path file;
  std::string spec_text;  // the file's text, submitted as each run's spec
  spec::JobSpec spec;
  sched::Schedule schedule;
  std::string timezone;  // IANA name
  cctz::time_zone zone;
  sched::Concurrency concurrency = sched::Concurrency::kSkip;
  bool catchup = false;
};

// A file of the directory that did not load: its errors, each
// "FILE:LINE:COL: message" (or "FILE: message" for a file-wide one).
struct PipelineFileError {
  std::filesystem::path file;
  std::vector<std::string> errors;
};

struct LoadedPipelines {
  std::vector<PipelineDef> defs;                   // by file name
  std::vector<PipelineFileError> bad;              // by file name
  std::vector<std::filesystem::path> unscheduled;  // good specs without `schedule:`
};

// Loads every `*.yaml` and `*.yml` regular file of `dir` (not its
// subdirectories), in file name order. A spec with errors, or whose name
// an earlier file already took, is in `bad`; one without `schedule:` is
// listed in `unscheduled` (not a pipeline). A directory that cannot be
// read is one entry of `bad`, for the directory itself.
LoadedPipelines LoadPipelineDir(const std::filesystem::path& dir,
                                const spec::LoadOptions& options);

// What Pipelines needs of the coordinator.
class PipelineHost {
 public:
  virtual ~PipelineHost() = default;
  // Submits a run of `def` as a new job recorded with submitter
  // "schedule"; returns its id. Fails only when the job cannot be stored.
  virtual Result<std::string> StartPipelineJob(const PipelineDef& def) = 0;
  // Whether job `job_id` has not ended.
  virtual bool PipelineJobRunning(const std::string& job_id) const = 0;
  // Cancels running job `job_id`, as CANCEL-JOB does.
  virtual void CancelPipelineJob(const std::string& job_id) = 0;
};

// The trigger of a run: names stored in pipeline_runs.trigger.
enum class RunTrigger { kSchedule, kCatchup, kManual };
std::string_view RunTriggerName(RunTrigger t);

class Pipelines {
 public:
  struct Pipeline {
    PipelineDef def;
    std::optional<WallTime> next_due;     // none: the schedule fires no more
    std::optional<WallTime> catchup_due;  // a missed run to start (catchup)
    std::optional<store::PipelineRunRecord> last_started;
    std::optional<store::PipelineRunRecord> queued;  // waits for last_started
    uint64_t skipped = 0;
    // The file's current text does not load: `def` is the version loaded
    // before it (one error a line).
    std::string error;
  };

  // Reads the next pipeline run id from `store`. Both must outlive this.
  static Result<std::unique_ptr<Pipelines>> Create(store::Store& store,
                                                   PipelineHost& host);

  // Makes `loaded` the set of pipelines, logging what changed: new ones
  // are added (their history read from the store), changed ones replaced
  // (the next run recomputed from `now` when the schedule or zone
  // changed), and ones gone from the directory removed (a run of theirs
  // still going is not cancelled). A pipeline whose file is now in
  // loaded.bad keeps its previous version, with `error` set and said so
  // in the log. With `startup` (the coordinator just opened), a pipeline
  // with `catchup: true` gets the last run it missed (sched::MissedRun).
  void Apply(const LoadedPipelines& loaded, WallTime now, bool startup);

  // Handles everything whose time has come at `now`: a queued run whose
  // predecessor ended starts, a catchup run and every pipeline due by
  // `now` fire (once each, however late: a loop that fell behind does
  // not fire a burst). Call once per loop turn, in its batch.
  void Tick(WallTime now);

  // The earliest next fire time, or a pending catchup run (then `now`).
  std::optional<WallTime> NextWake() const;

  // `drover pipelines run NAME`: a run now, under the pipeline's
  // concurrency (docs/protocol.md, PIPELINE-RUN). On success, the job
  // started, or `queued` with the job it waits for in `message`.
  // kNotFound for an unknown name; kFailedPrecondition when concurrency
  // refuses it (skip while a run goes on; queue when one already waits).
  struct RunNowResult {
    std::string job_id;  // "" when queued
    bool queued = false;
    std::string message;
  };
  Result<RunNowResult> RunNow(const std::string& name, WallTime now);

  // The `n` fire times of `p` after `after`.
  static std::vector<WallTime> NextTimes(const Pipeline& p, WallTime after, int n);

  const std::map<std::string, Pipeline>& all() const { return pipelines_; }

 private:
  Pipelines(store::Store& store, PipelineHost& host, int64_t next_id)
      : store_(store), host_(host), next_id_(next_id) {}
  bool Running(const Pipeline& p) const;
  // A run of `p` came due at `due`: start, queue or skip it.
  void Fire(Pipeline& p, WallTime due, RunTrigger trigger, WallTime now);
  // Starts a job for `p` and records it; false when it could not start
  // (recorded as an error, `*why` says why).
  bool Start(Pipeline& p, WallTime due, RunTrigger trigger, WallTime now,
             std::string* why);
  void StartQueued(Pipeline& p, WallTime now);
  store::PipelineRunRecord NewRun(const Pipeline& p, WallTime due, RunTrigger trigger,
                                  const char* outcome, std::string detail);
  void Record(const store::PipelineRunRecord& run);
  void Add(const PipelineDef& def, WallTime now, bool startup);

  store::Store& store_;
  PipelineHost& host_;
  int64_t next_id_;
  std::map<std::string, Pipeline> pipelines_;  // by name
};

}  // namespace drover

#endif  // DROVER_CORE_COORDINATOR_PIPELINES_H_

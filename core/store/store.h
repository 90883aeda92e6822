// Store: drover's state in one SQLite file, <state-dir>/state.db, in WAL
// mode. The directory layout, the schema and the migration policy are
// specified in docs/state.md; the migrations themselves are in schema.cc.
//
// Writes are batched: the coordinator calls Begin() at the start of a loop
// turn and Commit() at its end, so a turn's rows are one transaction. A
// result is ACKed only after the Commit() that holds it returned ok.
//
// Not thread-safe: one owner (the coordinator loop, or a CLI command that
// reads). Several processes may open the same file; SQLite's locking
// serializes them (busy timeout 5 s).
//
// Errors: every failed SQLite call comes back as a Status naming the
// operation and SQLite's message. Duplicate keys are kAlreadyExists, a row
// for a job that does not exist kNotFound, a database busy beyond the
// timeout kUnavailable, a full disk kUnavailable with a message that starts
// "state disk full: ", other SQLite failures kIoError. Nothing throws.
//
// A full disk (docs/state.md, "When the state disk is full"): a batch whose
// COMMIT fails for want of space is not lost. SQLite rolls it back, so the
// Store keeps a journal of the batch's writes and redoes them: at once,
// after deleting its reserve file (KeepReserve) to make room, and, when
// there is still no room, at the next Begin() (Pending() says so until a
// Commit() succeeds). The writes of a batch are therefore applied exactly
// once, in order, or not at all; already committed data is never touched.
#ifndef DROVER_CORE_STORE_STORE_H_
#define DROVER_CORE_STORE_STORE_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/base/outcome.h"
#include "core/base/status.h"

struct sqlite3;

namespace drover::store {

struct JobRecord {
  std::string id;  // "20261126-083342-7f3a": sortable by creation
  std::string name;
  std::string spec_file;
  std::string spec_text;  // the YAML as submitted
  std::string cwd;        // the submitting client's working directory
  std::string state;      // running, succeeded, failed, cancelled
  int priority = 0;
  int64_t created_ms = 0;   // Unix milliseconds
  int64_t finished_ms = 0;  // 0 while running
  // The key that submitted it (docs/security.md): its CURVE public key
  // (Z85) and its name in authorized_keys; both "" when the client had no
  // key (inproc, `drover run`, an endpoint without CURVE).
  std::string submitter_key;
  std::string submitter_name;
  // How many tasks the job has (its expanded spec, dynamic instances
  // included). Its rows are only those of tasks that have left their first
  // state (Tasks): the others are waiting. 0 in state files from before
  // schema 8, where every task has a row.
  uint32_t tasks = 0;
};

struct TaskRecord {
  std::string job_id;
  uint32_t index = 0;        // position in the expanded JobSpec
  std::string name;          // the instance name
  uint64_t fingerprint = 0;  // TaskSpec::Fingerprint()
  std::string state;         // a dag::TaskStateName
  uint32_t attempts = 0;     // every attempt of the task in this job id
  // Of `attempts`, those made by earlier runs (before a `--resume`): they
  // do not count against this run's retries.
  uint32_t attempt_base = 0;
  // The last finished attempt (empty/zero until one finishes).
  std::string reason;  // ReasonName, "" before any attempt ended
  int exit_code = -1;
  int signal = 0;
  std::string detail;  // AttemptOutcome::Describe()
  int64_t wall_us = 0;
  std::string result_json;
  // The last finished attempt's outputs (OutputsToJson), "" for none.
  std::string outputs_json;
  std::string worker;
  int64_t started_ms = 0;  // first attempt's start
  int64_t finished_ms = 0;
  std::string pending_reason;  // why a ready task is not placed, "" if none

  // Every field to its default, the strings keeping their buffers (a
  // record reused for another task: JobState::Row).
  void Clear();
};

struct AttemptRecord {
  uint64_t id = 0;  // unique across the state directory
  std::string job_id;
  std::string task;
  uint32_t number = 0;  // 1-based per task
  std::string worker;
  bool finished = false;
  int64_t started_ms = 0;
  int64_t finished_ms = 0;
  AttemptOutcome outcome;  // meaningful when finished
  // The task's index in its job (TaskRecord::index); -1 in attempts of
  // state files from before schema 8.
  int64_t task_index = -1;
};

// One file an attempt uploaded (docs/state.md, "Artifacts").
struct ArtifactRecord {
  uint64_t attempt_id = 0;
  std::string job_id;
  std::string task;    // the instance name
  std::string path;    // relative to the task's working directory
  std::string sha256;  // the blob's name: 64 lowercase hex digits
  uint64_t size = 0;
  uint32_t mode = 0644;
  int64_t created_ms = 0;
};

// One fire time of a scheduled pipeline that the coordinator handled, or
// one manual run (docs/state.md, "Pipeline runs"). trigger and outcome are
// the names below; the coordinator's enums map to them at this edge.
struct PipelineRunRecord {
  int64_t id = 0;          // assigned by the caller: MaxPipelineRunId() + 1, ...
  std::string pipeline;    // the spec's name
  int64_t due_ms = 0;      // the fire time; a manual run's: when it was asked
  std::string trigger;     // schedule | catchup | manual
  std::string outcome;     // started | queued | skipped | error
  std::string job_id;      // of a started run, else ""
  int64_t started_ms = 0;  // of a started run, else 0
  std::string detail;      // why it was skipped, queued or not started
};

// What a restarted coordinator needs to know of one pipeline.
struct PipelineHistory {
  std::optional<PipelineRunRecord> last_started;  // the latest started run
  // The latest run still queued (none started after it), if any.
  std::optional<PipelineRunRecord> queued;
  // The latest fire time handled (trigger schedule or catchup), whatever
  // its outcome; 0 when none: what catchup counts from.
  int64_t last_due_ms = 0;
  uint64_t skipped = 0;  // runs with outcome skipped
};

// A successful attempt of a `cache: true` task that later runs may reuse
// (docs/state.md, "Cache"). Holds what a hit gives its task: the attempt's
// result and outputs, and its artifacts (ArtifactsToJson).
struct CacheEntryRecord {
  uint64_t attempt_id = 0;  // the attempt that succeeded
  std::string key;          // 64 hex digits (core/coordinator/cache_key.h)
  std::string job_id;
  std::string job_name;
  std::string task;        // the instance name
  uint32_t attempt = 0;    // its number
  std::string parts_json;  // the parts the key was made of
  std::string result_json;
  std::string outputs_json;
  std::string artifacts_json;
  int64_t created_ms = 0;
};

// Why a task of a job last ran or was cached (`drover explain`).
struct CacheDecisionRecord {
  std::string job_id;
  std::string task;
  std::string key;  // "" when no key could be made (explanation says why)
  std::string parts_json;
  bool cached = false;
  // A hit: its id (from the attempt id space, so artifacts rows can carry
  // it) and the entry it reused.
  uint64_t hit_id = 0;
  std::string source_job;
  std::string source_task;
  uint32_t source_attempt = 0;
  std::string explanation;  // one line for people
  int64_t decided_ms = 0;
};

// What the client sent with a job for caching: --no-cache, and the hashes
// of the files the tasks' `inputs` match (InputHashesToJson).
struct JobInputsRecord {
  std::string job_id;
  bool no_cache = false;
  std::string inputs_json;
};

// ArtifactRecords as a JSON list of {path, sha256, size, mode}, and back
// (job_id, task, attempt_id and created_ms are not kept). FromJson gives
// nullopt for text that is not such a list.
std::string ArtifactsToJson(const std::vector<ArtifactRecord>& artifacts);
std::optional<std::vector<ArtifactRecord>> ArtifactsFromJson(std::string_view json);

class Store {
 public:
  // Opens or creates <state_dir>/state.db (creating state_dir), sets WAL,
  // synchronous=NORMAL, foreign keys, a busy timeout, and runs the
  // migrations up to the current schema version. Fails with a clear message
  // when the file is not a drover database or is from a newer drover.
  static Result<std::unique_ptr<Store>> Open(const std::filesystem::path& state_dir);
  // A second connection to a state directory that a Store opened (and
  // migrated) already, for reads only: nothing it is asked to write is
  // written (query_only; a write fails), and it runs no checkpoints. A
  // reader sees what the writer has committed, each read as of its start
  // (WAL). The coordinator answers STATUS and LOGS of jobs it does not
  // run through one, on a thread of its own (core/coordinator/store_reader.h).
  static Result<std::unique_ptr<Store>> OpenReader(
      const std::filesystem::path& state_dir);
  ~Store();

  const std::filesystem::path& dir() const;
  int SchemaVersion() const;

  // Batching. Between Begin() and Commit() every write is part of one
  // transaction; outside, each write commits on its own. Rollback() drops
  // the batch. Begin() while a batch is open is an error, as are Commit()
  // and Rollback() without one (kFailedPrecondition). A failed write inside
  // a batch undoes only itself; if SQLite had to abandon the whole
  // transaction (disk full, I/O error), later writes and Commit() fail
  // until Rollback(). Destroying the Store with a batch open rolls it back.
  //
  // Space. When Commit() fails with the disk full (kUnavailable, "state
  // disk full: ..."), the batch is rolled back but kept: Pending() is true,
  // InBatch() false, and the next Begin() first redoes every write of it
  // (failing as Commit() did while there is no room; the batch stays
  // pending). Rollback() after Begin() drops it for good.
  Status Begin();
  Status Commit();
  Status Rollback();
  bool InBatch() const;
  bool Pending() const;

  // Keeps <state_dir>/reserve, a file of `bytes` (allocated, not sparse),
  // that the first commit failing for want of space deletes before it
  // redoes its batch: the coordinator can then still record why tasks
  // fail. 0 removes it. Fails (and keeps no reserve) when the disk has no
  // room for it; call again later (RestoreReserve).
  Status KeepReserve(uint64_t bytes);
  // Whether a commit had to use the reserve and it is not back yet: the
  // state disk is short of space, and the coordinator keeps no task output.
  bool SpaceLow() const;
  // Re-creates the reserve after SpaceLow(); Ok (and SpaceLow() false) once
  // the disk has room for it twice over.
  Status RestoreReserve();

  // Jobs.
  // Inserts the job and its task rows atomically (all or nothing, also
  // inside a batch). A TaskRecord's job_id must be job.id or empty. `tasks`
  // need not hold a row for every task: job.tasks says how many there are,
  // and a task without a row is waiting with no attempt (Tasks).
  Status InsertJob(const JobRecord& job, const std::vector<TaskRecord>& tasks);
  Status SetJobState(const std::string& job_id, const std::string& state,
                     int64_t finished_ms);
  // Replaces a job's spec and task rows for a resume: rows of tasks that no
  // longer exist are deleted, new ones inserted, existing ones updated to
  // the given record (attempt rows are kept). Of `job`, spec_text, state,
  // finished_ms and the submitter (who resubmitted it) are written; the
  // other fields stay. Atomic; kNotFound
  // when the job does not exist.
  Status ReplaceTasks(const JobRecord& job, const std::vector<TaskRecord>& tasks);
  // A dynamic task's expansion: the placeholder's row (named `placeholder`)
  // goes, `rows` are inserted or updated, and the job's task count becomes
  // job.tasks. Atomic; kNotFound when the job does not exist.
  Status ExpandTask(const JobRecord& job, const std::string& placeholder,
                    const std::vector<TaskRecord>& rows);
  Result<std::optional<JobRecord>> GetJob(const std::string& job_id);
  // The most recently created job; with `name`, the latest of that name.
  Result<std::optional<JobRecord>> LatestJob(const std::string& name = "");
  // The id of the latest job (named `name`, unless empty): LatestJob's,
  // read from an index alone, not from its row, whose spec may be
  // megabytes.
  Result<std::optional<std::string>> LatestJobId(const std::string& name = "");
  // The state of job `job_id` (its row's `state`, without copying its
  // spec), or nullopt when there is no such job.
  Result<std::optional<std::string>> JobStateOf(const std::string& job_id);
  Result<std::vector<JobRecord>> JobsInState(const std::string& state);
  // The `limit` most recently created jobs, newest first (`drover status`).
  Result<std::vector<JobRecord>> RecentJobs(uint32_t limit);
  // `drover jobs`: the jobs that match every non-empty field of `query`,
  // newest first, at most `limit` of them (the by-created index serves it).
  struct JobQuery {
    std::string state;     // "" = any
    std::string name;      // "" = any
    int64_t since_ms = 0;  // created at or after (Unix ms); 0 = any
    uint32_t limit = 100;
  };
  Result<std::vector<JobRecord>> FindJobs(const JobQuery& query);
  // How many of a job's tasks are in each state (state name -> count), from
  // the task rows; empty for an unknown job.
  Result<std::vector<std::pair<std::string, uint64_t>>> TaskStateCounts(
      const std::string& job_id);

  // Tasks.
  // Writes a task's progress, found by (job_id, name): every field but
  // index, which only ReplaceTasks and ExpandTask change. A task without a
  // row gets one (its first write). The coordinator does not call it at
  // dispatch: the attempt in the dispatch log says the task runs (Tasks).
  Status UpdateTask(const TaskRecord& task);
  // A job's task rows by index, each as the task stands: a row whose task
  // has an unfinished attempt numbered above the row's `attempts` is
  // returned `running` (a job not in state `running` has none, and its
  // attempts are not read for them), with that attempt's number, worker and (when the row
  // has none) start time, and no pending_reason (docs/state.md, "tasks").
  // A task whose first attempt runs and that has no row yet is returned so
  // too (from the attempt's task_index), and one whose attempt stands for
  // its row (EndAttempt) is returned as that row. Tasks with none of these
  // are not returned: they are waiting, with no attempt (JobRecord::tasks
  // counts them; DenseRows fills them in).
  Result<std::vector<TaskRecord>> Tasks(const std::string& job_id);
  // Of a job that has ended, the first `limit` rows (by index) of tasks
  // that did not succeed (neither succeeded nor cached): a summary's rows
  // without reading every row.
  Result<std::vector<TaskRecord>> UnsuccessfulTasks(const std::string& job_id,
                                                    uint32_t limit);
  // The row of task `idx`, named `name`, of a job as stored (no running
  // overlay; the row its attempt stands for, when it has none), or none:
  // one or two indexed lookups, for a view of a few tasks of a big job.
  Result<std::optional<TaskRecord>> TaskAt(const std::string& job_id, uint32_t idx,
                                           const std::string& name);

  // Attempts.
  // Records an attempt. A started one (unfinished, outcome unset) goes to
  // the dispatch log (docs/state.md, "dispatches"): written by the batch's
  // commit (at once outside a batch), its `attempts` row only when it ends
  // (FinishAttempt); any other is written as it is. An unknown job
  // (kNotFound) or an id already used (kAlreadyExists) is refused.
  Status InsertAttempt(const AttemptRecord& attempt);
  // Records the outcome of attempt `id`. Exactly once: returns false and
  // changes nothing when the attempt is unknown or already finished. An
  // empty `worker` keeps the worker stored at InsertAttempt. Durations are
  // stored in whole microseconds. `outputs_json`, when given, is
  // OutputsToJson(outcome.outputs), already made by the caller.
  Result<bool> FinishAttempt(uint64_t id, const std::string& worker,
                             const AttemptOutcome& outcome, int64_t finished_ms,
                             const std::string* outputs_json = nullptr);
  // The end of attempt `id`, number `number` of its task, and `task`, the
  // task's row after it: FinishAttempt (with task.finished_ms), then
  // UpdateTask(task). Except when the task succeeded on this attempt, its
  // first (AttemptCanStandFor), and has no row yet: then the
  // attempt stands for the row (attempts.task_row, with the task's
  // fingerprint) and no row is written, one write where there were two
  // (docs/state.md, "tasks"). Readers (Tasks, TaskAt, TaskStateCounts, the
  // `tasks` view) see the same row either way. `outputs_json` is
  // OutputsToJson(outcome.outputs). Returns FinishAttempt's answer.
  Result<bool> EndAttempt(uint64_t id, uint32_t number, const std::string& worker,
                          const AttemptOutcome& outcome, const std::string& outputs_json,
                          const TaskRecord& task);
  // The attempts of the task named `task` of job `job_id`, by number;
  // `index` is the task's, when the caller knows it (without it, a task
  // without a row has it looked up among the job's attempts).
  Result<std::vector<AttemptRecord>> Attempts(
      const std::string& job_id, const std::string& task,
      std::optional<uint32_t> index = std::nullopt);
  // Attempts not finished, of the jobs in state `running` (coordinator
  // recovery): a job ends only after its attempts, so no other job has any.
  Result<std::vector<AttemptRecord>> UnfinishedAttempts();
  // The largest attempt id ever used, cache hit ids included (0 for a new
  // store).
  Result<uint64_t> MaxAttemptId();

  // Artifacts.
  // Records a stored file of attempt `a.attempt_id` (replacing a row of
  // the same attempt and path). Journaled like every batch write: a commit
  // that finds the disk full redoes it (docs/state.md).
  Status InsertArtifact(const ArtifactRecord& a);
  // The artifacts of the last succeeded attempt of each task of `job_id`
  // (only of `task` when it is not empty), by task then path. A task whose
  // latest success is a cache hit gives the artifacts the hit recorded.
  Result<std::vector<ArtifactRecord>> Artifacts(const std::string& job_id,
                                                const std::string& task = "");
  // The sha256 of every indexed artifact (gc keeps these blobs).
  Result<std::vector<std::string>> ReferencedBlobs();
  // Forgets the artifact rows of every job but the `keep_last` newest
  // (keep_last < 0: keep all) and of every job created before
  // `before_ms` (0: none), and the cache entries of those jobs (their
  // blobs may then be removed). Returns how many artifact rows went.
  Result<int64_t> ForgetArtifacts(int64_t keep_last, int64_t before_ms);

  // Pipeline runs (scheduled pipelines; docs/state.md, "Pipeline runs").
  // Records a run; kAlreadyExists for a used id. Journaled.
  Status InsertPipelineRun(const PipelineRunRecord& run);
  // Marks queued run `id` started as job `job_id` at `started_ms`;
  // kNotFound when there is no such run. Journaled.
  Status StartQueuedPipelineRun(int64_t id, const std::string& job_id,
                                int64_t started_ms);
  // The largest pipeline run id ever used (0 for none).
  Result<int64_t> MaxPipelineRunId();
  // A pipeline's last started run, queued run, last fire time and skipped
  // count; all empty for a pipeline that never ran.
  Result<PipelineHistory> PipelineHistoryOf(const std::string& pipeline);
  // Cache (cache_store.cc; docs/state.md, "Cache"). The writes are
  // journaled like every batch write.
  // Records a successful attempt of a cached task (replacing one of the
  // same attempt_id).
  Status InsertCacheEntry(const CacheEntryRecord& e);
  // The entries with `key`, newest first, at most `limit`.
  Result<std::vector<CacheEntryRecord>> CacheEntries(const std::string& key,
                                                     uint32_t limit);
  // The newest entry of task `task` of jobs named `job_name`, if any.
  Result<std::optional<CacheEntryRecord>> LatestCacheEntry(const std::string& job_name,
                                                           const std::string& task);
  // Sets the decision of (d.job_id, d.task), replacing the earlier one.
  Status PutCacheDecision(const CacheDecisionRecord& d);
  Result<std::optional<CacheDecisionRecord>> CacheDecision(const std::string& job_id,
                                                           const std::string& task);
  // Sets (replaces) a job's inputs record.
  Status PutJobInputs(const JobInputsRecord& r);
  Result<std::optional<JobInputsRecord>> JobInputs(const std::string& job_id);

  // Where the captured output of an attempt lives:
  // <state_dir>/logs/<job>/<task>/<number>.out|.err, with '/' and other
  // unsafe characters of the task name percent-encoded. The job id is
  // encoded the same way. Pure: creates no directory.
  std::filesystem::path LogPath(const std::string& job_id, const std::string& task,
                                uint32_t number, bool stderr_stream) const;

 private:
  class Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  // The writes themselves; the public ones above also journal them.
  Status InsertJobNow(const JobRecord& job, const std::vector<TaskRecord>& tasks);
  Status SetJobStateNow(const std::string& job_id, const std::string& state,
                        int64_t finished_ms);
  Status ReplaceTasksNow(const JobRecord& job, const std::vector<TaskRecord>& tasks);
  Status UpdateTaskNow(const TaskRecord& task);
  Status ExpandTaskNow(const JobRecord& job, const std::string& placeholder,
                       const std::vector<TaskRecord>& rows);
  Status InsertArtifactNow(const ArtifactRecord& a);
  Status InsertAttemptNow(const AttemptRecord& attempt);
  // With `stands` (the task's fingerprint), the attempt stands for its
  // task's row.
  Result<bool> FinishAttemptNow(const std::string& outputs_json, uint64_t id,
                                const std::string& worker, const AttemptOutcome& outcome,
                                int64_t finished_ms,
                                std::optional<uint64_t> stands = std::nullopt);
  Result<bool> FinishAttemptJournaled(uint64_t id, const std::string& worker,
                                      const AttemptOutcome& outcome, int64_t finished_ms,
                                      const std::string& outputs_json,
                                      std::optional<uint64_t> stands);
  Status InsertCacheEntryNow(const CacheEntryRecord& e);
  Status PutCacheDecisionNow(const CacheDecisionRecord& d);
  Status PutJobInputsNow(const JobInputsRecord& r);
  Status InsertPipelineRunNow(const PipelineRunRecord& run);
  Status StartQueuedPipelineRunNow(int64_t id, const std::string& job_id,
                                   int64_t started_ms);
  // For the methods defined outside store.cc (cache_store.cc,
  // pipeline_runs.cc): the connection, the batch check every write makes
  // first, and the journal.
  sqlite3* Db() const;
  Status CheckBatch() const;
  Status Journal(Status s, std::function<Status()> redo);

  std::unique_ptr<Impl> impl_;
};

}  // namespace drover::store

#endif  // DROVER_CORE_STORE_STORE_H_

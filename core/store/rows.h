// The mapping between the store's records and the columns of its tables:
// column lists in the order the Bind*/Read* functions use them, and the SQL
// that is built from them. Internal to core/store.
#ifndef DROVER_CORE_STORE_ROWS_H_
#define DROVER_CORE_STORE_ROWS_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "core/base/clock.h"
#include "core/base/outcome.h"
#include "core/store/sqlite_util.h"
#include "core/store/store.h"

namespace drover::store {

// Column lists, in the order the Bind*/Read* functions below use them.
inline constexpr std::string_view kJobCols =
    "id, name, spec_file, spec_text, cwd, state, priority, created_ms, finished_ms, "
    "submitter_key, submitter_name, tasks";
inline constexpr std::string_view kTaskCols =
    "job_id, name, idx, fingerprint, state, attempts, reason, exit_code, signal, detail, "
    "wall_us, result_json, worker, started_ms, finished_ms, pending_reason, "
    "attempt_base, "
    "outputs_json";
// A task row's parameters: kTaskCols, then its job's number (the `job`
// column, which the store binds and readers do not need).
inline constexpr int kTaskParams = 19;
// InsertJob and ReplaceTasks write task rows kTaskChunk per statement: the
// per-statement cost (step, statement journal, reset) was a third of
// inserting a 100,000-task job one row at a time. 52 rows are 988
// parameters, under the 999 that SQLite builds before 3.32 allow.
inline constexpr size_t kTaskChunk = 52;
// What UpdateTask writes: the task's progress and its fingerprint (0 in
// the row InsertJob writes until the task is first dispatched: a matrix
// instance is made then, not at submit), not idx, which only a spec change
// (ReplaceTasks) or an expansion (ExpandTask) alters: idx is half the
// row's key, (job, idx).
inline constexpr std::string_view kTaskProgressSet =
    "fingerprint = ?4, state = ?5, attempts = ?6, reason = ?7, exit_code = ?8, "
    "signal = ?9, detail = ?10, wall_us = ?11, result_json = ?12, worker = ?13, "
    "started_ms = ?14, finished_ms = ?15, pending_reason = ?16, attempt_base = ?17, "
    "outputs_json = ?18";
inline constexpr std::string_view kAttemptCols =
    "id, job_id, task, number, worker, finished, started_ms, finished_ms, reason, "
    "exit_code, "
    "signal, message, wall_us, cpu_user_us, cpu_sys_us, max_rss_kb, stdout_bytes, "
    "stdout_dropped, stderr_bytes, stderr_dropped, result_json, outputs_json, task_idx";
inline constexpr std::string_view kAttemptValues =
    "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, "
    "?19, "
    "?20, ?21, ?22, ?23";
// kAttemptCols of a row of the view running_attempts (an attempt of the
// dispatch log without a row): its outcome columns as an unset outcome's.
inline constexpr std::string_view kRunningAttemptCols =
    "id, job_id, task, number, worker, 0, started_ms, 0, '', -1, 0, '', 0, 0, 0, 0, 0, "
    "0, 0, 0, '', '', task_idx";
// The unfinished attempts of job ?1, as `r`: the dispatch log's and the
// rows an older drover left unfinished.
inline constexpr std::string_view kRunningOfJob =
    "WITH r AS (SELECT task, number FROM attempts WHERE job_id = ?1 AND finished = 0 "
    "UNION ALL SELECT task, number FROM running_attempts WHERE job_id = ?1) ";
// The outcome columns, ?9..?22 as in kAttemptCols.
inline constexpr std::string_view kOutcomeSet =
    "reason = ?9, exit_code = ?10, signal = ?11, message = ?12, wall_us = ?13, "
    "cpu_user_us = ?14, cpu_sys_us = ?15, max_rss_kb = ?16, stdout_bytes = ?17, "
    "stdout_dropped = ?18, stderr_bytes = ?19, stderr_dropped = ?20, result_json = ?21, "
    "outputs_json = ?22";

// What a task row is made of when an attempt `a` stands for it
// (attempts.task_row = 1): the task succeeded on that attempt, its first,
// and has no row of its own (docs/state.md, "tasks"). In the order
// ReadStandingTask uses them.
inline constexpr std::string_view kStandingCols =
    "a.task_idx, a.task, a.fingerprint, a.number, a.reason, a.exit_code, a.signal, "
    "a.wall_us, a.result_json, a.worker, a.started_ms, a.finished_ms, a.outputs_json";

std::string Sql(std::initializer_list<std::string_view> parts);

// INSERT of `rows` task rows (?1..?19 for the first, ?20..?38 for the
// second, ...); with `upsert`, an existing row of the task's name is
// updated to the new values (its idx too) instead of failing.
std::string InsertTasksSql(size_t rows, bool upsert);

// uint64 values (ids, fingerprints, byte counts) are stored as the int64
// with the same bits; the cast back restores them exactly.
inline int64_t AsStored(uint64_t v) { return static_cast<int64_t>(v); }
inline uint64_t FromStored(int64_t v) { return static_cast<uint64_t>(v); }

// Binds kJobCols to ?1..?12.
void BindJob(Statement::Use& u, const JobRecord& j);
JobRecord ReadJob(const Statement::Use& u);
// Binds kTaskCols to ?base+1 .. ?base+18, with `job_id` for the job_id
// column, and `job` (the job's number, jobs.seq) to ?base+19.
void BindTask(Statement::Use& u, int base, int64_t job, const std::string& job_id,
              const TaskRecord& t);
TaskRecord ReadTask(const Statement::Use& u);
// The task row an attempt stands for, from kStandingCols: what UpdateTask
// would have written when the attempt ended (and the `tasks` view shows).
TaskRecord ReadStandingTask(const Statement::Use& u, const std::string& job_id);
// Whether `task`, its row after attempt `number` ended with `outcome`, is
// one an attempt can stand for: succeeded on that attempt, its first (and
// no run before this one: attempt_base 0), with no pending_reason, and
// every outcome field the row keeps equal to the attempt's.
bool AttemptCanStandFor(const TaskRecord& task, const AttemptOutcome& outcome,
                        uint32_t number);
// Binds the outcome columns, ?9..?22 of kAttemptCols. An unfinished
// attempt stores reason '' rather than "ok".
// `outputs_json` is OutputsToJson(o.outputs), which must outlive the
// statement's run (bound without a copy).
// `offset` is added to each parameter's number (a multi-row statement's
// later rows).
void BindOutcome(Statement::Use& u, const AttemptOutcome& o, bool finished,
                 const std::string& outputs_json, int offset = 0);
// Whether BindOutcome would write, for an unfinished attempt, exactly the
// outcome columns' defaults (schema.cc): an outcome not yet set.
bool IsUnset(const AttemptOutcome& o);
AttemptRecord ReadAttempt(const Statement::Use& u);

}  // namespace drover::store

#endif  // DROVER_CORE_STORE_ROWS_H_

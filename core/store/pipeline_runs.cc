// Store, the pipeline runs of scheduled pipelines (docs/state.md, "Pipeline
// runs"). Kept out of store.cc: one table, read and written only by the
// coordinator's scheduler (core/coordinator/pipelines.h). Writes are
// journaled like every batch write, so a commit that finds the disk full
// redoes them.
#include <sqlite3.h>

#include "core/store/sqlite_util.h"
#include "core/store/store.h"

namespace drover::store {

Status Store::InsertPipelineRun(const PipelineRunRecord& run) {
  return Journal(InsertPipelineRunNow(run),
                 [this, run = run] { return InsertPipelineRunNow(run); });
}

Status Store::InsertPipelineRunNow(const PipelineRunRecord& run) {
  DROVER_RETURN_IF_ERROR(CheckBatch());
  Statement st;
  DROVER_RETURN_IF_ERROR(st.Prepare(Db(),
                                    "INSERT INTO pipeline_runs (id, pipeline, due_ms, "
                                    "trigger, outcome, job_id, started_ms, "
                                    "detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                                    "insert into pipeline_runs"));
  Statement::Use u(st);
  u.Bind(1, run.id).Bind(2, run.pipeline).Bind(3, run.due_ms).Bind(4, run.trigger);
  u.Bind(5, run.outcome).Bind(6, run.job_id).Bind(7, run.started_ms).Bind(8, run.detail);
  return u.Run().WithContext("pipeline " + run.pipeline + " run " +
                             std::to_string(run.id));
}

Status Store::StartQueuedPipelineRun(int64_t id, const std::string& job_id,
                                     int64_t started_ms) {
  return Journal(StartQueuedPipelineRunNow(id, job_id, started_ms),
                 [this, id, job_id = job_id, started_ms] {
                   return StartQueuedPipelineRunNow(id, job_id, started_ms);
                 });
}

Status Store::StartQueuedPipelineRunNow(int64_t id, const std::string& job_id,
                                        int64_t started_ms) {
  DROVER_RETURN_IF_ERROR(CheckBatch());
  Statement st;
  DROVER_RETURN_IF_ERROR(st.Prepare(
      Db(),
      "UPDATE pipeline_runs SET outcome = 'started', job_id = ?2, started_ms = ?3, "
      "detail = '' WHERE id = ?1",
      "update pipeline_runs"));
  Statement::Use u(st);
  u.Bind(1, id).Bind(2, job_id).Bind(3, started_ms);
  DROVER_RETURN_IF_ERROR(u.Run());
  if (u.Changes() == 0) return NotFound("store: no pipeline run " + std::to_string(id));
  return Status::Ok();
}

Result<int64_t> Store::MaxPipelineRunId() {
  Statement st;
  DROVER_RETURN_IF_ERROR(st.Prepare(Db(),
                                    "SELECT coalesce(max(id), 0) FROM pipeline_runs",
                                    "select max pipeline run id"));
  Statement::Use u(st);
  Result<bool> row = u.Step();
  if (!row.ok()) return row.status();
  return *row ? u.Int(0) : 0;
}

Result<PipelineHistory> Store::PipelineHistoryOf(const std::string& pipeline) {
  PipelineHistory h;
  {
    Statement st;
    DROVER_RETURN_IF_ERROR(st.Prepare(
        Db(),
        "SELECT coalesce(max(CASE WHEN trigger IN ('schedule', 'catchup') THEN due_ms "
        "END), 0), "
        "coalesce(sum(outcome = 'skipped'), 0) FROM pipeline_runs WHERE pipeline = ?1",
        "select pipeline history"));
    Statement::Use u(st);
    u.Bind(1, pipeline);
    Result<bool> row = u.Step();
    if (!row.ok()) return row.status();
    if (*row) {
      h.last_due_ms = u.Int(0);
      h.skipped = static_cast<uint64_t>(u.Int(1));
    }
  }
  // The newest started and the newest queued run; the queued one counts
  // only if nothing started after it (it was started, or superseded).
  for (const char* outcome : {"started", "queued"}) {
    Statement st;
    DROVER_RETURN_IF_ERROR(st.Prepare(
        Db(),
        "SELECT id, pipeline, due_ms, trigger, outcome, job_id, started_ms, detail "
        "FROM pipeline_runs WHERE pipeline = ?1 AND outcome = ?2 ORDER BY id DESC LIMIT "
        "1",
        "select pipeline run"));
    Statement::Use u(st);
    u.Bind(1, pipeline).Bind(2, outcome);
    Result<bool> row = u.Step();
    if (!row.ok()) return row.status();
    if (!*row) continue;
    PipelineRunRecord r;
    r.id = u.Int(0);
    r.pipeline = u.Text(1);
    r.due_ms = u.Int(2);
    r.trigger = u.Text(3);
    r.outcome = u.Text(4);
    r.job_id = u.Text(5);
    r.started_ms = u.Int(6);
    r.detail = u.Text(7);
    (r.outcome == "started" ? h.last_started : h.queued) = std::move(r);
  }
  if (h.queued && h.last_started && h.last_started->id > h.queued->id) h.queued.reset();
  return h;
}

}  // namespace drover::store

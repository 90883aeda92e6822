#include "core/store/rows.h"

#include <algorithm>
#include <chrono>
#include <optional>

namespace drover::store {
namespace {

// "(?1, ..., ?16), (?17, ..., ?32), ...": `rows` tuples of task parameters.
std::string TaskValues(size_t rows) {
  std::string s;
  int n = 0;
  for (size_t r = 0; r < rows; ++r) {
    s += r == 0 ? "(" : ", (";
    for (int c = 0; c < kTaskParams; ++c) {
      if (c > 0) s += ", ";
      s += "?" + std::to_string(++n);
    }
    s += ")";
  }
  return s;
}

int64_t Micros(Duration d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}
Duration FromMicros(int64_t us) { return std::chrono::microseconds(us); }

}  // namespace

std::string Sql(std::initializer_list<std::string_view> parts) {
  std::string s;
  for (std::string_view p : parts) s += p;
  return s;
}

std::string InsertTasksSql(size_t rows, bool upsert) {
  std::string sql =
      Sql({"INSERT INTO task_rows (", kTaskCols, ", job) VALUES ", TaskValues(rows)});
  if (upsert) {
    sql +=
        " ON CONFLICT (job, name) DO UPDATE SET idx = excluded.idx, "
        "fingerprint = excluded.fingerprint, state = excluded.state, "
        "attempts = excluded.attempts, reason = excluded.reason, "
        "exit_code = excluded.exit_code, signal = excluded.signal, "
        "detail = excluded.detail, wall_us = excluded.wall_us, "
        "result_json = excluded.result_json, worker = excluded.worker, "
        "started_ms = excluded.started_ms, finished_ms = excluded.finished_ms, "
        "pending_reason = excluded.pending_reason, attempt_base = excluded.attempt_base, "
        "outputs_json = excluded.outputs_json";
  }
  return sql;
}

void BindJob(Statement::Use& u, const JobRecord& j) {
  u.Bind(1, j.id)
      .Bind(2, j.name)
      .Bind(3, j.spec_file)
      .Bind(4, j.spec_text)
      .Bind(5, j.cwd);
  u.Bind(6, j.state).Bind(7, j.priority).Bind(8, j.created_ms).Bind(9, j.finished_ms);
  u.Bind(10, j.submitter_key).Bind(11, j.submitter_name).Bind(12, int64_t{j.tasks});
}

JobRecord ReadJob(const Statement::Use& u) {
  JobRecord j;
  j.id = u.Text(0);
  j.name = u.Text(1);
  j.spec_file = u.Text(2);
  j.spec_text = u.Text(3);
  j.cwd = u.Text(4);
  j.state = u.Text(5);
  j.priority = static_cast<int>(u.Int(6));
  j.created_ms = u.Int(7);
  j.finished_ms = u.Int(8);
  j.submitter_key = u.Text(9);
  j.submitter_name = u.Text(10);
  j.tasks = static_cast<uint32_t>(std::max<int64_t>(0, u.Int(11)));
  return j;
}

void BindTask(Statement::Use& u, int base, int64_t job, const std::string& job_id,
              const TaskRecord& t) {
  u.Bind(base + 1, job_id).Bind(base + 2, t.name).Bind(base + 3, int64_t{t.index});
  u.Bind(base + 4, AsStored(t.fingerprint)).Bind(base + 5, t.state);
  u.Bind(base + 6, int64_t{t.attempts})
      .Bind(base + 7, t.reason)
      .Bind(base + 8, t.exit_code);
  u.Bind(base + 9, t.signal).Bind(base + 10, t.detail).Bind(base + 11, t.wall_us);
  u.Bind(base + 12, t.result_json)
      .Bind(base + 13, t.worker)
      .Bind(base + 14, t.started_ms);
  u.Bind(base + 15, t.finished_ms).Bind(base + 16, t.pending_reason);
  u.Bind(base + 17, int64_t{t.attempt_base});
  u.Bind(base + 18, t.outputs_json);
  u.Bind(base + 19, job);
}

void TaskRecord::Clear() {
  job_id.clear();
  index = 0;
  name.clear();
  fingerprint = 0;
  state.clear();
  attempts = 0;
  attempt_base = 0;
  reason.clear();
  exit_code = -1;
  signal = 0;
  detail.clear();
  wall_us = 0;
  result_json.clear();
  outputs_json.clear();
  worker.clear();
  started_ms = 0;
  finished_ms = 0;
  pending_reason.clear();
}

TaskRecord ReadTask(const Statement::Use& u) {
  TaskRecord t;
  t.job_id = u.Text(0);
  t.name = u.Text(1);
  t.index = static_cast<uint32_t>(u.Int(2));
  t.fingerprint = FromStored(u.Int(3));
  t.state = u.Text(4);
  t.attempts = static_cast<uint32_t>(u.Int(5));
  t.reason = u.Text(6);
  t.exit_code = static_cast<int>(u.Int(7));
  t.signal = static_cast<int>(u.Int(8));
  t.detail = u.Text(9);
  t.wall_us = u.Int(10);
  t.result_json = u.Text(11);
  t.worker = u.Text(12);
  t.started_ms = u.Int(13);
  t.finished_ms = u.Int(14);
  t.pending_reason = u.Text(15);
  t.attempt_base = static_cast<uint32_t>(u.Int(16));
  t.outputs_json = u.Text(17);
  return t;
}

namespace {
// A success's detail (AttemptOutcome::Describe): a process's exit 0, or
// "ok" for what has no exit code.
std::string_view SuccessDetail(int exit_code) { return exit_code >= 0 ? "exit 0" : "ok"; }
}  // namespace

TaskRecord ReadStandingTask(const Statement::Use& u, const std::string& job_id) {
  TaskRecord t;
  t.job_id = job_id;
  t.index = static_cast<uint32_t>(u.Int(0));
  t.name = u.Text(1);
  t.fingerprint = FromStored(u.Int(2));
  t.state = "succeeded";
  t.attempts = static_cast<uint32_t>(u.Int(3));
  t.reason = u.Text(4);
  t.exit_code = static_cast<int>(u.Int(5));
  t.signal = static_cast<int>(u.Int(6));
  t.detail = SuccessDetail(t.exit_code);
  t.wall_us = u.Int(7);
  t.result_json = u.Text(8);
  t.worker = u.Text(9);
  t.started_ms = u.Int(10);
  t.finished_ms = u.Int(11);
  t.outputs_json = u.Text(12);
  return t;
}

bool AttemptCanStandFor(const TaskRecord& task, const AttemptOutcome& outcome,
                        uint32_t number) {
  // Every field ReadStandingTask makes up must be what `task` says. The
  // first attempt (number 1, none before this run): the row's started_ms,
  // set at that attempt's dispatch, is the attempt's.
  return outcome.ok() && task.state == "succeeded" && number == 1 &&
         task.attempt_base == 0 && task.attempts == number &&
         task.pending_reason.empty() && task.reason == ReasonName(outcome.reason) &&
         task.exit_code == outcome.exit_code && task.signal == outcome.signal &&
         task.detail == SuccessDetail(outcome.exit_code) &&
         task.wall_us == Micros(outcome.wall) && task.result_json == outcome.result_json;
}

void BindOutcome(Statement::Use& u, const AttemptOutcome& o, bool finished,
                 const std::string& outputs_json, int offset) {
  const int k = offset;
  u.Bind(k + 9, finished ? ReasonName(o.reason) : std::string_view());
  u.Bind(k + 10, o.exit_code).Bind(k + 11, o.signal).Bind(k + 12, o.message);
  u.Bind(k + 13, Micros(o.wall))
      .Bind(k + 14, Micros(o.cpu_user))
      .Bind(k + 15, Micros(o.cpu_sys));
  u.Bind(k + 16, o.max_rss_kb)
      .Bind(k + 17, AsStored(o.out.bytes))
      .Bind(k + 18, AsStored(o.out.dropped));
  u.Bind(k + 19, AsStored(o.err.bytes))
      .Bind(k + 20, AsStored(o.err.dropped))
      .Bind(k + 21, o.result_json)
      .Bind(k + 22, outputs_json);
}

bool IsUnset(const AttemptOutcome& o) {
  // The reason is not read: an unfinished attempt stores ''.
  return o.exit_code == -1 && o.signal == 0 && o.message.empty() &&
         o.wall == Duration::zero() && o.cpu_user == Duration::zero() &&
         o.cpu_sys == Duration::zero() && o.max_rss_kb == 0 && o.out.bytes == 0 &&
         o.out.dropped == 0 && o.err.bytes == 0 && o.err.dropped == 0 &&
         o.result_json.empty() && o.outputs.empty();
}

AttemptRecord ReadAttempt(const Statement::Use& u) {
  AttemptRecord a;
  a.id = FromStored(u.Int(0));
  a.job_id = u.Text(1);
  a.task = u.Text(2);
  a.number = static_cast<uint32_t>(u.Int(3));
  a.worker = u.Text(4);
  a.finished = u.Int(5) != 0;
  a.started_ms = u.Int(6);
  a.finished_ms = u.Int(7);
  AttemptOutcome& o = a.outcome;
  std::string reason = u.Text(8);
  if (!reason.empty()) {
    // A name this drover does not know can only come from a hand-edited
    // file; keep the row readable and say what was there.
    std::optional<FailureReason> parsed = ParseReason(reason);
    o.reason = parsed.value_or(FailureReason::kInternal);
    if (!parsed) o.message = "unknown failure reason \"" + reason + "\": ";
  }
  o.exit_code = static_cast<int>(u.Int(9));
  o.signal = static_cast<int>(u.Int(10));
  o.message += u.Text(11);
  o.wall = FromMicros(u.Int(12));
  o.cpu_user = FromMicros(u.Int(13));
  o.cpu_sys = FromMicros(u.Int(14));
  o.max_rss_kb = u.Int(15);
  o.out.bytes = FromStored(u.Int(16));
  o.out.dropped = FromStored(u.Int(17));
  o.err.bytes = FromStored(u.Int(18));
  o.err.dropped = FromStored(u.Int(19));
  o.result_json = u.Text(20);
  // Only this drover writes the column; a row it cannot read has none.
  o.outputs = OutputsFromJson(u.Text(21)).value_or(Outputs());
  a.task_index = u.Int(22);
  return a;
}

}  // namespace drover::store

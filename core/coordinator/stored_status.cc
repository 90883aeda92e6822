#include "core/coordinator/stored_status.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

#include "core/base/files.h"
#include "core/base/outcome.h"
#include "core/base/outputs.h"
#include "core/coordinator/dispatch_wire.h"
#include "core/coordinator/fanout.h"
#include "core/coordinator/job_state.h"

namespace drover {

wire::JobStatus JobStatusHead(const store::JobRecord& record) {
  wire::JobStatus js;
  js.set_job_id(record.id);
  js.set_name(record.name);
  js.set_state(record.state);
  js.set_priority(record.priority);
  js.set_submitted_unix_ms(record.created_ms);
  js.set_finished_unix_ms(record.finished_ms);
  js.set_spec_file(record.spec_file);
  js.set_submitter_key(record.submitter_key);
  js.set_submitter_name(record.submitter_name);
  return js;
}

wire::JobStatus StoredJobStatus(store::Store& store, const store::JobRecord& record,
                                bool with_tasks, const TaskPage& page, bool with_groups,
                                const spec::LoadOptions& spec_options) {
  wire::JobStatus js = JobStatusHead(record);
  if (!with_tasks && !with_groups) {
    // Counts alone (a list of jobs): added up by SQLite, not a record made
    // for each of a finished job's rows (100,000 rows took 150 ms).
    auto counts = store.TaskStateCounts(record.id);
    if (!counts.ok()) {
      spdlog::warn("coordinator: status of job {}: {}", record.id,
                   counts.status().ToString());
      return js;
    }
    *js.mutable_counts() = CountsToWire(CountStates(*counts));
    return js;
  }
  auto rows = store.Tasks(record.id);
  if (!rows.ok()) {
    spdlog::warn("coordinator: status of job {}: {}", record.id,
                 rows.status().ToString());
    return js;
  }
  *js.mutable_counts() = CountsToWire(CountRows(*rows, record.tasks));
  auto state_of = [](const store::TaskRecord& row) {
    return dag::ParseTaskState(row.state).value_or(dag::TaskState::kWaiting);
  };
  if (with_groups) {
    // A finished job's graph comes from its stored spec; its instances are
    // its rows in spec order.
    auto loaded = spec::LoadString(record.spec_text, record.spec_file, spec_options);
    const std::vector<store::TaskRecord> dense =
        DenseRows(*rows, record.tasks, record.id);
    if (loaded.ok() && ReplayFanouts(*loaded.spec, dense).ok() &&
        loaded.spec->tasks.size() == dense.size()) {
      for (auto& g :
           BuildGroups(*loaded.spec, [&](uint32_t t) { return state_of(dense[t]); })) {
        *js.add_groups() = std::move(g);
      }
    }
  }
  if (!with_tasks) return js;
  // Tasks that match `page`: counted all, listed from page.offset while the
  // body stays under kMaxStatusBytes and page.limit allows.
  uint32_t matched = 0;
  size_t bytes = js.ByteSizeLong();
  for (const auto& row : *rows) {
    if (!page.Matches(state_of(row), row.name)) continue;
    const uint32_t position = matched++;
    if (position < page.offset || bytes >= kMaxStatusBytes) continue;
    if (page.limit != 0 && position - page.offset >= page.limit) continue;
    wire::TaskStatus* ts = js.add_tasks();
    ts->set_name(row.name);
    ts->set_group(std::string(GroupOfInstance(row.name)));
    ts->set_state(row.state);
    ts->set_attempts(row.attempts);
    ts->set_pending_reason(row.pending_reason);
    FillFromRow(store, row, ts);
    bytes += ts->ByteSizeLong() + 4;
  }
  js.set_tasks_matched(matched);
  return js;
}

void FillFromRow(store::Store& store, const store::TaskRecord& row,
                 wire::TaskStatus* ts) {
  ts->set_reason(row.reason);
  ts->set_detail(row.detail);
  ts->set_worker(row.worker);
  ts->set_wall_us(static_cast<uint64_t>(std::max<int64_t>(0, row.wall_us)));
  ts->set_started_unix_ms(row.started_ms);
  ts->set_finished_unix_ms(row.finished_ms);
  FillLastAttempt(store, row, ts);
}

void FillLastAttempt(store::Store& store, const store::TaskRecord& row,
                     wire::TaskStatus* ts) {
  const bool has_code =
      row.reason == "ok" || row.reason == "exit" || row.reason == "signal";
  ts->set_exit_code(has_code ? row.exit_code : -1);
  ts->set_signal(row.signal);
  ts->set_result_json(row.result_json);
  if (std::optional<Outputs> outputs = OutputsFromJson(row.outputs_json)) {
    for (auto& [k, v] : *outputs) (*ts->mutable_outputs())[k] = std::move(v);
  }
  if (row.attempts < 2) return;
  auto attempts = store.Attempts(row.job_id, row.name, row.index);
  if (!attempts.ok()) {
    spdlog::warn("coordinator: attempts of {}/{}: {}", row.job_id, row.name,
                 attempts.status().ToString());
    return;
  }
  // Every finished attempt but the newest, which the row already shows.
  uint32_t newest = 0;
  for (const auto& a : *attempts) {
    if (a.finished) newest = std::max(newest, a.number);
  }
  for (const auto& a : *attempts) {
    if (!a.finished || a.number == newest) continue;
    wire::AttemptSummary* s = ts->add_earlier();
    s->set_attempt(a.number);
    s->set_reason(std::string(ReasonName(a.outcome.reason)));
    s->set_detail(a.outcome.Describe());
    s->set_worker(a.worker);
  }
}

std::string ReadLog(const std::filesystem::path& path) {
  std::string text;
  if (ReadWholeFile(path.string(), &text) != 0) text.clear();
  return text;
}

StoredLogs LogsOfStoredJob(store::Store& store, const wire::LogsRequest& req) {
  StoredLogs out;
  auto found = store.GetJob(req.job_id());
  if (!found.ok()) return out.error = found.status().ToString(), out;
  if (!*found) return out.error = "no job " + req.job_id(), out;
  const store::JobRecord& record = **found;
  auto rows = store.Tasks(record.id);
  if (!rows.ok()) return out.error = rows.status().ToString(), out;
  auto row = std::find_if(rows->begin(), rows->end(), [&](const store::TaskRecord& x) {
    return x.name == req.task();
  });
  if (row == rows->end()) {
    out.error = "job " + req.job_id() + " has no task '" + req.task() + "'";
    return out;
  }
  if (req.attempt() > row->attempts) {
    out.error = "task '" + row->name + "' has no attempt " +
                std::to_string(req.attempt()) + " (it has made " +
                std::to_string(row->attempts) + ")";
    return out;
  }
  const uint32_t number = req.attempt() ? req.attempt() : row->attempts;
  out.logs.set_job_id(record.id);
  out.logs.set_task(row->name);
  out.logs.set_attempt(number);
  out.logs.set_done(true);
  out.logs.set_state(row->state);
  if (number > 0) {
    out.frames.push_back(ReadLog(store.LogPath(record.id, row->name, number, false)));
    out.frames.push_back(ReadLog(store.LogPath(record.id, row->name, number, true)));
  } else {
    out.frames = {std::string(), std::string()};
  }
  return out;
}

StoredEvent EventOfStoredJob(store::Store& store, const std::string& job_id) {
  StoredEvent out;
  auto found = store.GetJob(job_id);
  if (!found.ok()) return out.error = found.status().ToString(), out;
  if (!*found) return out.error = "no job " + job_id, out;
  auto counts = store.TaskStateCounts(job_id);
  if (!counts.ok()) return out.error = counts.status().ToString(), out;
  out.event.set_job_id((*found)->id);
  out.event.set_state((*found)->state);
  *out.event.mutable_counts() = CountsToWire(CountStates(*counts));
  return out;
}

}  // namespace drover

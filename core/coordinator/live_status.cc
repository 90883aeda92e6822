#include "core/coordinator/live_status.h"

#include <optional>
#include <utility>

#include "core/coordinator/stored_status.h"

namespace drover {

void RenderLiveStatus(store::Store& store, const LiveStatus& live, wire::JobStatus* out) {
  out->CopyFrom(live.head);
  size_t bytes = out->ByteSizeLong();
  std::optional<store::TaskRecord> stored;
  store::TaskRecord first;
  for (const LiveStatus::Task& task : live.tasks) {
    if (bytes >= kMaxStatusBytes) break;
    std::string name = live.names.Name(task.index);
    const store::TaskRecord* row =
        task.held >= 0 ? &live.held[static_cast<size_t>(task.held)] : nullptr;
    if (!row && task.ended) {
      auto found = store.TaskAt(out->job_id(), task.index, name);
      stored = found.ok() ? std::move(*found) : std::nullopt;
      if (stored && stored->name == name) row = &*stored;
    }
    if (!row) {
      // Its first row (JobState::FirstRow), or one the store lacks.
      first = store::TaskRecord{};
      first.job_id = out->job_id();
      first.index = task.index;
      first.name = name;
      first.state = dag::TaskStateName(dag::TaskState::kWaiting);
      first.attempts = task.first_attempts;
      first.attempt_base = task.first_attempts;
      row = &first;
    }
    wire::TaskStatus* ts = out->add_tasks();
    ts->set_name(std::move(name));
    ts->set_group(live.names.Group(task.index));
    ts->set_state(std::string(dag::TaskStateName(task.state)));
    ts->set_attempts(task.attempts);
    ts->set_backend(live.names.Backend(task.index));
    if (task.state == dag::TaskState::kRunning) {
      ts->set_waiting_in_worker(task.waiting_in_worker);
    }
    if (task.reason >= 0) {
      ts->set_pending_reason(live.reasons[static_cast<size_t>(task.reason)]);
    } else if (task.fanout) {
      ts->set_pending_reason(row->pending_reason);  // what the fan-out waits for
    }
    FillFromRow(store, *row, ts);
    bytes += ts->ByteSizeLong() + 4;
  }
}

}  // namespace drover

// What clients are told of a job the coordinator does not run, from the
// store alone: its STATUS, a task's LOGS and a late WATCH's JOB-EVENT
// (docs/protocol.md). Plain functions of a Store, so that the loop and the
// store reader (store_reader.h, a thread with its own connection) build
// the same replies; neither touches the loop's memory.
#ifndef DROVER_CORE_COORDINATOR_STORED_STATUS_H_
#define DROVER_CORE_COORDINATOR_STORED_STATUS_H_

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "core/coordinator/job_views.h"
#include "core/protocol/drover.pb.h"
#include "core/spec/job_spec.h"
#include "core/store/store.h"

namespace drover {

// A STATUS-REPLY lists tasks while its body stays under this, well below
// the 4 MiB body limit of the protocol; jobs are always listed.
inline constexpr size_t kMaxStatusBytes = 3u << 20;
// Jobs a STATUS without a job lists when its limit is 0.
inline constexpr uint32_t kDefaultStatusLimit = 20;

// The fields of a JobStatus that `record` says (no counts, groups or tasks).
wire::JobStatus JobStatusHead(const store::JobRecord& record);

// The status of a job from its rows: counts (SQLite's sums when neither
// tasks nor groups are asked for), its groups from its stored spec, and the
// tasks `page` selects while the reply stays under kMaxStatusBytes.
wire::JobStatus StoredJobStatus(store::Store& store, const store::JobRecord& record,
                                bool with_tasks, const TaskPage& page, bool with_groups,
                                const spec::LoadOptions& spec_options);

// The outcome fields of `row`'s last attempt, and every earlier finished
// attempt when it made more than one.
void FillLastAttempt(store::Store& store, const store::TaskRecord& row,
                     wire::TaskStatus* ts);
// What a task's status says from its row: reason, detail, worker, wall
// time, start and end, and FillLastAttempt's fields.
void FillFromRow(store::Store& store, const store::TaskRecord& row, wire::TaskStatus* ts);

// The whole file at `path`; empty when it cannot be read (no log).
std::string ReadLog(const std::filesystem::path& path);

// A LOGS-REQUEST for a job that is not running: its LOGS (done), with the
// attempt's stdout and stderr as `frames`, or the ERROR's text.
struct StoredLogs {
  wire::Logs logs;
  std::vector<std::string> frames;
  std::string error;  // set: reply ERROR with it instead
};
StoredLogs LogsOfStoredJob(store::Store& store, const wire::LogsRequest& req);

// A WATCH of a job that is not running: the JOB-EVENT of its end, or the
// ERROR's text.
struct StoredEvent {
  wire::JobEvent event;
  std::string error;
};
StoredEvent EventOfStoredJob(store::Store& store, const std::string& job_id);

}  // namespace drover

#endif  // DROVER_CORE_COORDINATOR_STORED_STATUS_H_

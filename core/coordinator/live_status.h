// LiveStatus: a running job's STATUS, made in two steps so that the loop
// does only the part that needs its memory.
//
// The loop takes the snapshot (Loop::SnapshotStatus, client_api.cc): the
// job's head, counts and groups, and for each task the page lists what
// only the loop knows: its state and attempts, whether it waits in its
// worker, why a ready task waits, and the row of a task in flight. A few
// bytes a task, and no name, row or message is made for it (the names of
// whole instances among them are copied, a matrix's groups shared). Then
// RenderLiveStatus, on the store reader's thread (store_reader.h), makes
// the JobStatus: each name from the snapshot's TaskList::Names, the row
// of each ended task and its earlier attempts from the store. The reader
// renders it after the commit of the turn that took the snapshot, so the
// rows of the tasks that ended in that turn are there to read.
//
// The loop rendered a running job's status itself: 120 ms of its time for
// a 100,000-task job, a stall of the job's dispatches for each poll of its
// status (docs/benchmarks.md, session 29).
#ifndef DROVER_CORE_COORDINATOR_LIVE_STATUS_H_
#define DROVER_CORE_COORDINATOR_LIVE_STATUS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dag/plan.h"
#include "core/protocol/drover.pb.h"
#include "core/spec/job_spec.h"
#include "core/store/store.h"

namespace drover {

struct LiveStatus {
  struct Task {
    uint32_t index = 0;
    uint32_t attempts = 0;        // shown: those of earlier runs and of this one
    uint32_t first_attempts = 0;  // its first row's: those of earlier runs
    int32_t reason = -1;          // a ready task's pending reason: reasons[reason]
    int32_t held = -1;            // a task in flight's row, held[held]: the loop's
    dag::TaskState state = dag::TaskState::kWaiting;
    bool waiting_in_worker = false;  // dispatched ahead, not started there yet
    bool ended = false;              // its row is the store's
    bool fanout = false;  // a fan-out placeholder that waits: its row says for what
  };
  wire::JobStatus head;     // all but the tasks (tasks_matched included)
  std::vector<Task> tasks;  // those the page lists, in order, before the size bound
  std::vector<std::string> reasons;
  std::vector<store::TaskRecord> held;
  spec::TaskList::Names names;  // of the tasks listed
};

// The status `live` says into `out`, its tasks listed while the reply
// stays under kMaxStatusBytes (stored_status.h); rows of ended tasks and
// earlier attempts read from `store`.
void RenderLiveStatus(store::Store& store, const LiveStatus& live, wire::JobStatus* out);

}  // namespace drover

#endif  // DROVER_CORE_COORDINATOR_LIVE_STATUS_H_

// Dynamic fan-out in the coordinator (docs/spec.md, "Dynamic matrix"): a
// task whose matrix takes values from an upstream output is one
// placeholder (core/spec/dynamic_matrix.h) until the upstream succeeds;
// then the placeholder becomes its first instance and the others are
// appended to the job, with their rows, plan nodes and the dependents'
// edges. Plain functions on JobState / JobSpec, no I/O: the loop stores
// the rows (placement.cc) and a restart replays the same expansions from
// the stored rows (ReplayFanouts).
//
// Instance indices: a static job's instances keep their load-time
// indices; an expansion puts instance 1 at the placeholder's index and
// instances 2.. at the end of the job, in the order expansions happen.
// The stored rows hold that order, which is how a restart finds it again.
#ifndef DROVER_CORE_COORDINATOR_FANOUT_H_
#define DROVER_CORE_COORDINATOR_FANOUT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/base/status.h"
#include "core/coordinator/job_state.h"
#include "core/spec/job_spec.h"
#include "core/store/store.h"

namespace drover {

// The placeholders of `spec` (tasks with TaskSpec::dynamic), by index.
std::vector<uint32_t> FanoutPlaceholders(const spec::JobSpec& spec);

// The outputs (OutputsToJson) of task i's last finished attempt, "" for none.
using OutputsOf = std::function<std::string_view(uint32_t)>;

// The instances placeholder `t` of `spec` expands to, from the outputs of
// its sources (each has succeeded). Fails,
// with a message that names the task, the key and the upstream output,
// when an output is missing or is not a usable JSON list
// (spec::ParseMatrixValues), or when the job would pass
// options.max_instances instances or options.max_edges dependencies.
// O(instances + size of the outputs) (+ O(tasks) for the edge count).
Result<std::vector<spec::TaskSpec>> BuildFanout(const spec::JobSpec& spec,
                                                const OutputsOf& outputs_of, uint32_t t,
                                                const spec::LoadOptions& options);

// Puts `instances` (non-empty, from BuildFanout) in `spec`: the first at
// `t`, the rest appended; every task that needed `t` needs them all, and
// every `${tasks.NAME...}` reference to the placeholder lists them
// (OutputRef::indices). Returns the instances' indices, in matrix order.
// O(tasks + edges).
std::vector<uint32_t> InsertFanout(spec::JobSpec& spec, uint32_t t,
                                   std::vector<spec::TaskSpec> instances);

// Expands placeholder `t` of a running job whose plan has it ready (its
// upstream tasks succeeded): BuildFanout, InsertFanout, then the job's
// rows (new ones `waiting`, numbered after `job.fanout_old`'s attempts of
// the same name), current, attempt_base and plan (dag::Plan::Grow). When
// every upstream of `t` was carried over from the run being resumed, an
// instance that succeeded there with the same fingerprint is carried over
// too (row kept, marked succeeded, ended). Returns the instances' indices,
// and their rows in `rows`, which the caller stores (Store::ExpandTask);
// on failure changes nothing.
Result<std::vector<uint32_t>> ExpandFanout(JobState& job, uint32_t t,
                                           const spec::LoadOptions& options,
                                           std::vector<store::TaskRecord>* rows);

// After a restart: `spec` (as loaded, placeholders unexpanded) gets the
// expansions its stored `rows` show, in the order they happened, from the
// outputs those rows hold; then its tasks match the rows one for one.
// kFailedPrecondition when they cannot (rows another drover wrote).
Status ReplayFanouts(spec::JobSpec& spec, const std::vector<store::TaskRecord>& rows);

}  // namespace drover

#endif  // DROVER_CORE_COORDINATOR_FANOUT_H_

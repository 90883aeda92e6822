// Views of a job for clients that page through it (the HTTP API, see
// docs/api.md): which tasks a STATUS asks for, and the job's DAG as one
// node per task key with its instances counted by state. Plain data, no
// I/O: the loop fills a STATUS-REPLY with them (client_api.cc).
#ifndef DROVER_CORE_COORDINATOR_JOB_VIEWS_H_
#define DROVER_CORE_COORDINATOR_JOB_VIEWS_H_

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/status.h"
#include "core/dag/plan.h"
#include "core/protocol/drover.pb.h"
#include "core/spec/job_spec.h"

namespace drover {

// The task key of an instance name: "shards[shard=0]" -> "shards";
// "build" -> "build".
std::string_view GroupOfInstance(std::string_view instance);

// Adds `n` tasks in state `s` to `c` (total included).
void CountState(dag::PlanCounts& c, dag::TaskState s, uint32_t n = 1);

// Which tasks of a job a STATUS lists (StatusRequest fields 21-24, 27).
struct TaskPage {
  uint32_t offset = 0;
  uint32_t limit = 0;  // 0: no limit but the reply's size
  std::optional<dag::TaskState> state;
  std::vector<dag::TaskState> states;  // StatusRequest.task_states: any of these
  std::string group;
  std::string name;  // one instance

  // Matches, but for `group` and `name`.
  bool MatchesState(dag::TaskState s) const {
    return (!state || *state == s) &&
           (states.empty() || std::find(states.begin(), states.end(), s) != states.end());
  }
  // kInvalidArgument naming the unknown state.
  static Result<TaskPage> FromRequest(const wire::StatusRequest& req);
  bool Matches(dag::TaskState s, std::string_view instance) const {
    return MatchesState(s) && (group.empty() || GroupOfInstance(instance) == group) &&
           (name.empty() || instance == name);
  }
};

// The DAG of `spec`: one node per task key in spec order, its needs as
// keys, its instances counted by `state_of(instance index)`. O(instances +
// edges).
std::vector<wire::TaskGroup> BuildGroups(
    const spec::JobSpec& spec, const std::function<dag::TaskState(uint32_t)>& state_of);

}  // namespace drover

#endif  // DROVER_CORE_COORDINATOR_JOB_VIEWS_H_

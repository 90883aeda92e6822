// SpawnAttempt: the spawn backend's attempt, a TaskAttempt with its payload
// (a drover.spawn.SpawnTask, backends/spawn/spawn.proto) decoded, and the
// conversions between the two.
#ifndef DROVER_BACKENDS_SPAWN_SPAWN_ATTEMPT_H_
#define DROVER_BACKENDS_SPAWN_SPAWN_ATTEMPT_H_

#include <string>
#include <utility>
#include <vector>

#include "backends/backend.h"
#include "backends/process/resource_limits.h"
#include "core/base/status.h"

namespace drover {

// What a process is started with. `env` (inherited from TaskAttempt) is the
// worker's DROVER_* variables followed by the task's own, added to the
// worker's environment in order.
struct SpawnAttempt : TaskAttempt {
  std::vector<std::string> argv;  // argv[0] is looked up in the worker's PATH
  std::string cwd;                // empty: the worker's working directory
  ResourceLimits limits;          // the task's `limits`; empty: none
};

// The spawn backend's attempt for `attempt`: its payload decoded, the
// task's env appended to attempt.env, and `${services.NAME.port|host}`
// expanded in argv, env values and cwd. InvalidArgument when the payload
// is not a SpawnTask.
Result<SpawnAttempt> DecodeSpawnAttempt(TaskAttempt attempt);

// The TaskAttempt that decodes to `attempt` (its argv, env, cwd and limits
// in the payload; `env` empty), for tests and tools that build a SpawnAttempt.
TaskAttempt EncodeSpawnAttempt(SpawnAttempt attempt);

// A serialized SpawnTask (what a spawn task's DISPATCH carries), for tests
// and tools.
std::string SpawnPayload(const std::vector<std::string>& argv,
                         const std::vector<std::pair<std::string, std::string>>& env = {},
                         const std::string& cwd = "", const ResourceLimits& limits = {});

}  // namespace drover

#endif  // DROVER_BACKENDS_SPAWN_SPAWN_ATTEMPT_H_

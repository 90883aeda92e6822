// ForkAttempt: the fork backend's attempt, a TaskAttempt with its payload
// (a drover.fork.ForkTask, backends/fork/fork.proto) decoded and its pool
// resolved, and the conversions between them.
#ifndef DROVER_BACKENDS_FORK_FORK_ATTEMPT_H_
#define DROVER_BACKENDS_FORK_FORK_ATTEMPT_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "backends/backend.h"
#include "core/base/status.h"
#include "core/spec/job_spec.h"

namespace drover {

// A pool of warm worker processes, as declared under `pools:` in a job spec
// or in a worker's configuration (docs/spec.md).
struct PoolSpec {
  std::string name;
  // "process": each instance runs `command` and speaks the IPC channel on
  // fd 3 (NODE_CHANNEL_FD). "cow": instances are forked from the worker's
  // zygote and run registered functions (like the threads backend).
  std::string mode = "process";
  std::vector<std::string> command;  // argv; empty in cow mode
  int instances = 1;                 // processes kept warm
  int max_tasks = 0;                 // recycle a process after N tasks; 0: never
  Duration idle_timeout{0};          // stop idle processes after this; 0: never
  std::vector<std::pair<std::string, std::string>> env;
  std::string cwd;

  bool operator==(const PoolSpec&) const = default;
};

// The pool a spec (job or worker configuration) declares.
PoolSpec ToPoolSpec(const spec::PoolDecl& decl);

struct ForkAttempt : TaskAttempt {
  std::string pool;          // the pool's name
  PoolSpec pool_spec;        // its declaration (the job's, else the worker's)
  std::string message_json;  // process pools: the message
  std::string fn;            // cow pools: the function and its arguments
  std::string args_json;
  std::vector<std::string> plugins;  // cow pools: loaded into the zygote first
};

// The fork backend's attempt for `attempt`: its payload decoded,
// `${services.NAME.port|host}` expanded in the message and the args, and
// the pool resolved: the declaration the payload carries (the job's), else
// the one of `worker_pools` (the worker's configuration) of that name.
// InvalidArgument when the payload is not a ForkTask; NotFound when the
// pool is declared by neither.
Result<ForkAttempt> DecodeForkAttempt(
    TaskAttempt attempt, const std::map<std::string, spec::PoolDecl>& worker_pools);

// The TaskAttempt that decodes to `attempt` (its pool, with pool_spec as the
// declaration, message, function and plugins in the payload), for tests
// and tools that build a ForkAttempt.
TaskAttempt EncodeForkAttempt(ForkAttempt attempt);

// A serialized ForkTask (what a fork task's DISPATCH carries), for tests and
// tools: a message for process pool `pool.name`, declared by `pool`.
std::string ForkMessagePayload(const PoolSpec& pool, const std::string& message_json);
// The same for a function call on cow pool `pool.name`.
std::string ForkCallPayload(const PoolSpec& pool, const std::string& fn,
                            const std::string& args_json,
                            const std::vector<std::string>& plugins = {});
// A message for the worker's own pool `name` (no declaration carried).
std::string ForkPayloadForWorkerPool(const std::string& name,
                                     const std::string& message_json);

}  // namespace drover

#endif  // DROVER_BACKENDS_FORK_FORK_ATTEMPT_H_

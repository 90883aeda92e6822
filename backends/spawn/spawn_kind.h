// The spawn backend's task kind (core/spec/task_kind.h): `run`, `env` and
// `cwd` and `limits` of a task, into a drover.spawn.SpawnTask
// (backends/spawn/spawn.proto).
#ifndef DROVER_BACKENDS_SPAWN_SPAWN_KIND_H_
#define DROVER_BACKENDS_SPAWN_SPAWN_KIND_H_

#include <memory>

#include "core/spec/task_kind.h"

namespace drover::spawn {

std::unique_ptr<spec::TaskKind> MakeSpawnTaskKind();

}  // namespace drover::spawn

#endif  // DROVER_BACKENDS_SPAWN_SPAWN_KIND_H_

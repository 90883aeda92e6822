// The fork backend's task kind (core/spec/task_kind.h): `pool`, `message`,
// or `fn` and `args` on a cow pool, into a drover.fork.ForkTask
// (backends/fork/fork.proto).
#ifndef DROVER_BACKENDS_FORK_FORK_KIND_H_
#define DROVER_BACKENDS_FORK_FORK_KIND_H_

#include <memory>

#include "core/spec/task_kind.h"

namespace drover::fork {

std::unique_ptr<spec::TaskKind> MakeForkTaskKind();

}  // namespace drover::fork

#endif  // DROVER_BACKENDS_FORK_FORK_KIND_H_

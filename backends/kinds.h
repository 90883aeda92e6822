// The task kinds (core/spec/task_kind.h) of the built-in backends, for the
// spec loader wherever it runs: the coordinator, the CLI, tests. Links only
// the kinds and their payload messages, not the backends' runtimes.
#ifndef DROVER_BACKENDS_KINDS_H_
#define DROVER_BACKENDS_KINDS_H_

#include "core/spec/task_kind.h"

namespace drover {

// Registers spawn, fork, threads and cluster into `kinds` (in that order:
// the order "the backends are ..." lists them in). A name already in
// `kinds` keeps its kind.
void AddBuiltinTaskKinds(spec::TaskKinds* kinds);

}  // namespace drover

#endif  // DROVER_BACKENDS_KINDS_H_

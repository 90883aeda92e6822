// The threads backend's task kind (core/spec/task_kind.h): `fn` and `args`
// of a task, into a drover.threads.ThreadsTask (backends/threads/threads.proto).
#ifndef DROVER_BACKENDS_THREADS_THREADS_KIND_H_
#define DROVER_BACKENDS_THREADS_THREADS_KIND_H_

#include <memory>

#include "core/spec/task_kind.h"

namespace drover::threads {

std::unique_ptr<spec::TaskKind> MakeThreadsTaskKind();

}  // namespace drover::threads

#endif  // DROVER_BACKENDS_THREADS_THREADS_KIND_H_

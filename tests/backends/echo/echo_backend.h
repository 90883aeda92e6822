// The "echo" backend: a backend that lives only under tests/, to prove that
// a backend is one folder plus one registration line (issue 10). A task
//
//   greet: {backend: echo, text: "hello ${matrix.who}"}
//
// prints its text (with `${services.NAME.port}` expanded) and returns it as
// its result, {"echo": TEXT}. docs/backends/adding-a-backend.md walks
// through this folder.
//
// Threading: Submit, Cancel and Shutdown are called from the worker's I/O
// thread; attempts run on the backend's one thread, which reports through
// BackendEvents.
#ifndef DROVER_TESTS_BACKENDS_ECHO_ECHO_BACKEND_H_
#define DROVER_TESTS_BACKENDS_ECHO_ECHO_BACKEND_H_

#include <memory>

#include "backends/backend.h"
#include "core/spec/task_kind.h"

namespace drover::echo {

// The spec side: reads `text` (a string that may hold ${matrix.KEY}, also
// allowed in `defaults`) into a drover.echo.EchoTask.
std::unique_ptr<spec::TaskKind> MakeEchoTaskKind();

// The worker side.
Result<std::unique_ptr<Backend>> MakeEchoBackend(const BackendConfig& config);

}  // namespace drover::echo

#endif  // DROVER_TESTS_BACKENDS_ECHO_ECHO_BACKEND_H_

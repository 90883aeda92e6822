// `drover-echo`: the drover CLI with the built-in backends and the echo
// backend. The one registration line below is all it takes to add a
// backend; nothing in core/, worker/ or tools/ knows about "echo".
#include <utility>

#include "backends/backend.h"
#include "tests/backends/echo/echo_backend.h"
#include "tools/cli/cli.h"

int main(int argc, char** argv) {
  drover::BackendRegistry registry;
  drover::RegisterBuiltinBackends(registry);
  (void)registry.Register("echo", drover::echo::MakeEchoTaskKind(), drover::echo::MakeEchoBackend);
  return drover::cli::RunCli(argc, argv, std::move(registry));
}

// drover: one binary, one subcommand per verb, with every backend built
// into this drover. See `drover --help`.
#include <utility>

#include "backends/backend.h"
#include "backends/process/child_launcher.h"
#include "tools/cli/cli.h"

int main(int argc, char** argv) {
  // Before any thread: every thread of drover blocks SIGCHLD (see there).
  drover::BlockChildExitSignal();
  drover::BackendRegistry registry;
  drover::RegisterBuiltinBackends(registry);
  return drover::cli::RunCli(argc, argv, std::move(registry));
}

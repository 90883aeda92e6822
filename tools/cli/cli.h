// The `drover` command line as a function of the backends it offers, so
// that a program other than tools/cli/main.cc (a test's drover with one
// more backend) is the same CLI. See `drover --help`.
#ifndef DROVER_TOOLS_CLI_CLI_H_
#define DROVER_TOOLS_CLI_CLI_H_

#include "backends/backend.h"

namespace drover::cli {

// Parses argv and runs one subcommand; returns the process exit code
// (commands.h: 0 ok, 1 failed, 2 bad usage or spec). `drover run`'s
// embedded worker and `drover worker` run the backends of `registry`.
// Call it from main(), before any thread starts: `drover run` may fork a
// zygote first (backends/fork/zygote.h).
int RunCli(int argc, char** argv, BackendRegistry registry);

}  // namespace drover::cli

#endif  // DROVER_TOOLS_CLI_CLI_H_

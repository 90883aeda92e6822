// `drover serve hello|echo|sort`: the built-in HTTP servers (see
// backends/cluster/http_server.h) as a command, for examples, tests and
// benchmarks of the cluster backend.
#ifndef DROVER_TOOLS_CLI_SERVE_COMMAND_H_
#define DROVER_TOOLS_CLI_SERVE_COMMAND_H_

#include <memory>
#include <string>

namespace CLI {
class App;
}

namespace drover::cli {

struct ServeArgs {
  std::string server;  // hello, echo, sort
  std::string listen;  // HOST:PORT; empty: the socket we were given
  double drain_seconds = 10;
};

struct ServeSubcommand {
  CLI::App* command = nullptr;
  std::shared_ptr<ServeArgs> args;
};

// Adds `serve` and its options to `app`.
ServeSubcommand AddServeCommand(CLI::App& app);

// Runs the server until SIGTERM/SIGINT and its drain. Returns the exit code.
int ServeCommand(const ServeArgs& args);

}  // namespace drover::cli

#endif  // DROVER_TOOLS_CLI_SERVE_COMMAND_H_

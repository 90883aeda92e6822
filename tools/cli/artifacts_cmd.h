// `drover artifacts [JOB] [TASK]`, `drover artifacts get JOB TASK PATH
// [-o FILE]` and `drover gc --keep-last N | --older-than AGE`: the artifact
// store of a state directory (docs/state.md, "Artifacts"), and `get`
// through a coordinator too.
#ifndef DROVER_TOOLS_CLI_ARTIFACTS_CMD_H_
#define DROVER_TOOLS_CLI_ARTIFACTS_CMD_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tools/cli/client.h"

namespace CLI {
class App;
}

namespace drover::cli {

struct ArtifactsArgs {
  std::vector<std::string> list;  // [JOB] [TASK]
  std::string job, task, path;    // get
  std::string out;                // get -o; empty: stdout
  std::string state_dir = ".drover";
  bool json = false;
  ConnectionArgs connection;    // get through a coordinator
  int keep_last = -1;           // gc
  std::string older_than;       // gc
  std::string min_age = "10m";  // gc: younger blobs are kept
};

struct ArtifactsSubcommands {
  CLI::App* list = nullptr;
  CLI::App* get = nullptr;
  CLI::App* gc = nullptr;
  std::shared_ptr<ArtifactsArgs> args;
};

// Adds `artifacts` (with `get`) and `gc` to `app`.
ArtifactsSubcommands AddArtifactsCommands(CLI::App& app);
// Runs the one of them that was parsed; nullopt when none was.
std::optional<int> RunArtifactsCommands(const ArtifactsSubcommands& commands);

}  // namespace drover::cli

#endif  // DROVER_TOOLS_CLI_ARTIFACTS_CMD_H_

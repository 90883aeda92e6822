// `drover jobs [--state S] [--name N] [--since 1h] [--limit N] [--output json]`
// (docs/operations.md, "Listing jobs").
#ifndef DROVER_TOOLS_CLI_JOBS_COMMAND_H_
#define DROVER_TOOLS_CLI_JOBS_COMMAND_H_

#include <cstdint>
#include <string>

#include "tools/cli/client.h"
#include "tools/cli/commands.h"

namespace drover::cli {

struct JobsArgs {
  std::string state;     // a job state name; "" = any
  std::string name;      // a job name; "" = any
  std::string since;     // a duration ("1h"): created no earlier than that ago
  uint32_t limit = 100;  // at most this many, newest first
  bool json = false;
  std::string state_dir = ".drover";
  ConnectionArgs connection;  // a coordinator given: ask it instead
};
int JobsCommand(const JobsArgs& args);

}  // namespace drover::cli

#endif  // DROVER_TOOLS_CLI_JOBS_COMMAND_H_

// The `drover` subcommands. Each returns the process exit code:
//   0 success, 1 a task or job failed (or a runtime error), 2 bad usage or a
//   bad spec.
#ifndef DROVER_TOOLS_CLI_COMMANDS_H_
#define DROVER_TOOLS_CLI_COMMANDS_H_

#include <string>
#include <vector>

namespace drover::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

struct RunArgs {
  std::string file;
  int jobs = 0;  // spawn slots of the embedded worker; 0 = number of cores
  bool resume = false;
  std::string state_dir = ".drover";
  bool progress = true;  // a live line on a TTY (off: one line per task)
};
int RunCommand(const RunArgs& args);

int ValidateCommand(const std::vector<std::string>& files);

struct StatusArgs {
  std::string job;  // empty: the latest
  std::string state_dir = ".drover";
  bool json = false;
};
int StatusCommand(const StatusArgs& args);

struct LogsArgs {
  std::vector<std::string> positional;  // [JOB] TASK
  int attempt = 0;                      // 0: the latest
  std::string stream = "both";          // out, err, both
  std::string state_dir = ".drover";
};
int LogsCommand(const LogsArgs& args);

}  // namespace drover::cli

#endif  // DROVER_TOOLS_CLI_COMMANDS_H_

// The client commands that talk to a coordinator (docs/operations.md,
// "Several hosts"). Each returns the process exit code (commands.h).
#ifndef DROVER_TOOLS_CLI_CLIENT_COMMANDS_H_
#define DROVER_TOOLS_CLI_CLIENT_COMMANDS_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "core/spec/job_spec.h"
#include "tools/cli/client.h"
#include "tools/cli/commands.h"

namespace drover::cli {

// A zmq context and a connected Client, for one command.
class ClientSession {
 public:
  static Result<std::unique_ptr<ClientSession>> Open(const ConnectionArgs& args);
  Client& client() { return *client_; }

 private:
  ClientSession() = default;
  zmq::context_t context_;          // outlives client_
  std::unique_ptr<Client> client_;
};

// Prints "drover: MESSAGE"; returns 2 for a usage error, else 1.
int PrintError(const Status& s);

// The SUBMIT of `text`, the spec read from `file`, from the current
// directory. kInvalidArgument (naming the file) when it is too large to send.
Result<wire::Submit> MakeSubmit(const std::string& file, std::string text, bool resume,
                                bool watch);

// Takes a SUBMITTED answer: prints "drover: job ID: N tasks" on stderr (and,
// with `print_id`, the id alone on stdout) and returns the job id; nullopt,
// with the spec's errors printed, when the job was refused.
std::optional<std::string> TakeSubmitted(const protocol::Message& m, bool print_id);

// The exit code for a job that ended in `state` (a JOB-EVENT's): 0 when it
// succeeded, else 1.
int ExitForJobState(const std::string& state);

struct SubmitArgs {
  std::string file;
  bool wait = false;
  bool follow = false;
  bool resume = false;
  bool no_cache = false;            // --no-cache
  std::string lost_timeout = "5m";  // while waiting: how long the coordinator may be away
  ConnectionArgs connection;
  // The backends to read the spec with locally, to hash its `inputs`
  // (input_hashes.h); null: no hashes are sent.
  const spec::TaskKinds* kinds = nullptr;
};
int SubmitCommand(const SubmitArgs& args);

struct RetryArgs {
  std::string job;
  bool wait = false;
  std::string lost_timeout = "5m";
  ConnectionArgs connection;
};
int RetryCommand(const RetryArgs& args);

struct CancelArgs {
  std::string target;  // JOB or JOB/TASK
  ConnectionArgs connection;
};
int CancelCommand(const CancelArgs& args);

// service_commands.cc: `drover service reload NAME [--job JOB]`.
struct ServiceReloadArgs {
  std::string service;
  std::string job;  // empty: every running job's service NAME and the workers' own
  ConnectionArgs connection;
};
int ServiceReloadCommand(const ServiceReloadArgs& args);

// remote_views.cc
// `states`: --state, the task states to show ("" = all).
int RemoteStatusCommand(const std::string& job, bool json, const std::string& states,
                        const ConnectionArgs& connection);
int RemoteLogsCommand(const std::vector<std::string>& positional, int attempt,
                      const std::string& stream, bool follow, const ConnectionArgs& connection);
int WorkersCommand(bool json, const ConnectionArgs& connection);

// pipelines_command.cc: `drover pipelines [--output json] [--next N]` and
// `drover pipelines run NAME`.
struct PipelinesArgs {
  bool json = false;
  uint32_t next = 3;  // next run times per pipeline
  std::string run;    // `run NAME`
  ConnectionArgs connection;
};
int PipelinesCommand(const PipelinesArgs& args);
int PipelineRunCommand(const PipelinesArgs& args);

}  // namespace drover::cli

#endif  // DROVER_TOOLS_CLI_CLIENT_COMMANDS_H_

// The `drover` subcommands. Each returns the process exit code:
//   0 success, 1 a task or job failed (or a runtime error), 2 bad usage or a
//   bad spec.
#ifndef DROVER_TOOLS_CLI_COMMANDS_H_
#define DROVER_TOOLS_CLI_COMMANDS_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "core/base/clock.h"
#include "core/base/status.h"

namespace drover {
class BackendRegistry;  // backends/backend.h
}  // namespace drover

namespace drover::http {
class HttpServer;
}  // namespace drover::http

namespace drover::store {
class Store;
struct JobRecord;
struct TaskRecord;
}  // namespace drover::store

namespace drover::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

// --http ADDR and --http-token FILE of `run` and `coordinator`
// (tools/http/server.h); address empty: no HTTP.
struct HttpArgs {
  std::string address;
  std::string token_file;
};

struct RunArgs {
  std::string file;
  int jobs = 0;  // spawn slots of the embedded worker; 0 = number of cores
  int prefetch =
      -1;  // slots each backend takes beyond -j (WorkerOptions::prefetch); -1: -j
  bool resume = false;
  bool no_cache = false;  // --no-cache: reuse no earlier success
  std::string state_dir = ".drover";
  bool progress = true;  // a live line on a TTY (off: one line per task)
  HttpArgs http;         // --http, --http-token
};
// The embedded worker runs the backends of `registry` (RunCli's).
int RunCommand(const RunArgs& args, const BackendRegistry& registry);

int ValidateCommand(const std::vector<std::string>& files,
                    const BackendRegistry& registry);

struct StatusArgs {
  std::string job;  // empty: the latest
  std::string state_dir = ".drover";
  bool json = false;
  std::string state;  // --state: comma-separated task states to show ("" = all)
};
int StatusCommand(const StatusArgs& args);

struct LogsArgs {
  std::vector<std::string> positional;  // [JOB] TASK
  int attempt = 0;                      // 0: the latest
  std::string stream = "both";          // out, err, both
  std::string state_dir = ".drover";
};
int LogsCommand(const LogsArgs& args);

struct OutputsArgs {
  std::vector<std::string> positional;  // [JOB] TASK
  std::string state_dir = ".drover";
  bool json = false;
};
// Prints the outputs of a task (or of every instance of a matrix task).
int OutputsCommand(const OutputsArgs& args);

// Opens the store of the state directory `dir` (which must exist) and
// finds job `id` there (the latest when empty). On failure prints why and
// returns false. (inspect_commands.cc)
bool OpenJob(const std::string& dir, const std::string& id,
             std::unique_ptr<store::Store>* store, store::JobRecord* job);
// The rows of `rows` that `task` names: the instance of that name, else
// every instance of the matrix task `task` (empty when none).
std::vector<const store::TaskRecord*> ChooseInstances(
    const std::vector<store::TaskRecord>& rows, const std::string& task);

struct ExplainArgs {
  std::vector<std::string> positional;  // [JOB] TASK
  std::string state_dir = ".drover";
  bool json = false;
};
// `drover explain [JOB] TASK`: why a task ran or was cached (explain.cc).
int ExplainCommand(const ExplainArgs& args);

// ---- daemons (daemon_commands.cc) ------------------------------------------

struct CoordinatorArgs {
  std::vector<std::string> listen;  // endpoints to bind
  std::string state_dir = ".drover";
  std::string heartbeat = "1s";
  int liveness = 5;
  std::string curve_secret;     // the coordinator's secret key file
  std::string authorized_keys;  // the public keys it accepts
  bool insecure = false;        // allow a non-loopback endpoint without CURVE
  HttpArgs http;                // --http, --http-token
  std::string pipelines;        // --pipelines DIR: scheduled pipelines; "" = none
};
int CoordinatorCommand(const CoordinatorArgs& args, const BackendRegistry& registry);

struct WorkerArgs {
  std::string connect;              // coordinator endpoint (flag, else config, else env)
  std::vector<std::string> slots;   // BACKEND=N
  std::vector<std::string> labels;  // KEY=VALUE
  std::optional<int> prefetch;      // --prefetch; unset: the config's, else 0
  std::string name;
  std::string config;         // worker config YAML (core/spec/worker_config.h)
  std::string drain_timeout;  // empty: the config's, else 30s
  std::string spool_dir;
  std::string heartbeat = "1s";
  int liveness = 5;
  std::string curve_secret;      // this worker's secret key file
  std::string curve_server_key;  // the coordinator's public key file
  std::string metrics;           // --metrics HOST:PORT; empty: none
  std::string metrics_token;     // --metrics-token FILE
};
// The worker runs the backends of `registry` (RunCli's).
int WorkerCommand(const WorkerArgs& args, const BackendRegistry& registry);

// "30s" -> 30 s; an error naming `flag` otherwise.
Result<Duration> ParseDurationFlag(const std::string& flag, const std::string& text);

// Starts the HTTP front end (tools/http/server.h) of `http` for the
// coordinator at `endpoint` (an inproc:// one of this process); nullptr when
// http.address is empty. kInvalidArgument for a bad address or token file,
// or a non-loopback address without tokens; kUnavailable when it cannot
// bind.
Result<std::unique_ptr<http::HttpServer>> StartHttp(zmq::context_t& context,
                                                    const HttpArgs& http,
                                                    const std::string& endpoint);

// keygen_command.cc: writes NAME.key and NAME.pub.
int KeygenCommand(const std::string& name);

}  // namespace drover::cli

#endif  // DROVER_TOOLS_CLI_COMMANDS_H_

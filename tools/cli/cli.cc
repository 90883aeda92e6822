#include "tools/cli/cli.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "core/base/allocator.h"
#include "core/base/logging.h"
#include "core/base/version.h"
#include "tools/cli/artifacts_cmd.h"
#include "tools/cli/client_commands.h"
#include "tools/cli/commands.h"
#include "tools/cli/jobs_command.h"
#include "tools/cli/serve_command.h"

namespace drover::cli {

int RunCli(int argc, char** argv, BackendRegistry registry) {
  CLI::App app{"drover: a job runner for batch work and pipelines"};
  app.set_version_flag("--version", [] {
    return std::string("drover ") + DroverVersion() + "\nmalloc: " + AllocatorName();
  });
  app.require_subcommand(1);
  app.footer(
      "Examples:\n"
      "  drover run configs/examples/quickstart.yaml\n"
      "  drover status\n"
      "  drover logs TASK\n"
      "Run `drover SUBCOMMAND --help` for its options.");
  std::string log_level;
  // Checked: spdlog reads a name it does not know as `off`, so a typo
  // would silence every log line.
  app.add_option("--log-level", log_level,
                 "trace, debug, info, warn, error or off (default: warn, or $DROVER_LOG)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));

  RunArgs run;
  auto* run_cmd = app.add_subcommand("run", "Run a job spec to completion in this process");
  run_cmd->add_option("FILE", run.file, "the job spec (YAML)")->required();
  run_cmd
      ->add_option("-j,--jobs", run.jobs,
                   "tasks to run at once, 1 to 10000 (default: number of cores)")
      ->check(CLI::Range(1, 10000));
  run_cmd
      ->add_option(
          "--prefetch", run.prefetch,
          "tasks each backend holds ready beyond -j, started the moment a slot "
          "frees (default: 4 times -j, of which more than -j only while the tasks "
          "are short; 0: none)")
      ->check(CLI::Range(0, 100000));
  run_cmd->add_flag("--resume", run.resume,
                    "re-run only the tasks that did not succeed in the latest run of this job");
  run_cmd->add_flag("--no-cache", run.no_cache,
                    "run every task, even one with 'cache: true' and an earlier success");
  run_cmd->add_option("--state-dir", run.state_dir, "where state and logs live")
      ->capture_default_str();
  bool no_progress = false;
  run_cmd->add_flag("--no-progress", no_progress,
                    "one line per finished task even on a terminal");
  run_cmd->add_option("--http", run.http.address,
                      "serve the API, /metrics and the dashboard on HOST:PORT while it runs "
                      "(docs/api.md)");
  run_cmd->add_option("--http-token", run.http.token_file,
                      "bearer tokens for --http, lines 'read TOKEN' / 'admin TOKEN'");
  run_cmd->footer(
      "Exit status: 0 all tasks succeeded, 1 a task failed, 2 bad spec or usage.\n"
      "Example:\n"
      "  drover run configs/examples/quickstart.yaml -j 4\n"
      "  drover run job.yaml --resume     # after fixing what failed");

  std::vector<std::string> validate_files;
  auto* validate_cmd = app.add_subcommand("validate", "Check job specs without running them");
  validate_cmd->add_option("FILE", validate_files, "job specs")->required();
  validate_cmd->footer(
      "Prints every error as FILE:LINE:COL: message; exits 2 if there is any.\n"
      "Example:\n  drover validate configs/examples/*.yaml");

  StatusArgs status;
  bool json = false;
  std::string output;
  auto* status_cmd = app.add_subcommand("status", "Show a job's tasks");
  status_cmd->add_option("JOB", status.job, "job id (default: the latest)");
  status_cmd->add_option("-o,--output", output, "'table' (default) or 'json'")
      ->check(CLI::IsMember({"table", "json"}));
  status_cmd->add_option("--state-dir", status.state_dir, "where state lives")
      ->capture_default_str();
  status_cmd->add_option("--state", status.state,
                         "show only tasks in these states, e.g. failed or failed,blocked");
  ConnectionArgs status_conn;
  AddConnectionOptions(status_cmd, &status_conn);
  status_cmd->footer(
      "Reads --state-dir, or asks the coordinator when --coordinator (or\n"
      "DROVER_COORDINATOR) is given. A failed task shows the last lines of its stderr.\n"
      "Example:\n  drover status --output json\n"
      "  drover status --state failed\n"
      "  drover status JOB --coordinator tcp://coord:7700");

  JobsArgs jobs;
  std::string jobs_output;
  auto* jobs_cmd = app.add_subcommand("jobs", "List jobs, newest first");
  jobs_cmd->add_option("--state", jobs.state,
                       "only jobs in this state: running, succeeded, failed, cancelled, "
                       "interrupted");
  jobs_cmd->add_option("--name", jobs.name, "only jobs of this name");
  jobs_cmd->add_option("--since", jobs.since, "only jobs created within this long, e.g. 1h");
  jobs_cmd->add_option("--limit", jobs.limit, "at most this many")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  jobs_cmd->add_option("-o,--output", jobs_output, "'table' (default) or 'json'")
      ->check(CLI::IsMember({"table", "json"}));
  jobs_cmd->add_option("--state-dir", jobs.state_dir, "where state lives")
      ->capture_default_str();
  AddConnectionOptions(jobs_cmd, &jobs.connection);
  jobs_cmd->footer(
      "Reads --state-dir, or asks the coordinator when --coordinator (or\n"
      "DROVER_COORDINATOR) is given.\n"
      "Example:\n  drover jobs --state failed --since 24h\n"
      "  drover jobs --name nightly --output json");

  LogsArgs logs;
  auto* logs_cmd = app.add_subcommand("logs", "Print a task's captured output");
  logs_cmd->add_option("JOB_TASK", logs.positional, "[JOB] TASK (JOB: default the latest)")
      ->required()
      ->expected(1, 2);
  logs_cmd->add_option("--attempt", logs.attempt, "attempt number (default: the latest)")
      ->check(CLI::Range(1, 1000000));
  logs_cmd->add_option("--stream", logs.stream, "out, err or both (default)")
      ->check(CLI::IsMember({"out", "err", "both"}));
  logs_cmd->add_option("--state-dir", logs.state_dir, "where state lives")
      ->capture_default_str();
  bool logs_follow = false;
  logs_cmd->add_flag("-f,--follow", logs_follow,
                     "keep printing the output of a running task until it ends (coordinator)");
  ConnectionArgs logs_conn;
  AddConnectionOptions(logs_cmd, &logs_conn);
  logs_cmd->footer(
      "stdout goes to stdout, stderr to stderr. Reads --state-dir, or asks the\n"
      "coordinator when --coordinator (or DROVER_COORDINATOR) is given.\n"
      "Example:\n  drover logs 'shards[shard=2]' --attempt 1");

  OutputsArgs outputs;
  std::string outputs_format = "text";
  auto* outputs_cmd = app.add_subcommand("outputs", "Print a task's outputs");
  outputs_cmd
      ->add_option("JOB_TASK", outputs.positional, "[JOB] TASK (JOB: default the latest)")
      ->required()
      ->expected(1, 2);
  outputs_cmd->add_option("-o,--output", outputs_format, "'text' (default) or 'json'")
      ->check(CLI::IsMember({"text", "json"}));
  outputs_cmd->add_option("--state-dir", outputs.state_dir, "where state lives")
      ->capture_default_str();
  outputs_cmd->footer(
      "Text is KEY=VALUE lines (KEY<<EOF ... EOF for a value with line breaks),\n"
      "as a task writes them to $DROVER_OUTPUT. A matrix task's name gives every\n"
      "instance's, each under a '# NAME' line.\n"
      "Example:\n  drover outputs plan\n  drover outputs JOB 'build[os=linux]' --output "
      "json");

  ExplainArgs explain;
  std::string explain_format = "text";
  auto* explain_cmd = app.add_subcommand("explain", "Say why a task ran or was cached");
  explain_cmd
      ->add_option("JOB_TASK", explain.positional, "[JOB] TASK (JOB: default the latest)")
      ->required()
      ->expected(1, 2);
  explain_cmd->add_option("-o,--output", explain_format, "'text' (default) or 'json'")
      ->check(CLI::IsMember({"text", "json"}));
  explain_cmd->add_option("--state-dir", explain.state_dir, "where state lives")
      ->capture_default_str();
  explain_cmd->footer(
      "For a task with 'cache: true': the first part of its cache key that changed\n"
      "since the newest earlier success (definition, input, upstream output or\n"
      "artifact), or the job and attempt a cached task reused. A matrix task's name\n"
      "explains every instance.\n"
      "Example:\n  drover explain build\n  drover explain JOB build -o json");

  ServeSubcommand serve = AddServeCommand(app);

  CoordinatorArgs coord;
  auto* coord_cmd =
      app.add_subcommand("coordinator", "Run the coordinator daemon (workers and clients connect)");
  coord_cmd->add_option("--listen", coord.listen, "endpoint to bind, e.g. tcp://0.0.0.0:7700 "
                                                  "(repeatable; port 0 = any free port)")
      ->required();
  coord_cmd->add_option("--state-dir", coord.state_dir, "where state and logs live")
      ->capture_default_str();
  coord_cmd->add_option("--heartbeat", coord.heartbeat, "heartbeat interval")
      ->capture_default_str();
  coord_cmd
      ->add_option("--liveness", coord.liveness,
                   "heartbeats a worker may miss before it is declared lost")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  coord_cmd->add_option("--curve-secret", coord.curve_secret,
                        "the coordinator's CURVE secret key file (drover keygen)")
      ->envname("DROVER_CURVE_SECRET");
  coord_cmd->add_option("--authorized-keys", coord.authorized_keys,
                        "public keys of the workers and clients to accept, one per line")
      ->envname("DROVER_AUTHORIZED_KEYS");
  coord_cmd->add_flag("--insecure", coord.insecure,
                      "allow a non-loopback endpoint without CURVE (a trusted network only)");
  std::string log_format = "text";
  const auto log_formats = CLI::IsMember({"text", "json"});
  coord_cmd->add_option("--log-format", log_format,
                        "'text' (default) or 'json': one JSON object a line on stderr")
      ->check(log_formats);
  coord_cmd->add_option("--http", coord.http.address,
                        "serve the API, /metrics and the dashboard on HOST:PORT (docs/api.md; "
                        "loopback unless --http-token)");
  coord_cmd->add_option("--http-token", coord.http.token_file,
                        "bearer tokens for --http, lines 'read TOKEN' / 'admin TOKEN'")
      ->envname("DROVER_HTTP_TOKEN");
  coord_cmd->add_option("--pipelines", coord.pipelines,
                        "run the job specs with `schedule:` in DIR on their schedule "
                        "(SIGHUP re-reads DIR)");
  coord_cmd->footer(
      "Prints the bound endpoint(s) on stdout (then the --http URL), then logs to stderr.\n"
      "SIGTERM or SIGINT stops it. SIGHUP re-reads the --pipelines directory.\n"
      "Example:\n"
      "  drover coordinator --listen tcp://127.0.0.1:7700 --state-dir /var/lib/drover\n"
      "  drover coordinator --listen tcp://0.0.0.0:7700 --curve-secret coord.key \\\n"
      "      --authorized-keys authorized_keys");

  WorkerArgs wargs;
  auto* worker_cmd = app.add_subcommand("worker", "Run a worker daemon that runs tasks");
  worker_cmd->add_option("--connect", wargs.connect, "the coordinator's endpoint")
      ->envname("DROVER_COORDINATOR");
  worker_cmd->add_option("--slots", wargs.slots,
                         "BACKEND=N, tasks of that backend to run at once (repeatable; "
                         "default: every backend, one per core)");
  worker_cmd
      ->add_option("--prefetch", wargs.prefetch,
                   "N, tasks of each backend to hold beyond its slots, started the "
                   "moment a slot frees (default: 4 times its slots, of which the "
                   "coordinator sends more than its slots only while the tasks are "
                   "short; 0: none; see docs/operations.md)")
      ->check(CLI::Range(0, 100000));
  worker_cmd->add_option("--label", wargs.labels, "KEY=VALUE, matched by tasks' `on:` "
                                                  "(repeatable)");
  worker_cmd->add_option("--name", wargs.name, "unique worker name (default: HOSTNAME-PID)");
  worker_cmd->add_option("--config", wargs.config,
                         "worker config YAML: slots, labels, pools, plugins, ...");
  worker_cmd->add_option("--drain-timeout", wargs.drain_timeout,
                         "on SIGTERM, how long running tasks may finish (default 30s)");
  worker_cmd->add_option("--spool-dir", wargs.spool_dir,
                         "where task output is captured before it is sent (default "
                         ".drover/spool)");
  worker_cmd->add_option("--heartbeat", wargs.heartbeat, "heartbeat interval")
      ->capture_default_str();
  worker_cmd
      ->add_option("--liveness", wargs.liveness,
                   "heartbeats the coordinator may miss before the worker reconnects")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  worker_cmd->add_option("--curve-secret", wargs.curve_secret, "this worker's CURVE secret key")
      ->envname("DROVER_CURVE_SECRET");
  worker_cmd->add_option("--curve-server-key", wargs.curve_server_key,
                         "the coordinator's CURVE public key file")
      ->envname("DROVER_CURVE_SERVER_KEY");
  worker_cmd->add_option("--log-format", log_format,
                         "'text' (default) or 'json': one JSON object a line on stderr")
      ->check(log_formats);
  worker_cmd->add_option("--metrics", wargs.metrics,
                         "serve Prometheus metrics at http://HOST:PORT/metrics (loopback "
                         "unless --metrics-token)");
  worker_cmd->add_option("--metrics-token", wargs.metrics_token,
                         "bearer tokens for --metrics: lines 'read TOKEN' (or admin)")
      ->check(CLI::ExistingFile);
  worker_cmd->footer(
      "SIGTERM drains: no new tasks, running ones finish (up to --drain-timeout), then it\n"
      "exits 0. A second SIGTERM or SIGINT stops at once (exit 1).\n"
      "With --metrics it prints the metrics URL (http://HOST:PORT) on stdout.\n"
      "Example:\n"
      "  drover worker --connect tcp://coordinator:7700 --slots spawn=4 --label zone=a");

  SubmitArgs submit;
  auto* submit_cmd = app.add_subcommand("submit", "Submit a job spec to a coordinator");
  submit_cmd->add_option("FILE", submit.file, "the job spec (YAML)")->required();
  submit_cmd->add_flag("--wait", submit.wait, "wait for the job to end; exit 0 if it succeeded");
  submit_cmd->add_flag("--follow", submit.follow,
                       "wait, and stream task events and output meanwhile");
  submit_cmd->add_flag("--resume", submit.resume,
                       "re-run only what did not succeed in the latest job of this name");
  submit_cmd->add_flag("--no-cache", submit.no_cache,
                       "run every task, even one with 'cache: true' and an earlier success");
  submit_cmd->add_option("--lost-timeout", submit.lost_timeout,
                         "while waiting, how long the coordinator may stay unreachable")
      ->capture_default_str();
  AddConnectionOptions(submit_cmd, &submit.connection);
  submit_cmd->footer(
      "Prints the job id. Exit status: 0 accepted (with --wait: succeeded), 1 failed,\n"
      "2 bad spec or usage.\n"
      "Example:\n  drover submit job.yaml --wait --coordinator tcp://coord:7700");

  RetryArgs retry;
  auto* retry_cmd =
      app.add_subcommand("retry", "Re-run what did not succeed in a job (a new job)");
  retry_cmd->add_option("JOB", retry.job, "job id")->required();
  retry_cmd->add_flag("--wait", retry.wait, "wait for the new job to end");
  retry_cmd->add_option("--lost-timeout", retry.lost_timeout,
                        "while waiting, how long the coordinator may stay unreachable")
      ->capture_default_str();
  AddConnectionOptions(retry_cmd, &retry.connection);

  CancelArgs cancel;
  auto* cancel_cmd = app.add_subcommand("cancel", "Cancel a job or one of its tasks");
  cancel_cmd->add_option("TARGET", cancel.target, "JOB or JOB/TASK")->required();
  AddConnectionOptions(cancel_cmd, &cancel.connection);

  bool workers_json = false;
  std::string workers_output;
  auto* workers_cmd = app.add_subcommand("workers", "List the coordinator's workers");
  workers_cmd->add_option("-o,--output", workers_output, "'table' (default) or 'json'")
      ->check(CLI::IsMember({"table", "json"}));
  ConnectionArgs workers_conn;
  AddConnectionOptions(workers_cmd, &workers_conn);

  PipelinesArgs pipelines;
  std::string pipelines_output = "table";
  auto* pipelines_cmd = app.add_subcommand(
      "pipelines", "List the coordinator's scheduled pipelines (--pipelines DIR)");
  pipelines_cmd->add_option("-o,--output", pipelines_output, "'table' (default) or 'json'")
      ->check(CLI::IsMember({"table", "json"}));
  pipelines_cmd->add_option("--next", pipelines.next, "next run times to show per pipeline")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  AddConnectionOptions(pipelines_cmd, &pipelines.connection);
  auto* pipelines_run_cmd = pipelines_cmd->add_subcommand(
      "run", "Start a run of a pipeline now (under its concurrency)");
  pipelines_run_cmd->add_option("NAME", pipelines.run, "the pipeline")->required();
  AddConnectionOptions(pipelines_run_cmd, &pipelines.connection);
  pipelines_cmd->footer(
      "Lists name, file, schedule, time zone, the next run times, the last run (job, state,\n"
      "when) and the runs skipped. `run NAME` prints the job id (or that the run waits for\n"
      "the running one, concurrency: queue). Exit status: 0 ok, 1 refused or failed.\n"
      "Example:\n  drover pipelines --coordinator tcp://coord:7700\n"
      "  drover pipelines run nightly-report --coordinator tcp://coord:7700");

  ServiceReloadArgs service_reload;
  // A reload waits for every new instance to be ready: the coordinator
  // answers within 10 minutes, listing the workers that did not.
  service_reload.connection.timeout = "11m";
  auto* service_cmd = app.add_subcommand("service", "Act on the cluster backend's services");
  service_cmd->require_subcommand(1);
  auto* reload_cmd = service_cmd->add_subcommand(
      "reload", "Replace a service's instances one at a time, without refusing a request");
  reload_cmd->add_option("NAME", service_reload.service, "the service")->required();
  reload_cmd->add_option("--job", service_reload.job,
                         "only this job's service (default: every running job's, and the "
                         "workers' own)");
  AddConnectionOptions(reload_cmd, &service_reload.connection);
  reload_cmd->footer(
      "Prints one line per service reloaded (worker, job, name, state) and the workers\n"
      "that did not answer. Exit status: 0 at least one reloaded and none failed or\n"
      "missing, 1 otherwise.\n"
      "Example:\n  drover service reload hello --coordinator tcp://coord:7700");

  const ArtifactsSubcommands artifacts = AddArtifactsCommands(app);

  std::string keygen_name;
  auto* keygen_cmd = app.add_subcommand("keygen", "Make a CURVE key pair: NAME.key, NAME.pub");
  keygen_cmd->add_option("NAME", keygen_name, "path prefix of the key files")->required();
  keygen_cmd->footer(
      "Example:\n  drover keygen coordinator && drover keygen w1 && cat w1.pub >> "
      "authorized_keys");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  // Daemons say what they do; interactive commands only what went wrong.
  const bool daemon = *coord_cmd || *worker_cmd;
  SetupLogging(log_level, daemon ? spdlog::level::info : spdlog::level::warn,
               ParseLogFormat(log_format).value_or(LogFormat::kText));
  (void)json;

  if (*run_cmd) {
    run.progress = !no_progress;
    return RunCommand(run, registry);
  }
  if (*validate_cmd) return ValidateCommand(validate_files, registry);
  if (*status_cmd) {
    status.json = output == "json";
    if (!status_conn.coordinator.empty()) {
      return RemoteStatusCommand(status.job, status.json, status.state, status_conn);
    }
    return StatusCommand(status);
  }
  if (*jobs_cmd) {
    jobs.json = jobs_output == "json";
    return JobsCommand(jobs);
  }
  if (*logs_cmd) {
    if (!logs_conn.coordinator.empty()) {
      return RemoteLogsCommand(logs.positional, logs.attempt, logs.stream, logs_follow,
                               logs_conn);
    }
    if (logs_follow) {
      std::fprintf(stderr, "drover logs: -f needs a coordinator (--coordinator)\n");
      return kExitUsage;
    }
    return LogsCommand(logs);
  }
  if (*outputs_cmd) {
    outputs.json = outputs_format == "json";
    return OutputsCommand(outputs);
  }
  if (*explain_cmd) {
    explain.json = explain_format == "json";
    return ExplainCommand(explain);
  }
  if (*submit_cmd) {
    submit.kinds = &registry.kinds();
    return SubmitCommand(submit);
  }
  if (*retry_cmd) return RetryCommand(retry);
  if (*cancel_cmd) return CancelCommand(cancel);
  if (*workers_cmd) {
    workers_json = workers_output == "json";
    return WorkersCommand(workers_json, workers_conn);
  }
  if (*pipelines_run_cmd) return PipelineRunCommand(pipelines);
  if (*pipelines_cmd) {
    pipelines.json = pipelines_output == "json";
    return PipelinesCommand(pipelines);
  }
  if (*coord_cmd) return CoordinatorCommand(coord, registry);
  if (*worker_cmd) return WorkerCommand(wargs, registry);
  if (*keygen_cmd) return KeygenCommand(keygen_name);
  if (*reload_cmd) return ServiceReloadCommand(service_reload);
  if (*serve.command) return ServeCommand(*serve.args);
  if (std::optional<int> rc = RunArtifactsCommands(artifacts)) return *rc;
  return kExitUsage;
}

}  // namespace drover::cli

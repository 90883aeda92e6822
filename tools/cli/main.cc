// drover: one binary, one subcommand per verb. See `drover --help`.
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "core/base/logging.h"
#include "tools/cli/commands.h"

int main(int argc, char** argv) {
  using namespace drover::cli;  // NOLINT: the subcommands
  CLI::App app{"drover: a job runner for batch work and pipelines"};
  app.set_version_flag("--version", std::string("drover ") + DROVER_VERSION);
  app.require_subcommand(1);
  app.footer(
      "Examples:\n"
      "  drover run configs/examples/quickstart.yaml\n"
      "  drover status\n"
      "  drover logs TASK\n"
      "Run `drover SUBCOMMAND --help` for its options.");
  std::string log_level;
  app.add_option("--log-level", log_level,
                 "trace, debug, info, warn, error or off (default: warn, or $DROVER_LOG)");

  RunArgs run;
  auto* run_cmd = app.add_subcommand("run", "Run a job spec to completion in this process");
  run_cmd->add_option("FILE", run.file, "the job spec (YAML)")->required();
  run_cmd->add_option("-j,--jobs", run.jobs, "tasks to run at once (default: number of cores)")
      ->check(CLI::PositiveNumber);
  run_cmd->add_flag("--resume", run.resume,
                    "re-run only the tasks that did not succeed in the latest run of this job");
  run_cmd->add_option("--state-dir", run.state_dir, "where state and logs live")
      ->capture_default_str();
  bool no_progress = false;
  run_cmd->add_flag("--no-progress", no_progress,
                    "one line per finished task even on a terminal");
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
  status_cmd->footer("Example:\n  drover status --output json");

  LogsArgs logs;
  auto* logs_cmd = app.add_subcommand("logs", "Print a task's captured output");
  logs_cmd->add_option("JOB_TASK", logs.positional, "[JOB] TASK (JOB: default the latest)")
      ->required()
      ->expected(1, 2);
  logs_cmd->add_option("--attempt", logs.attempt, "attempt number (default: the latest)")
      ->check(CLI::PositiveNumber);
  logs_cmd->add_option("--stream", logs.stream, "out, err or both (default)")
      ->check(CLI::IsMember({"out", "err", "both"}));
  logs_cmd->add_option("--state-dir", logs.state_dir, "where state lives")
      ->capture_default_str();
  logs_cmd->footer(
      "stdout goes to stdout, stderr to stderr.\n"
      "Example:\n  drover logs 'shards[shard=2]' --attempt 1");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  drover::SetupLogging(log_level, spdlog::level::warn);
  (void)json;

  if (*run_cmd) {
    run.progress = !no_progress;
    return RunCommand(run);
  }
  if (*validate_cmd) return ValidateCommand(validate_files);
  if (*status_cmd) {
    status.json = output == "json";
    return StatusCommand(status);
  }
  if (*logs_cmd) return LogsCommand(logs);
  return kExitUsage;
}

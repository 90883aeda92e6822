// The client commands that talk to a coordinator: `drover submit`,
// `drover retry`, `drover cancel`, and the remote forms of `drover status`
// and `drover logs` (remote_views.cc has `status`, `logs` and `workers`).
// Each one is a short dialog of docs/protocol.md over one Client.
#include "tools/cli/client_commands.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/dag/states.h"
#include "tools/cli/client.h"
#include "tools/cli/input_hashes.h"
#include "tools/cli/job_watcher.h"
#include "tools/cli/render.h"

namespace drover::cli {
namespace {

using protocol::Command;
using protocol::Message;

// Prints how the watched job ended; returns the exit code.
int ExitForEnd(const std::string& job_id, const Result<wire::JobEvent>& end) {
  if (!end.ok()) {
    std::fprintf(stderr, "drover: %s\n", end.status().message().c_str());
    return kExitFailed;
  }
  const auto& c = end->counts();
  const std::string cached =
      c.cached() ? " (" + std::to_string(c.cached()) + " cached)" : std::string();
  std::fprintf(stderr, "job %s: %s, %s: %u succeeded%s, %u failed, %u other\n",
               job_id.c_str(), end->state().c_str(), Plural(c.total(), "task").c_str(),
               c.succeeded(), cached.c_str(), c.failed(), c.other());
  return ExitForJobState(end->state());
}

}  // namespace

int ExitForJobState(const std::string& state) {
  return dag::ParseJobState(state) == dag::JobState::kSucceeded ? kExitOk : kExitFailed;
}

Result<wire::Submit> MakeSubmit(const std::string& file, std::string text, bool resume,
                                bool watch) {
  wire::Submit submit;
  submit.set_spec_file(file);
  submit.set_spec_text(std::move(text));
  submit.set_resume(resume);
  submit.set_watch(watch);
  if (watch) submit.set_max_batch(kEventBatch);
  std::error_code ec;
  submit.set_cwd(std::filesystem::current_path(ec).string());
  // docs/protocol.md: a client refuses locally what the coordinator would
  // drop unanswered.
  if (submit.ByteSizeLong() > protocol::Limits{}.max_body) {
    return InvalidArgument(file + ": the spec is too large to submit (over 4 MiB)");
  }
  return submit;
}

std::optional<std::string> TakeSubmitted(const Message& m, bool print_id) {
  auto s = protocol::Parse<wire::Submitted>(m);
  if (!s.ok()) {
    std::fprintf(stderr, "drover: %s\n", s.status().message().c_str());
    return std::nullopt;
  }
  if (s->errors_size() > 0 || s->job_id().empty()) {
    for (const auto& e : s->errors()) std::fprintf(stderr, "%s\n", e.c_str());
    return std::nullopt;
  }
  if (print_id) {
    std::printf("%s\n", s->job_id().c_str());
    std::fflush(stdout);
  }
  std::fprintf(stderr, "drover: job %s: %s", s->job_id().c_str(),
               Plural(s->tasks(), "task").c_str());
  if (s->carried_over()) {
    std::fprintf(stderr, " (%u succeeded earlier, not re-run)", s->carried_over());
  }
  std::fprintf(stderr, "\n");
  return s->job_id();
}

Result<std::unique_ptr<ClientSession>> ClientSession::Open(const ConnectionArgs& args) {
  auto options = MakeClientOptions(args);
  if (!options.ok()) return options.status();
  auto session = std::unique_ptr<ClientSession>(new ClientSession());
  session->client_ = std::make_unique<Client>(session->context_, std::move(*options));
  if (Status s = session->client_->Connect(); !s.ok()) return s;
  return session;
}

int PrintError(const Status& s) {
  std::fprintf(stderr, "drover: %s\n", s.message().c_str());
  return s.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailed;
}

int SubmitCommand(const SubmitArgs& args) {
  // As `drover validate` and `drover run` read a spec: capped in size,
  // never a directory, never blocking on a FIFO without a writer.
  auto text = spec::ReadSpecFile(args.file);
  if (!text.ok()) {
    std::fprintf(stderr, "%s\n", text.status().message().c_str());
    return kExitUsage;
  }
  auto lost_timeout = ParseDurationFlag("--lost-timeout", args.lost_timeout);
  if (!lost_timeout.ok()) return PrintError(lost_timeout.status());
  auto session = ClientSession::Open(args.connection);
  if (!session.ok()) return PrintError(session.status());
  Client& client = (*session)->client();

  auto submit =
      MakeSubmit(args.file, std::move(*text), args.resume, args.wait || args.follow);
  if (!submit.ok()) {
    std::fprintf(stderr, "%s\n", submit.status().message().c_str());
    return kExitUsage;
  }
  // Asked for in the SUBMIT itself: a WATCH sent after SUBMITTED would miss
  // the lines of a task that ran in between.
  submit->set_output(args.follow);
  // --wait prints only the tasks that fail, are cancelled or will retry,
  // so it asks for no other TASK-EVENT.
  const bool problems_only = args.wait && !args.follow;
  submit->set_problems_only(problems_only);
  submit->set_no_cache(args.no_cache);
  if (args.kinds != nullptr && spec::MayNameInputs(submit->spec_text())) {
    // The coordinator may not see this host's files: the `inputs` of
    // cached tasks are hashed here. A spec that does not load locally
    // (a pool only the workers declare, ...) is left to the coordinator,
    // which reports its errors; its tasks with inputs then run. A spec
    // that cannot have inputs is not loaded here at all: the coordinator
    // loads it, and the job waits for one load, not two.
    spec::LoadOptions options;
    options.kinds = args.kinds;
    options.undeclared_pools = true;
    const spec::LoadResult loaded =
        spec::LoadString(submit->spec_text(), args.file, options);
    std::error_code ec;
    if (loaded.ok()) {
      if (Status s = AddCacheInputs(*loaded.spec, std::filesystem::current_path(ec),
                                    args.no_cache, &*submit);
          !s.ok()) {
        std::fprintf(stderr, "%s\n", s.message().c_str());
        return kExitUsage;
      }
    }
  }
  auto answer =
      client.Call(protocol::Make(Command::kSubmit, *submit), {Command::kSubmitted});
  if (!answer.ok()) return PrintError(answer.status());
  auto job_id = TakeSubmitted(*answer, /*print_id=*/true);
  if (!job_id) return kExitUsage;
  if (!args.wait && !args.follow) return kExitOk;
  WatchOptions options;
  options.lines = args.follow ? TaskLines::kAll : TaskLines::kProblems;
  options.output = args.follow;
  options.problems_only = problems_only;
  options.lost_timeout = *lost_timeout;
  JobWatcher watcher(client, *job_id, options);
  return ExitForEnd(*job_id, watcher.Run());
}

int RetryCommand(const RetryArgs& args) {
  auto lost_timeout = ParseDurationFlag("--lost-timeout", args.lost_timeout);
  if (!lost_timeout.ok()) return PrintError(lost_timeout.status());
  auto session = ClientSession::Open(args.connection);
  if (!session.ok()) return PrintError(session.status());
  Client& client = (*session)->client();
  wire::RetryJob retry;
  retry.set_job_id(args.job);
  retry.set_watch(args.wait);
  if (args.wait) retry.set_max_batch(kEventBatch);
  auto answer = client.Call(protocol::Make(Command::kRetryJob, retry), {Command::kSubmitted});
  if (!answer.ok()) return PrintError(answer.status());
  auto job_id = TakeSubmitted(*answer, /*print_id=*/true);
  if (!job_id) return kExitFailed;
  if (!args.wait) return kExitOk;
  WatchOptions options;
  options.lost_timeout = *lost_timeout;
  JobWatcher watcher(client, *job_id, options);
  return ExitForEnd(*job_id, watcher.Run());
}

int CancelCommand(const CancelArgs& args) {
  const size_t slash = args.target.find('/');
  wire::CancelJob cancel;
  cancel.set_job_id(args.target.substr(0, slash));
  if (slash != std::string::npos) cancel.set_task(args.target.substr(slash + 1));
  if (cancel.job_id().empty() || (slash != std::string::npos && cancel.task().empty())) {
    std::fprintf(stderr, "drover cancel: give JOB or JOB/TASK\n");
    return kExitUsage;
  }
  auto session = ClientSession::Open(args.connection);
  if (!session.ok()) return PrintError(session.status());
  auto answer = (*session)->client().Call(protocol::Make(Command::kCancelJob, cancel),
                                          {Command::kOk, Command::kJobEvent});
  if (!answer.ok()) return PrintError(answer.status());
  std::string text;
  if (answer->command == Command::kOk) {
    auto ok = protocol::Parse<wire::Ok>(*answer);
    if (ok.ok()) text = ok->message();
  }
  if (text.empty()) text = "cancelling " + args.target;
  std::printf("%s\n", text.c_str());
  return kExitOk;
}

}  // namespace drover::cli

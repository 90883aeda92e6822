// `drover pipelines` and `drover pipelines run NAME`: the scheduled
// pipelines of a coordinator started with --pipelines DIR (PIPELINES and
// PIPELINE-RUN, docs/protocol.md "Pipelines"; docs/operations.md
// "Schedules").
#include <cstdio>

#include "core/sched/cron.h"
#include "tools/cli/client_commands.h"
#include "tools/http/json_views.h"

namespace drover::cli {
namespace {

using protocol::Command;

std::chrono::sys_seconds Seconds(int64_t unix_ms) {
  return std::chrono::sys_seconds(std::chrono::seconds(unix_ms / 1000));
}

// In the pipeline's zone, for people: "2026-03-29 03:00:00 CEST".
std::string Local(int64_t unix_ms, const cctz::time_zone& zone) {
  return cctz::format("%Y-%m-%d %H:%M:%S %Z", Seconds(unix_ms), zone);
}

}  // namespace

int PipelinesCommand(const PipelinesArgs& args) {
  auto session = ClientSession::Open(args.connection);
  if (!session.ok()) return PrintError(session.status());
  wire::PipelinesRequest request;
  request.set_next_runs(args.next);
  auto answer = (*session)->client().Call(
      protocol::Make(Command::kPipelinesRequest, request), {Command::kPipelinesReply});
  if (!answer.ok()) return PrintError(answer.status());
  auto reply = protocol::Parse<wire::PipelinesReply>(*answer);
  if (!reply.ok()) return PrintError(reply.status());

  if (args.json) {
    // The document of GET /api/v1/pipelines (docs/api.md).
    std::printf("%s\n", http::PipelinesJson(*reply).dump(2).c_str());
    return kExitOk;
  }
  if (reply->dir().empty()) {
    std::printf("the coordinator runs no pipelines (start it with --pipelines DIR)\n");
    return kExitOk;
  }
  if (reply->pipelines_size() == 0) {
    std::printf("no pipelines in %s\n", reply->dir().c_str());
    return kExitOk;
  }
  bool first = true;
  for (const auto& p : reply->pipelines()) {
    auto zone = sched::LoadTimeZone(p.timezone());
    const cctz::time_zone tz = zone.ok() ? *zone : cctz::utc_time_zone();
    std::printf("%s%s  (%s)\n", first ? "" : "\n", p.name().c_str(), p.file().c_str());
    first = false;
    std::printf("  schedule  %s  in %s, concurrency %s, catchup %s\n",
                p.schedule().c_str(), p.timezone().c_str(), p.concurrency().c_str(),
                p.catchup() ? "true" : "false");
    std::string next;
    for (int64_t t : p.next_unix_ms()) next += (next.empty() ? "" : ", ") + Local(t, tz);
    std::printf("  next      %s\n", next.empty() ? "never" : next.c_str());
    if (p.has_last_run()) {
      const auto& r = p.last_run();
      std::printf("  last run  job %s %s, started %s (%s)\n", r.job_id().c_str(),
                  r.state().c_str(), Local(r.started_unix_ms(), tz).c_str(),
                  r.trigger().c_str());
    } else {
      std::printf("  last run  none\n");
    }
    if (p.has_queued()) {
      std::printf("  queued    the run due %s waits for the last run to end\n",
                  Local(p.queued().due_unix_ms(), tz).c_str());
    }
    std::printf("  skipped   %llu\n", static_cast<unsigned long long>(p.skipped()));
    if (!p.error().empty()) {
      std::printf(
          "  error     the file no longer loads; this is the version loaded before:\n");
      std::string line;
      for (char c : p.error() + "\n") {
        if (c != '\n') {
          line += c;
          continue;
        }
        std::printf("            %s\n", line.c_str());
        line.clear();
      }
    }
  }
  return kExitOk;
}

int PipelineRunCommand(const PipelinesArgs& args) {
  auto session = ClientSession::Open(args.connection);
  if (!session.ok()) return PrintError(session.status());
  wire::PipelineRun request;
  request.set_name(args.run);
  auto answer = (*session)->client().Call(protocol::Make(Command::kPipelineRun, request),
                                          {Command::kSubmitted, Command::kOk});
  if (!answer.ok()) return PrintError(answer.status());
  if (answer->command == Command::kOk) {
    auto ok = protocol::Parse<wire::Ok>(*answer);
    if (!ok.ok()) return PrintError(ok.status());
    std::fprintf(stderr, "drover: %s\n", ok->message().c_str());
    return kExitOk;
  }
  return TakeSubmitted(*answer, /*print_id=*/true) ? kExitOk : kExitFailed;
}

}  // namespace drover::cli

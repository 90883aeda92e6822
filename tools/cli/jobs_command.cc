// `drover jobs`: the list of jobs, newest first, from the state directory
// or from a coordinator (STATUS with an empty job id, docs/protocol.md).
// Both paths print the same table and the same JSON document
// (docs/operations.md, "Listing jobs").
#include "tools/cli/jobs_command.h"

#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "core/base/clock.h"
#include "core/dag/states.h"
#include "core/store/store.h"
#include "tools/cli/client_commands.h"
#include "tools/cli/render.h"

namespace drover::cli {
namespace {

using Json = nlohmann::ordered_json;

// One row of the listing, whichever path it came from.
struct JobRow {
  std::string id;
  std::string name;
  std::string state;
  int64_t created_ms = 0;
  int64_t finished_ms = 0;
  std::string spec_file;
  uint64_t total = 0;
  std::vector<std::pair<std::string, uint64_t>> counts;  // state -> tasks
};

std::string LocalTime(int64_t unix_ms) {
  const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm = {};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

void Print(const std::vector<JobRow>& rows, bool json) {
  if (json) {
    Json list = Json::array();
    for (const auto& r : rows) {
      Json j;
      j["id"] = r.id;
      j["name"] = r.name;
      j["state"] = r.state;
      j["spec_file"] = r.spec_file;
      j["created_ms"] = r.created_ms;
      j["finished_ms"] = r.finished_ms;
      j["tasks"] = r.total;
      j["counts"] = Json::object();
      for (const auto& [state, n] : r.counts) j["counts"][state] = n;
      list.push_back(std::move(j));
    }
    std::printf("%s\n", Json{{"jobs", list}}.dump(2).c_str());
    return;
  }
  size_t name_width = 4;
  for (const auto& r : rows) name_width = std::max(name_width, r.name.size());
  name_width = std::min<size_t>(name_width, 40);
  std::printf("%-20s  %-*s  %-11s  %-19s  %9s  %s\n", "JOB", static_cast<int>(name_width),
              "NAME", "STATE", "CREATED", "DURATION", "TASKS");
  for (const auto& r : rows) {
    std::string counts = Plural(r.total, "task");
    std::string parts;
    for (const auto& [state, n] : r.counts) {
      if (n == 0) continue;
      parts += (parts.empty() ? "" : ", ") + std::to_string(n) + " " + state;
    }
    if (!parts.empty()) counts += ": " + parts;
    const std::string duration =
        r.finished_ms > r.created_ms
            ? FormatDuration(std::chrono::milliseconds(r.finished_ms - r.created_ms))
            : "-";
    std::printf("%-20s  %-*s  %-11s  %-19s  %9s  %s\n", r.id.c_str(),
                static_cast<int>(name_width), r.name.c_str(), r.state.c_str(),
                LocalTime(r.created_ms).c_str(), duration.c_str(), counts.c_str());
  }
  if (rows.empty()) std::fprintf(stderr, "drover jobs: no job matches\n");
}

int Local(const JobsArgs& args, int64_t since_ms) {
  if (!std::filesystem::exists(std::filesystem::path(args.state_dir) / "state.db")) {
    std::fprintf(stderr,
                 "drover: no drover state in %s (run a job first, or pass --state-dir)\n",
                 args.state_dir.c_str());
    return kExitFailed;
  }
  auto store = store::Store::Open(args.state_dir);
  if (!store.ok()) return PrintError(store.status());
  store::Store::JobQuery query;
  query.state = args.state;
  query.name = args.name;
  query.since_ms = since_ms;
  query.limit = args.limit;
  auto jobs = (*store)->FindJobs(query);
  if (!jobs.ok()) return PrintError(jobs.status());
  std::vector<JobRow> rows;
  for (const auto& j : *jobs) {
    JobRow r{j.id, j.name, j.state, j.created_ms, j.finished_ms, j.spec_file, 0, {}};
    auto counts = (*store)->TaskStateCounts(j.id);
    if (!counts.ok()) return PrintError(counts.status());
    for (const auto& [state, n] : *counts) r.total += n;
    r.counts = std::move(*counts);
    rows.push_back(std::move(r));
  }
  Print(rows, args.json);
  return kExitOk;
}

int Remote(const JobsArgs& args, int64_t since_ms) {
  auto session = ClientSession::Open(args.connection);
  if (!session.ok()) return PrintError(session.status());
  wire::StatusRequest request;  // an empty job id: the listing
  request.set_limit(args.limit);
  request.set_state(args.state);
  request.set_name(args.name);
  request.set_since_unix_ms(since_ms);
  auto answer = (*session)->client().Call(
      protocol::Make(protocol::Command::kStatusRequest, request),
      {protocol::Command::kStatusReply});
  if (!answer.ok()) return PrintError(answer.status());
  auto reply = protocol::Parse<wire::StatusReply>(*answer);
  if (!reply.ok()) return PrintError(reply.status());
  std::vector<JobRow> rows;
  for (const auto& j : reply->jobs()) {
    // A coordinator older than these filters ignores them: filter again.
    if (!args.state.empty() && j.state() != args.state) continue;
    if (!args.name.empty() && j.name() != args.name) continue;
    if (j.submitted_unix_ms() < since_ms) continue;
    const auto& c = j.counts();
    rows.push_back(JobRow{j.job_id(),
                          j.name(),
                          j.state(),
                          j.submitted_unix_ms(),
                          j.finished_unix_ms(),
                          j.spec_file(),
                          c.total(),
                          {{"succeeded", c.succeeded()},
                           {"failed", c.failed()},
                           {"running", c.running()},
                           {"pending", c.pending()},
                           {"other", c.other()}}});
  }
  Print(rows, args.json);
  return kExitOk;
}

}  // namespace

int JobsCommand(const JobsArgs& args) {
  if (!args.state.empty() && !dag::ParseJobState(args.state)) {
    std::fprintf(
        stderr,
        "drover jobs: unknown job state '%s' (states: running, succeeded, failed, "
        "cancelled, interrupted)\n",
        args.state.c_str());
    return kExitUsage;
  }
  int64_t since_ms = 0;
  if (!args.since.empty()) {
    auto since = ParseDurationFlag("--since", args.since);
    if (!since.ok()) {
      std::fprintf(stderr, "drover jobs: %s\n", since.status().message().c_str());
      return kExitUsage;
    }
    const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    since_ms =
        now_ms - std::chrono::duration_cast<std::chrono::milliseconds>(*since).count();
  }
  if (!args.connection.coordinator.empty()) return Remote(args, since_ms);
  return Local(args, since_ms);
}

}  // namespace drover::cli

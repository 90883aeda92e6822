// `drover status`, `drover logs` and `drover workers` against a
// coordinator: read-only requests (STATUS, LOGS, WORKERS) and their tables.
// The JSON documents keep the shape of the local `drover status --output
// json` (render.cc), plus what only the coordinator knows (pending reasons,
// workers).
#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "tools/cli/client_commands.h"
#include "tools/cli/render.h"

namespace drover::cli {
namespace {

using protocol::Command;
using protocol::Message;
using Json = nlohmann::ordered_json;

Json TaskJson(const wire::TaskStatus& t) {
  Json j;
  j["name"] = t.name();
  j["status"] = t.state();
  j["attempts"] = t.attempts();
  j["reason"] = t.reason().empty() ? Json(nullptr) : Json(t.reason());
  j["detail"] = t.detail();
  j["duration_us"] = t.wall_us();
  j["worker"] = t.worker();
  j["backend"] = t.backend();
  j["pending_reason"] =
      t.pending_reason().empty() ? Json(nullptr) : Json(t.pending_reason());
  j["waiting_in_worker"] = t.waiting_in_worker();
  j["exit_code"] =
      t.reason().empty() || t.exit_code() < 0 ? Json(nullptr) : Json(t.exit_code());
  j["signal"] = t.signal() ? Json(t.signal()) : Json(nullptr);
  if (t.result_json().empty()) {
    j["result"] = nullptr;
  } else {
    Json parsed = Json::parse(t.result_json(), nullptr, false);
    j["result"] = parsed.is_discarded() ? Json(t.result_json()) : parsed;
  }
  j["outputs"] = Json::object();
  for (const auto& [k, v] : t.outputs()) j["outputs"][k] = v;
  auto& earlier = j["earlier_attempts"] = Json::array();
  for (const auto& a : t.earlier()) {
    earlier.push_back({{"attempt", a.attempt()},
                       {"reason", a.reason()},
                       {"detail", a.detail()},
                       {"worker", a.worker()}});
  }
  return j;
}

Json JobStatusJson(const wire::JobStatus& job) {
  Json doc;
  doc["job"] = {{"id", job.job_id()},
                {"name", job.name()},
                {"state", job.state()},
                {"spec_file", job.spec_file()},
                {"priority", job.priority()},
                {"created_ms", job.submitted_unix_ms()},
                {"finished_ms", job.finished_unix_ms()}};
  // null when the client had no key (docs/security.md).
  auto or_null = [&job](const std::string& s) {
    return job.submitter_key().empty() ? Json(nullptr) : Json(s);
  };
  doc["job"]["submitter_key"] = or_null(job.submitter_key());
  doc["job"]["submitter_name"] = or_null(job.submitter_name());
  auto& list = doc["tasks"] = Json::array();
  for (const auto& t : job.tasks()) list.push_back(TaskJson(t));
  return doc;
}

// The end of the stderr of a failed task's last attempt, asked of the
// coordinator (LOGS-REQUEST); "" when it cannot be had.
std::string RemoteStderrTail(Client& client, const std::string& job,
                             const std::string& task) {
  wire::LogsRequest request;
  request.set_job_id(job);
  request.set_task(task);
  auto answer =
      client.Call(protocol::Make(Command::kLogsRequest, request), {Command::kLogs});
  if (!answer.ok() || answer->payloads.size() < 2) return "";
  return LastLines(answer->payloads[1], kStderrTailLines);
}

// `tails`: task name -> the end of its stderr, printed under its row.
void PrintJobStatus(const wire::JobStatus& job,
                    const std::map<std::string, std::string>& tails) {
  const auto& c = job.counts();
  std::printf("job %s (%s): %s, %s: %u succeeded, %u failed, %u running, %u pending\n",
              job.job_id().c_str(), job.name().c_str(), job.state().c_str(),
              Plural(c.total(), "task").c_str(), c.succeeded(), c.failed(), c.running(),
              c.pending());
  if (const std::string by = SubmitterText(job.submitter_key(), job.submitter_name());
      !by.empty()) {
    std::printf("submitted by %s\n", by.c_str());
  }
  size_t width = 4;
  for (const auto& t : job.tasks()) width = std::max(width, t.name().size());
  std::printf("%-*s  %-10s  %8s  %9s  %-12s  %s\n", static_cast<int>(width), "TASK",
              "STATUS", "ATTEMPTS", "DURATION", "WORKER", "DETAIL");
  for (const auto& t : job.tasks()) {
    std::string detail = t.detail();
    if (!t.pending_reason().empty()) {
      detail = "waiting: " + t.pending_reason();
    } else if (t.waiting_in_worker()) {
      detail = "waiting for a free " + t.backend() + " slot on " + t.worker();
    }
    for (const auto& a : t.earlier()) {
      detail += "; attempt " + std::to_string(a.attempt()) + ": " + a.detail();
      if (!a.worker().empty()) detail += " on " + a.worker();
    }
    std::printf("%-*s  %-10s  %8u  %9s  %-12s  %s\n", static_cast<int>(width),
                t.name().c_str(), t.state().c_str(), t.attempts(),
                t.wall_us() ? Micros(static_cast<int64_t>(t.wall_us())).c_str() : "-",
                t.worker().empty() ? "-" : t.worker().c_str(), detail.c_str());
    if (auto tail = tails.find(t.name()); tail != tails.end())
      PrintTail(stdout, tail->second);
  }
  if (static_cast<uint32_t>(job.tasks_size()) < c.total()) {
    std::printf("(%s of %s shown)\n", Plural(job.tasks_size(), "task").c_str(),
                std::to_string(c.total()).c_str());
  }
}

std::string Ago(uint64_t ms) {
  if (ms < 1000) return std::to_string(ms) + "ms ago";
  if (ms < 120'000) return std::to_string(ms / 1000) + "s ago";
  return std::to_string(ms / 60'000) + "m ago";
}

}  // namespace

int RemoteStatusCommand(const std::string& job, bool json, const std::string& states,
                        const ConnectionArgs& connection) {
  auto filter = ParseStateFilter(states);
  if (!filter.ok()) {
    std::fprintf(stderr, "drover status: %s\n", filter.status().message().c_str());
    return kExitUsage;
  }
  auto session = ClientSession::Open(connection);
  if (!session.ok()) return PrintError(session.status());
  wire::StatusRequest request;
  request.set_job_id(job.empty() ? "latest" : job);
  request.set_tasks(true);
  for (dag::TaskState s : *filter)
    request.add_task_states(std::string(dag::TaskStateName(s)));
  auto answer = (*session)->client().Call(
      protocol::Make(Command::kStatusRequest, request), {Command::kStatusReply});
  if (!answer.ok()) return PrintError(answer.status());
  auto reply = protocol::Parse<wire::StatusReply>(*answer);
  if (!reply.ok()) return PrintError(reply.status());
  if (reply->jobs_size() == 0) {
    std::fprintf(stderr, "drover: no job %s at %s\n", job.empty() ? "yet" : job.c_str(),
                 connection.coordinator.c_str());
    return kExitFailed;
  }
  for (auto& j : *reply->mutable_jobs()) {
    // A coordinator older than task_states sends every row: filter here too.
    auto* rows = j.mutable_tasks();
    rows->erase(std::remove_if(rows->begin(), rows->end(),
                               [&](const wire::TaskStatus& t) {
                                 return !Keeps(*filter, t.state());
                               }),
                rows->end());
    if (json) {
      std::printf("%s\n", JobStatusJson(j).dump(2).c_str());
      continue;
    }
    std::map<std::string, std::string> tails;
    for (const auto& t : j.tasks()) {
      if (tails.size() >= kStderrTailTasks) break;
      if (dag::ParseTaskState(t.state()) != dag::TaskState::kFailed) continue;
      if (std::string tail = RemoteStderrTail((*session)->client(), j.job_id(), t.name());
          !tail.empty()) {
        tails[t.name()] = std::move(tail);
      }
    }
    PrintJobStatus(j, tails);
  }
  return kExitOk;
}

int RemoteLogsCommand(const std::vector<std::string>& positional, int attempt,
                      const std::string& stream, bool follow,
                      const ConnectionArgs& connection) {
  if (positional.empty() || positional.size() > 2) {
    std::fprintf(stderr, "drover logs: give TASK or JOB TASK\n");
    return kExitUsage;
  }
  auto session = ClientSession::Open(connection);
  if (!session.ok()) return PrintError(session.status());
  Client& client = (*session)->client();
  std::string job_id = positional.size() == 2 ? positional[0] : "";
  if (job_id.empty()) {
    // LOGS names a job; ask which one is the latest, as `status` does.
    wire::StatusRequest latest;
    latest.set_job_id("latest");
    auto status = client.Call(protocol::Make(Command::kStatusRequest, latest),
                              {Command::kStatusReply});
    if (!status.ok()) return PrintError(status.status());
    auto reply = protocol::Parse<wire::StatusReply>(*status);
    if (!reply.ok() || reply->jobs_size() == 0) {
      std::fprintf(stderr, "drover: no jobs at %s\n", connection.coordinator.c_str());
      return kExitFailed;
    }
    job_id = reply->jobs(0).job_id();
  }
  wire::LogsRequest request;
  request.set_job_id(job_id);
  request.set_task(positional.back());
  request.set_attempt(static_cast<uint32_t>(attempt));
  request.set_follow(follow);
  auto answer =
      client.Call(protocol::Make(Command::kLogsRequest, request), {Command::kLogs});
  if (!answer.ok()) return PrintError(answer.status());
  const bool want_out = stream != "err";
  const bool want_err = stream != "out";
  auto print_logs = [&](const Message& m) -> bool {
    auto logs = protocol::Parse<wire::Logs>(m);
    if (m.payloads.size() >= 1 && want_out) {
      std::fwrite(m.payloads[0].data(), 1, m.payloads[0].size(), stdout);
    }
    if (m.payloads.size() >= 2 && want_err) {
      std::fwrite(m.payloads[1].data(), 1, m.payloads[1].size(), stderr);
    }
    std::fflush(stdout);
    return logs.ok() && logs->done();
  };
  const bool done = print_logs(*answer);
  if (!follow || done) return kExitOk;
  // Follow: OUTPUT chunks until a LOGS with done. A lost coordinator ends
  // the follow with an error (the logs stay readable afterwards).
  while (true) {
    Message m;
    auto event = client.Next(std::chrono::seconds(1), &m);
    if (!event.ok()) return PrintError(event.status());
    if (*event == Client::Event::kLost) {
      std::fprintf(stderr, "drover: lost the coordinator at %s while following\n",
                   connection.coordinator.c_str());
      return kExitFailed;
    }
    if (*event != Client::Event::kMessage) continue;
    if (m.command == Command::kOutput && !m.payloads.empty()) {
      auto out = protocol::Parse<wire::Output>(m);
      if (!out.ok()) continue;
      const bool err = out->stream() == 2;
      if ((err && want_err) || (!err && want_out)) {
        std::fwrite(m.payloads[0].data(), 1, m.payloads[0].size(), err ? stderr : stdout);
        std::fflush(err ? stderr : stdout);
      }
    } else if (m.command == Command::kLogs) {
      if (print_logs(m)) return kExitOk;
    }
  }
}

int WorkersCommand(bool json, const ConnectionArgs& connection) {
  auto session = ClientSession::Open(connection);
  if (!session.ok()) return PrintError(session.status());
  auto answer = (*session)->client().Call(
      protocol::Make(Command::kWorkersRequest, wire::WorkersRequest()),
      {Command::kWorkersReply});
  if (!answer.ok()) return PrintError(answer.status());
  auto reply = protocol::Parse<wire::WorkersReply>(*answer);
  if (!reply.ok()) return PrintError(reply.status());
  if (json) {
    Json doc = Json::array();
    for (const auto& w : reply->workers()) {
      Json j;
      j["name"] = w.name();
      j["hostname"] = w.hostname();
      j["pid"] = w.pid();
      j["address"] = w.address();
      j["state"] = w.state();
      j["labels"] = Json::object();
      for (const auto& [k, v] : w.labels()) j["labels"][k] = v;
      j["services"] = Json::array();
      for (const auto& name : w.services()) j["services"].push_back(name);
      j["pools"] = Json::array();
      for (const auto& name : w.pools()) j["pools"].push_back(name);
      j["slots"] = Json::object();
      for (const auto& [backend, s] : w.slots()) {
        j["slots"][backend] = {{"total", s.total()},
                               {"used", s.used()},
                               {"free", s.total() > s.used() ? s.total() - s.used() : 0},
                               {"waiting", s.waiting()}};
      }
      j["running"] = w.running();
      j["last_heartbeat_ms_ago"] = w.last_heartbeat_ms_ago();
      j["version"] = w.version();
      doc.push_back(std::move(j));
    }
    Json out{{"workers", doc}};
    if (reply->omitted() > 0) out["omitted"] = reply->omitted();
    std::printf("%s\n", out.dump(2).c_str());
    return kExitOk;
  }
  std::printf("%-16s  %-22s  %-8s  %-24s  %-20s  %-16s  %-16s  %s\n", "NAME", "ADDRESS",
              "STATE", "SLOTS", "LABELS", "SERVICES", "POOLS", "HEARTBEAT");
  for (const auto& w : reply->workers()) {
    // Sorted for a stable display (protobuf maps have no order).
    std::map<std::string, std::string> labels(w.labels().begin(), w.labels().end());
    std::map<std::string, wire::BackendSlots> slots(w.slots().begin(), w.slots().end());
    std::string label_text, slot_text, service_text, pool_text;
    for (const auto& name : w.services()) {
      service_text += (service_text.empty() ? "" : ",") + name;
    }
    for (const auto& name : w.pools()) pool_text += (pool_text.empty() ? "" : ",") + name;
    for (const auto& [k, v] : labels)
      label_text += (label_text.empty() ? "" : ",") + k + "=" + v;
    for (const auto& [backend, s] : slots) {
      // "threads 32/32+5": 32 of 32 slots running, 5 more waiting there.
      const uint32_t running = s.used() - std::min(s.used(), s.waiting());
      slot_text += (slot_text.empty() ? "" : " ") + backend + " " +
                   std::to_string(running) + "/" + std::to_string(s.total());
      if (s.waiting() > 0) slot_text += "+" + std::to_string(s.waiting());
    }
    std::printf("%-16s  %-22s  %-8s  %-24s  %-20s  %-16s  %-16s  %s\n", w.name().c_str(),
                w.address().c_str(), w.state().c_str(), slot_text.c_str(),
                label_text.empty() ? "-" : label_text.c_str(),
                service_text.empty() ? "-" : service_text.c_str(),
                pool_text.empty() ? "-" : pool_text.c_str(),
                Ago(w.last_heartbeat_ms_ago()).c_str());
  }
  if (reply->omitted() > 0) {
    std::printf("... and %u more, not listed (the reply's size limit)\n",
                reply->omitted());
  }
  return kExitOk;
}

}  // namespace drover::cli

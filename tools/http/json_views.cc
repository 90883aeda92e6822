#include "tools/http/json_views.h"

#include <algorithm>

namespace drover::http {

using nlohmann::json;

json CountsJson(const wire::Counts& c) {
  return {{"total", c.total()},     {"succeeded", c.succeeded()}, {"failed", c.failed()},
          {"running", c.running()}, {"pending", c.pending()},     {"other", c.other()},
          {"cached", c.cached()}};
}

std::vector<json> TaskEventsJson(const wire::TaskEvent& ev) {
  std::vector<json> out;
  auto add = [&out](const wire::TaskEvent& t) {
    out.push_back({{"job", t.job_id()},
                   {"task", t.task()},
                   {"state", t.state()},
                   {"attempt", t.attempt()},
                   {"reason", t.reason()},
                   {"detail", t.detail()},
                   {"worker", t.worker()},
                   {"counts", CountsJson(t.counts())}});
  };
  add(ev);
  for (const wire::TaskEvent& t : ev.more()) {
    if (t.more_size() == 0) add(t);
  }
  return out;
}

json JobJson(const wire::JobStatus& js, int64_t now_ms) {
  const wire::Counts& c = js.counts();
  const uint32_t finished = c.succeeded() + c.failed() + c.other();
  const int64_t end = js.finished_unix_ms() ? js.finished_unix_ms() : now_ms;
  json out = {{"id", js.job_id()},
              {"name", js.name()},
              {"state", js.state()},
              {"priority", js.priority()},
              {"spec_file", js.spec_file()},
              {"submitted_unix_ms", js.submitted_unix_ms()},
              {"finished_unix_ms", js.finished_unix_ms()},
              {"duration_ms", std::max<int64_t>(0, end - js.submitted_unix_ms())},
              {"counts", CountsJson(c)},
              {"progress", c.total() ? static_cast<double>(finished) / c.total() : 1.0},
              {"submitter", js.submitter_name()}};
  return out;
}

json TaskJson(const wire::TaskStatus& ts) {
  json attempts = json::array();
  for (const auto& a : ts.earlier()) {
    attempts.push_back({{"attempt", a.attempt()},
                        {"reason", a.reason()},
                        {"detail", a.detail()},
                        {"worker", a.worker()}});
  }
  if (!ts.reason().empty()) {
    attempts.push_back({{"attempt", ts.attempts()},
                        {"reason", ts.reason()},
                        {"detail", ts.detail()},
                        {"worker", ts.worker()}});
  }
  json out = {{"name", ts.name()},
              {"group", ts.group()},
              {"state", ts.state()},
              {"attempts", ts.attempts()},
              {"backend", ts.backend()},
              {"worker", ts.worker()},
              {"reason", ts.reason()},
              {"detail", ts.detail()},
              {"exit_code", ts.exit_code()},
              {"signal", ts.signal()},
              {"wall_ms", ts.wall_us() / 1000},
              {"started_unix_ms", ts.started_unix_ms()},
              {"finished_unix_ms", ts.finished_unix_ms()},
              {"pending_reason", ts.pending_reason()},
              {"waiting_in_worker", ts.waiting_in_worker()},
              {"finished_attempts", attempts}};
  json outputs = json::object();
  for (const auto& [k, v] : ts.outputs()) outputs[k] = v;
  out["outputs"] = std::move(outputs);
  if (!ts.result_json().empty()) {
    json result = json::parse(ts.result_json(), nullptr, /*allow_exceptions=*/false);
    out["result"] = result.is_discarded() ? json(ts.result_json()) : result;
  }
  return out;
}

json GroupJson(const wire::TaskGroup& g) {
  json needs = json::array();
  for (const auto& n : g.needs()) needs.push_back(n);
  return {{"name", g.name()},       {"needs", needs},
          {"backend", g.backend()}, {"instances", g.instances()},
          {"matrix", g.matrix()},   {"counts", CountsJson(g.counts())}};
}

json WorkerJson(const wire::WorkerInfo& w) {
  json slots = json::object();
  for (const auto& [backend, s] : w.slots()) {
    slots[backend] = {{"total", s.total()},
                      {"used", s.used()},
                      {"free", s.total() > s.used() ? s.total() - s.used() : 0},
                      {"waiting", s.waiting()}};
  }
  json labels = json::object();
  for (const auto& [k, v] : w.labels()) labels[k] = v;
  json services = json::array();
  for (const auto& s : w.services()) services.push_back(s);
  json pools = json::array();
  for (const auto& p : w.pools()) pools.push_back(p);
  return {{"name", w.name()},       {"hostname", w.hostname()},
          {"pid", w.pid()},         {"address", w.address()},
          {"state", w.state()},     {"version", w.version()},
          {"running", w.running()}, {"heartbeat_age_ms", w.last_heartbeat_ms_ago()},
          {"labels", labels},       {"slots", slots},
          {"services", services},   {"pools", pools}};
}

namespace {

json PipelineRunJson(const wire::PipelineRunInfo& r) {
  return {{"job_id", r.job_id().empty() ? json(nullptr) : json(r.job_id())},
          {"state", r.state()},
          {"trigger", r.trigger()},
          {"due_unix_ms", r.due_unix_ms()},
          {"started_unix_ms", r.started_unix_ms()}};
}

}  // namespace

json PipelinesJson(const wire::PipelinesReply& reply) {
  json list = json::array();
  for (const auto& p : reply.pipelines()) {
    json next = json::array();
    for (int64_t t : p.next_unix_ms()) next.push_back(t);
    list.push_back(
        {{"name", p.name()},
         {"file", p.file()},
         {"schedule", p.schedule()},
         {"timezone", p.timezone()},
         {"concurrency", p.concurrency()},
         {"catchup", p.catchup()},
         {"next_runs_unix_ms", next},
         {"last_run", p.has_last_run() ? PipelineRunJson(p.last_run()) : json(nullptr)},
         {"queued", p.has_queued() ? PipelineRunJson(p.queued()) : json(nullptr)},
         {"skipped", p.skipped()},
         {"error", p.error().empty() ? json(nullptr) : json(p.error())}});
  }
  return {{"dir", reply.dir().empty() ? json(nullptr) : json(reply.dir())},
          {"pipelines", list}};
}

json ErrorJson(int status, const std::string& message) {
  return {{"error", {{"status", status}, {"message", message}}}};
}

}  // namespace drover::http

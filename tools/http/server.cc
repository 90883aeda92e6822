#include "tools/http/server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/protocol/codec.h"
#include "tools/cli/client.h"
#include "tools/http/assets.h"
#include "tools/http/http_status.h"
#include "tools/http/json_views.h"
#include "tools/http/listener.h"
#include "tools/http/metrics_server.h"

namespace drover::http {
namespace {

using nlohmann::json;
using protocol::Command;
using protocol::Message;

constexpr uint32_t kDefaultJobs = 50;
constexpr uint32_t kMaxJobs = 1000;
constexpr uint32_t kDefaultTasks = 100;
constexpr uint32_t kMaxTasks = 1000;
constexpr size_t kDefaultLogTail = 64u << 10;
// A stream says something at least this often, so that proxies keep it and
// a closed browser tab is noticed.
constexpr auto kKeepalive = std::chrono::seconds(15);

int64_t NowMs() { return ToUnixMillis(std::chrono::system_clock::now()); }

// A non-negative integer query parameter, `fallback` when absent, capped at
// `max`; nullopt when it is not a number.
std::optional<uint32_t> UintParam(const httplib::Request& req, const char* name,
                                  uint32_t fallback, uint32_t max) {
  if (!req.has_param(name)) return fallback;
  const std::string v = req.get_param_value(name);
  uint32_t n = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size()) return std::nullopt;
  return std::min(n, max);
}

// "host:port" of an Origin header ("http://host:port").
std::string OriginHost(const std::string& origin) {
  const size_t scheme = origin.find("://");
  return scheme == std::string::npos ? origin : origin.substr(scheme + 3);
}

std::string Event(const char* name, const std::string& data) {
  return std::string("event: ") + name + "\ndata: " + data + "\n\n";
}

}  // namespace

// The routes. Each asks the coordinator through a Client of its own.
class HttpServer::Handlers {
 public:
  explicit Handlers(HttpServer& s) : s_(s) {}

  Result<Message> Ask(Command command, const google::protobuf::Message& body,
                      std::initializer_list<Command> answers) const {
    cli::Client client(s_.context_, Options());
    return client.Call(protocol::Make(command, body), answers);
  }

  cli::ClientOptions Options() const {
    cli::ClientOptions o;
    o.endpoint = s_.options_.coordinator;
    o.timeout = s_.options_.request_timeout;
    return o;
  }

  Result<wire::StatusReply> AskStatus(const wire::StatusRequest& req) const {
    auto m = Ask(Command::kStatusRequest, req, {Command::kStatusReply});
    if (!m.ok()) return m.status();
    return protocol::Parse<wire::StatusReply>(*m);
  }

  void Jobs(const httplib::Request& req, httplib::Response& res) const {
    const auto limit = UintParam(req, "limit", kDefaultJobs, kMaxJobs);
    if (!limit) return SendError(res, 400, "limit must be a number");
    const std::string state = req.get_param_value("state");
    const std::string name = req.get_param_value("name");
    const bool filtered = !state.empty() || !name.empty();
    wire::StatusRequest sr;
    // Filters look at the newest kMaxJobs jobs.
    sr.set_limit(filtered ? kMaxJobs : std::max<uint32_t>(1, *limit));
    auto reply = AskStatus(sr);
    if (!reply.ok())
      return SendError(res, HttpStatusOf(reply.status()), reply.status().message());
    json jobs = json::array();
    const int64_t now = NowMs();
    for (const auto& js : reply->jobs()) {
      if (!state.empty() && js.state() != state) continue;
      if (!name.empty() && js.name().find(name) == std::string::npos) continue;
      if (jobs.size() >= *limit) break;
      jobs.push_back(JobJson(js, now));
    }
    SendJson(res, 200, {{"jobs", jobs}, {"scanned", reply->jobs_size()}});
  }

  void Job(const httplib::Request& req, httplib::Response& res) const {
    wire::StatusRequest sr;
    sr.set_job_id(req.matches[1]);
    sr.set_groups(true);
    auto reply = AskStatus(sr);
    if (!reply.ok())
      return SendError(res, HttpStatusOf(reply.status()), reply.status().message());
    if (reply->jobs_size() != 1) return SendError(res, 404, "no job " + sr.job_id());
    const wire::JobStatus& js = reply->jobs(0);
    json out = JobJson(js, NowMs());
    json nodes = json::array();
    for (const auto& g : js.groups()) nodes.push_back(GroupJson(g));
    out["graph"] = {{"nodes", nodes}};
    SendJson(res, 200, out);
  }

  void Tasks(const httplib::Request& req, httplib::Response& res) const {
    const auto offset = UintParam(req, "offset", 0, UINT32_MAX);
    const auto limit = UintParam(req, "limit", kDefaultTasks, kMaxTasks);
    if (!offset || !limit) return SendError(res, 400, "offset and limit must be numbers");
    wire::StatusRequest sr;
    sr.set_job_id(req.matches[1]);
    sr.set_tasks(true);
    sr.set_task_offset(*offset);
    sr.set_task_limit(std::max<uint32_t>(1, *limit));
    sr.set_task_state(req.get_param_value("state"));
    sr.set_task_group(req.get_param_value("group"));
    auto reply = AskStatus(sr);
    if (!reply.ok())
      return SendError(res, HttpStatusOf(reply.status()), reply.status().message());
    if (reply->jobs_size() != 1) return SendError(res, 404, "no job " + sr.job_id());
    const wire::JobStatus& js = reply->jobs(0);
    json tasks = json::array();
    for (const auto& ts : js.tasks()) tasks.push_back(TaskJson(ts));
    SendJson(res, 200,
             {{"job", js.job_id()},
              {"total", js.tasks_matched()},
              {"offset", *offset},
              {"limit", *limit},
              {"tasks", tasks}});
  }

  void Task(const httplib::Request& req, httplib::Response& res) const {
    wire::StatusRequest sr;
    sr.set_job_id(req.matches[1]);
    sr.set_tasks(true);
    sr.set_task_name(req.matches[2]);
    auto reply = AskStatus(sr);
    if (!reply.ok())
      return SendError(res, HttpStatusOf(reply.status()), reply.status().message());
    if (reply->jobs_size() != 1 || reply->jobs(0).tasks_size() != 1) {
      return SendError(res, 404,
                       "job " + sr.job_id() + " has no task '" + sr.task_name() + "'");
    }
    SendJson(res, 200, TaskJson(reply->jobs(0).tasks(0)));
  }

  void Log(const httplib::Request& req, httplib::Response& res) const {
    const auto attempt = UintParam(req, "attempt", 0, UINT32_MAX);
    const auto tail = UintParam(req, "tail", kDefaultLogTail, 16u << 20);
    if (!attempt || !tail) return SendError(res, 400, "attempt and tail must be numbers");
    wire::LogsRequest lr;
    lr.set_job_id(req.matches[1]);
    lr.set_task(req.matches[2]);
    lr.set_attempt(*attempt);
    auto m = Ask(Command::kLogsRequest, lr, {Command::kLogs});
    if (!m.ok()) return SendError(res, HttpStatusOf(m.status()), m.status().message());
    auto logs = protocol::Parse<wire::Logs>(*m);
    if (!logs.ok()) return SendError(res, 502, logs.status().message());
    auto tail_of = [&](size_t i) {
      if (i >= m->payloads.size()) return std::string();
      const std::string& s = m->payloads[i];
      return s.size() > *tail ? s.substr(s.size() - *tail) : s;
    };
    SendJson(res, 200,
             {{"job", logs->job_id()},
              {"task", logs->task()},
              {"attempt", logs->attempt()},
              {"state", logs->state()},
              {"done", logs->done()},
              {"stdout", tail_of(0)},
              {"stderr", tail_of(1)}});
  }

  void Cancel(const httplib::Request& req, httplib::Response& res, bool task) const {
    wire::CancelJob cj;
    cj.set_job_id(req.matches[1]);
    if (task) cj.set_task(req.matches[2]);
    auto m = Ask(Command::kCancelJob, cj, {Command::kOk});
    if (!m.ok()) return SendError(res, HttpStatusOf(m.status()), m.status().message());
    auto ok = protocol::Parse<wire::Ok>(*m);
    SendJson(res, 202, {{"message", ok.ok() ? ok->message() : ""}});
  }

  void Retry(const httplib::Request& req, httplib::Response& res) const {
    wire::RetryJob rj;
    rj.set_job_id(req.matches[1]);
    auto m = Ask(Command::kRetryJob, rj, {Command::kSubmitted});
    if (!m.ok()) return SendError(res, HttpStatusOf(m.status()), m.status().message());
    auto sub = protocol::Parse<wire::Submitted>(*m);
    if (!sub.ok()) return SendError(res, 502, sub.status().message());
    if (sub->job_id().empty()) {
      std::string why = "the retry was not accepted";
      if (sub->errors_size() > 0) why += ": " + sub->errors(0);
      return SendError(res, 409, why);
    }
    SendJson(res, 201,
             {{"job", sub->job_id()},
              {"tasks", sub->tasks()},
              {"carried_over", sub->carried_over()}});
  }

  void Workers(const httplib::Request&, httplib::Response& res) const {
    auto m =
        Ask(Command::kWorkersRequest, wire::WorkersRequest(), {Command::kWorkersReply});
    if (!m.ok()) return SendError(res, HttpStatusOf(m.status()), m.status().message());
    auto reply = protocol::Parse<wire::WorkersReply>(*m);
    if (!reply.ok()) return SendError(res, 502, reply.status().message());
    json workers = json::array();
    for (const auto& w : reply->workers()) workers.push_back(WorkerJson(w));
    json body{{"workers", workers}};
    // Those left out of the coordinator's reply for its size (protocol.md).
    if (reply->omitted() > 0) body["omitted"] = reply->omitted();
    SendJson(res, 200, body);
  }

  void Pipelines(const httplib::Request& req, httplib::Response& res) const {
    const auto next = UintParam(req, "next", 3, 100);
    if (!next) return SendError(res, 400, "next: a number of next run times, up to 100");
    wire::PipelinesRequest request;
    request.set_next_runs(*next);
    auto m = Ask(Command::kPipelinesRequest, request, {Command::kPipelinesReply});
    if (!m.ok()) return SendError(res, HttpStatusOf(m.status()), m.status().message());
    auto reply = protocol::Parse<wire::PipelinesReply>(*m);
    if (!reply.ok()) return SendError(res, 502, reply.status().message());
    SendJson(res, 200, PipelinesJson(*reply));
  }

  // POST /api/v1/pipelines/NAME/runs: PIPELINE-RUN, as `drover pipelines
  // run NAME`. 201 with the job when it started, 202 when it waits for the
  // running job (concurrency: queue).
  void RunPipeline(const httplib::Request& req, httplib::Response& res) const {
    wire::PipelineRun run;
    run.set_name(req.matches[1]);
    auto m = Ask(Command::kPipelineRun, run, {Command::kSubmitted, Command::kOk});
    if (!m.ok()) return SendError(res, HttpStatusOf(m.status()), m.status().message());
    if (m->command == Command::kOk) {
      auto ok = protocol::Parse<wire::Ok>(*m);
      if (!ok.ok()) return SendError(res, 502, ok.status().message());
      return SendJson(
          res, 202,
          {{"pipeline", run.name()}, {"queued", true}, {"message", ok->message()}});
    }
    auto sub = protocol::Parse<wire::Submitted>(*m);
    if (!sub.ok()) return SendError(res, 502, sub.status().message());
    SendJson(res, 201,
             {{"pipeline", run.name()},
              {"queued", false},
              {"job", sub->job_id()},
              {"tasks", sub->tasks()}});
  }

  void Metrics(const httplib::Request&, httplib::Response& res) const {
    wire::StatusRequest sr;
    sr.set_metrics(true);
    auto reply = AskStatus(sr);
    if (!reply.ok())
      return SendError(res, HttpStatusOf(reply.status()), reply.status().message());
    res.set_content(reply->metrics(), kPrometheusContentType);
  }

  void History(const httplib::Request&, httplib::Response& res) const {
    json points;
    {
      std::lock_guard<std::mutex> lock(s_.mu_);
      points = s_.history_.Json();
    }
    SendJson(res, 200,
             {{"interval_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                  s_.options_.sample_interval)
                                  .count()},
              {"points", points}});
  }

  // A stream slot, or a 503 when all are taken.
  bool TakeStream(httplib::Response& res) const {
    if (s_.streams_.fetch_add(1) >= s_.options_.max_streams) {
      s_.streams_.fetch_sub(1);
      SendError(res, 503, "too many event streams are open");
      return false;
    }
    return true;
  }

  bool Stopping() const {
    std::lock_guard<std::mutex> lock(s_.mu_);
    return s_.stopping_;
  }

  // /api/v1/events: a "summary" event at every sample (jobs, workers, the
  // newest chart point).
  void Events(const httplib::Request&, httplib::Response& res) const {
    if (!TakeStream(res)) return;
    auto seen = std::make_shared<uint64_t>(UINT64_MAX);
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, seen](size_t, httplib::DataSink& sink) {
          std::unique_lock<std::mutex> lock(s_.mu_);
          s_.changed_.wait_for(lock, kKeepalive,
                               [&] { return s_.stopping_ || s_.generation_ != *seen; });
          if (s_.stopping_) return false;
          std::string out;
          if (s_.generation_ != *seen && !s_.summary_.empty()) {
            out = Event("summary", s_.summary_);
          } else {
            out = ": keepalive\n\n";
          }
          *seen = s_.generation_;
          lock.unlock();
          return sink.write(out.data(), out.size());
        },
        [this](bool) { s_.streams_.fetch_sub(1); });
  }

  // A stream over one coordinator dialog: `start` is sent on a fresh
  // connection, then every message is handed to `forward`, which writes
  // events and returns false when the dialog is over.
  using Forward = std::function<bool(const Message&, std::string* out)>;
  void Stream(httplib::Response& res, Message start, Forward forward) const {
    if (!TakeStream(res)) return;
    auto client = std::make_shared<cli::Client>(s_.context_, Options());
    // A failed send shows as the stream's first event: Next() on a client
    // that is not connected is an error.
    if (client->Connect().ok()) (void)client->Send(start);
    res.set_header("Cache-Control", "no-cache");
    auto last = std::make_shared<std::chrono::steady_clock::time_point>(
        std::chrono::steady_clock::now());
    auto ended = std::make_shared<bool>(false);
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, client, forward, last, ended](size_t, httplib::DataSink& sink) {
          if (*ended || Stopping()) return false;
          Message m;
          auto ev = client->Next(std::chrono::seconds(1), &m);
          std::string out;
          if (!ev.ok() || *ev == cli::Client::Event::kLost) {
            out = Event("error", Dump(ErrorJson(503, ev.ok() ? "the coordinator went away"
                                                             : ev.status().message())));
            *ended = true;
          } else if (*ev == cli::Client::Event::kMessage) {
            if (m.command == Command::kError) {
              auto e = protocol::Parse<wire::Error>(m);
              const std::string text = e.ok() ? e->message() : "refused";
              out = Event("error",
                          Dump(ErrorJson(HttpStatusOf(FailedPrecondition(text)), text)));
              *ended = true;
            } else if (!forward(m, &out)) {
              *ended = true;
            }
          } else if (std::chrono::steady_clock::now() - *last > kKeepalive) {
            out = ": keepalive\n\n";
          }
          if (out.empty()) return true;
          *last = std::chrono::steady_clock::now();
          if (!sink.write(out.data(), out.size())) return false;
          if (*ended) sink.done();
          return true;
        },
        [this](bool) { s_.streams_.fetch_sub(1); });
  }

  // /api/v1/jobs/{id}/events: WATCH; "task" and, at the end, "job".
  void JobEvents(const httplib::Request& req, httplib::Response& res) const {
    wire::Watch w;
    w.set_job_id(req.matches[1]);
    // With output: the coordinator then also says when a task starts
    // running. The output itself is not forwarded (the log stream is).
    w.set_output(true);
    // A busy job's events come many to a message (docs/protocol.md,
    // TASK-EVENT): one "task" event each, in order.
    w.set_max_batch(cli::kEventBatch);
    Stream(res, protocol::Make(Command::kWatch, w),
           [](const Message& m, std::string* out) {
             if (m.command == Command::kTaskEvent) {
               auto e = protocol::Parse<wire::TaskEvent>(m);
               if (!e.ok()) return true;
               for (const nlohmann::json& t : TaskEventsJson(*e))
                 *out += Event("task", Dump(t));
               return true;
             }
             if (m.command == Command::kJobEvent) {
               auto e = protocol::Parse<wire::JobEvent>(m);
               if (e.ok()) {
                 *out = Event("job", Dump({{"job", e->job_id()},
                                           {"state", e->state()},
                                           {"counts", CountsJson(e->counts())}}));
               }
               return false;
             }
             return true;  // OUTPUT and the rest
           });
  }

  // /api/v1/jobs/{id}/tasks/{task}/log/stream: LOGS-REQUEST with follow.
  void LogStream(const httplib::Request& req, httplib::Response& res) const {
    wire::LogsRequest lr;
    lr.set_job_id(req.matches[1]);
    lr.set_task(req.matches[2]);
    lr.set_follow(true);
    Stream(res, protocol::Make(Command::kLogsRequest, lr),
           [](const Message& m, std::string* out) {
             if (m.command == Command::kOutput) {
               auto o = protocol::Parse<wire::Output>(m);
               if (o.ok() && !m.payloads.empty()) {
                 *out = Event("output",
                              Dump({{"stream", o->stream() == 2 ? "stderr" : "stdout"},
                                    {"offset", o->offset()},
                                    {"data", m.payloads[0]}}));
               }
               return true;
             }
             if (m.command == Command::kLogs) {
               auto l = protocol::Parse<wire::Logs>(m);
               if (!l.ok()) return false;
               *out =
                   Event("logs",
                         Dump({{"attempt", l->attempt()},
                               {"state", l->state()},
                               {"done", l->done()},
                               {"stdout", m.payloads.size() > 0 ? m.payloads[0] : ""},
                               {"stderr", m.payloads.size() > 1 ? m.payloads[1] : ""}}));
               return !l->done();
             }
             return true;
           });
  }

 private:
  HttpServer& s_;
};

HttpServer::HttpServer(zmq::context_t& context, HttpOptions options)
    : context_(context),
      options_(std::move(options)),
      history_(options_.history_samples) {}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start() {
  ListenOptions listen;
  listen.address = options_.address;
  listen.token_file = options_.token_file;
  listen.threads = options_.max_streams + 8;
  if (Status s = listener_.Bind(listen); !s.ok()) return s;
  handlers_ = std::make_unique<Handlers>(*this);
  httplib::Server& srv = listener_.server();

  srv.set_pre_routing_handler(
      [this](const httplib::Request& req, httplib::Response& res) {
        const bool api = req.path.rfind("/api/", 0) == 0 || req.path == "/metrics";
        if (!api) return httplib::Server::HandlerResponse::Unhandled;
        const Access access = Authenticate(listener_.tokens(), req, res);
        if (access == Access::kNone) return httplib::Server::HandlerResponse::Handled;
        if (req.method != "GET" && req.method != "HEAD") {
          if (access != Access::kAdmin) {
            SendError(res, 403, "this action needs an admin token");
            return httplib::Server::HandlerResponse::Handled;
          }
          // A page of another origin may not act through the user's browser.
          const std::string origin = req.get_header_value("Origin");
          if (!origin.empty() && OriginHost(origin) != req.get_header_value("Host")) {
            SendError(res, 403, "cross-origin request refused (Origin " + origin + ")");
            return httplib::Server::HandlerResponse::Handled;
          }
        }
        return httplib::Server::HandlerResponse::Unhandled;
      });

  Handlers& h = *handlers_;
  using Req = const httplib::Request&;
  using Res = httplib::Response&;
  srv.Get("/api/v1/jobs", [&h](Req q, Res r) { h.Jobs(q, r); });
  srv.Get(R"(/api/v1/jobs/([^/]+))", [&h](Req q, Res r) { h.Job(q, r); });
  srv.Get(R"(/api/v1/jobs/([^/]+)/events)", [&h](Req q, Res r) { h.JobEvents(q, r); });
  srv.Get(R"(/api/v1/jobs/([^/]+)/tasks)", [&h](Req q, Res r) { h.Tasks(q, r); });
  srv.Get(R"(/api/v1/jobs/([^/]+)/tasks/(.+)/log/stream)",
          [&h](Req q, Res r) { h.LogStream(q, r); });
  srv.Get(R"(/api/v1/jobs/([^/]+)/tasks/(.+)/log)", [&h](Req q, Res r) { h.Log(q, r); });
  srv.Get(R"(/api/v1/jobs/([^/]+)/tasks/(.+))", [&h](Req q, Res r) { h.Task(q, r); });
  srv.Post(R"(/api/v1/jobs/([^/]+)/cancel)",
           [&h](Req q, Res r) { h.Cancel(q, r, false); });
  srv.Post(R"(/api/v1/jobs/([^/]+)/retry)", [&h](Req q, Res r) { h.Retry(q, r); });
  srv.Post(R"(/api/v1/jobs/([^/]+)/tasks/(.+)/cancel)",
           [&h](Req q, Res r) { h.Cancel(q, r, true); });
  srv.Get("/api/v1/workers", [&h](Req q, Res r) { h.Workers(q, r); });
  srv.Get("/api/v1/pipelines", [&h](Req q, Res r) { h.Pipelines(q, r); });
  srv.Post(R"(/api/v1/pipelines/([^/]+)/runs)",
           [&h](Req q, Res r) { h.RunPipeline(q, r); });
  srv.Get("/api/v1/history", [&h](Req q, Res r) { h.History(q, r); });
  srv.Get("/api/v1/events", [&h](Req q, Res r) { h.Events(q, r); });
  srv.Get("/metrics", [&h](Req q, Res r) { h.Metrics(q, r); });
  srv.Get(R"(/(|index\.html|app\.js|app\.css))", [](Req q, Res r) {
    const Asset* a = FindAsset(q.path == "/" ? "/index.html" : q.path);
    if (!a) return SendError(r, 404, "no such page");
    r.set_header("Cache-Control", "no-cache");
    r.set_content(std::string(a->body), a->content_type);
  });
  listener_.Start();
  sampler_ = std::thread([this] { Sample(); });
  return Status::Ok();
}

void HttpServer::Sample() {
  while (true) {
    wire::StatusRequest sr;
    sr.set_metrics(true);
    sr.set_limit(20);
    auto reply = handlers_->AskStatus(sr);
    wire::WorkersReply workers;
    if (auto m = handlers_->Ask(Command::kWorkersRequest, wire::WorkersRequest(),
                                {Command::kWorkersReply});
        m.ok()) {
      if (auto w = protocol::Parse<wire::WorkersReply>(*m); w.ok())
        workers = std::move(*w);
    }
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (reply.ok()) {
        const int64_t now = NowMs();
        history_.Add(SampleOf(reply->metrics(), now));
        json jobs = json::array();
        for (const auto& js : reply->jobs()) jobs.push_back(JobJson(js, now));
        json ws = json::array();
        for (const auto& w : workers.workers()) ws.push_back(WorkerJson(w));
        summary_ = Dump({{"t", now},
                         {"point", history_.LastJson()},
                         {"jobs", jobs},
                         {"workers", ws}});
        ++generation_;
        changed_.notify_all();
      } else {
        spdlog::debug("http: sampling the coordinator: {}", reply.status().ToString());
      }
      if (changed_.wait_for(lock, options_.sample_interval,
                            [this] { return stopping_; })) {
        return;
      }
    }
  }
}

void HttpServer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  changed_.notify_all();
  if (sampler_.joinable()) sampler_.join();
  listener_.Stop();
}

}  // namespace drover::http

#include "tools/http/listener.h"

#include <httplib.h>

#include "tools/http/json_views.h"

namespace drover::http {

using nlohmann::json;

Listener::Listener() = default;

Listener::~Listener() { Stop(); }

Status Listener::Bind(const ListenOptions& options) {
  auto address = ParseHttpAddress(options.address, options.flag);
  if (!address.ok()) return address.status();
  if (!options.token_file.empty()) {
    auto tokens = Tokens::Load(options.token_file);
    if (!tokens.ok()) return tokens.status();
    tokens_ = std::move(*tokens);
  }
  if (Status s =
          CheckHttpSecurity(*address, tokens_, options.token_flag, options.exposure);
      !s.ok()) {
    return s;
  }
  server_ = std::make_unique<httplib::Server>();
  const int threads = options.threads;
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server_->set_error_handler([](const httplib::Request& q, httplib::Response& r) {
    // Routes that answered already have a body; the rest get a JSON one.
    if (!r.body.empty()) return;
    SendError(r, r.status,
              r.status == 404 ? "no route " + q.method + " " + q.path : "request failed");
  });
  const std::string host = address->host.empty() ? "0.0.0.0" : address->host;
  int port = address->port;
  if (port == 0) {
    port = server_->bind_to_any_port(host);
  } else if (!server_->bind_to_port(host, port)) {
    port = -1;
  }
  if (port < 0) {
    server_.reset();
    return Unavailable(options.flag + ": cannot listen on " + options.address);
  }
  const std::string shown = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  url_ = "http://" + shown + ":" + std::to_string(port);
  return Status::Ok();
}

void Listener::Start() {
  if (server_ && !thread_.joinable()) {
    thread_ = std::thread([this] { server_->listen_after_bind(); });
  }
}

void Listener::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string BearerToken(const httplib::Request& req) {
  const std::string auth = req.get_header_value("Authorization");
  if (auth.rfind("Bearer ", 0) == 0) return auth.substr(7);
  // EventSource cannot set headers: the page passes its token so.
  return req.get_param_value("access_token");
}

Access Authenticate(const Tokens& tokens, const httplib::Request& req,
                    httplib::Response& res) {
  const Access access = tokens.Check(BearerToken(req));
  if (access == Access::kNone) {
    res.set_header("WWW-Authenticate", "Bearer realm=\"drover\"");
    SendError(res, 401, "a valid bearer token is required (Authorization: Bearer TOKEN)");
  }
  return access;
}

std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

void SendJson(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(Dump(body), "application/json");
}

void SendError(httplib::Response& res, int status, const std::string& message) {
  SendJson(res, status, ErrorJson(status, message));
}

}  // namespace drover::http

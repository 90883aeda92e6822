// Listener: a cpp-httplib server bound under the rules of docs/api.md
// ("Security"), shared by the coordinator's front end (server.h) and the
// worker's /metrics (metrics_server.h): loopback unless tokens are given,
// bearer tokens checked, errors as JSON bodies.
//
// Bind() is called once, then routes are added to server(), then Start()
// listens on a thread of its own; Stop() (or the destructor) stops it and
// joins. Bind, Start and Stop are called from one thread; the routes run
// on cpp-httplib's request threads.
#ifndef DROVER_TOOLS_HTTP_LISTENER_H_
#define DROVER_TOOLS_HTTP_LISTENER_H_

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "core/base/status.h"
#include "tools/http/access.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace drover::http {

struct ListenOptions {
  std::string address;     // HOST:PORT; port 0 picks a free one
  std::string token_file;  // empty: no tokens (loopback only)
  // Named in errors: the address flag ("--http") and the token flag.
  std::string flag = "--http";
  std::string token_flag = "--http-token";
  // What a stranger could do on a non-loopback address without tokens.
  std::string exposure = "read your jobs and cancel them";
  int threads = 8;  // request threads
};

class Listener {
 public:
  Listener();
  ~Listener();  // Stop()s
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Parses the address, loads the tokens, refuses a non-loopback address
  // without tokens (kInvalidArgument with the reason, naming the flags),
  // and binds (kUnavailable when it cannot). On error nothing is bound.
  Status Bind(const ListenOptions& options);
  // The server to add routes to, between Bind and Start.
  httplib::Server& server() { return *server_; }
  const Tokens& tokens() const { return tokens_; }
  // "http://127.0.0.1:PORT", the port chosen when 0 was asked. After Bind.
  const std::string& url() const { return url_; }
  // Serves on a thread of its own.
  void Start();
  // Stops listening and joins the thread. Idempotent.
  void Stop();

 private:
  std::unique_ptr<httplib::Server> server_;
  Tokens tokens_;
  std::string url_;
  std::thread thread_;
};

// The bearer token of a request: the Authorization header, else the
// `access_token` parameter (EventSource cannot set headers).
std::string BearerToken(const httplib::Request& req);
// What the request's token gives; for kNone the response is already a 401
// with WWW-Authenticate and a JSON error body.
Access Authenticate(const Tokens& tokens, const httplib::Request& req,
                    httplib::Response& res);

// JSON as it is sent: bytes that are not UTF-8 (task output) replaced.
std::string Dump(const nlohmann::json& j);
void SendJson(httplib::Response& res, int status, const nlohmann::json& body);
// {"error": {"status": S, "message": M}} with status S.
void SendError(httplib::Response& res, int status, const std::string& message);

}  // namespace drover::http

#endif  // DROVER_TOOLS_HTTP_LISTENER_H_

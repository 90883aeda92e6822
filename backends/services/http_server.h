// HttpServer: the small, fast HTTP/1.1 servers behind `drover serve`.
//
// One thread, one epoll loop, keep-alive and pipelining, Content-Length
// bodies (chunked request bodies are answered 501). Made for examples,
// tests and benchmarks of the cluster backend: fast enough that a benchmark
// measures the cluster layer, not the server.
//
// It takes connections from a listening socket, or from a round-robin
// hand-off channel (include/drover/handoff.h). On SIGTERM or SIGINT it
// drains: it stops taking connections (a hand-off channel is read to its
// end), finishes the requests it has, answers them with "Connection:
// close", gives a connection that has not sent its first request yet a
// moment to do so, and returns when no connection is left or the drain
// period ends.
//
// Every response carries "X-Drover-Pid: <pid>", so that tests and
// benchmarks can count requests per instance.
//
// Not thread-safe: Run blocks the calling thread, which must be the only
// thread of the process (it blocks SIGTERM and SIGINT to read them from a
// signalfd).
#ifndef DROVER_BACKENDS_SERVICES_HTTP_SERVER_H_
#define DROVER_BACKENDS_SERVICES_HTTP_SERVER_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/base/clock.h"
#include "core/base/status.h"

namespace drover::services {

enum class HttpHandler {
  kHello,  // "Hello World"
  kEcho,   // the request body
  kSort,   // the numbers of the body (whitespace or commas), sorted, one a line
};

// "hello", "echo", "sort".
Result<HttpHandler> ParseHttpHandler(std::string_view name);

struct HttpServerOptions {
  HttpHandler handler = HttpHandler::kHello;
  Duration drain = std::chrono::seconds(10);
  // During a drain, how long a connection with no request yet may wait for one.
  Duration first_request_grace = std::chrono::seconds(1);
  size_t max_body = 64u << 20;
};

// The body of the kSort answer for `body`, or InvalidArgument naming the
// first token that is not a number. Pure; exposed for unit tests.
Result<std::string> SortNumbers(std::string_view body);

// Serves until a SIGTERM/SIGINT drain completes. Exactly one of
// `listen_fd` (a listening socket) and `handoff_fd` (a hand-off channel)
// is >= 0; the server takes ownership of it. Errors: a failed epoll or
// signalfd setup. Returns the number of requests answered.
Result<uint64_t> RunHttpServer(const HttpServerOptions& options, int listen_fd, int handoff_fd);

}  // namespace drover::services

#endif  // DROVER_BACKENDS_SERVICES_HTTP_SERVER_H_

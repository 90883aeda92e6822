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

// What ParseHttpRequest found at the front of a connection's input.
struct HttpRequestParse {
  enum class State {
    kIncomplete,  // more bytes are needed
    kRequest,     // a whole request of `size` bytes: `body`, `keep_alive`
    kError,       // answer `status` `reason` with body `message`, then close
  };
  State state = State::kIncomplete;
  size_t size = 0;
  std::string_view body;  // points into the input
  bool keep_alive = false;
  int status = 0;
  std::string_view reason;
  std::string_view message;
};

// Parses the request at the front of `in`, a connection's unread bytes: the
// request line, the headers (Content-Length, Connection and
// Transfer-Encoding are read, others skipped) and a Content-Length body of
// at most `max_body` bytes. A head over 64 KiB without its blank line is a
// 431, a request line without two spaces a 400, a bad or too large
// Content-Length a 413, a chunked body a 501. Pure; exposed for unit tests
// and tests/fuzz.
HttpRequestParse ParseHttpRequest(std::string_view in, size_t max_body);

// Serves until a SIGTERM/SIGINT drain completes. Exactly one of
// `listen_fd` (a listening socket) and `handoff_fd` (a hand-off channel)
// is >= 0; the server takes ownership of it. Errors: a failed epoll or
// signalfd setup. Returns the number of requests answered.
Result<uint64_t> RunHttpServer(const HttpServerOptions& options, int listen_fd, int handoff_fd);

}  // namespace drover::services

#endif  // DROVER_BACKENDS_SERVICES_HTTP_SERVER_H_

// HttpServer: drover's HTTP front end (docs/api.md): the REST API under
// /api/v1, /metrics, server-sent events and the dashboard page, served by
// `drover coordinator --http ADDR` and `drover run --http ADDR`.
//
// It is a client of the coordinator, not a part of it: every request is
// answered by asking the coordinator over the drover protocol (STATUS,
// WORKERS, LOGS-REQUEST, WATCH, CANCEL-JOB, RETRY-JOB, PIPELINES,
// PIPELINE-RUN; docs/protocol.md) on
// an endpoint of the same process (inproc://), exactly as `drover status`
// or `drover cancel` would. So the coordinator's loop stays the only
// thread that touches its state; this server only holds its own (the
// token list, the chart history) behind one mutex.
//
// Threads: cpp-httplib's listener and its pool of request threads, plus
// one sampler thread that reads the coordinator's metrics every
// sample_interval for the charts and wakes the /api/v1/events streams.
// Each request opens its own DEALER (a ZeroMQ socket belongs to one
// thread). Start() and Stop() are called from one thread.
#ifndef DROVER_TOOLS_HTTP_SERVER_H_
#define DROVER_TOOLS_HTTP_SERVER_H_

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "core/base/clock.h"
#include "core/base/status.h"
#include "tools/http/access.h"
#include "tools/http/history.h"
#include "tools/http/listener.h"

namespace drover::http {

struct HttpOptions {
  std::string address = "127.0.0.1:0";  // --http HOST:PORT
  std::string token_file;               // --http-token; empty: no tokens
  std::string coordinator;              // a DWP endpoint of the coordinator
  Duration request_timeout = std::chrono::seconds(10);
  Duration sample_interval = std::chrono::seconds(2);
  size_t history_samples = 300;  // 10 minutes at 2 s
  // Concurrent event streams at most (each holds a request thread).
  int max_streams = 32;
};

class HttpServer {
 public:
  HttpServer(zmq::context_t& context, HttpOptions options);
  ~HttpServer();  // Stop()s
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Checks the address and tokens (a non-loopback address without tokens
  // is refused, kInvalidArgument with the reason), binds, and starts
  // serving. On error nothing runs.
  Status Start();
  // "http://127.0.0.1:PORT", the port chosen when 0 was asked. After Start.
  std::string url() const { return listener_.url(); }
  // Ends the streams, stops listening and joins every thread.
  void Stop();

 private:
  class Handlers;
  void Sample();

  zmq::context_t& context_;
  HttpOptions options_;
  Listener listener_;
  std::unique_ptr<Handlers> handlers_;
  std::thread sampler_;

  std::mutex mu_;
  std::condition_variable changed_;  // a new sample, or stopping
  bool stopping_ = false;            // guarded by mu_
  uint64_t generation_ = 0;          // samples taken; guarded by mu_
  History history_;                  // guarded by mu_
  std::string summary_;              // the last "summary" event; guarded by mu_
  std::atomic<int> streams_{0};
};

}  // namespace drover::http

#endif  // DROVER_TOOLS_HTTP_SERVER_H_

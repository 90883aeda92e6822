// MetricsServer: `GET /metrics` for a process without the coordinator's
// front end, `drover worker --metrics ADDR` (docs/operations.md,
// "Watching drover"). Bound under the same rules as --http (listener.h):
// loopback unless a token file is given; with one, any token it lists
// (read or admin) may scrape. Every other path is a JSON 404.
//
// Thread-safety: `render` is called on request threads, possibly several
// at once; it must be thread-safe (Worker::MetricsText is).
#ifndef DROVER_TOOLS_HTTP_METRICS_SERVER_H_
#define DROVER_TOOLS_HTTP_METRICS_SERVER_H_

#include <functional>
#include <string>

#include "core/base/status.h"
#include "tools/http/listener.h"

namespace drover::http {

// The Content-Type of the Prometheus text exposition format 0.0.4.
inline constexpr char kPrometheusContentType[] =
    "text/plain; version=0.0.4; charset=utf-8";

class MetricsServer {
 public:
  using Render = std::function<std::string()>;
  MetricsServer(ListenOptions options, Render render);
  ~MetricsServer() = default;  // the listener stops itself

  // Binds and serves (Listener::Bind's errors). On error nothing runs.
  Status Start();
  // "http://127.0.0.1:PORT". After Start.
  const std::string& url() const { return listener_.url(); }
  void Stop() { listener_.Stop(); }

 private:
  ListenOptions options_;
  Render render_;
  Listener listener_;
};

}  // namespace drover::http

#endif  // DROVER_TOOLS_HTTP_METRICS_SERVER_H_

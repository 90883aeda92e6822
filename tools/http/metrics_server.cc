#include "tools/http/metrics_server.h"

#include <httplib.h>

namespace drover::http {

MetricsServer::MetricsServer(ListenOptions options, Render render)
    : options_(std::move(options)), render_(std::move(render)) {}

Status MetricsServer::Start() {
  if (Status s = listener_.Bind(options_); !s.ok()) return s;
  listener_.server().Get(
      "/metrics", [this](const httplib::Request& req, httplib::Response& res) {
        if (Authenticate(listener_.tokens(), req, res) == Access::kNone) return;
        res.set_content(render_(), kPrometheusContentType);
      });
  listener_.Start();
  return Status::Ok();
}

}  // namespace drover::http

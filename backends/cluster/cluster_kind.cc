// A cluster task sends an HTTP request to an instance of its service; its
// process is the service's, so it has no command, env or cwd of its own.
// The request's path, header values and body may hold `${matrix.KEY}` and
// `${services.NAME.port|host}` (left for the worker to replace).
#include "backends/cluster/cluster_kind.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "backends/cluster/cluster.pb.h"
#include "core/spec/fingerprint.h"
#include "core/spec/text.h"

namespace drover::cluster {
namespace {

using spec::internal::Quoted;

constexpr std::string_view kClusterBackend = "backend cluster";
constexpr std::string_view kRequestKeys[] = {"method", "path", "headers",
                                             "body",   "expect", "timeout"};

// An HTTP token (RFC 9110): what a method or a header name may be made of.
bool IsToken(std::string_view text) {
  static constexpr std::string_view kSpecials = "!#$%&'*+-.^_`|~";
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           kSpecials.find(c) != std::string_view::npos;
  });
}

bool HasControlOrSpace(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    return static_cast<unsigned char>(c) <= 0x20 || c == 0x7F;
  });
}

bool HasLineBreak(std::string_view text) {
  return text.find_first_of("\r\n") != std::string_view::npos;
}

class CompiledClusterTask : public spec::CompiledTask {
 public:
  std::string service;
  std::string method = "GET";
  spec::Template path;  // "" renders as "/"
  std::vector<std::pair<std::string, spec::Template>> headers;
  spec::Template body;
  int expect = 200;
  std::optional<Duration> timeout;  // none: the task's timeout, else 30s

  void Render(const spec::Instance& instance, spec::TaskSpec* ts) const override {
    spec::TaskFingerprintV1Fields v1;
    v1.service = service;
    spec::TaskFingerprintV1Fields::Request& r = v1.request;
    r.method = method;
    r.path = instance.Render(path);
    if (r.path.empty()) r.path = "/";
    r.headers.reserve(headers.size());
    for (const auto& [name, value] : headers) r.headers.emplace_back(name, instance.Render(value));
    r.body = instance.Render(body);
    r.expect = expect;
    r.timeout = timeout;
    ts->fingerprint = spec::TaskFingerprintV1(*ts, v1);
    ts->summary = r.method + " " + r.path + " on service " + service;

    ClusterTask task;
    task.set_service(service);
    Request* out = task.mutable_request();
    out->set_method(r.method);
    out->set_path(std::move(r.path));
    for (auto& [name, value] : r.headers) {
      Header* h = out->add_headers();
      h->set_name(std::move(name));
      h->set_value(std::move(value));
    }
    out->set_body(std::move(r.body));
    out->set_expect(static_cast<uint32_t>(expect));
    if (timeout) {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*timeout).count();
      out->set_timeout_ms(std::max<uint64_t>(1, static_cast<uint64_t>(ms)));
    }
    task.SerializeToString(&ts->payload);
  }
};

void ReadRequest(spec::TaskReader& r, const spec::Field& e, CompiledClusterTask* task) {
  const std::string context = " in 'request' in " + r.Ref();
  if (!r.IsMap(e)) {
    r.Error(e.value_pos(), "'request' in " + r.Ref() +
                               " must be a map such as {method: GET, path: /}, " + r.Got(e));
    return;
  }
  const std::vector<std::string_view> candidates(std::begin(kRequestKeys),
                                                 std::end(kRequestKeys));
  for (const spec::Field& entry : r.Entries(e, context)) {
    const std::string& key = entry.key();
    if (key == "method") {
      const std::optional<std::string> method = r.Scalar(entry, context, "an HTTP method");
      if (!method) continue;
      if (!IsToken(*method)) {
        r.Error(entry.value_pos(), "'method'" + context +
                                       " must be an HTTP method such as GET or POST, got " +
                                       Quoted(*method));
        continue;
      }
      task->method = *method;
    } else if (key == "path") {
      const std::optional<std::string> path = r.Scalar(entry, context, "a path such as /");
      if (!path) continue;
      if (path->empty() || path->front() != '/' || HasControlOrSpace(*path)) {
        r.Error(entry.value_pos(), "'path'" + context +
                                       " must start with '/' and hold no spaces, got " +
                                       Quoted(*path));
        continue;
      }
      task->path = r.Compile(spec::Located{*path, entry.value_pos()});
    } else if (key == "headers") {
      if (!r.IsMap(entry)) {
        r.Error(entry.value_pos(), "'headers'" + context +
                                       " must be a map of header name to value, " +
                                       r.Got(entry));
        continue;
      }
      const std::string header_context = " in 'headers'" + context;
      for (const spec::Field& header : r.Entries(entry, header_context)) {
        if (!IsToken(header.key())) {
          r.Error(header.key_pos(),
                  "invalid header name " + Quoted(header.key()) + header_context);
          continue;
        }
        const std::optional<std::string> value = r.Scalar(header, header_context, "a string");
        if (!value) continue;
        if (HasLineBreak(*value)) {
          r.Error(header.value_pos(), "header " + Quoted(header.key()) + header_context +
                                          " cannot contain a line break");
          continue;
        }
        task->headers.emplace_back(header.key(),
                                   r.Compile(spec::Located{*value, header.value_pos()}));
      }
    } else if (key == "body") {
      const std::optional<std::string> body = r.Scalar(entry, context, "a string");
      if (!body) continue;
      task->body = r.Compile(spec::Located{*body, entry.value_pos()});
    } else if (key == "expect") {
      if (auto n = r.Integer(entry, context, "an HTTP status from 100 to 599", 100, 599)) {
        task->expect = static_cast<int>(*n);
      }
    } else if (key == "timeout") {
      task->timeout = r.DurationValue(entry, context, /*allow_zero=*/false);
    } else {
      r.UnknownKey(entry, context, candidates);
    }
  }
}

class ClusterTaskKind : public spec::TaskKind {
 public:
  std::vector<spec::TaskKey> Keys() const override {
    return {
        {"service", spec::KeyType::kServiceName, true, {}, kClusterBackend},
        {"request", spec::KeyType::kOther, false, {}, kClusterBackend},
    };
  }

  std::string_view DoesNotApply(std::string_view key) const override {
    return key == "run" ? "it sends its 'request' to its 'service'" : "";
  }

  std::unique_ptr<spec::CompiledTask> Read(spec::TaskReader& r) const override {
    auto task = std::make_unique<CompiledClusterTask>();
    const spec::NameRef* service = r.Name("service");
    if (service == nullptr) {
      r.Error(r.where(), r.Ref() +
                             " has backend cluster but no 'service' (the service to send its "
                             "request to)");
    } else if (service->ok) {
      task->service = service->name;
      r.NeedService(service->name);
    }
    if (const std::optional<spec::Field> request = r.Own("request")) {
      ReadRequest(r, *request, task.get());
    }
    return task;
  }
};

}  // namespace

std::unique_ptr<spec::TaskKind> MakeClusterTaskKind() {
  return std::make_unique<ClusterTaskKind>();
}

}  // namespace drover::cluster

#include "backends/cluster/http_request.h"

#include <httplib.h>

#include <chrono>
#include <utility>

#include "backends/process/output_capture.h"

namespace drover::cluster {
namespace {

constexpr Duration kDefaultTimeout = std::chrono::seconds(30);

std::string Target(const ClusterAttempt& a, const ServiceAddress& address) {
  const bool v6 = address.host.find(':') != std::string::npos;
  return a.request.method + " " + a.request.path + " on service '" + a.service + "' (" +
         (v6 ? "[" + address.host + "]" : address.host) + ":" +
         std::to_string(address.port) + ")";
}

}  // namespace

void RequestControl::Cancel() {
  std::function<void()> stop;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
    stop = stop_;
  }
  if (stop) stop();
}

bool RequestControl::cancelled() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cancelled_;
}

bool RequestControl::Arm(std::function<void()> stop) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cancelled_) return false;
  stop_ = std::move(stop);
  return true;
}

void RequestControl::Disarm() {
  std::lock_guard<std::mutex> lock(mu_);
  stop_ = nullptr;
}

Duration RequestTimeout(const ClusterAttempt& a) {
  const Duration own = a.request.timeout;
  const Duration task = a.timeout;
  if (own.count() > 0 && task.count() > 0) return std::min(own, task);
  if (own.count() > 0) return own;
  if (task.count() > 0) return task;
  return kDefaultTimeout;
}

AttemptOutcome SendRequest(const ClusterAttempt& a, const ServiceAddress& address,
                           RequestControl* control) {
  const auto start = std::chrono::steady_clock::now();
  const Duration timeout = RequestTimeout(a);
  const auto deadline = start + timeout;
  AttemptOutcome outcome;
  OutputCapture body(a.stdout_path, a.output_limit);
  // The body as output `body` (docs/spec.md, "Outputs"): kept in memory up
  // to the outputs cap; a larger body is the task's stdout only.
  std::string body_output;
  bool body_fits = true;
  int status = 0;
  bool past_deadline = false;

  try {
    httplib::Client client(address.host, address.port);
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
    client.set_connection_timeout(micros / 1'000'000, micros % 1'000'000);
    client.set_read_timeout(micros / 1'000'000, micros % 1'000'000);
    client.set_write_timeout(micros / 1'000'000, micros % 1'000'000);
    client.set_keep_alive(false);

    httplib::Request req;
    req.method = a.request.method;
    req.path = a.request.path;
    for (const auto& [name, value] : a.request.headers) req.headers.emplace(name, value);
    req.body = a.request.body;
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
      // A server trickling bytes would defeat the per-read timeout.
      if (std::chrono::steady_clock::now() > deadline) {
        past_deadline = true;
        return false;
      }
      (void)body.Append(data, n);
      if (body_fits && body_output.size() + n <= kMaxOutputBytes - 16) {
        body_output.append(data, n);
      } else {
        body_fits = false;
        body_output.clear();
      }
      return true;
    };

    httplib::Response res;
    httplib::Error error = httplib::Error::Success;
    if (!control->Arm([&client] { client.stop(); })) {
      outcome.reason = FailureReason::kCancelled;
      outcome.message = "cancelled before " + Target(a, address) + " was sent";
    } else {
      const bool sent = client.send(req, res, error);
      control->Disarm();
      const bool timed_out = past_deadline || std::chrono::steady_clock::now() >= deadline;
      if (control->cancelled()) {
        outcome.reason = FailureReason::kCancelled;
        outcome.message = Target(a, address) + " was cancelled";
      } else if (sent && res.status == a.request.expect) {
        outcome.reason = FailureReason::kNone;
        status = res.status;
      } else if (sent) {
        outcome.reason = FailureReason::kRequestFailed;
        outcome.message = "status " + std::to_string(res.status) + ", expected " +
                          std::to_string(a.request.expect) + " from " + Target(a, address);
      } else if (timed_out || error == httplib::Error::ConnectionTimeout) {
        outcome.reason = FailureReason::kTimeout;
        outcome.message = "no response within " + FormatDuration(timeout) + " from " +
                          Target(a, address);
      } else if (error == httplib::Error::Connection) {
        outcome.reason = FailureReason::kRequestFailed;
        outcome.message = "connection refused (or unreachable): " + Target(a, address);
      } else if (error == httplib::Error::Read || error == httplib::Error::Write) {
        outcome.reason = FailureReason::kRequestFailed;
        outcome.message = "connection closed or reset before a full response: " +
                          Target(a, address);
      } else {
        outcome.reason = FailureReason::kRequestFailed;
        outcome.message = httplib::to_string(error) + ": " + Target(a, address);
      }
    }
  } catch (const std::exception& e) {
    outcome.reason = FailureReason::kInternal;
    outcome.message = std::string("HTTP client: ") + e.what();
  }
  if (Status s = body.Finish(); !s.ok() && outcome.ok()) {
    outcome.reason = FailureReason::kInternal;
    outcome.message = "cannot write the response body: " + s.message();
  }
  outcome.out = body.info();
  if (outcome.ok()) {
    outcome.outputs["status"] = std::to_string(status);
    if (body_fits) outcome.outputs["body"] = std::move(body_output);
  }
  outcome.wall = std::chrono::steady_clock::now() - start;
  return outcome;
}

}  // namespace drover::cluster

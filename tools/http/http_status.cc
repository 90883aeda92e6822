#include "tools/http/http_status.h"

#include <string_view>

namespace drover::http {
namespace {

// The forms of the coordinator's ERROR messages (docs/protocol.md) that
// say more than "bad request". `prefix`: at the start of the message;
// otherwise anywhere in it.
struct ErrorForm {
  std::string_view text;
  bool prefix;
  int status;
};

constexpr ErrorForm kErrorForms[] = {
    // No such thing.
    {"no job", true, 404},           // "no job J", "no job has been submitted"
    {"no running job ", true, 404},  // SERVICE-RELOAD
    {"no pipeline '", true, 404},    // PIPELINE-RUN
    {"this coordinator runs no pipelines", true, 404},
    {" has no task '", false, 404},          // "job J has no task 'T'"
    {" has no attempt ", false, 404},        // "task 'T' has no attempt N ..."
    {" declares no service '", false, 404},  // SERVICE-RELOAD
    // Not now: the state of the job, task or pipeline forbids it.
    {" has already finished (", false, 409},  // CANCEL-JOB of a finished job or task
    {" is not running", false, 409},          // CANCEL-JOB
    {" is still running", false, 409},        // RETRY-JOB; PIPELINE-RUN (skip)
    {" already waits for job ", false, 409},  // PIPELINE-RUN (queue)
    // Not this key: outside its role (docs/security.md).
    {" refused: this connection's ", false, 403},
    // Not now: the coordinator cannot commit (its state disk is full).
    {"the coordinator cannot record anything now", true, 503},
};

int StatusOfErrorText(std::string_view m) {
  for (const ErrorForm& f : kErrorForms) {
    if (f.prefix ? m.substr(0, f.text.size()) == f.text
                 : m.find(f.text) != std::string_view::npos) {
      return f.status;
    }
  }
  return 400;
}

}  // namespace

int HttpStatusOf(const Status& s) {
  switch (s.code()) {
    case StatusCode::kDeadlineExceeded:
    case StatusCode::kUnavailable:
    case StatusCode::kCancelled:
      return 503;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
      return 409;
    case StatusCode::kInternal:
    case StatusCode::kIoError:
      return 500;
    case StatusCode::kFailedPrecondition:
      return StatusOfErrorText(s.message());
    case StatusCode::kOk:
    case StatusCode::kInvalidArgument:
      break;
  }
  return 400;
}

}  // namespace drover::http

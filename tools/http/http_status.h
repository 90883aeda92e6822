// HttpStatusOf: the HTTP status of a failed request to the coordinator
// (docs/api.md, "Conventions").
//
// What this process decides carries a StatusCode, and is mapped by it:
// kUnavailable and kDeadlineExceeded (the coordinator did not answer)
// 503, kNotFound 404, kInvalidArgument 400, kAlreadyExists 409,
// kInternal and kIoError 500.
//
// The coordinator's refusals are another matter: they reach a client as
// ERROR, whose body (docs/protocol.md, drover.proto's `Error`) holds only
// a message for people, and cli::Client hands them on as
// kFailedPrecondition. For that code the status comes from the message's
// documented forms ("no job J", "job J is not running", ...), the only
// thing the wire carries. Mapping those by a code needs a code field in
// `Error`, a wire change this function does not make.
#ifndef DROVER_TOOLS_HTTP_HTTP_STATUS_H_
#define DROVER_TOOLS_HTTP_HTTP_STATUS_H_

#include "core/base/status.h"

namespace drover::http {

int HttpStatusOf(const Status& s);

}  // namespace drover::http

#endif  // DROVER_TOOLS_HTTP_HTTP_STATUS_H_

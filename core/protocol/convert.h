// Conversions between the protocol's bodies and core types, used by both
// ends of the worker dialog: RESULT <-> AttemptOutcome, and a service's
// declaration (spec::ServiceDecl <-> wire::Service, the one conversion each
// way of DISPATCH.services).
#ifndef DROVER_CORE_PROTOCOL_CONVERT_H_
#define DROVER_CORE_PROTOCOL_CONVERT_H_

#include <cstdint>
#include <string>

#include "core/base/outcome.h"
#include "core/protocol/drover.pb.h"
#include "core/spec/job_spec.h"

namespace drover::protocol {

// The RESULT body for `outcome` of attempt `id` run by `worker`.
wire::Result OutcomeToWire(uint64_t id, const std::string& worker,
                           const AttemptOutcome& outcome);
// The outcome a RESULT describes. An unknown reason name becomes kInternal
// with the name in the message, so a newer worker's reason is not lost.
AttemptOutcome OutcomeFromWire(const wire::Result& result);

// A service's declaration as DISPATCH carries it (the coordinator's side).
wire::Service ServiceToWire(const spec::ServiceDecl& decl);
// The declaration a DISPATCH carries (the worker's side). Unset fields (0,
// empty) take spec::ServiceDecl's defaults; `where` and `from_worker` are
// not on the wire.
spec::ServiceDecl ServiceFromWire(const wire::Service& service);

}  // namespace drover::protocol

#endif  // DROVER_CORE_PROTOCOL_CONVERT_H_

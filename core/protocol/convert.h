// Conversions between the protocol's RESULT body and AttemptOutcome, used by
// both ends of the worker dialog.
#ifndef DROVER_CORE_PROTOCOL_CONVERT_H_
#define DROVER_CORE_PROTOCOL_CONVERT_H_

#include <cstdint>
#include <string>

#include "core/base/outcome.h"
#include "core/protocol/drover.pb.h"

namespace drover::protocol {

// The RESULT body for `outcome` of attempt `id` run by `worker`.
wire::Result OutcomeToWire(uint64_t id, const std::string& worker,
                           const AttemptOutcome& outcome);
// The outcome a RESULT describes. An unknown reason name becomes kInternal
// with the name in the message, so a newer worker's reason is not lost.
AttemptOutcome OutcomeFromWire(const wire::Result& result);

}  // namespace drover::protocol

#endif  // DROVER_CORE_PROTOCOL_CONVERT_H_

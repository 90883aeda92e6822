// The limits of a HELLO (docs/protocol.md, HELLO, "Limits of a HELLO"):
// its strings are logged, stored and listed by WORKERS, so each is bounded
// and has no control characters (a newline would forge a log line, an
// escape would reach a terminal). The coordinator refuses a HELLO past
// them; drover's worker checks its own offer at start, so that a bad
// --name or --label is a usage error rather than a HELLO refused forever.
#ifndef DROVER_CORE_PROTOCOL_HELLO_LIMITS_H_
#define DROVER_CORE_PROTOCOL_HELLO_LIMITS_H_

#include <string>

#include "core/protocol/drover.pb.h"

namespace drover::protocol {

// Empty when `hello` keeps to the limits, else what is wrong with it
// ("labels has 65 entries, more than 64").
std::string HelloProblem(const wire::Hello& hello);

}  // namespace drover::protocol

#endif  // DROVER_CORE_PROTOCOL_HELLO_LIMITS_H_

// The coordinator's authorization check (docs/security.md, "Keys and
// roles"): RoleAllows (core/protocol/roles.h) decides; this file holds the
// rate limit of the log line a refusal writes. The check itself is
// Coordinator::Loop::Authorize (authorization.cc), called once for every
// message before it is routed to its handler.
#ifndef DROVER_CORE_COORDINATOR_AUTHORIZATION_H_
#define DROVER_CORE_COORDINATOR_AUTHORIZATION_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "core/base/clock.h"

namespace drover {

// At most one log line per peer per reason per window (docs/protocol.md,
// "Malformed messages": one a minute), each with the number of events it
// stands for. Plain data, no I/O: the caller logs.
//
// Memory: one entry per (peer, reason) seen; entries whose window passed
// with nothing suppressed are dropped once there are more than kPruneAt.
// Not thread-safe (the loop thread owns it).
class RefusalLog {
 public:
  explicit RefusalLog(Duration window = std::chrono::minutes(1)) : window_(window) {}

  // Counts one event of `reason` from `peer` at `now`. Returns how many
  // events a line logged now stands for (this one and those suppressed
  // since the previous line), or 0 when no line should be logged now.
  uint64_t Count(const std::string& peer, const std::string& reason, SteadyTime now);

  size_t size() const { return entries_.size(); }
  static constexpr size_t kPruneAt = 4096;

 private:
  struct Entry {
    SteadyTime logged_at{};
    uint64_t suppressed = 0;
  };
  void Prune(SteadyTime now);

  Duration window_;
  std::map<std::pair<std::string, std::string>, Entry> entries_;
};

}  // namespace drover

#endif  // DROVER_CORE_COORDINATOR_AUTHORIZATION_H_

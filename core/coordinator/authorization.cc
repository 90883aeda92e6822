// Coordinator::Loop::Authorize (docs/security.md, "Keys and roles"):
// RoleAllows (core/protocol/roles.h) decides; a refusal is logged through
// the loop's LogLimiter like every other rejected message, at most one line
// per key per command per minute with counts.
#include "core/coordinator/loop.h"

namespace drover {

bool Coordinator::Loop::Authorize(const Message& m) {
  const protocol::PeerKey& peer = m.peer;
  if (protocol::RoleAllows(peer.role, m.command)) return true;
  stats_.unauthorized.fetch_add(1, std::memory_order_relaxed);
  const std::string command(protocol::CommandName(m.command));
  const std::string who =
      "key " + peer.key + (peer.name.empty() ? std::string() : " (" + peer.name + ")");
  const std::string role(protocol::RoleName(peer.role));
  uint64_t suppressed = 0;
  if (log_limit_.Allow(peer.key, "refused " + command, clock_.Now(), &suppressed)) {
    spdlog::warn("coordinator: refused {} from {}: its role {} may send {}{}", command, who,
                 role, protocol::RoleSummary(peer.role),
                 suppressed > 0 ? " (" + std::to_string(suppressed + 1) +
                                      " refusals in the last minute)"
                                : std::string());
  }
  // Never answer what is itself no request (no loops).
  if (m.command != Command::kError && m.command != Command::kDisconnect &&
      m.command != Command::kHeartbeat) {
    ReplyError(m.routing_id, command + " refused: this connection's " + who + " has role " +
                                 role + ", which may send " +
                                 std::string(protocol::RoleSummary(peer.role)) +
                                 " (the coordinator's authorized_keys gives each key its role)");
  }
  return false;
}

}  // namespace drover

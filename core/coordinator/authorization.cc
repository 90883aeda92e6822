// Coordinator::Loop::Authorize and its log's rate limit.
#include "core/coordinator/authorization.h"

#include "core/coordinator/loop.h"

namespace drover {

uint64_t RefusalLog::Count(const std::string& peer, const std::string& reason,
                           SteadyTime now) {
  if (entries_.size() > kPruneAt) Prune(now);
  auto [it, added] = entries_.try_emplace({peer, reason});
  Entry& e = it->second;
  if (!added && now - e.logged_at < window_) {
    ++e.suppressed;
    return 0;
  }
  const uint64_t n = e.suppressed + 1;
  e.logged_at = now;
  e.suppressed = 0;
  return n;
}

void RefusalLog::Prune(SteadyTime now) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    const bool quiet = it->second.suppressed == 0 && now - it->second.logged_at >= window_;
    it = quiet ? entries_.erase(it) : std::next(it);
  }
}

bool Coordinator::Loop::Authorize(const Message& m) {
  const protocol::PeerKey& peer = m.peer;
  if (protocol::RoleAllows(peer.role, m.command)) return true;
  stats_.unauthorized.fetch_add(1, std::memory_order_relaxed);
  const std::string command(protocol::CommandName(m.command));
  const std::string who =
      "key " + peer.key + (peer.name.empty() ? std::string() : " (" + peer.name + ")");
  const std::string role(protocol::RoleName(peer.role));
  if (const uint64_t n = refusals_.Count(peer.key, command, clock_.Now())) {
    spdlog::warn("coordinator: refused {} from {}: its role {} may send {}{}", command, who,
                 role, protocol::RoleSummary(peer.role),
                 n > 1 ? " (" + std::to_string(n) + " refusals in the last minute)"
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

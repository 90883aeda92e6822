#include "core/coordinator/log_limiter.h"

namespace drover {

bool LogLimiter::Allow(const std::string& peer, std::string_view reason, SteadyTime now,
                       uint64_t* suppressed) {
  auto [it, added] = entries_.try_emplace({peer, std::string(reason)});
  Entry& e = it->second;
  if (!added && now - e.start < window_) {
    ++e.suppressed;
    return false;
  }
  if (suppressed) *suppressed = e.suppressed;
  e.start = now;
  e.suppressed = 0;
  return true;
}

std::vector<LogLimiter::Summary> LogLimiter::Sweep(SteadyTime now) {
  std::vector<Summary> out;
  for (auto it = entries_.begin(); it != entries_.end();) {
    Entry& e = it->second;
    if (now - e.start < window_) {
      ++it;
      continue;
    }
    if (e.suppressed == 0) {
      it = entries_.erase(it);
      continue;
    }
    out.push_back(Summary{it->first.first, it->first.second, e.suppressed});
    e.start = now;
    e.suppressed = 0;
    ++it;
  }
  return out;
}

void LogLimiter::Prune(SteadyTime now) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    it = now - it->second.start < window_ ? std::next(it) : entries_.erase(it);
  }
}

}  // namespace drover

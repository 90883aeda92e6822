#include "backends/process/deadline_set.h"

#include <algorithm>
#include <chrono>
#include <climits>

namespace drover {

void DeadlineSet::Set(uint64_t key, std::optional<SteadyTime> when) {
  if (auto it = by_key_.find(key); it != by_key_.end()) {
    by_time_.erase({it->second, key});
    if (!when) {
      by_key_.erase(it);
      return;
    }
    it->second = *when;
  } else if (!when) {
    return;
  } else {
    by_key_.emplace(key, *when);
  }
  by_time_.emplace(*when, key);
}

void DeadlineSet::Lower(uint64_t key, SteadyTime when) {
  std::optional<SteadyTime> current = Get(key);
  if (!current || *current > when) Set(key, when);
}

std::optional<SteadyTime> DeadlineSet::Get(uint64_t key) const {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return std::nullopt;
  return it->second;
}

std::optional<SteadyTime> DeadlineSet::Next() const {
  if (by_time_.empty()) return std::nullopt;
  return by_time_.begin()->first;
}

std::optional<uint64_t> DeadlineSet::PopDue(SteadyTime now) {
  if (by_time_.empty() || by_time_.begin()->first > now) return std::nullopt;
  const uint64_t key = by_time_.begin()->second;
  by_time_.erase(by_time_.begin());
  by_key_.erase(key);
  return key;
}

SteadyTime After(SteadyTime now, Duration d) {
  if (d > SteadyTime::max() - now) return SteadyTime::max();
  return now + d;
}

int EpollTimeoutMs(std::optional<SteadyTime> next, SteadyTime now) {
  if (!next) return -1;
  if (*next <= now) return 0;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(*next - now).count();
  return static_cast<int>(std::min<int64_t>(ms, INT_MAX));
}

std::optional<SteadyTime> Earliest(std::optional<SteadyTime> a, std::optional<SteadyTime> b) {
  if (!a) return b;
  if (!b) return a;
  return std::min(*a, *b);
}

}  // namespace drover

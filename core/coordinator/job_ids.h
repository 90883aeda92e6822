// Job ids: "20261126-083342-7f3a", the creation time (UTC) and 16 random
// bits. They sort by creation time, read well in a terminal, and are safe in
// file names.
#ifndef DROVER_CORE_COORDINATOR_JOB_IDS_H_
#define DROVER_CORE_COORDINATOR_JOB_IDS_H_

#include <cstdio>
#include <ctime>
#include <random>
#include <string>

#include "core/base/clock.h"

namespace drover {

inline std::string NewJobId(WallTime now, std::mt19937_64& rng) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d%02d%02d-%02d%02d%02d-%04x", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<unsigned>(rng() & 0xffff));
  return buf;
}

}  // namespace drover

#endif  // DROVER_CORE_COORDINATOR_JOB_IDS_H_

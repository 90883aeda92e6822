#include "backends/process/resource_limits.h"

#include <linux/capability.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>

namespace drover {
namespace {

// `wanted`, never above the caller's hard limit for `resource`.
rlim_t Capped(int resource, uint64_t wanted) {
  rlimit current{};
  if (::getrlimit(resource, &current) != 0 || current.rlim_max == RLIM_INFINITY) {
    return static_cast<rlim_t>(wanted);
  }
  return std::min(static_cast<rlim_t>(wanted), current.rlim_max);
}

void Note(AttemptOutcome* outcome, const std::string& text) {
  if (!outcome->message.empty()) outcome->message += "; ";
  outcome->message += text;
}

}  // namespace

std::string FormatBytes(uint64_t bytes) {
  static constexpr struct {
    const char* unit;
    int shift;
  } kUnits[] = {{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}};
  for (const auto& u : kUnits) {
    if (bytes >= (1ull << u.shift) && bytes % (1ull << u.shift) == 0) {
      return std::to_string(bytes >> u.shift) + u.unit;
    }
  }
  return std::to_string(bytes) + " bytes";
}

std::string ResourceLimits::Describe() const {
  std::string out;
  auto add = [&out](const std::string& part) {
    if (!out.empty()) out += ", ";
    out += part;
  };
  if (cpu_seconds != 0) add("cpu " + std::to_string(cpu_seconds) + "s");
  if (memory_bytes != 0) add("memory " + FormatBytes(memory_bytes));
  if (files != 0) add("files " + std::to_string(files));
  if (processes != 0) add("processes " + std::to_string(processes));
  return out;
}

std::vector<RlimitSetting> PlanRlimits(const ResourceLimits& limits) {
  std::vector<RlimitSetting> plan;
  if (limits.cpu_seconds != 0) {
    const rlim_t hard = Capped(RLIMIT_CPU, limits.cpu_seconds + kCpuKillAfterSeconds);
    plan.push_back({RLIMIT_CPU, {std::min<rlim_t>(limits.cpu_seconds, hard), hard}});
  }
  const struct {
    int resource;
    uint64_t value;
  } same[] = {{RLIMIT_DATA, limits.memory_bytes},
              {RLIMIT_NOFILE, limits.files},
              {RLIMIT_NPROC, limits.processes}};
  for (const auto& [resource, value] : same) {
    if (value == 0) continue;
    const rlim_t capped = Capped(resource, value);
    plan.push_back({resource, {capped, capped}});
  }
  return plan;
}

bool NprocEnforced() {
  if (::getuid() == 0) return false;
  // Capabilities a non-root worker could pass to its tasks across exec.
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("CapAmb:", 0) != 0) continue;
    const uint64_t caps = std::stoull(line.substr(7), nullptr, 16);
    const uint64_t exempt = (1ull << CAP_SYS_ADMIN) | (1ull << CAP_SYS_RESOURCE);
    return (caps & exempt) == 0;
  }
  return true;
}

void ExplainByLimits(const ResourceLimits& limits, bool processes_enforced,
                     AttemptOutcome* outcome) {
  if (limits.empty()) return;
  if (limits.processes != 0 && !processes_enforced) {
    Note(outcome, "processes limit " + std::to_string(limits.processes) +
                      " is not enforced while the task runs as root or with "
                      "CAP_SYS_RESOURCE (RLIMIT_NPROC exempts them)");
  }
  const bool failed = outcome->reason == FailureReason::kExit ||
                      outcome->reason == FailureReason::kSignal;
  if (!failed) return;

  if (limits.cpu_seconds != 0) {
    const auto cpu = outcome->cpu_user + outcome->cpu_sys;
    const bool spent = cpu >= std::chrono::seconds(limits.cpu_seconds);
    const std::string limit =
        "cpu limit " + std::to_string(limits.cpu_seconds) + "s exceeded";
    std::string how;
    if (outcome->reason == FailureReason::kSignal && outcome->signal == SIGXCPU) {
      how = " (SIGXCPU)";
    } else if (outcome->reason == FailureReason::kSignal && outcome->signal == SIGKILL &&
               spent) {
      how = " (SIGKILL after ignoring SIGXCPU)";
    } else if (outcome->reason == FailureReason::kExit &&
               outcome->exit_code == 128 + SIGXCPU && spent) {
      how = " (SIGXCPU, in a process the task started)";
    }
    if (!how.empty()) {
      outcome->reason = FailureReason::kLimit;
      Note(outcome, limit + how);
      return;
    }
  }
  if (limits.memory_bytes != 0) {
    const uint64_t peak = static_cast<uint64_t>(std::max<int64_t>(outcome->max_rss_kb, 0))
                          << 10;
    if (peak >= limits.memory_bytes / 4 * 3) {
      outcome->reason = FailureReason::kLimit;
      Note(outcome, "memory limit " + FormatBytes(limits.memory_bytes) +
                        " reached (max RSS " + std::to_string(peak >> 20) + "MiB)");
      return;
    }
  }
  Note(outcome, "limits in force: " + limits.Describe());
}

}  // namespace drover

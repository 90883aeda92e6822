// YamlReader, `limits`: the resource limits of a task or of `defaults`
// (docs/spec.md, "limits"). Each value is checked here, with the bounds the
// kernel itself puts on it, so that a worker never meets one it cannot set.
#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "core/spec/text.h"
#include "core/spec/yaml_reader.h"

namespace drover::spec::internal {
namespace {

constexpr std::array<std::string_view, 4> kLimitKeys = {"cpu", "memory", "files",
                                                        "processes"};
// A year of CPU time: more is a typo, not a limit.
constexpr Duration kMaxCpu = std::chrono::hours(24 * 365);
// Below a mebibyte of data no dynamically linked program starts; above a
// pebibyte no host has it.
constexpr uint64_t kMinMemory = 1ull << 20;
constexpr uint64_t kMaxMemory = 1ull << 50;
// The kernel's default fs.nr_open: RLIMIT_NOFILE cannot be set above it.
constexpr int64_t kMaxFiles = 1 << 20;
// PID_MAX_LIMIT: no host can have more processes.
constexpr int64_t kMaxProcesses = 1 << 22;

}  // namespace

std::optional<TaskLimits> YamlReader::ReadLimits(const Entry& e,
                                                 std::string_view context) {
  if (IsEmpty(e.value) || !e.value.IsMap()) {
    Error(e.value_pos, Quoted(e.key) + std::string(context) +
                           " must be a map of cpu, memory, files and processes, " +
                           Got(e.value));
    return std::nullopt;
  }
  const std::string in = " in 'limits'" + std::string(context);
  const std::vector<std::string_view> candidates(kLimitKeys.begin(), kLimitKeys.end());
  TaskLimits limits;
  bool ok = true;
  for (const Entry& limit : Entries(e.value, in, MapKind::kKeys)) {
    if (limit.key == "cpu") {
      const std::optional<Duration> cpu = DurationValue(limit, in, /*allow_zero=*/false);
      if (!cpu) {
        ok = false;
      } else if (*cpu % std::chrono::seconds(1) != Duration(0)) {
        // RLIMIT_CPU counts whole seconds; rounding would be a surprise.
        Error(limit.value_pos,
              "'cpu'" + in +
                  " must be a whole number of seconds (the kernel counts "
                  "CPU time in seconds), " +
                  Got(limit.value));
        ok = false;
      } else if (*cpu > kMaxCpu) {
        Error(limit.value_pos,
              "'cpu'" + in + " must be at most 8760h (a year), " + Got(limit.value));
        ok = false;
      } else {
        limits.cpu = cpu;
      }
    } else if (limit.key == "memory") {
      const std::optional<uint64_t> memory = SizeValue(limit, in);
      if (!memory) {
        ok = false;
      } else if (*memory < kMinMemory || *memory > kMaxMemory) {
        Error(limit.value_pos,
              "'memory'" + in + " must be between 1MiB and 1024TiB, " + Got(limit.value));
        ok = false;
      } else {
        limits.memory = memory;
      }
    } else if (limit.key == "files") {
      const std::optional<int64_t> files =
          Integer(limit, in, "a number of open files, at least 1", 1, kMaxFiles);
      if (files) {
        limits.files = static_cast<uint64_t>(*files);
      } else {
        ok = false;
      }
    } else if (limit.key == "processes") {
      const std::optional<int64_t> processes =
          Integer(limit, in, "a number of processes, at least 1", 1, kMaxProcesses);
      if (processes) {
        limits.processes = static_cast<uint64_t>(*processes);
      } else {
        ok = false;
      }
    } else {
      UnknownKey(limit, in, candidates);
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return limits;
}

}  // namespace drover::spec::internal

#include "backends/fork/pool.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <string_view>
#include <utility>

namespace drover {
namespace {

// FNV-1a over length-prefixed fields: stable across runs and builds (unlike
// std::hash), and two different field lists cannot produce the same bytes.
class Fnv {
 public:
  void Add(std::string_view s) {
    AddNumber(s.size());
    for (char c : s) Byte(static_cast<unsigned char>(c));
  }
  void AddNumber(uint64_t v) {
    for (int i = 0; i < 8; ++i) Byte(static_cast<unsigned char>(v >> (8 * i)));
  }
  uint64_t value() const { return h_; }

 private:
  void Byte(unsigned char b) {
    h_ ^= b;
    h_ *= 0x100000001b3ull;
  }
  uint64_t h_ = 0xcbf29ce484222325ull;
};

}  // namespace

uint64_t PoolFingerprint(const PoolSpec& spec) {
  Fnv f;
  f.Add(spec.name);
  f.Add(spec.mode);
  f.AddNumber(spec.command.size());
  for (const std::string& arg : spec.command) f.Add(arg);
  f.AddNumber(static_cast<uint64_t>(spec.instances));
  f.AddNumber(static_cast<uint64_t>(spec.max_tasks));
  f.AddNumber(static_cast<uint64_t>(spec.idle_timeout.count()));
  f.AddNumber(spec.env.size());
  for (const auto& [key, value] : spec.env) {
    f.Add(key);
    f.Add(value);
  }
  f.Add(spec.cwd);
  return f.value();
}

Status CheckPoolSpec(const PoolSpec& spec) {
  if (spec.mode != "process" && spec.mode != "cow") {
    return InvalidArgument("mode '" + spec.mode + "' is not process or cow");
  }
  if (spec.instances < 1) {
    return InvalidArgument("instances must be at least 1, got " +
                           std::to_string(spec.instances));
  }
  if (spec.max_tasks < 0) {
    return InvalidArgument("max_tasks must not be negative, got " +
                           std::to_string(spec.max_tasks));
  }
  if (spec.idle_timeout < Duration(0)) {
    return InvalidArgument("idle_timeout must not be negative");
  }
  if (spec.mode == "process" && spec.command.empty()) {
    return InvalidArgument("command is empty");
  }
  return Status::Ok();
}

Duration CrashBackoff(int quick_exits) {
  Duration delay = kFirstBackoff;
  for (int i = 1; i < quick_exits && delay < kMaxBackoff; ++i) delay *= 2;
  return std::min(delay, kMaxBackoff);
}

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  if (abbrev == nullptr) return "signal " + std::to_string(sig);
  return std::string("SIG") + abbrev;
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    std::string text = "was killed by signal " + SignalName(WTERMSIG(status));
    if (WCOREDUMP(status)) text += " (core dumped)";
    return text;
  }
  return "ended with wait status " + std::to_string(status);
}

std::string PoolLabel(const std::string& name) { return "pool '" + name + "'"; }

AttemptOutcome Failed(FailureReason reason, std::string message) {
  AttemptOutcome outcome;
  outcome.reason = reason;
  outcome.message = std::move(message);
  return outcome;
}

}  // namespace drover

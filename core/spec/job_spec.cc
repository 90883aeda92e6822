// The plain-data half of core/spec: error formatting, pool and service
// fingerprints, and the
// duration and size grammars. The YAML half is in loader.cc.
#include "core/spec/job_spec.h"

#include "core/spec/fingerprint.h"

#include <algorithm>
#include <cctype>
#include <limits>

namespace drover::spec {
namespace {

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

std::string SpecError::ToString() const {
  std::string out = where.file;
  if (where.line > 0) {
    out += ":" + std::to_string(where.line);
    if (where.column > 0) out += ":" + std::to_string(where.column);
  }
  if (!out.empty()) out += ": ";
  out += message;
  return out;
}

// The canonical encoding of a pool, version 1:
//   string "pool/1"
//   string name, string mode
//   u64 argc, then each command element as a string
//   u64 env count, then each (name, value) sorted by name, as two strings
//   string cwd, i64 max_tasks
// `instances` and `idle_timeout` are left out for the reason retries are
// left out of a task's: they decide how much runs, not what a process does.
uint64_t PoolDecl::Fingerprint() const {
  Fnv1a64 h;
  h.Str("pool/1");
  h.Str(name);
  h.Str(mode);
  h.U64(command.size());
  for (const std::string& arg : command) h.Str(arg);
  h.Env(env);
  h.Str(cwd);
  h.I64(max_tasks);
  return h.value();
}

// The canonical encoding of a service, version 1:
//   string "service/1", string name
//   u64 argc, then each command element as a string
//   u64 env count, then each (name, value) sorted by name, as two strings
//   string cwd, string host, i64 port, string mode,
//   string ready, string ready_path, i64 ready_timeout in ns
// `instances` and `idle_timeout` are left out, as for a pool.
// A `from: worker` service, version 1: string "worker-service/1", string
// name. What it runs is the worker's configuration, which the job cannot
// see.
uint64_t ServiceDecl::Fingerprint() const {
  Fnv1a64 h;
  if (from_worker) {
    h.Str("worker-service/1");
    h.Str(name);
    return h.value();
  }
  h.Str("service/1");
  h.Str(name);
  h.U64(command.size());
  for (const std::string& arg : command) h.Str(arg);
  h.Env(env);
  h.Str(cwd);
  h.Str(host);
  h.I64(port);
  h.Str(mode);
  h.Str(ready);
  h.Str(ready_path);
  h.I64(ready_timeout.count());
  return h.value();
}

bool JobSpec::DeclaresServices() const {
  for (const ServiceDecl& service : services) {
    if (!service.from_worker) return true;
  }
  return false;
}

std::vector<std::string> JobSpec::WorkerServices(const TaskSpec& ts) const {
  std::vector<std::string> names;
  for (const std::string& name : ts.services) {
    const ServiceDecl* decl = FindService(name);
    if (decl != nullptr && decl->from_worker) names.push_back(name);
  }
  return names;
}

const ServiceDecl* JobSpec::FindService(std::string_view service_name) const {
  for (const ServiceDecl& service : services) {
    if (service.name == service_name) return &service;
  }
  return nullptr;
}

std::optional<uint32_t> JobSpec::Find(std::string_view task_name) const {
  return tasks.Find(task_name);
}

const PoolDecl* JobSpec::FindPool(std::string_view pool_name) const {
  for (const PoolDecl& pool : pools) {
    if (pool.name == pool_name) return &pool;
  }
  return nullptr;
}

// duration = component+ ; component = digits ["." digits] unit ;
// unit = "h" | "m" | "s" | "ms". A fraction is exact to the nanosecond.
std::optional<Duration> ParseDuration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return std::nullopt;
    int64_t whole = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      if (__builtin_mul_overflow(whole, 10, &whole) ||
          __builtin_add_overflow(whole, text[i] - '0', &whole)) {
        return std::nullopt;
      }
      ++i;
    }
    std::string_view fraction;
    if (i < text.size() && text[i] == '.') {
      const size_t start = ++i;
      while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
      fraction = text.substr(start, i - start);
      if (fraction.empty()) return std::nullopt;
    }
    const std::string_view rest = text.substr(i);
    int64_t unit = 0;
    if (StartsWith(rest, "ms")) {
      unit = 1'000'000;
      i += 2;
    } else if (StartsWith(rest, "s")) {
      unit = 1'000'000'000;
      i += 1;
    } else if (StartsWith(rest, "m")) {
      unit = 60'000'000'000;
      i += 1;
    } else if (StartsWith(rest, "h")) {
      unit = 3'600'000'000'000;
      i += 1;
    } else {
      return std::nullopt;  // a bare number has no unit: "30" is refused
    }
    int64_t ns = 0;
    if (__builtin_mul_overflow(whole, unit, &ns)) return std::nullopt;
    // Every unit is a multiple of 10^6 ns, so dividing the scale by ten per
    // digit stays exact down to the nanosecond; finer digits are dropped.
    int64_t scale = unit;
    for (char digit : fraction) {
      scale /= 10;
      if (__builtin_add_overflow(ns, (digit - '0') * scale, &ns)) return std::nullopt;
    }
    if (ns > kMax - total) return std::nullopt;
    total += ns;
  }
  return Duration(total);
}

std::optional<uint64_t> ParseSize(std::string_view text) {
  size_t i = 0;
  uint64_t number = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    if (__builtin_mul_overflow(number, 10u, &number) ||
        __builtin_add_overflow(number, static_cast<unsigned>(text[i] - '0'), &number)) {
      return std::nullopt;
    }
    ++i;
  }
  if (i == 0) return std::nullopt;
  // "8 MiB" reads naturally too; a trailing space alone is not a unit.
  if (i + 1 < text.size() && text[i] == ' ') ++i;
  std::string unit;
  for (; i < text.size(); ++i) {
    unit.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(text[i]))));
  }
  struct Unit {
    const char* name;
    uint64_t factor;
  };
  static constexpr Unit kUnits[] = {
      {"", 1},           {"b", 1},
      {"kb", 1000},      {"kib", 1ull << 10},
      {"mb", 1000'000},  {"mib", 1ull << 20},
      {"gb", 1000'000'000}, {"gib", 1ull << 30},
      {"tb", 1000'000'000'000}, {"tib", 1ull << 40},
  };
  for (const Unit& u : kUnits) {
    if (unit != u.name) continue;
    uint64_t bytes = 0;
    if (__builtin_mul_overflow(number, u.factor, &bytes) ||
        bytes > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return std::nullopt;
    }
    return bytes;
  }
  return std::nullopt;
}

}  // namespace drover::spec

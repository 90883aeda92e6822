// The plain-data half of core/spec: error formatting, fingerprints, and the
// duration and size grammars. The YAML half is in loader.cc.
#include "core/spec/job_spec.h"

#include <algorithm>
#include <cctype>
#include <limits>

namespace drover::spec {
namespace {

// FNV-1a, 64-bit (http://www.isthe.com/chongo/tech/comp/fnv/). Chosen for
// being tiny, fast on short inputs and fully specified: a fingerprint must
// not change between builds, compilers or hosts (std::hash may).
class Fnv1a64 {
 public:
  void Bytes(std::string_view bytes) {
    for (unsigned char c : bytes) {
      hash_ ^= c;
      hash_ *= 0x100000001b3ull;
    }
  }
  // Integers are fed as 8 little-endian bytes whatever the host's order.
  void U64(uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      const char byte = static_cast<char>((v >> (8 * i)) & 0xFF);
      Bytes(std::string_view(&byte, 1));
    }
  }
  void I64(int64_t v) { U64(static_cast<uint64_t>(v)); }
  // Length-prefixed, so that {"ab", "c"} and {"a", "bc"} differ.
  void Str(std::string_view s) {
    U64(s.size());
    Bytes(s);
  }
  uint64_t value() const { return hash_; }

 private:
  uint64_t hash_ = 0xcbf29ce484222325ull;
};

// Feeds `env` sorted by name (stable: a name given twice keeps its order),
// as a count and then (name, value) string pairs.
void HashEnv(const EnvList& env, Fnv1a64* h) {
  std::vector<const std::pair<std::string, std::string>*> sorted;
  sorted.reserve(env.size());
  for (const auto& kv : env) sorted.push_back(&kv);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto* a, const auto* b) { return a->first < b->first; });
  h->U64(sorted.size());
  for (const auto* kv : sorted) {
    h->Str(kv->first);
    h->Str(kv->second);
  }
}

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

// The canonical encoding, version 1 (changing it re-runs every task on the
// next --resume, so only ever append a new version):
//   u64 1 (the encoding version)
//   u64 argc, then each argv element as u64 length + bytes
//   u64 shell (0 or 1)
//   u64 env count, then each (name, value) sorted by name, as two strings
//   string cwd, string backend
//   u64 has_timeout (0 or 1), i64 timeout in ns (0 when none)
//   i64 kill_grace in ns, u64 output_limit
// then, only for tasks that have them (so that the fingerprints of spawn
// tasks did not change when they were added):
//   if fn or args_json is not empty:       u64 2, string fn, string args_json
//   if pool or message_json is not empty:  u64 3, string pool,
//                                          u64 pool_fingerprint, string message_json
//   if services is not empty or backend is cluster:
//                                          u64 4, string service,
//                                          u64 services count, each name as a string,
//                                          u64 services_fingerprint,
//                                          string method, string path,
//                                          u64 headers count, each (name, value) in
//                                          order as two strings, string body,
//                                          i64 expect, u64 has_request_timeout,
//                                          i64 request timeout in ns (0 when none)
// where u64/i64 are 8 little-endian bytes and a string is u64 length + bytes.
// The tags 2 and 3 keep the two sections apart when only one is present.
// Retries and backoff are left out on purpose: they decide how often a task
// is tried, not what it does, so changing them must not re-run it.
uint64_t TaskSpec::Fingerprint() const {
  Fnv1a64 h;
  h.U64(1);
  h.U64(argv.size());
  for (const std::string& arg : argv) h.Str(arg);
  h.U64(shell ? 1 : 0);
  HashEnv(env, &h);
  h.Str(cwd);
  h.Str(backend);
  h.U64(timeout.has_value() ? 1 : 0);
  h.I64(timeout.has_value() ? timeout->count() : 0);
  h.I64(kill_grace.count());
  h.U64(output_limit);
  if (!fn.empty() || !args_json.empty()) {
    h.U64(2);
    h.Str(fn);
    h.Str(args_json);
  }
  if (!pool.empty() || !message_json.empty()) {
    h.U64(3);
    h.Str(pool);
    h.U64(pool_fingerprint);
    h.Str(message_json);
  }
  if (!services.empty() || backend == "cluster") {
    h.U64(4);
    h.Str(service);
    h.U64(services.size());
    for (const std::string& name : services) h.Str(name);
    h.U64(services_fingerprint);
    h.Str(request.method);
    h.Str(request.path);
    h.U64(request.headers.size());
    for (const auto& [name, value] : request.headers) {
      h.Str(name);
      h.Str(value);
    }
    h.Str(request.body);
    h.I64(request.expect);
    h.U64(request.timeout.has_value() ? 1 : 0);
    h.I64(request.timeout.has_value() ? request.timeout->count() : 0);
  }
  return h.value();
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
  HashEnv(env, &h);
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
  HashEnv(env, &h);
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
  for (size_t i = 0; i < tasks.size(); ++i) {
    if (tasks[i].name == task_name) return static_cast<uint32_t>(i);
  }
  return std::nullopt;
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

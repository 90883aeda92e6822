#include "core/spec/fingerprint.h"

#include <algorithm>

namespace drover::spec {

void Fnv1a64::Env(const EnvList& env) {
  std::vector<const std::pair<std::string, std::string>*> sorted;
  sorted.reserve(env.size());
  for (const auto& kv : env) sorted.push_back(&kv);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto* a, const auto* b) { return a->first < b->first; });
  U64(sorted.size());
  for (const auto* kv : sorted) {
    Str(kv->first);
    Str(kv->second);
  }
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
//   if artifacts is not empty:             u64 5, u64 count, each pattern as a string
//   if any of limits is set:               u64 6, i64 cpu in ns, u64 memory,
//                                          u64 files, u64 processes (0 when unset)
// where u64/i64 are 8 little-endian bytes and a string is u64 length + bytes.
// The tags 2 and 3 keep the two sections apart when only one is present.
// Retries and backoff are left out on purpose: they decide how often a task
// is tried, not what it does, so changing them must not re-run it.
uint64_t TaskFingerprintV1(const TaskSpec& ts, const TaskFingerprintV1Fields& f) {
  Fnv1a64 h;
  h.U64(1);
  h.U64(f.argv.size());
  for (const std::string& arg : f.argv) h.Str(arg);
  h.U64(f.shell ? 1 : 0);
  h.Env(f.env);
  h.Str(f.cwd);
  h.Str(ts.backend);
  h.U64(ts.timeout.has_value() ? 1 : 0);
  h.I64(ts.timeout.has_value() ? ts.timeout->count() : 0);
  h.I64(ts.kill_grace.count());
  h.U64(ts.output_limit);
  if (!f.fn.empty() || !f.args_json.empty()) {
    h.U64(2);
    h.Str(f.fn);
    h.Str(f.args_json);
  }
  if (!f.pool.empty() || !f.message_json.empty()) {
    h.U64(3);
    h.Str(f.pool);
    h.U64(f.pool_fingerprint);
    h.Str(f.message_json);
  }
  if (!ts.services.empty() || ts.backend == "cluster") {
    h.U64(4);
    h.Str(f.service);
    h.U64(ts.services.size());
    for (const std::string& name : ts.services) h.Str(name);
    h.U64(ts.services_fingerprint);
    h.Str(f.request.method);
    h.Str(f.request.path);
    h.U64(f.request.headers.size());
    for (const auto& [name, value] : f.request.headers) {
      h.Str(name);
      h.Str(value);
    }
    h.Str(f.request.body);
    h.I64(f.request.expect);
    h.U64(f.request.timeout.has_value() ? 1 : 0);
    h.I64(f.request.timeout.has_value() ? f.request.timeout->count() : 0);
  }
  if (!ts.artifacts.empty()) {
    h.U64(5);
    h.U64(ts.artifacts.size());
    for (const std::string& pattern : ts.artifacts) h.Str(pattern);
  }
  if (!f.limits.empty()) {
    h.U64(6);
    h.I64(f.limits.cpu ? f.limits.cpu->count() : 0);
    h.U64(f.limits.memory.value_or(0));
    h.U64(f.limits.files.value_or(0));
    h.U64(f.limits.processes.value_or(0));
  }
  return h.value();
}

// The canonical encoding, version 2 (any backend but the four built-in
// ones, which keep version 1):
//   string "task/2", string backend
//   u64 has_timeout (0 or 1), i64 timeout in ns (0 when none)
//   i64 kill_grace in ns, u64 output_limit
//   u64 services count, each name as a string, u64 services_fingerprint
//   string payload
// Retries, backoff and placement are left out, as in version 1.
uint64_t TaskFingerprint(const TaskSpec& ts) {
  Fnv1a64 h;
  h.Str("task/2");
  h.Str(ts.backend);
  h.U64(ts.timeout.has_value() ? 1 : 0);
  h.I64(ts.timeout.has_value() ? ts.timeout->count() : 0);
  h.I64(ts.kill_grace.count());
  h.U64(ts.output_limit);
  h.U64(ts.services.size());
  for (const std::string& name : ts.services) h.Str(name);
  h.U64(ts.services_fingerprint);
  h.Str(ts.payload);
  return h.value();
}

}  // namespace drover::spec

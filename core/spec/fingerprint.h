// Task fingerprints (`drover run --resume` re-runs a task whose fingerprint
// changed): the hash they are made with, the version-1 encoding that the
// four built-in backends keep so that state directories written before
// each backend read its own keys stay resumable, and the generic formula
// of any other backend.
#ifndef DROVER_CORE_SPEC_FINGERPRINT_H_
#define DROVER_CORE_SPEC_FINGERPRINT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/clock.h"
#include "core/spec/job_spec.h"

namespace drover::spec {

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
  // `env` sorted by name (stable: a name given twice keeps its order), as
  // a count and then (name, value) string pairs.
  void Env(const EnvList& env);
  uint64_t value() const { return hash_; }

 private:
  uint64_t hash_ = 0xcbf29ce484222325ull;
};

// What the version-1 fingerprint of a task of a built-in backend (spawn,
// threads, fork, cluster) is made of: the fields TaskSpec had before each
// backend read its own keys. A built-in kind fills what its tasks have and
// leaves the rest empty, as the loader of version 1 did.
struct TaskFingerprintV1Fields {
  std::vector<std::string> argv;  // spawn
  bool shell = false;
  EnvList env;
  std::string cwd;
  std::string fn;                 // threads, and fork on a cow pool
  std::string args_json;
  std::string pool;               // fork
  uint64_t pool_fingerprint = 0;  // PoolDecl::Fingerprint(); 0: a worker's pool
  std::string message_json;
  std::string service;            // cluster
  struct Request {
    std::string method = "GET";
    std::string path = "/";
    EnvList headers;
    std::string body;
    int expect = 200;
    std::optional<Duration> timeout;
  } request;
  TaskLimits limits;  // spawn
};

// The version-1 fingerprint (the encoding is in fingerprint.cc) of `ts`
// (backend, timeout, kill_grace, output_limit, services,
// services_fingerprint) with a built-in backend's `fields`. Never change
// it: only a backend added since may use another formula.
uint64_t TaskFingerprintV1(const TaskSpec& ts, const TaskFingerprintV1Fields& fields);

// The fingerprint of a task of any other backend: "task/2", the shared
// fields of `ts` that decide how it runs and ts.payload (which must be
// the same bytes for the same task: a kind serializes its message
// deterministically).
uint64_t TaskFingerprint(const TaskSpec& ts);

}  // namespace drover::spec

#endif  // DROVER_CORE_SPEC_FINGERPRINT_H_

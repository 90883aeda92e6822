// Fuzz target: the spec loader (core/spec/job_spec.h), YAML bytes from
// whoever may submit a job, with the built-in backends' task kinds.
//
// Besides not crashing, it checks the loader's contract: a spec exactly
// when there is no error; every error with a message, in the file, at a
// line and column that are not negative; and in a spec, instances with
// unique names, `needs` and `services` that point at what exists, and
// each payload a message of its backend that decodes. No string that
// becomes an argv entry, an environment entry or a path holds a NUL byte
// (issue 14: a NUL used to truncate the command silently).
//
// The YAML parser's read-ahead of flow sequences (core/spec/yaml_doc.h)
// must give what yaml-cpp gives for the text whole: the tree, every
// offset, the errors.
//
// The matrix caps are lowered (1,000 instances, 100,000 edges) so that an
// input costs milliseconds; the caps themselves are checked all the same.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <set>
#include <string>
#include <string_view>

#include "backends/cluster/cluster.pb.h"
#include "backends/fork/fork.pb.h"
#include "backends/kinds.h"
#include "backends/spawn/spawn.pb.h"
#include "backends/threads/threads.pb.h"
#include "core/spec/job_spec.h"
#include "core/spec/task_kind.h"
#include "core/spec/yaml_doc.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/yaml_parse_diff.h"

namespace {

using drover::spec::JobSpec;
using drover::spec::LoadResult;
using drover::spec::TaskSpec;

bool HasNul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

// The payload decodes as its backend's message, without NUL bytes where a
// C string is made of it.
void CheckPayload(const TaskSpec& ts) {
  if (ts.backend == "spawn") {
    drover::spawn::SpawnTask t;
    FUZZ_CHECK(t.ParseFromString(ts.payload));
    FUZZ_CHECK(t.argv_size() > 0);
    for (const std::string& arg : t.argv()) FUZZ_CHECK(!HasNul(arg));
    for (const auto& e : t.env()) FUZZ_CHECK(!HasNul(e.name()) && !HasNul(e.value()));
    FUZZ_CHECK(!HasNul(t.cwd()));
  } else if (ts.backend == "threads") {
    drover::threads::ThreadsTask t;
    FUZZ_CHECK(t.ParseFromString(ts.payload));
    for (const std::string& p : t.plugins()) FUZZ_CHECK(!HasNul(p));
  } else if (ts.backend == "fork") {
    drover::fork::ForkTask t;
    FUZZ_CHECK(t.ParseFromString(ts.payload));
    for (const std::string& p : t.plugins()) FUZZ_CHECK(!HasNul(p));
  } else if (ts.backend == "cluster") {
    drover::cluster::ClusterTask t;
    FUZZ_CHECK(t.ParseFromString(ts.payload));
  } else {
    FUZZ_CHECK(false && "a backend that is not built in");
  }
}

void CheckSpec(const JobSpec& spec) {
  // Strings, not views: a matrix instance lives for its iteration step.
  std::set<std::string> names;
  uint32_t index = 0;
  for (const TaskSpec& ts : spec.tasks) {
    FUZZ_CHECK(!ts.name.empty());
    FUZZ_CHECK(names.insert(ts.name).second);
    FUZZ_CHECK(spec.tasks.Name(index) == ts.name);
    FUZZ_CHECK(spec.Find(ts.name) == index);
    ++index;
    for (uint32_t need : ts.needs) FUZZ_CHECK(need < spec.tasks.size());
    for (const std::string& service : ts.services) {
      FUZZ_CHECK(spec.FindService(service) != nullptr);
    }
    CheckPayload(ts);
  }
  for (const auto& pool : spec.pools) {
    for (const std::string& arg : pool.command) FUZZ_CHECK(!HasNul(arg));
    for (const auto& [name, value] : pool.env) FUZZ_CHECK(!HasNul(name) && !HasNul(value));
    FUZZ_CHECK(!HasNul(pool.cwd));
  }
  for (const auto& service : spec.services) {
    for (const std::string& arg : service.command) FUZZ_CHECK(!HasNul(arg));
    for (const auto& [name, value] : service.env) FUZZ_CHECK(!HasNul(name) && !HasNul(value));
    FUZZ_CHECK(!HasNul(service.cwd));
  }
  for (const std::string& plugin : spec.plugins) FUZZ_CHECK(!HasNul(plugin));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const drover::spec::TaskKinds* const kinds = [] {
    auto* k = new drover::spec::TaskKinds();  // lives for the process
    drover::AddBuiltinTaskKinds(k);
    return k;
  }();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  {
    using drover::spec::internal::ParseYamlWith;
    const std::string diff = drover::spec::internal::YamlParseDiff(
        ParseYamlWith(text, 1), ParseYamlWith(text, SIZE_MAX));
    if (!diff.empty()) std::fprintf(stderr, "read ahead: %s\n", diff.c_str());
    FUZZ_CHECK(diff.empty());
  }
  drover::spec::LoadOptions options;
  options.kinds = kinds;
  options.max_instances = 1000;
  options.max_edges = 100'000;
  const LoadResult result = drover::spec::LoadString(text, "fuzz.yaml", options);
  FUZZ_CHECK(result.spec.has_value() == result.errors.empty());
  for (const auto& e : result.errors) {
    FUZZ_CHECK(!e.message.empty());
    FUZZ_CHECK(e.where.file == "fuzz.yaml");
    FUZZ_CHECK(e.where.line >= 0 && e.where.column >= 0);
  }
  if (result.spec) CheckSpec(*result.spec);
  return 0;
}

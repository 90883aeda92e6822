// Helpers shared by the core/spec unit tests (spec_test.cc,
// spec_backends_test.cc).
#ifndef DROVER_TESTS_UNIT_SPEC_TEST_UTIL_H_
#define DROVER_TESTS_UNIT_SPEC_TEST_UTIL_H_

#include <chrono>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "backends/cluster/cluster.pb.h"
#include "backends/fork/fork.pb.h"
#include "backends/kinds.h"
#include "backends/spawn/spawn.pb.h"
#include "backends/threads/threads.pb.h"
#include "core/spec/job_spec.h"
#include "core/spec/task_kind.h"

namespace drover::spec::test_util {

// The built-in backends' task kinds (backends/kinds.h).
inline const TaskKinds& Kinds() {
  static const TaskKinds* const kinds = [] {
    auto* k = new TaskKinds();
    AddBuiltinTaskKinds(k);
    return k;
  }();
  return *kinds;
}

// `options` (default ones when not given) with the built-in kinds.
inline LoadOptions Options(LoadOptions options = {}) {
  if (options.kinds == nullptr) options.kinds = &Kinds();
  return options;
}

// Loads a YAML snippet as "job.yaml"; a leading newline is dropped so that
// line 1 is the first line written after R"(.
inline LoadResult Load(std::string_view yaml, const LoadOptions& options = {}) {
  if (!yaml.empty() && yaml.front() == '\n') yaml.remove_prefix(1);
  return LoadString(yaml, "job.yaml", Options(options));
}

// A task instance with its payload decoded by its backend's message, under
// the names TaskSpec gave those fields before each backend read its own
// keys. Fields its backend does not have stay empty.
struct Decoded {
  std::vector<std::string> argv;  // spawn
  EnvList env;
  std::string cwd;
  std::string fn;                 // threads, fork
  std::string args_json;
  std::vector<std::string> plugins;
  std::string pool;               // fork
  std::optional<std::string> pool_spec;  // the name in ForkTask.pool_spec, when set
  std::string message_json;
  std::string service;            // cluster
  struct {
    std::string method;
    std::string path;
    EnvList headers;
    std::string body;
    int expect = 0;
    std::optional<std::chrono::milliseconds> timeout;
  } request;
};

inline Decoded Decode(const TaskSpec& ts) {
  Decoded d;
  if (ts.backend == "spawn") {
    drover::spawn::SpawnTask t;
    EXPECT_TRUE(t.ParseFromString(ts.payload)) << ts.name;
    d.argv.assign(t.argv().begin(), t.argv().end());
    for (const auto& e : t.env()) d.env.emplace_back(e.name(), e.value());
    d.cwd = t.cwd();
  } else if (ts.backend == "threads") {
    drover::threads::ThreadsTask t;
    EXPECT_TRUE(t.ParseFromString(ts.payload)) << ts.name;
    d.fn = t.fn();
    d.args_json = t.args_json();
    d.plugins.assign(t.plugins().begin(), t.plugins().end());
  } else if (ts.backend == "fork") {
    drover::fork::ForkTask t;
    EXPECT_TRUE(t.ParseFromString(ts.payload)) << ts.name;
    d.pool = t.pool();
    if (t.has_pool_spec()) d.pool_spec = t.pool_spec().name();
    d.message_json = t.message_json();
    d.fn = t.fn();
    d.args_json = t.args_json();
    d.plugins.assign(t.plugins().begin(), t.plugins().end());
  } else if (ts.backend == "cluster") {
    drover::cluster::ClusterTask t;
    EXPECT_TRUE(t.ParseFromString(ts.payload)) << ts.name;
    d.service = t.service();
    d.request.method = t.request().method();
    d.request.path = t.request().path();
    for (const auto& h : t.request().headers()) d.request.headers.emplace_back(h.name(), h.value());
    d.request.body = t.request().body();
    d.request.expect = static_cast<int>(t.request().expect());
    if (t.request().timeout_ms() != 0) {
      d.request.timeout = std::chrono::milliseconds(t.request().timeout_ms());
    }
  } else {
    ADD_FAILURE() << "no decoder for backend " << ts.backend;
  }
  return d;
}

inline std::string Dump(const LoadResult& result) {
  std::string out;
  for (const SpecError& e : result.errors) out += "  " + e.ToString() + "\n";
  return out;
}

// Exactly one error, at line:column, whose message holds every word.
inline ::testing::AssertionResult HasOnlyError(const LoadResult& result, int line, int column,
                                        std::initializer_list<std::string_view> words) {
  if (result.errors.size() != 1) {
    return ::testing::AssertionFailure()
           << "expected 1 error, got " << result.errors.size() << ":\n" << Dump(result);
  }
  if (result.spec.has_value()) return ::testing::AssertionFailure() << "spec set despite an error";
  const SpecError& e = result.errors.front();
  if (e.where.line != line || e.where.column != column) {
    return ::testing::AssertionFailure() << "expected the error at " << line << ":" << column
                                         << ", got " << e.ToString();
  }
  for (std::string_view word : words) {
    if (e.message.find(word) == std::string::npos) {
      return ::testing::AssertionFailure() << "no \"" << word << "\" in: " << e.ToString();
    }
  }
  return ::testing::AssertionSuccess();
}

inline const JobSpec& Spec(const LoadResult& result) {
  EXPECT_TRUE(result.ok()) << Dump(result);
  static const JobSpec kEmpty;
  return result.spec ? *result.spec : kEmpty;
}

}  // namespace drover::spec::test_util

#endif  // DROVER_TESTS_UNIT_SPEC_TEST_UTIL_H_

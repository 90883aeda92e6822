// Pins the fingerprints of the four built-in backends' tasks as version 1
// computed them, so that a state directory written by an older drover stays
// resumable (`drover run --resume` re-runs a task whose fingerprint
// changed). The values were computed by the code before each backend read
// its own task keys (issue 10); never update them to make this pass. And
// what the threads and fork backends' keys (fn, args, pool, message, and
// the pool's declaration) add to a task's fingerprint.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "core/spec/fingerprint.h"
#include "core/spec/job_spec.h"
#include "tests/unit/spec_test_util.h"

namespace drover::spec {
namespace {

using test_util::Dump;
using test_util::Load;
using test_util::Options;
using test_util::Spec;

std::vector<uint64_t> Fingerprints(const std::string& yaml, const LoadOptions& options = {}) {
  const LoadResult r = Load(yaml, options);
  std::vector<uint64_t> out;
  for (const TaskSpec& t : Spec(r).tasks) out.push_back(t.fingerprint);
  return out;
}

std::string Hex(const std::vector<uint64_t>& values) {
  std::string out;
  char buf[32];
  for (uint64_t v : values) {
    std::snprintf(buf, sizeof buf, "0x%016llxull, ", static_cast<unsigned long long>(v));
    out += buf;
  }
  return out;
}

// Given spawn tasks (a shell string, an argv, env merged over defaults, a
// cwd, a timeout, a matrix), should give version 1's values.
TEST(FingerprintCompatTest, SpawnTasksKeepVersionOneValues) {
  const std::string yaml = R"(
version: 1
defaults: {env: {A: "1", B: "2"}, cwd: /tmp, timeout: 30s}
tasks:
  shell: {run: "make all", env: {B: "3", C: "4"}}
  argv: {run: [echo, hi], kill_grace: 2s, output_limit: 1MiB, cwd: src}
  shards: {matrix: {i: [0, 1]}, run: "echo ${matrix.i}", env: {I: "${matrix.i}"}}
)";
  const std::vector<uint64_t> got = Fingerprints(yaml);
  const std::vector<uint64_t> want = {
      0xbbae425a96e0be55ull, 0x1083a98b949f5393ull, 0x03b05e044c7e5cccull, 0x426081b30af43380ull};
  EXPECT_EQ(got, want) << Hex(got);
}

// Given threads tasks (with and without args, args with matrix holes),
// should give version 1's values.
TEST(FingerprintCompatTest, ThreadsTasksKeepVersionOneValues) {
  const std::string yaml = R"(
version: 1
plugins: [libx.so]
defaults: {backend: threads, timeout: 5s}
tasks:
  bare: {fn: noop}
  sort: {fn: sort, args: {numbers: [3, 1, 2], name: "x"}}
  m: {fn: echo, matrix: {n: [1, "2"]}, args: {n: "${matrix.n}", s: "v${matrix.n}"}}
)";
  const std::vector<uint64_t> got = Fingerprints(yaml);
  const std::vector<uint64_t> want = {
      0x44a68c52e947aa8aull, 0xa5e8a9f5e3b3360aull, 0x300bf1ab46065ad9ull, 0xb91d9c726c15d4f3ull};
  EXPECT_EQ(got, want) << Hex(got);
}

// Given fork tasks on a process pool, a cow pool, and a worker's pool the
// job does not declare, should give version 1's values.
TEST(FingerprintCompatTest, ForkTasksKeepVersionOneValues) {
  const std::string yaml = R"(
version: 1
pools:
  node: {command: "node x.js", instances: 2, env: {K: v}}
  cow: {mode: cow, instances: 1}
tasks:
  send: {backend: fork, pool: node, message: [1, 5, 2]}
  nomsg: {backend: fork, pool: node}
  call: {backend: fork, pool: cow, fn: sort, args: {a: 1}}
  m: {backend: fork, pool: node, matrix: {k: [a, b]}, message: {k: "${matrix.k}"}}
)";
  const std::vector<uint64_t> got = Fingerprints(yaml);
  const std::vector<uint64_t> want = {
      0x15d48dfab083a713ull, 0x9d9ee4fddf68f63full, 0xd9be6897f1419df2ull, 0x662a06ba34bfd6afull, 0x5ca6e1ba2f1ec666ull};
  EXPECT_EQ(got, want) << Hex(got);

  LoadOptions options;
  options.undeclared_pools = true;
  const std::string worker_pool = R"(
version: 1
tasks:
  msg: {backend: fork, pool: theirs, message: {x: 1}}
  fn: {backend: fork, pool: theirs, fn: sort, args: [1]}
)";
  const std::vector<uint64_t> got_worker = Fingerprints(worker_pool, options);
  const std::vector<uint64_t> want_worker = {
      0xce9586b2d6960af4ull, 0x5d09ff78981853cdull};
  EXPECT_EQ(got_worker, want_worker) << Hex(got_worker);
}

// Given cluster tasks (a default request, a full one with matrix holes) and
// a spawn task using ${services.NAME.port}, should give version 1's values.
TEST(FingerprintCompatTest, ClusterTasksKeepVersionOneValues) {
  const std::string yaml = R"(
version: 1
services:
  web: {command: [drover, serve, hello], instances: 2, listen: 127.0.0.1:0}
  theirs: {from: worker}
tasks:
  get: {backend: cluster, service: web}
  post:
    backend: cluster
    service: web
    matrix: {p: [a, b]}
    request:
      method: POST
      path: /x/${matrix.p}
      headers: {X-A: "1", X-B: "${matrix.p}"}
      body: "b=${matrix.p}"
      expect: 201
      timeout: 2s
  curl: {run: "curl 127.0.0.1:${services.web.port}/${services.theirs.host}"}
)";
  const std::vector<uint64_t> got = Fingerprints(yaml);
  const std::vector<uint64_t> want = {
      0x8a67acd7f7f3518eull, 0xa024a06f0ee1d650ull, 0x91708eeeb5a913f9ull, 0x270f968ec7e5c89full};
  EXPECT_EQ(got, want) << Hex(got);
}

// ------------------------------------------- the fork and threads keys

JobSpec LoadPoolJob(std::string_view pool, std::string_view message = "[1, 2]") {
  const std::string yaml =
      "version: 1\npools:\n  p: " + std::string(pool) +
      "\ntasks:\n  a: {backend: fork, pool: p, message: " + std::string(message) + "}\n";
  const LoadResult r = LoadString(yaml, "job.yaml", Options());
  EXPECT_TRUE(r.ok()) << Dump(r);
  return r.spec ? *r.spec : JobSpec();
}

uint64_t FirstFingerprint(const JobSpec& spec) {
  return spec.tasks.empty() ? 0 : spec.tasks[0].fingerprint;
}

// Given a change to a fork task's pool that changes what its processes do
// (command, env, cwd, mode, max_tasks), should change the task's
// fingerprint; given one to how many run or for how long, should not.
TEST(SpecBackendFingerprintTest, PoolDeclarationIsPartOfTheTask) {
  const uint64_t base = FirstFingerprint(LoadPoolJob("{command: [node, a.js]}"));
  ASSERT_NE(base, 0u);
  EXPECT_NE(FirstFingerprint(LoadPoolJob("{command: [node, b.js]}")), base);
  EXPECT_NE(FirstFingerprint(LoadPoolJob("{command: [node, a.js], env: {A: b}}")), base);
  EXPECT_NE(FirstFingerprint(LoadPoolJob("{command: [node, a.js], cwd: /tmp}")), base);
  EXPECT_NE(FirstFingerprint(LoadPoolJob("{command: [node, a.js], max_tasks: 5}")), base);
  EXPECT_NE(FirstFingerprint(LoadPoolJob("{command: [node, a.js]}", "[2, 1]")), base);
  EXPECT_EQ(FirstFingerprint(LoadPoolJob("{command: [node, a.js], instances: 8}")), base);
  EXPECT_EQ(FirstFingerprint(LoadPoolJob("{command: [node, a.js], idle_timeout: 1m}")),
            base);
  EXPECT_EQ(FirstFingerprint(LoadPoolJob("{command: [node, a.js]}")), base);
}

// Given the same threads task with other fn or args, should differ; given
// fields only a fork task has, should differ from a threads task with the
// same text in its own fields (the sections are tagged).
TEST(SpecBackendFingerprintTest, FnArgsPoolAndMessageCount) {
  TaskSpec ts;
  ts.backend = "threads";
  TaskFingerprintV1Fields t;
  t.fn = "sort";
  t.args_json = "[1]";
  const uint64_t base = TaskFingerprintV1(ts, t);
  TaskFingerprintV1Fields fn = t;
  fn.fn = "noop";
  EXPECT_NE(TaskFingerprintV1(ts, fn), base);
  TaskFingerprintV1Fields args = t;
  args.args_json = "[2]";
  EXPECT_NE(TaskFingerprintV1(ts, args), base);

  TaskFingerprintV1Fields as_fork = t;
  as_fork.fn.clear();
  as_fork.args_json.clear();
  as_fork.pool = "sort";
  as_fork.message_json = "[1]";
  EXPECT_NE(TaskFingerprintV1(ts, as_fork), base);
  TaskFingerprintV1Fields other_pool = as_fork;
  other_pool.pool_fingerprint = 1;
  EXPECT_NE(TaskFingerprintV1(ts, other_pool), TaskFingerprintV1(ts, as_fork));

  // Without any of them, the encoding is the spawn one: unchanged.
  TaskSpec plain;
  TaskFingerprintV1Fields none;
  TaskFingerprintV1Fields none_again;
  none_again.pool_fingerprint = 7;  // counted only with a pool or message
  EXPECT_EQ(TaskFingerprintV1(plain, none), TaskFingerprintV1(plain, none_again));
}

}  // namespace
}  // namespace drover::spec

// core/spec: a task's keys for the threads and fork backends (docs/spec.md):
// fn, args, pool and message. The pools and plugins themselves are in
// spec_pools_test.cc, YAML-to-JSON conversion in spec_json_test.cc, what
// these keys add to a task's fingerprint in spec_fingerprint_test.cc.
//
// Error tests assert the exact line:column and the key words of the
// message. YAML snippets start on the line after R"( so that line 1 of the
// snippet is the first line written.
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "core/spec/fingerprint.h"
#include "core/spec/job_spec.h"
#include "tests/unit/spec_test_util.h"

namespace drover::spec {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

using test_util::Decode;
using test_util::Dump;
using test_util::HasOnlyError;
using test_util::Load;
using test_util::Options;
using test_util::Spec;
// ------------------------------------------------------------ tasks: errors

// Given a fork task without a pool, should say it needs one, at the task.
TEST(SpecBackendErrorTest, ForkTaskWithoutPool) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    backend: fork
    message: [1, 2]
)");
  EXPECT_TRUE(HasOnlyError(r, 3, 3, {"task 'a' has backend fork but no 'pool'"}));
}

// Given a pool name one typo away from a declared pool, should suggest it.
TEST(SpecBackendErrorTest, UnknownPoolSuggestsClosest) {
  const LoadResult r = Load(R"(
version: 1
pools: {sorter: {command: [node, sort.js]}}
tasks:
  a: {backend: fork, pool: sortr}
)");
  EXPECT_TRUE(HasOnlyError(r, 4, 28, {"unknown pool 'sortr' in task 'a'",
                                      "did you mean 'sorter'?"}));
}

// Given a pool name when no pool is declared, should say where to declare it.
TEST(SpecBackendErrorTest, UnknownPoolWithoutPools) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a: {backend: fork, pool: sorter}
)");
  EXPECT_TRUE(HasOnlyError(r, 3, 28, {"unknown pool 'sorter'", "no pools are declared",
                                      "'pools:'"}));
}

// Given `run` in a threads task, should say threads tasks call `fn`.
TEST(SpecBackendErrorTest, RunWithThreads) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    backend: threads
    fn: sort
    run: sort -n
)");
  EXPECT_TRUE(HasOnlyError(r, 6, 5, {"'run' in task 'a' does not apply to backend threads",
                                     "'fn'"}));
}

// Given `run` in a fork task, should say fork tasks send a message.
TEST(SpecBackendErrorTest, RunWithFork) {
  const LoadResult r = Load(R"(
version: 1
pools: {p: {command: x}}
tasks: {a: {backend: fork, pool: p, run: x}}
)");
  EXPECT_TRUE(HasOnlyError(r, 3, 37, {"'run' in task 'a' does not apply to backend fork"}));
}

// Given a threads task without `fn`, should say it has nothing to call.
TEST(SpecBackendErrorTest, ThreadsTaskWithoutFn) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    backend: threads
    args: [1]
)");
  EXPECT_TRUE(HasOnlyError(r, 3, 3, {"task 'a' has backend threads but no 'fn'"}));
}

// Given `fn` on a spawn task (the default backend), should say where it
// applies and which backend the task has.
TEST(SpecBackendErrorTest, FnWithSpawn) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    run: x
    fn: sort
)");
  EXPECT_TRUE(HasOnlyError(r, 5, 5, {"'fn' in task 'a' only applies to backend threads",
                                     "this task's backend is spawn"}));
}

// Given args, pool and message on a spawn task, should report each.
TEST(SpecBackendErrorTest, ArgsPoolAndMessageWithSpawn) {
  const LoadResult r = Load(R"(
version: 1
pools: {p: {command: x}}
tasks:
  a:
    run: x
    args: 1
    pool: p
    message: 2
)");
  ASSERT_EQ(r.errors.size(), 3u) << Dump(r);
  EXPECT_EQ(r.errors[0].ToString(),
            "job.yaml:6:5: 'args' in task 'a' only applies to backend threads (and fork "
            "tasks on a cow pool); this task's backend is spawn");
  EXPECT_EQ(r.errors[1].ToString(),
            "job.yaml:7:5: 'pool' in task 'a' only applies to backend fork; this task's "
            "backend is spawn");
  EXPECT_EQ(r.errors[2].ToString(),
            "job.yaml:8:5: 'message' in task 'a' only applies to backend fork; this task's "
            "backend is spawn");
}

// Given pool, message, env and cwd on a threads task, should report each:
// a function runs inside the worker, with the worker's environment.
TEST(SpecBackendErrorTest, ForkAndSpawnKeysWithThreads) {
  const LoadResult r = Load(R"(
version: 1
pools: {p: {command: x}}
tasks:
  a:
    backend: threads
    fn: noop
    pool: p
    message: 1
    env: {A: b}
    cwd: /tmp
)");
  ASSERT_EQ(r.errors.size(), 4u) << Dump(r);
  EXPECT_EQ(r.errors[0].ToString(),
            "job.yaml:7:5: 'pool' in task 'a' only applies to backend fork; this task's "
            "backend is threads");
  EXPECT_EQ(r.errors[1].ToString(),
            "job.yaml:8:5: 'message' in task 'a' only applies to backend fork; this task's "
            "backend is threads");
  EXPECT_EQ(r.errors[2].ToString(),
            "job.yaml:9:5: 'env' in task 'a' only applies to backend spawn; this task's "
            "backend is threads");
  EXPECT_EQ(r.errors[3].ToString(),
            "job.yaml:10:5: 'cwd' in task 'a' only applies to backend spawn; this task's "
            "backend is threads");
}

// Given fn and args on a fork task whose pool runs a command, should say
// such a pool takes a message.
TEST(SpecBackendErrorTest, FnOnProcessPool) {
  const LoadResult r = Load(R"(
version: 1
pools: {p: {command: x}}
tasks:
  a: {backend: fork, pool: p, fn: sort, args: [1]}
)");
  ASSERT_EQ(r.errors.size(), 2u) << Dump(r);
  EXPECT_EQ(r.errors[0].ToString(),
            "job.yaml:4:31: 'fn' in task 'a' only applies to backend threads (and fork tasks "
            "on a cow pool); pool 'p' is a process pool: send it a 'message'");
  EXPECT_EQ(r.errors[1].ToString(),
            "job.yaml:4:41: 'args' in task 'a' only applies to backend threads (and fork "
            "tasks on a cow pool); pool 'p' is a process pool: send it a 'message'");
}

// Given a message for a cow pool, and a cow task without fn, should say a
// cow pool calls `fn` with `args`.
TEST(SpecBackendErrorTest, CowPoolTakesFnNotMessage) {
  const LoadResult r = Load(R"(
version: 1
pools: {iso: {mode: cow}}
tasks:
  a: {backend: fork, pool: iso, message: [1]}
)");
  ASSERT_EQ(r.errors.size(), 2u) << Dump(r);
  EXPECT_EQ(r.errors[0].ToString(),
            "job.yaml:4:3: task 'a' uses cow pool 'iso' but has no 'fn' (the function its "
            "processes call)");
  EXPECT_EQ(r.errors[1].ToString(),
            "job.yaml:4:33: 'message' in task 'a' does not apply to cow pool 'iso': its "
            "processes call 'fn' with 'args'");
}

// Given a function name with a space, should list the allowed characters.
TEST(SpecBackendErrorTest, InvalidFnName) {
  const LoadResult r = Load(R"(
version: 1
tasks: {a: {backend: threads, fn: "my fn"}}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 35, {"invalid function name 'my fn' in task 'a'",
                                      "letters, digits"}));
}

// Given a task naming a pool that has errors of its own, should report
// only the pool's errors.
TEST(SpecBackendErrorTest, BrokenPoolIsReportedOnce) {
  const LoadResult r = Load(R"(
version: 1
pools: {p: {command: x, instances: 0}}
tasks: {a: {backend: fork, pool: p, message: 1}}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 36, {"'instances' in pool 'p'"}));
}

// Given a misspelt backend with fn, should report the backend only, not
// that fn does not belong or that run is missing.
TEST(SpecBackendErrorTest, BadBackendDoesNotCascade) {
  const LoadResult r = Load(R"(
version: 1
tasks: {a: {backend: thread, fn: sort}}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 22, {"unknown backend 'thread'", "did you mean 'threads'?"}));
}

// Given `args` or `message` in defaults, should say they are set per task.
TEST(SpecBackendErrorTest, ArgsAndMessageNotInDefaults) {
  const LoadResult r = Load(R"(
version: 1
defaults: {backend: threads, fn: noop, args: 1, message: 2}
tasks: {a: {}}
)");
  ASSERT_EQ(r.errors.size(), 2u) << Dump(r);
  EXPECT_EQ(r.errors[0].ToString(),
            "job.yaml:2:40: 'args' cannot be in 'defaults': it is set per task");
  EXPECT_EQ(r.errors[1].ToString(),
            "job.yaml:2:49: 'message' cannot be in 'defaults': it is set per task");
}

// Given an unknown pool in defaults, should report it once, at defaults,
// not again for each task that inherits it.
TEST(SpecBackendErrorTest, UnknownPoolInDefaultsReportedOnce) {
  const LoadResult r = Load(R"(
version: 1
pools: {sorter: {command: x}}
defaults: {backend: fork, pool: sortre}
tasks:
  a: {message: 1}
  b: {message: 2}
)");
  EXPECT_TRUE(HasOnlyError(r, 3, 33, {"unknown pool 'sortre' in 'defaults'",
                                      "did you mean 'sorter'?"}));
}

// Given `.inf` and a hex number past 64 bits in args, should say JSON
// cannot hold them and how to send a string.
TEST(SpecBackendErrorTest, NumbersJsonCannotHold) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    backend: threads
    fn: f
    args: [.inf, 0x10000000000000000, ".nan"]
)");
  ASSERT_EQ(r.errors.size(), 2u) << Dump(r);
  EXPECT_EQ(r.errors[0].ToString(),
            "job.yaml:6:12: '.inf' in 'args' in task 'a' is a number JSON cannot hold "
            "(infinity, NaN, or a hex or octal number above 2^64-1): quote it to send a string");
  EXPECT_EQ(r.errors[1].where.column, 18);
  EXPECT_NE(r.errors[1].message.find("'0x10000000000000000'"), std::string::npos);
}

// Given `${matrix.KEY}` alone where a matrix value is `.nan`, should point
// at the reference and name the value.
TEST(SpecBackendErrorTest, MatrixValueJsonCannotHold) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    matrix: {x: [1, .nan]}
    backend: threads
    fn: f
    args: {x: "${matrix.x}"}
)");
  EXPECT_TRUE(HasOnlyError(r, 7, 15, {"'${matrix.x}' in 'args' in task 'a'",
                                      "matrix value '.nan'", "quote it in the matrix"}));
}

// Given a misspelt matrix key inside args, should report it like in `run`.
TEST(SpecBackendErrorTest, UnknownMatrixKeyInMessage) {
  const LoadResult r = Load(R"(
version: 1
pools: {p: {command: x}}
tasks:
  a:
    matrix: {shard: [1, 2]}
    backend: fork
    pool: p
    message: {n: "${matrix.shrad}"}
)");
  EXPECT_TRUE(HasOnlyError(r, 8, 18, {"'${matrix.shrad}'", "no key 'shrad'",
                                      "did you mean 'shard'?"}));
}

// Given a null key and a repeated key in args, should report both: JSON
// keys are strings, and a repeat would be lost.
TEST(SpecBackendErrorTest, ArgsKeysNullOrRepeated) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    backend: threads
    fn: f
    args:
      ~: 1
      k: 2
      k: 3
)");
  ASSERT_EQ(r.errors.size(), 2u) << Dump(r);
  EXPECT_EQ(r.errors[0].ToString(),
            "job.yaml:7:7: keys in 'args' in task 'a' must be strings, got nothing");
  EXPECT_EQ(r.errors[1].ToString(),
            "job.yaml:9:7: duplicate key 'k' in 'args' in task 'a' (first at line 8)");
}

// Given an alias that refers to itself, should refuse it at the alias,
// before reading (the expansion cap), instead of recursing forever.
TEST(SpecBackendErrorTest, SelfReferentialAliasInArgs) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    backend: threads
    fn: f
    args: &loop [1, *loop]
)");
  ASSERT_EQ(r.errors.size(), 1u) << Dump(r);
  EXPECT_EQ(r.errors[0].where.line, 6);
  EXPECT_EQ(r.errors[0].where.column, 21);
  EXPECT_NE(
      r.errors[0].message.find("the alias *loop for item 2 of 'args' in task 'a' takes "
                               "the job past 64 MiB"),
      std::string::npos)
      << Dump(r);
  EXPECT_NE(r.errors[0].message.find("repeats without end"), std::string::npos)
      << Dump(r);
}

// Given a value nested past the JSON depth limit without aliases, should
// stop there with an error.
TEST(SpecBackendErrorTest, ArgsNestedPastTheDepthLimit) {
  const LoadResult r = Load(
      "version: 1\ntasks:\n  a:\n    backend: threads\n    fn: f\n"
      "    args: " +
      std::string(200, '[') + std::string(200, ']') + "\n");
  ASSERT_EQ(r.errors.size(), 1u) << Dump(r);
  EXPECT_NE(r.errors[0].message.find("nests more than 128 levels deep"), std::string::npos)
      << Dump(r);
}

// Given aliases that double at each level (a few lines standing for 2^40
// items), should refuse the job at the expansion cap, at the first alias
// that passes it, before converting anything.
TEST(SpecBackendErrorTest, AliasBombInArgsHitsTheSizeCap) {
  std::string yaml = "version: 1\ndefaults:\n  timeout: 1s\ntasks:\n  a:\n    backend: threads\n"
         "    fn: f\n    args:\n      - &x0 [1, 1]\n";
  for (int i = 1; i <= 40; ++i) {
    yaml += "      - &x" + std::to_string(i) + " [*x" + std::to_string(i - 1) + ", *x" +
            std::to_string(i - 1) + "]\n";
  }
  const LoadResult r = Load(yaml);
  ASSERT_EQ(r.errors.size(), 1u) << Dump(r);
  // 2^18 pairs of [1, 1] pass 64 MiB at 16 bytes and more a value.
  EXPECT_EQ(
      r.errors[0].ToString().rfind("job.yaml:28:21: the alias *x18 for item 2 of item 20 "
                                   "of 'args' in task 'a' takes the job past 64 MiB",
                                   0),
      0u)
      << Dump(r);
}

// Given a matrix whose instances' args add up past the job-wide cap,
// should refuse the job once.
TEST(SpecBackendErrorTest, JsonOfAllInstancesOverTheJobCap) {
  const std::string big(600'000, 'x');  // 600 KB of args per instance
  std::string yaml = "version: 1\ntasks:\n  a:\n    backend: threads\n    fn: f\n"
                     "    args: [\"" + big + "\"]\n    matrix:\n      i: [";
  for (int i = 0; i < 500; ++i) yaml += (i ? ", " : "") + std::to_string(i);
  yaml += "]\n";
  const LoadResult r = Load(yaml);
  EXPECT_TRUE(HasOnlyError(r, 6, 11, {"add up to more than 268,435,456 bytes of JSON",
                                      "'args' in task 'a'"}));
}

// Given every kind of backend mistake in one file, should report all of
// them in one pass, sorted by position.
TEST(SpecBackendErrorTest, AllErrorsInOnePass) {
  const LoadResult r = Load(R"(
version: 1
plugins: {a: b}
pools:
  sorter: {instances: 0}
tasks:
  t1: {backend: threads, run: x}
  t2: {backend: fork, pool: srter}
  t3: {run: x, fn: sort}
)");
  std::vector<std::string> got;
  for (const SpecError& e : r.errors) got.push_back(e.ToString());
  const std::vector<std::string> want = {
      "job.yaml:2:10: 'plugins' must be a list of paths to shared libraries, got a map",
      "job.yaml:4:3: pool 'sorter' has no 'command' (the program its processes run; or give "
      "it 'mode: cow')",
      "job.yaml:4:23: 'instances' in pool 'sorter' must be an integer of at least 1, got '0'",
      "job.yaml:6:3: task 't1' has backend threads but no 'fn' (the function to call)",
      "job.yaml:6:26: 'run' in task 't1' does not apply to backend threads: it calls the "
      "function named by 'fn'",
      "job.yaml:7:29: unknown pool 'srter' in task 't2' (did you mean 'sorter'?)",
      "job.yaml:8:16: 'fn' in task 't3' only applies to backend threads (and fork tasks on a "
      "cow pool); this task's backend is spawn",
  };
  EXPECT_EQ(got, want);
  EXPECT_FALSE(r.spec.has_value());
}

// ---------------------------------------------------------- the happy path


// Given a threads task, should set fn and args as JSON, no argv, no pool.
TEST(SpecBackendTest, ThreadsTask) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  sort-in-thread:
    backend: threads
    fn: sort
    args: {numbers: [5, 3, 1]}
    timeout: 2s
  noop: {backend: threads, fn: noop}
)");
  const JobSpec& spec = Spec(r);
  ASSERT_EQ(spec.tasks.size(), 2u);
  const TaskSpec& t = spec.tasks[0];
  EXPECT_EQ(t.backend, "threads");
  EXPECT_EQ(Decode(t).fn, "sort");
  EXPECT_EQ(Decode(t).args_json, R"({"numbers":[5,3,1]})");
  EXPECT_TRUE(Decode(t).argv.empty());
  EXPECT_EQ(Decode(t).pool, "");
  EXPECT_EQ(Decode(t).message_json, "");
  EXPECT_FALSE(Decode(t).pool_spec.has_value());
  EXPECT_EQ(t.worker_pool, "");
  EXPECT_EQ(t.timeout, seconds(2));
  EXPECT_EQ(Decode(spec.tasks[1]).args_json, "null");  // no args
}

// Given fork tasks on a process pool, should set pool and the message as
// JSON ("null" without one), and the pool's fingerprint.
TEST(SpecBackendTest, ForkTaskOnProcessPool) {
  const LoadResult r = Load(R"(
version: 1
pools:
  sorter: {command: [node, sort.js], instances: 2}
tasks:
  sort-in-child: {backend: fork, pool: sorter, message: [1, 5, 2, 3, 4]}
  ping: {backend: fork, pool: sorter}
)");
  const JobSpec& spec = Spec(r);
  ASSERT_EQ(spec.tasks.size(), 2u);
  const TaskSpec& t = spec.tasks[0];
  EXPECT_EQ(t.backend, "fork");
  EXPECT_EQ(Decode(t).pool, "sorter");
  EXPECT_EQ(Decode(t).message_json, "[1,5,2,3,4]");
  EXPECT_EQ(Decode(t).fn, "");
  EXPECT_EQ(Decode(t).args_json, "");
  EXPECT_TRUE(Decode(t).argv.empty());
  ASSERT_EQ(spec.pools.size(), 1u);
  EXPECT_EQ(Decode(t).pool_spec, "sorter");  // the job's declaration goes with it
  EXPECT_EQ(t.worker_pool, "");
  EXPECT_EQ(Decode(spec.tasks[1]).message_json, "null");
}

// Given a fork task on a cow pool, should set pool, fn and args.
TEST(SpecBackendTest, ForkTaskOnCowPool) {
  const LoadResult r = Load(R"(
version: 1
pools: {isolated: {mode: cow, instances: 2}}
tasks:
  untrusted: {backend: fork, pool: isolated, fn: reverse, args: {string: hello}}
)");
  const JobSpec& spec = Spec(r);
  ASSERT_EQ(spec.tasks.size(), 1u);
  const TaskSpec& t = spec.tasks[0];
  EXPECT_EQ(Decode(t).pool, "isolated");
  EXPECT_EQ(Decode(t).fn, "reverse");
  EXPECT_EQ(Decode(t).args_json, R"({"string":"hello"})");
  EXPECT_EQ(Decode(t).message_json, "");
}

// Given matrix tasks of threads and fork, some whose args or message do
// not vary with the matrix (their payload and summary are made once) and
// some whose do, each instance should carry its own: the same payload for
// the first kind, its values in the second, and every summary to match.
// Instances made after others were released reuse their nodes: asked for
// out of order, they must still be the right ones.
TEST(SpecBackendTest, MatrixInstancesCarryTheirOwnPayloadAndSummary) {
  const LoadResult r = Load(R"(
version: 1
pools:
  p: {command: [node, w.js]}
  c: {mode: cow}
tasks:
  same: {backend: threads, fn: f, args: {x: 1}, matrix: {i: [1, 2, 3]}}
  own: {backend: threads, fn: f, args: {x: "${matrix.i}"}, matrix: {i: [1, 2, 3]}}
  fsame: {backend: fork, pool: p, message: [7], matrix: {i: [1, 2]}}
  fown: {backend: fork, pool: p, message: ["${matrix.i}"], matrix: {i: [1, 2]}}
  cow: {backend: fork, pool: c, fn: g, matrix: {i: [1, 2]}}
)");
  const JobSpec& spec = Spec(r);
  ASSERT_EQ(spec.tasks.size(), 12u);
  const size_t order[] = {5, 0, 11, 3, 7, 1, 9, 4, 2, 10, 6, 8};
  for (size_t i : order) {
    const TaskSpec t = spec.tasks.Make(i);
    const test_util::Decoded d = Decode(t);
    const std::string n = t.matrix.empty() ? "" : t.matrix[0].second;
    SCOPED_TRACE(t.name);
    if (t.name.rfind("same[", 0) == 0) {
      EXPECT_EQ(d.args_json, R"({"x":1})");
      EXPECT_EQ(t.summary, R"(f({"x":1}))");
    } else if (t.name.rfind("own[", 0) == 0) {
      EXPECT_EQ(d.args_json, R"({"x":)" + n + "}");
      EXPECT_EQ(t.summary, R"(f({"x":)" + n + "})");
    } else if (t.name.rfind("fsame[", 0) == 0) {
      EXPECT_EQ(d.message_json, "[7]");
      EXPECT_EQ(d.pool_spec, "p");
      EXPECT_EQ(t.summary, "pool p: [7]");
    } else if (t.name.rfind("fown[", 0) == 0) {
      EXPECT_EQ(d.message_json, "[" + n + "]");
      EXPECT_EQ(d.pool_spec, "p");
      EXPECT_EQ(t.summary, "pool p: [" + n + "]");
    } else {
      ASSERT_EQ(t.name.rfind("cow[", 0), 0u);
      EXPECT_EQ(d.fn, "g");
      EXPECT_EQ(d.args_json, "null");
      EXPECT_EQ(d.message_json, "");
      EXPECT_EQ(t.summary, "pool c: g(null)");
    }
    const TaskSpec& made = spec.tasks[i];
    EXPECT_EQ(made.payload, t.payload);
    EXPECT_EQ(made.summary, t.summary);
    spec.tasks.Release(i);
  }
}

// Given backend, pool and fn in defaults, should apply each where it
// belongs: pool to fork tasks, fn to threads tasks; a spawn task takes
// neither, and the defaults' env reaches only spawn tasks.
TEST(SpecBackendTest, DefaultsSetBackendPoolAndFn) {
  const LoadResult r = Load(R"(
version: 1
pools: {p: {command: x}}
defaults:
  backend: fork
  pool: p
  fn: noop
  env: {LANG: C}
tasks:
  send: {message: hi}
  call: {backend: threads}
  shell: {backend: spawn, run: "true"}
)");
  const JobSpec& spec = Spec(r);
  ASSERT_EQ(spec.tasks.size(), 3u);
  EXPECT_EQ(spec.tasks[0].backend, "fork");
  EXPECT_EQ(Decode(spec.tasks[0]).pool, "p");
  EXPECT_EQ(Decode(spec.tasks[0]).fn, "");
  EXPECT_EQ(Decode(spec.tasks[0]).message_json, R"("hi")");
  EXPECT_TRUE(Decode(spec.tasks[0]).env.empty());
  EXPECT_EQ(spec.tasks[1].backend, "threads");
  EXPECT_EQ(Decode(spec.tasks[1]).fn, "noop");
  EXPECT_EQ(Decode(spec.tasks[1]).pool, "");
  EXPECT_TRUE(Decode(spec.tasks[1]).env.empty());
  EXPECT_EQ(spec.tasks[2].backend, "spawn");
  EXPECT_EQ(Decode(spec.tasks[2]).fn, "");
  EXPECT_EQ(Decode(spec.tasks[2]).pool, "");
  EXPECT_EQ(Decode(spec.tasks[2]).env, (EnvList{{"LANG", "C"}}));
}

// Given the example that shows the threads and fork backends, should load
// the tasks and pools it documents.
// The job of configs/examples/threads_and_fork.yaml, inline so that this
// unit test does not depend on the examples folder.
constexpr std::string_view kThreadsAndFork = R"yaml(version: 1
name: threads-and-fork

defaults:
  timeout: 30s

pools:
  node-sorter:
    command: [node, configs/examples/fork_sort.js]
    instances: 2          # two warm processes; a task goes to a free one
    max_tasks: 1000       # replace a process after 1000 messages
    idle_timeout: 5m      # stop a process nobody used for 5 minutes
  python:
    command: [python3, configs/examples/ipc_worker.py]

tasks:
  # Sorts in a thread of the worker: args {"numbers":[5,3,1]}.
  sort-in-thread:
    backend: threads
    fn: sort
    args: {numbers: [5, 3, 1]}

  # Sorts in a Node process: the message is the JSON array [5,4,3,2,1].
  sort-in-node:
    backend: fork
    pool: node-sorter
    message: [5, 4, 3, 2, 1]

  # One message per matrix value. `${matrix.n}` alone keeps the value's
  # type, so the messages are [30,10,20] and [30,10,-5] (numbers, not
  # strings).
  sort-in-node-matrix:
    backend: fork
    pool: node-sorter
    matrix:
      n: [20, -5]
    message:
      - 30
      - 10
      - ${matrix.n}

  # The same channel, served by a Python process.
  ask-python:
    backend: fork
    pool: python
    message: [3, 1, 2]

  # A plain command, after everything above has succeeded.
  report:
    needs: [sort-in-thread, sort-in-node, sort-in-node-matrix, ask-python]
    run: echo "the thread, the Node pool and the Python pool all answered"
)yaml";

TEST(SpecBackendExampleTest, ThreadsAndForkExample) {
  const LoadResult r = LoadString(kThreadsAndFork, "threads_and_fork.yaml", Options());
  const JobSpec& spec = Spec(r);
  ASSERT_EQ(spec.pools.size(), 2u);
  EXPECT_EQ(spec.pools[0].command,
            (std::vector<std::string>{"node", "configs/examples/fork_sort.js"}));
  EXPECT_EQ(spec.pools[1].command,
            (std::vector<std::string>{"python3", "configs/examples/ipc_worker.py"}));
  const std::optional<uint32_t> thread = spec.Find("sort-in-thread");
  ASSERT_TRUE(thread.has_value());
  EXPECT_EQ(Decode(spec.tasks[*thread]).fn, "sort");
  EXPECT_EQ(Decode(spec.tasks[*thread]).args_json, R"({"numbers":[5,3,1]})");
  const std::optional<uint32_t> node = spec.Find("sort-in-node");
  ASSERT_TRUE(node.has_value());
  EXPECT_EQ(Decode(spec.tasks[*node]).pool, "node-sorter");
  const std::optional<uint32_t> matrix = spec.Find("sort-in-node-matrix[n=-5]");
  ASSERT_TRUE(matrix.has_value());
  EXPECT_EQ(Decode(spec.tasks[*matrix]).message_json, "[30,10,-5]");
  const std::optional<uint32_t> report = spec.Find("report");
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(spec.tasks[*report].backend, "spawn");
  EXPECT_EQ(spec.tasks[*report].needs.size(), 5u);
}

}  // namespace
}  // namespace drover::spec

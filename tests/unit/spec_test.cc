// core/spec: the YAML job spec loader (docs/spec.md): the values of valid
// specs, fingerprints, durations and sizes, and the shipped examples. Its
// errors are in spec_errors_test.cc.
//
// YAML snippets start on the line after R"( so that line 1 of the snippet
// is the first line written.
#include <algorithm>
#include <filesystem>
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

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

using test_util::Decode;
using test_util::Dump;
using test_util::HasOnlyError;
using test_util::Load;
using test_util::Options;
using test_util::Spec;

std::vector<std::string> Names(const JobSpec& spec) {
  std::vector<std::string> names;
  for (const TaskSpec& t : spec.tasks) names.push_back(t.name);
  return names;
}

// ----------------------------------------------------------- the happy path

// Given `run` as a string, should run it through /bin/sh -c.
TEST(SpecLoadTest, RunStringGoesThroughShell) {
  const LoadResult r = Load(R"(
version: 1
tasks: {hello: {run: "echo hi | tr a-z A-Z"}}
)");
  const JobSpec& spec = Spec(r);
  ASSERT_EQ(spec.tasks.size(), 1u);
  EXPECT_EQ(Decode(spec.tasks[0]).argv,
            (std::vector<std::string>{"/bin/sh", "-c", "echo hi | tr a-z A-Z"}));
  EXPECT_EQ(spec.tasks[0].summary, "echo hi | tr a-z A-Z");
}

// Given `run` as a list, should use it as the argv, numbers as written.
TEST(SpecLoadTest, RunListIsTheArgv) {
  const LoadResult r = Load(R"(
version: 1
tasks: {nap: {run: [sleep, 0.1, "$HOME"]}}
)");
  const JobSpec& spec = Spec(r);
  ASSERT_EQ(spec.tasks.size(), 1u);
  EXPECT_EQ(Decode(spec.tasks[0]).argv, (std::vector<std::string>{"sleep", "0.1", "$HOME"}));
  EXPECT_EQ(spec.tasks[0].summary, "sleep 0.1 $HOME");
}

// Given no settings, should apply the documented defaults.
TEST(SpecLoadTest, BuiltInDefaults) {
  const LoadResult r = LoadString("version: 1\ntasks: {a: {run: x}}\n", "dir/my-job.yaml", Options());
  const JobSpec& spec = Spec(r);
  ASSERT_EQ(spec.tasks.size(), 1u);
  EXPECT_EQ(spec.name, "my-job");
  EXPECT_EQ(spec.file, "dir/my-job.yaml");
  EXPECT_FALSE(spec.fail_fast);
  EXPECT_EQ(spec.priority, 0);
  const TaskSpec& t = spec.tasks[0];
  EXPECT_EQ(t.name, "a");
  EXPECT_EQ(t.base_name, "a");
  EXPECT_TRUE(t.matrix.empty());
  EXPECT_EQ(t.backend, "spawn");
  EXPECT_FALSE(t.timeout.has_value());
  EXPECT_EQ(t.kill_grace, seconds(5));
  EXPECT_EQ(t.retries, 0);
  EXPECT_EQ(t.retry_backoff, seconds(1));
  EXPECT_EQ(t.output_limit, 8u << 20);
  EXPECT_TRUE(Decode(t).env.empty());
  EXPECT_EQ(Decode(t).cwd, "");
  EXPECT_EQ(t.where.file, "dir/my-job.yaml");
  EXPECT_EQ(t.where.line, 2);
  EXPECT_EQ(t.where.column, 9);
}

// Given `defaults` and task settings, should apply defaults under each
// task's own keys, merging env per variable.
TEST(SpecLoadTest, DefaultsApplyUnderTaskSettings) {
  const LoadResult r = Load(R"(
version: 1
name: tour
fail_fast: yes
priority: -3
defaults:
  timeout: 1m
  retries: 2
  retry_backoff: 250ms
  kill_grace: 0s
  output_limit: 64KiB
  cwd: /tmp
  env: {LANG: C, LEVEL: low}
tasks:
  plain: {run: x}
  custom:
    run: x
    retries: 0
    timeout: 1.5s
    retry_backoff: 2m
    env: {LEVEL: high, EXTRA: 1}
)");
  const JobSpec& spec = Spec(r);
  ASSERT_EQ(spec.tasks.size(), 2u);
  EXPECT_EQ(spec.name, "tour");
  EXPECT_TRUE(spec.fail_fast);
  EXPECT_EQ(spec.priority, -3);
  const TaskSpec& plain = spec.tasks[0];
  EXPECT_EQ(plain.timeout, minutes(1));
  EXPECT_EQ(plain.retries, 2);
  EXPECT_EQ(plain.retry_backoff, milliseconds(250));
  EXPECT_EQ(plain.retry_backoff_max, seconds(60));
  EXPECT_EQ(plain.kill_grace, seconds(0));
  EXPECT_EQ(plain.output_limit, 64u * 1024);
  EXPECT_EQ(Decode(plain).cwd, "/tmp");
  EXPECT_EQ(Decode(plain).env, (EnvList{{"LANG", "C"}, {"LEVEL", "low"}}));
  const TaskSpec& custom = spec.tasks[1];
  EXPECT_EQ(custom.timeout, milliseconds(1500));
  EXPECT_EQ(custom.retries, 0);
  EXPECT_EQ(custom.retry_backoff, minutes(2));
  EXPECT_EQ(custom.retry_backoff_max, minutes(2));  // never below the first delay
  EXPECT_EQ(Decode(custom).env, (EnvList{{"LANG", "C"}, {"LEVEL", "high"}, {"EXTRA", "1"}}));
}

// Given `needs` as one string, as a list, and with a repeat, should give
// indices in file order, each once.
TEST(SpecLoadTest, NeedsBecomeIndices) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  report: {run: x, needs: [test, build, test]}
  build: {run: x}
  test: {run: x, needs: build}
)");
  const JobSpec& spec = Spec(r);
  EXPECT_EQ(Names(spec), (std::vector<std::string>{"report", "build", "test"}));
  EXPECT_EQ(spec.tasks[0].needs, (std::vector<uint32_t>{2, 1}));
  EXPECT_TRUE(spec.tasks[1].needs.empty());
  EXPECT_EQ(spec.tasks[2].needs, (std::vector<uint32_t>{1}));
  EXPECT_EQ(spec.Find("test"), 2u);
  EXPECT_EQ(spec.Find("nope"), std::nullopt);
}

// Given `${matrix.KEY}` in run, argv, env and cwd beside shell variables,
// should substitute the matrix values and leave every other `$` alone.
TEST(SpecLoadTest, InterpolationOnlyTouchesMatrixReferences) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  sh:
    matrix: {n: [7]}
    run: echo ${matrix.n} ${HOME} $HOME ${matrix} ${MATRIX.n} $${matrix.n}
    env: {N: "n=${matrix.n}", H: "${HOME}"}
    cwd: out/${matrix.n}
  argv:
    matrix: {n: [7]}
    run: [printf, "%s-${matrix.n}${matrix.n}", "${PATH}"]
)");
  const JobSpec& spec = Spec(r);
  ASSERT_EQ(spec.tasks.size(), 2u);
  EXPECT_EQ(Decode(spec.tasks[0]).argv[2], "echo 7 ${HOME} $HOME ${matrix} ${MATRIX.n} $7");
  EXPECT_EQ(Decode(spec.tasks[0]).env, (EnvList{{"N", "n=7"}, {"H", "${HOME}"}}));
  EXPECT_EQ(Decode(spec.tasks[0]).cwd, "out/7");
  EXPECT_EQ(Decode(spec.tasks[1]).argv, (std::vector<std::string>{"printf", "%s-77", "${PATH}"}));
}

// Given a two-key matrix, should expand the product with the last key
// varying fastest, name instances base[k1=v1,k2=v2], and keep file order
// around it.
TEST(SpecLoadTest, MatrixExpansionOrderAndNames) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  setup: {run: x}
  test:
    matrix:
      os: [linux, mac]
      py: ["3.11", "3.12"]
    run: [tox, -e, "${matrix.os}-py${matrix.py}"]
  report: {run: x, needs: test}
)");
  const JobSpec& spec = Spec(r);
  EXPECT_EQ(Names(spec), (std::vector<std::string>{
                             "setup", "test[os=linux,py=3.11]", "test[os=linux,py=3.12]",
                             "test[os=mac,py=3.11]", "test[os=mac,py=3.12]", "report"}));
  const TaskSpec& third = spec.tasks[3];
  EXPECT_EQ(third.base_name, "test");
  EXPECT_EQ(third.matrix, (EnvList{{"os", "mac"}, {"py", "3.11"}}));
  EXPECT_EQ(Decode(third).argv, (std::vector<std::string>{"tox", "-e", "mac-py3.11"}));
  EXPECT_EQ(third.where.line, 4);
}

// Given dependents of a matrix task, should make each wait for every
// instance; a matrix task needing a matrix task needs all of its instances.
TEST(SpecLoadTest, NeedingAMatrixTaskNeedsAllItsInstances) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  shards: {run: x, matrix: {shard: [0, 1, 2]}}
  checks: {run: x, matrix: {kind: [lint, unit]}, needs: [shards]}
  report: {run: x, needs: checks}
)");
  const JobSpec& spec = Spec(r);
  ASSERT_EQ(spec.tasks.size(), 6u);
  EXPECT_EQ(spec.tasks[3].name, "checks[kind=lint]");
  EXPECT_EQ(spec.tasks[3].needs, (std::vector<uint32_t>{0, 1, 2}));
  EXPECT_EQ(spec.tasks[4].needs, (std::vector<uint32_t>{0, 1, 2}));
  EXPECT_EQ(spec.tasks[5].needs, (std::vector<uint32_t>{3, 4}));
}

// Given a job at exactly the instance cap, should accept it.
TEST(SpecLoadTest, ExactlyAtTheCapIsAccepted) {
  LoadOptions options;
  options.max_instances = 4;
  const LoadResult r = Load(R"(
version: 1
tasks: {a: {run: x, matrix: {i: [1, 2, 3]}}, b: {run: x}}
)",
                            options);
  EXPECT_EQ(Spec(r).tasks.size(), 4u);
}

// Given a 100,000-instance matrix, should expand it,
// in order, with a dependent waiting on all of it.
TEST(SpecLoadTest, HundredThousandInstances) {
  std::string yaml = "version: 1\ntasks:\n  noop:\n    run: [\"true\", \"${matrix.a}.${matrix.b}\"]\n";
  yaml += "    matrix:\n      a: [";
  for (int i = 0; i < 1000; ++i) yaml += (i ? ", " : "") + std::to_string(i);
  yaml += "]\n      b: [";
  for (int i = 0; i < 100; ++i) yaml += (i ? ", " : "") + std::to_string(i);
  yaml += "]\n";
  LoadOptions options;
  options.max_instances = 100'001;
  yaml += "  report: {run: x, needs: noop}\n";
  const LoadResult r = Load(yaml, options);
  const JobSpec& spec = Spec(r);
  ASSERT_EQ(spec.tasks.size(), 100'001u);
  EXPECT_EQ(spec.tasks[0].name, "noop[a=0,b=0]");
  EXPECT_EQ(spec.tasks[101].name, "noop[a=1,b=1]");
  EXPECT_EQ(spec.tasks[99'999].name, "noop[a=999,b=99]");
  EXPECT_EQ(Decode(spec.tasks[99'999]).argv[1], "999.99");
  EXPECT_EQ(spec.tasks[100'000].needs.size(), 100'000u);
  EXPECT_EQ(spec.tasks[100'000].needs.back(), 99'999u);
}

// Given `${matrix.KEY}` in the defaults' env, should resolve it per task,
// and report a task without that key at the default's position.
TEST(SpecLoadTest, DefaultsInterpolatePerTask) {
  const LoadResult ok = Load(R"(
version: 1
defaults: {env: {SHARD: "${matrix.shard}"}}
tasks:
  a: {run: x, matrix: {shard: [1, 2]}}
)");
  const JobSpec& spec = Spec(ok);
  ASSERT_EQ(spec.tasks.size(), 2u);
  EXPECT_EQ(Decode(spec.tasks[1]).env, (EnvList{{"SHARD", "2"}}));

  const LoadResult r = Load(R"(
version: 1
defaults: {env: {SHARD: "${matrix.shard}"}}
tasks:
  a: {run: x, matrix: {shard: [1, 2]}}
  b: {run: x}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 25, {"task 'b'", "has no matrix"}));
}

// Given YAML anchors and aliases, should read the aliased values.
TEST(SpecLoadTest, AnchorsAndAliases) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    matrix: {n: &numbers [1, 2]}
    run: &cmd [echo, "${matrix.n}"]
  b:
    matrix: {m: *numbers, n: *numbers}
    run: *cmd
)");
  const JobSpec& spec = Spec(r);
  ASSERT_EQ(spec.tasks.size(), 6u);
  EXPECT_EQ(spec.tasks[5].name, "b[m=2,n=2]");
  EXPECT_EQ(Decode(spec.tasks[5]).argv, (std::vector<std::string>{"echo", "2"}));
}

// Given a UTF-8 byte order mark and multi-byte characters, should load the
// file and count error columns in characters, not bytes.
TEST(SpecLoadTest, ColumnsCountCharacters) {
  const LoadResult ok = Load("\xEF\xBB\xBFversion: 1\ntasks: {caf\xC3\xA9: {run: x}}\n");
  EXPECT_TRUE(HasOnlyError(ok, 2, 9, {"invalid task name 'caf\xC3\xA9'"}));
  const LoadResult r = Load("version: 1\ntasks: {a: {run: \"\xC3\xA9\xC3\xA9\", nope: 1}}\n");
  EXPECT_TRUE(HasOnlyError(r, 2, 24, {"unknown key 'nope'"}));  // bytes would say 26
}

// ------------------------------------------------------------ fingerprints

// A spawn task as the version-1 fingerprint sees it: the shared fields in
// `ts`, the spawn backend's in `v1` (core/spec/fingerprint.h).
struct FixedTask {
  TaskSpec ts;
  TaskFingerprintV1Fields v1;
  FixedTask() {
    ts.name = "build";
    ts.base_name = "build";
    ts.timeout = seconds(30);
    v1.argv = {"/bin/sh", "-c", "make all"};
    v1.shell = true;
    v1.env = {{"CC", "gcc"}};
    v1.cwd = "src";
  }
  uint64_t Fingerprint() const { return TaskFingerprintV1(ts, v1); }
};

// Given a fixed task, should give the value of the documented encoding
// (FNV-1a 64), the same on every build and host.
TEST(FingerprintTest, FixedValueForFixedTask) {
  EXPECT_EQ(FixedTask().Fingerprint(), 0x3c893ad1c3691676ull);
}

// Given a change to what runs, should change; given a change to how often
// it is retried or to its name, should not.
TEST(FingerprintTest, ChangesWithArgvNotWithRetries) {
  const uint64_t base = FixedTask().Fingerprint();
  FixedTask argv;
  argv.v1.argv[2] = "make al";
  EXPECT_NE(argv.Fingerprint(), base);
  FixedTask split;
  split.v1.argv = {"/bin/sh", "-cmake all"};  // same bytes, other boundaries
  EXPECT_NE(split.Fingerprint(), base);
  FixedTask timeout;
  timeout.ts.timeout.reset();
  EXPECT_NE(timeout.Fingerprint(), base);
  FixedTask env;
  env.v1.env[0].second = "clang";
  EXPECT_NE(env.Fingerprint(), base);

  FixedTask retries;
  retries.ts.retries = 5;
  retries.ts.retry_backoff = seconds(9);
  retries.ts.name = "other";
  EXPECT_EQ(retries.Fingerprint(), base);
  FixedTask reordered;
  reordered.v1.env = {{"LD", "ld"}, {"CC", "gcc"}};
  FixedTask ordered;
  ordered.v1.env = {{"CC", "gcc"}, {"LD", "ld"}};
  EXPECT_EQ(reordered.Fingerprint(), ordered.Fingerprint());
}

// Given a backend other than the built-in ones, should use the generic
// formula: it changes with the payload and the shared fields, not with
// retries or placement.
TEST(FingerprintTest, GenericFormulaForOtherBackends) {
  TaskSpec t;
  t.backend = "echo";
  t.payload = "hello";
  const uint64_t base = TaskFingerprint(t);
  TaskSpec payload = t;
  payload.payload = "hellp";
  EXPECT_NE(TaskFingerprint(payload), base);
  TaskSpec backend = t;
  backend.backend = "echo2";
  EXPECT_NE(TaskFingerprint(backend), base);
  TaskSpec timeout = t;
  timeout.timeout = seconds(1);
  EXPECT_NE(TaskFingerprint(timeout), base);
  TaskSpec retries = t;
  retries.retries = 3;
  retries.slots = 4;
  retries.on = {{"zone", "a"}};
  EXPECT_EQ(TaskFingerprint(retries), base);
}

// Given the same YAML loaded twice, should give the same fingerprints.
TEST(FingerprintTest, SameSpecSameFingerprint) {
  const std::string yaml = "version: 1\ntasks: {a: {run: \"echo ${matrix.i}\", matrix: {i: [1, 2]}}}\n";
  const JobSpec first = Spec(Load(yaml));
  const JobSpec second = Spec(Load(yaml));
  ASSERT_EQ(first.tasks.size(), 2u);
  ASSERT_EQ(second.tasks.size(), 2u);
  EXPECT_EQ(first.tasks[0].fingerprint, second.tasks[0].fingerprint);
  EXPECT_NE(first.tasks[0].fingerprint, first.tasks[1].fingerprint);
}

// ------------------------------------------------------- durations, sizes

// Given each documented duration form, should parse it exactly; given a
// bare number, a bad unit or an overflow, should refuse it.
TEST(ParseDurationTest, FormsAndRefusals) {
  EXPECT_EQ(ParseDuration("500ms"), milliseconds(500));
  EXPECT_EQ(ParseDuration("30s"), seconds(30));
  EXPECT_EQ(ParseDuration("5m"), minutes(5));
  EXPECT_EQ(ParseDuration("1h"), std::chrono::hours(1));
  EXPECT_EQ(ParseDuration("1m30s"), seconds(90));
  EXPECT_EQ(ParseDuration("1h2m3s4ms"), std::chrono::hours(1) + minutes(2) + seconds(3) +
                                            milliseconds(4));
  EXPECT_EQ(ParseDuration("1.5s"), milliseconds(1500));
  EXPECT_EQ(ParseDuration("0.25ms"), std::chrono::microseconds(250));
  EXPECT_EQ(ParseDuration("0s"), seconds(0));
  for (std::string_view bad : {"", "0", "30", "s", "5 s", "5sec", "-5s", "1.s", ".5s", "5d",
                               "1m30", "99999999999999999999s", "9999999h"}) {
    EXPECT_EQ(ParseDuration(bad), std::nullopt) << bad;
  }
}

// Given bytes and each unit, should parse powers of 1000 and 1024.
TEST(ParseSizeTest, FormsAndRefusals) {
  EXPECT_EQ(ParseSize("1048576"), 1048576u);
  EXPECT_EQ(ParseSize("100B"), 100u);
  EXPECT_EQ(ParseSize("64KiB"), 64u * 1024);
  EXPECT_EQ(ParseSize("8MiB"), 8u << 20);
  EXPECT_EQ(ParseSize("1GiB"), 1u << 30);
  EXPECT_EQ(ParseSize("10MB"), 10'000'000u);
  EXPECT_EQ(ParseSize("2kb"), 2000u);
  EXPECT_EQ(ParseSize("8 MiB"), 8u << 20);
  for (std::string_view bad : {"", "MiB", "8 megs", "1.5GiB", "-1", "8  MiB", "8 ",
                               "99999999999TiB"}) {
    EXPECT_EQ(ParseSize(bad), std::nullopt) << bad;
  }
}

// Given locations with and without a line, should format FILE:LINE:COL.
TEST(SpecErrorFormatTest, ToString) {
  EXPECT_EQ((SpecError{{"job.yaml", 12, 5}, "boom"}).ToString(), "job.yaml:12:5: boom");
  EXPECT_EQ((SpecError{{"job.yaml", 3, 0}, "boom"}).ToString(), "job.yaml:3: boom");
  EXPECT_EQ((SpecError{{"job.yaml", 0, 0}, "boom"}).ToString(), "job.yaml: boom");
}

// ---------------------------------------------------------------- examples

// Given every example job shipped in configs/examples, should load each
// without an error (the test runs from the repository root).
TEST(SpecExamplesTest, EveryExampleLoads) {
  const std::filesystem::path dir = "configs/examples";
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << std::filesystem::current_path();
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".yaml") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  EXPECT_GE(files.size(), 3u);
  for (const auto& file : files) {
    const LoadResult r = LoadFile(file, Options());
    EXPECT_TRUE(r.ok()) << file << ":\n" << Dump(r);
    if (r.spec) {
      EXPECT_FALSE(r.spec->tasks.empty()) << file;
    }
  }
}

}  // namespace
}  // namespace drover::spec

// core/spec: the YAML job spec loader (docs/spec.md).
//
// Error tests assert the exact line:column and the key words of the
// message. YAML snippets start on the line after R"( so that line 1 of the
// snippet is the first line written.
#include <algorithm>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "core/spec/job_spec.h"
#include "tests/unit/spec_test_util.h"

namespace drover::spec {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

using test_util::Dump;
using test_util::HasOnlyError;
using test_util::Load;
using test_util::Spec;

std::vector<std::string> Names(const JobSpec& spec) {
  std::vector<std::string> names;
  for (const TaskSpec& t : spec.tasks) names.push_back(t.name);
  return names;
}

// ---------------------------------------------------------------- errors

// Given a task key one typo away from `needs`, should name it and suggest `needs`.
TEST(SpecErrorTest, UnknownTaskKeySuggestsClosestKey) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  build:
    run: make
    neds: [fetch]
  fetch: {run: curl}
)");
  EXPECT_TRUE(HasOnlyError(r, 5, 5, {"unknown key 'neds'", "task 'build'", "did you mean 'needs'?"}));
}

// Given an unknown top-level key, should suggest the closest top-level key.
TEST(SpecErrorTest, UnknownTopLevelKeySuggestsClosestKey) {
  const LoadResult r = Load(R"(
version: 1
fail_fats: true
tasks: {a: {run: x}}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 1, {"unknown key 'fail_fats'", "did you mean 'fail_fast'?"}));
}

// Given a key far from every known key, should not suggest anything.
TEST(SpecErrorTest, UnknownKeyWithoutCloseMatchHasNoSuggestion) {
  const LoadResult r = Load(R"(
version: 1
tasks: {a: {run: x, colour: blue}}
)");
  ASSERT_TRUE(HasOnlyError(r, 2, 21, {"unknown key 'colour'"}));
  EXPECT_EQ(r.errors[0].message.find("did you mean"), std::string::npos);
}

// Given `retries: three`, should say it must be a non-negative integer.
TEST(SpecErrorTest, RetriesOfWrongType) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    run: x
    retries: three
)");
  EXPECT_TRUE(HasOnlyError(r, 5, 14, {"'retries'", "must be a non-negative integer", "got 'three'"}));
}

// Given a negative retry count, should refuse it the same way.
TEST(SpecErrorTest, NegativeRetries) {
  const LoadResult r = Load(R"(
version: 1
tasks: {a: {run: x, retries: -1}}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 30, {"'retries'", "non-negative integer", "got '-1'"}));
}

// Given a list where a scalar belongs, should name the type it got.
TEST(SpecErrorTest, ListWhereStringExpected) {
  const LoadResult r = Load(R"(
version: 1
tasks: {a: {run: x, cwd: [a, b]}}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 26, {"'cwd'", "must be a directory", "got a list"}));
}

// Given a duration without a unit, should show the accepted forms.
TEST(SpecErrorTest, BadDuration) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    run: x
    timeout: 10
)");
  EXPECT_TRUE(HasOnlyError(r, 5, 14, {"'timeout'", "duration", "30s", "got '10'"}));
}

// Given a zero timeout, should refuse it (zero is not "no timeout").
TEST(SpecErrorTest, ZeroTimeout) {
  const LoadResult r = Load(R"(
version: 1
tasks: {a: {run: x, timeout: 0s}}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 30, {"'timeout'", "longer than 0s"}));
}

// Given a size in an unknown unit, should show the accepted forms.
TEST(SpecErrorTest, BadSize) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    run: x
    output_limit: 8 megs
)");
  EXPECT_TRUE(HasOnlyError(r, 5, 19, {"'output_limit'", "size", "8MiB", "got '8 megs'"}));
}

// Given a `needs` naming no task, should point at the name and suggest one.
TEST(SpecErrorTest, UnknownNeedsSuggestsClosestTask) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  build: {run: make}
  test:
    run: make test
    needs: [fetch, biuld]
  fetch: {run: curl}
)");
  EXPECT_TRUE(HasOnlyError(r, 6, 20, {"task 'test' needs unknown task 'biuld'",
                                      "did you mean 'build'?"}));
}

// Given a task that needs itself, should say so at the `needs` entry.
TEST(SpecErrorTest, TaskNeedsItself) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    run: x
    needs: a
)");
  EXPECT_TRUE(HasOnlyError(r, 5, 12, {"task 'a' needs itself"}));
}

// Given a -> b -> c -> a, should print the cycle's path from the task
// written first, at that task's `needs` entry.
TEST(SpecErrorTest, CyclePrintsItsPath) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a: {run: x, needs: [b]}
  b: {run: x, needs: [c]}
  c: {run: x, needs: [a]}
  d: {run: x, needs: [a]}
)");
  EXPECT_TRUE(HasOnlyError(r, 3, 23, {"dependency cycle: a -> b -> c -> a"}));
}

// Given a cycle first reached from its last task in the file, should still
// print it from the task written first.
TEST(SpecErrorTest, CyclePathStartsAtFirstTaskInFile) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  x: {run: x, needs: [z]}
  y: {run: x, needs: [x]}
  z: {run: x, needs: [y]}
)");
  EXPECT_TRUE(HasOnlyError(r, 3, 23, {"dependency cycle: x -> z -> y -> x"}));
}

// Given a task name used twice, should report the second occurrence and
// name the first one's line (yaml-cpp itself accepts duplicates).
TEST(SpecErrorTest, DuplicateTaskName) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  build: {run: make}
  test: {run: make test}
  build: {run: make again}
)");
  EXPECT_TRUE(HasOnlyError(r, 5, 3, {"duplicate task 'build'", "first defined at line 3"}));
}

// Given a key written twice in one task, should report the second.
TEST(SpecErrorTest, DuplicateKeyInTask) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    run: x
    retries: 1
    retries: 2
)");
  EXPECT_TRUE(HasOnlyError(r, 6, 5, {"duplicate key 'retries'", "task 'a'", "first at line 5"}));
}

// Given `tasks: {}`, should say a job needs a task.
TEST(SpecErrorTest, EmptyTasks) {
  const LoadResult r = Load(R"(
version: 1
tasks: {}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 1, {"'tasks' is empty", "at least one task"}));
}

// Given `tasks:` with nothing under it, should say the same.
TEST(SpecErrorTest, TasksWithoutValue) {
  const LoadResult r = Load(R"(
version: 1
tasks:
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 1, {"'tasks' is empty"}));
}

// Given no `tasks` at all, should say it is missing.
TEST(SpecErrorTest, MissingTasks) {
  const LoadResult r = Load(R"(
version: 1
name: nothing
)");
  EXPECT_TRUE(HasOnlyError(r, 1, 1, {"missing 'tasks'"}));
}

// Given a list of tasks instead of a map, should say what it expected.
TEST(SpecErrorTest, TasksNotAMap) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  - run: x
)");
  EXPECT_TRUE(HasOnlyError(r, 3, 3, {"'tasks' must be a map", "got a list"}));
}

// Given a matrix that is a list, should say it must be a map.
TEST(SpecErrorTest, MatrixNotAMap) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    run: x
    matrix: [1, 2]
)");
  EXPECT_TRUE(HasOnlyError(r, 5, 13, {"'matrix'", "must be a map", "got a list"}));
}

// Given a matrix key with an empty list, should say it has no values.
TEST(SpecErrorTest, MatrixEmptyList) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    run: x
    matrix: {shard: []}
)");
  EXPECT_TRUE(HasOnlyError(r, 5, 21, {"matrix key 'shard'", "has no values"}));
}

// Given a map inside a matrix list, should point at that item.
TEST(SpecErrorTest, MatrixNonScalarValue) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    run: x
    matrix:
      shard: [1, {two: 2}, 3]
)");
  EXPECT_TRUE(HasOnlyError(r, 6, 18, {"matrix key 'shard'", "item 2", "single value", "got a map"}));
}

// Given a matrix key that is not a list, should say so.
TEST(SpecErrorTest, MatrixValueNotAList) {
  const LoadResult r = Load(R"(
version: 1
tasks: {a: {run: x, matrix: {shard: 3}}}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 37, {"matrix key 'shard'", "must be a list", "got '3'"}));
}

// Given the same value twice in a matrix list, should report the second
// (the two instances would have the same name).
TEST(SpecErrorTest, MatrixDuplicateValue) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    run: x
    matrix:
      shard: [1, 2,
              1]
)");
  EXPECT_TRUE(HasOnlyError(r, 7, 15, {"duplicate value '1'", "matrix key 'shard'", "first at line 6"}));
}

// Given matrices that expand past the cap, should give the count and the
// cap, at the biggest matrix, before expanding anything.
TEST(SpecErrorTest, MatrixOverInstanceCap) {
  LoadOptions options;
  options.max_instances = 100;
  const LoadResult r = Load(R"(
version: 1
tasks:
  small: {run: x, matrix: {i: [1, 2]}}
  big:
    run: x
    matrix: {a: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], b: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}
)",
                            options);
  EXPECT_TRUE(HasOnlyError(r, 6, 5, {"102 task instances", "cap of 100", "'big'", "100)"}));
}

// Given a matrix whose product overflows 64 bits, should refuse it with
// the default cap instead of wrapping around.
TEST(SpecErrorTest, MatrixProductOverflowIsOverCap) {
  std::string list = "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]";
  std::string yaml = "version: 1\ntasks:\n  t:\n    run: x\n    matrix: {";
  for (int k = 0; k < 17; ++k) yaml += (k ? ", k" : "k") + std::to_string(k) + ": " + list;
  yaml += "}\n";
  const LoadResult r = Load(yaml);
  EXPECT_TRUE(HasOnlyError(r, 5, 5, {"more than 18,446,744,073,709,551,615", "cap of 100,000"}));
}

// Given two matrix tasks where one needs the other, should count every
// instance-to-instance edge against the edge cap.
TEST(SpecErrorTest, MatrixOverEdgeCap) {
  LoadOptions options;
  options.max_edges = 99;
  const LoadResult r = Load(R"(
version: 1
tasks:
  a: {run: x, matrix: {i: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}}
  b: {run: x, matrix: {j: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}, needs: a}
)",
                            options);
  EXPECT_TRUE(HasOnlyError(r, 4, 67, {"100 dependencies", "cap of 99", "task 'b'"}));
}

// Given a task without `run`, should say it has nothing to run.
TEST(SpecErrorTest, MissingRun) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    retries: 2
)");
  EXPECT_TRUE(HasOnlyError(r, 3, 3, {"task 'a' has no 'run'"}));
}

// Given a blank `run` string, should say it is empty.
TEST(SpecErrorTest, EmptyRunString) {
  const LoadResult r = Load(R"(
version: 1
tasks: {a: {run: "  "}}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 18, {"'run'", "is empty"}));
}

// Given `run:` with nothing after it, should say it is empty.
TEST(SpecErrorTest, RunWithoutValue) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    run:
)");
  EXPECT_TRUE(HasOnlyError(r, 4, 5, {"'run'", "is empty"}));
}

// Given `run: []`, should say the list is empty.
TEST(SpecErrorTest, EmptyRunList) {
  const LoadResult r = Load(R"(
version: 1
tasks: {a: {run: []}}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 18, {"'run'", "empty list"}));
}

// Given an argv whose program is "", should say the program is empty.
TEST(SpecErrorTest, EmptyProgramInRunList) {
  const LoadResult r = Load(R"(
version: 1
tasks: {a: {run: ["", x]}}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 19, {"program", "is empty"}));
}

// Given a map inside an argv, should point at that item.
TEST(SpecErrorTest, NonScalarInRunList) {
  const LoadResult r = Load(R"(
version: 1
tasks: {a: {run: [echo, {x: 1}]}}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 25, {"'run' item 2", "must be a string", "got a map"}));
}

// Given text that yaml-cpp cannot parse, should report its message at its
// position.
TEST(SpecErrorTest, NotYaml) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a: {run: [echo, hi}
)");
  EXPECT_TRUE(HasOnlyError(r, 3, 21, {"not valid YAML", "illegal flow end"}));
}

// Given a tab used for indentation, should report YAML's complaint.
TEST(SpecErrorTest, TabIndentationIsNotYaml) {
  const LoadResult r = Load("version: 1\ntasks:\n  a:\n    run: echo\n\tb: x\n");
  EXPECT_TRUE(HasOnlyError(r, 5, 1, {"not valid YAML", "tab"}));
}

// Given a top level that is a list, should say it must be a map.
TEST(SpecErrorTest, TopLevelNotAMap) {
  const LoadResult r = Load(R"(
- version: 1
- tasks: {}
)");
  EXPECT_TRUE(HasOnlyError(r, 1, 1, {"top level must be a map", "got a list"}));
}

// Given a file with nothing but a comment, should say it is empty.
TEST(SpecErrorTest, EmptyFile) {
  const LoadResult r = Load("# nothing here\n");
  EXPECT_TRUE(HasOnlyError(r, 1, 1, {"empty"}));
}

// Given a Latin-1 byte after a multi-byte UTF-8 character, should report
// the line and the character column of the bad byte, before parsing.
TEST(SpecErrorTest, NotUtf8) {
  const LoadResult r = Load("version: 1\nname: \xC3\xA9t\xE9\ntasks: {a: {run: [\"\n");
  EXPECT_TRUE(HasOnlyError(r, 2, 9, {"not valid UTF-8", "0xe9"}));
}

// Given an overlong encoding of '/', should refuse it as not UTF-8.
TEST(SpecErrorTest, OverlongUtf8) {
  const LoadResult r = Load("version: 1\n# \xC0\xAF\n");
  EXPECT_TRUE(HasOnlyError(r, 2, 3, {"not valid UTF-8", "0xc0"}));
}

// Given a path that does not exist, should give one error at line 0,
// printed without a line.
TEST(SpecErrorTest, MissingFile) {
  const LoadResult r = LoadFile("/nonexistent/drover/job.yaml");
  ASSERT_TRUE(HasOnlyError(r, 0, 0, {"cannot read", "No such file"}));
  EXPECT_EQ(r.errors[0].ToString().rfind("/nonexistent/drover/job.yaml: cannot read", 0), 0u);
}

// Given a directory instead of a file, should report it as unreadable.
TEST(SpecErrorTest, DirectoryIsUnreadable) {
  const LoadResult r = LoadFile(std::filesystem::temp_directory_path());
  EXPECT_TRUE(HasOnlyError(r, 0, 0, {"cannot read", "directory"}));
}

// Given a misspelt backend, should call it unknown and suggest `spawn`.
TEST(SpecErrorTest, UnknownBackendSuggestsSpawn) {
  const LoadResult r = Load(R"(
version: 1
tasks: {a: {run: x, backend: spwan}}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 30, {"unknown backend 'spwan'", "did you mean 'spawn'?"}));
}

// Given no `version`, should ask for `version: 1`.
TEST(SpecErrorTest, MissingVersion) {
  const LoadResult r = Load(R"(
tasks: {a: {run: x}}
)");
  EXPECT_TRUE(HasOnlyError(r, 1, 1, {"missing 'version'", "version: 1"}));
}

// Given `version: 2`, should say which version this drover reads.
TEST(SpecErrorTest, UnsupportedVersion) {
  const LoadResult r = Load(R"(
version: 2
tasks: {a: {run: x}}
)");
  EXPECT_TRUE(HasOnlyError(r, 1, 10, {"unsupported version 2", "reads version 1"}));
}

// Given `${matrix.KEY}` with a misspelt key, should point at the scalar
// and suggest the key.
TEST(SpecErrorTest, InterpolationOfUnknownMatrixKey) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    matrix: {shard: [1, 2]}
    run: [echo, "${matrix.shrad}"]
)");
  EXPECT_TRUE(HasOnlyError(r, 5, 17, {"'${matrix.shrad}'", "task 'a'", "no key 'shrad'",
                                      "did you mean 'shard'?"}));
}

// Given `${matrix.KEY}` in a task without a matrix, should say it has none.
TEST(SpecErrorTest, InterpolationWithoutMatrix) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    run: echo ok
    env: {SHARD: "${matrix.shard}"}
)");
  EXPECT_TRUE(HasOnlyError(r, 5, 18, {"'${matrix.shard}'", "has no matrix"}));
}

// Given an unterminated `${matrix.`, should report it rather than pass it on.
TEST(SpecErrorTest, UnterminatedInterpolation) {
  const LoadResult r = Load(R"(
version: 1
tasks: {a: {run: x, matrix: {k: [1]}, cwd: "out/${matrix.k"}}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 44, {"unterminated '${matrix.'"}));
}

// Given `run` in `defaults`, should say it is set per task.
TEST(SpecErrorTest, RunInDefaults) {
  const LoadResult r = Load(R"(
version: 1
defaults: {run: x}
tasks: {a: {run: x}}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 12, {"'run' cannot be in 'defaults'"}));
}

// Given a typo in `defaults`, should suggest the setting.
TEST(SpecErrorTest, UnknownKeyInDefaults) {
  const LoadResult r = Load(R"(
version: 1
defaults: {timout: 5s}
tasks: {a: {run: x}}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 12, {"unknown key 'timout'", "'defaults'", "did you mean 'timeout'?"}));
}

// Given a YAML merge key, should point to `defaults` instead.
TEST(SpecErrorTest, MergeKeyIsNotSupported) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    <<: {retries: 1}
    run: x
)");
  EXPECT_TRUE(HasOnlyError(r, 4, 5, {"merge keys", "'defaults'"}));
}

// Given a task name with a space, should list the allowed characters.
TEST(SpecErrorTest, InvalidTaskName) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  "make all": {run: make}
)");
  EXPECT_TRUE(HasOnlyError(r, 3, 3, {"invalid task name 'make all'", "letters, digits"}));
}

// Given a task written as a bare command, should show how to write it.
TEST(SpecErrorTest, TaskNotAMap) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  hello: echo hi
)");
  EXPECT_TRUE(HasOnlyError(r, 3, 10, {"task 'hello' must be a map", "{run: ...}"}));
}

// Given an env variable without a value, should show how to write "".
TEST(SpecErrorTest, EnvWithoutValue) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    run: x
    env:
      DEBUG:
)");
  EXPECT_TRUE(HasOnlyError(r, 6, 7, {"env 'DEBUG'", "has no value"}));
}

// Given a list as an env value, should say it must be a string.
TEST(SpecErrorTest, EnvValueNotAString) {
  const LoadResult r = Load(R"(
version: 1
tasks: {a: {run: x, env: {PATHS: [a, b]}}}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 34, {"env 'PATHS'", "must be a string", "got a list"}));
}

// Given `fail_fast: maybe`, should ask for true or false.
TEST(SpecErrorTest, FailFastNotABool) {
  const LoadResult r = Load(R"(
version: 1
fail_fast: maybe
tasks: {a: {run: x}}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 12, {"'fail_fast'", "true or false", "got 'maybe'"}));
}

// Given two YAML documents, should report the second (only one is read).
TEST(SpecErrorTest, SecondDocument) {
  const LoadResult r = Load(R"(
version: 1
tasks: {a: {run: x}}
---
version: 1
)");
  EXPECT_TRUE(HasOnlyError(r, 3, 1, {"one YAML document"}));
}

// Given many mistakes across tasks, several in one task, should report
// every one in a single pass, sorted by position.
TEST(SpecErrorTest, AllErrorsInOnePass) {
  const LoadResult r = Load(R"(
version: 1
nmae: demo
tasks:
  a:
    run: echo ${matrix.x}
    retries: lots
    timeout: soon
    neds: [b]
  b:
    needs: [c, a]
    backend: fork
  a: {run: again}
  c: {run: x, needs: b}
)");
  std::vector<std::string> got;
  for (const SpecError& e : r.errors) got.push_back(e.ToString());
  const std::vector<std::string> want = {
      "job.yaml:2:1: unknown key 'nmae' (did you mean 'name'?)",
      "job.yaml:5:10: '${matrix.x}' in task 'a': the task has no matrix",
      "job.yaml:6:14: 'retries' in task 'a' must be a non-negative integer, got 'lots'",
      "job.yaml:7:14: 'timeout' in task 'a' must be a duration such as 500ms, 30s, 5m or "
      "1h30m, got 'soon'",
      "job.yaml:8:5: unknown key 'neds' in task 'a' (did you mean 'needs'?)",
      "job.yaml:9:3: task 'b' has backend fork but no 'pool' (the pool of processes to send "
      "its message to)",
      "job.yaml:10:13: dependency cycle: b -> c -> b (each task needs the next)",
      "job.yaml:12:3: duplicate task 'a' (first defined at line 4)",
  };
  EXPECT_EQ(got, want);
  EXPECT_FALSE(r.spec.has_value());
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
  EXPECT_EQ(spec.tasks[0].argv,
            (std::vector<std::string>{"/bin/sh", "-c", "echo hi | tr a-z A-Z"}));
  EXPECT_TRUE(spec.tasks[0].shell);
}

// Given `run` as a list, should use it as the argv, numbers as written.
TEST(SpecLoadTest, RunListIsTheArgv) {
  const LoadResult r = Load(R"(
version: 1
tasks: {nap: {run: [sleep, 0.1, "$HOME"]}}
)");
  const JobSpec& spec = Spec(r);
  ASSERT_EQ(spec.tasks.size(), 1u);
  EXPECT_EQ(spec.tasks[0].argv, (std::vector<std::string>{"sleep", "0.1", "$HOME"}));
  EXPECT_FALSE(spec.tasks[0].shell);
}

// Given no settings, should apply the documented defaults.
TEST(SpecLoadTest, BuiltInDefaults) {
  const LoadResult r = LoadString("version: 1\ntasks: {a: {run: x}}\n", "dir/my-job.yaml");
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
  EXPECT_TRUE(t.env.empty());
  EXPECT_EQ(t.cwd, "");
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
  EXPECT_EQ(plain.cwd, "/tmp");
  EXPECT_EQ(plain.env, (EnvList{{"LANG", "C"}, {"LEVEL", "low"}}));
  const TaskSpec& custom = spec.tasks[1];
  EXPECT_EQ(custom.timeout, milliseconds(1500));
  EXPECT_EQ(custom.retries, 0);
  EXPECT_EQ(custom.retry_backoff, minutes(2));
  EXPECT_EQ(custom.retry_backoff_max, minutes(2));  // never below the first delay
  EXPECT_EQ(custom.env, (EnvList{{"LANG", "C"}, {"LEVEL", "high"}, {"EXTRA", "1"}}));
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
  EXPECT_EQ(spec.tasks[0].argv[2], "echo 7 ${HOME} $HOME ${matrix} ${MATRIX.n} $7");
  EXPECT_EQ(spec.tasks[0].env, (EnvList{{"N", "n=7"}, {"H", "${HOME}"}}));
  EXPECT_EQ(spec.tasks[0].cwd, "out/7");
  EXPECT_EQ(spec.tasks[1].argv, (std::vector<std::string>{"printf", "%s-77", "${PATH}"}));
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
  EXPECT_EQ(third.argv, (std::vector<std::string>{"tox", "-e", "mac-py3.11"}));
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

// Given a 100,000-instance matrix (the default cap), should expand it,
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
  EXPECT_EQ(spec.tasks[99'999].argv[1], "999.99");
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
  EXPECT_EQ(spec.tasks[1].env, (EnvList{{"SHARD", "2"}}));

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
  EXPECT_EQ(spec.tasks[5].argv, (std::vector<std::string>{"echo", "2"}));
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

TaskSpec FixedTask() {
  TaskSpec t;
  t.name = "build";
  t.base_name = "build";
  t.argv = {"/bin/sh", "-c", "make all"};
  t.shell = true;
  t.env = {{"CC", "gcc"}};
  t.cwd = "src";
  t.timeout = seconds(30);
  return t;
}

// Given a fixed task, should give the value of the documented encoding
// (FNV-1a 64), the same on every build and host.
TEST(FingerprintTest, FixedValueForFixedTask) {
  EXPECT_EQ(FixedTask().Fingerprint(), 0x3c893ad1c3691676ull);
}

// Given a change to what runs, should change; given a change to how often
// it is retried or to its name, should not.
TEST(FingerprintTest, ChangesWithArgvNotWithRetries) {
  const uint64_t base = FixedTask().Fingerprint();
  TaskSpec argv = FixedTask();
  argv.argv[2] = "make al";
  EXPECT_NE(argv.Fingerprint(), base);
  TaskSpec split = FixedTask();
  split.argv = {"/bin/sh", "-cmake all"};  // same bytes, other boundaries
  EXPECT_NE(split.Fingerprint(), base);
  TaskSpec timeout = FixedTask();
  timeout.timeout.reset();
  EXPECT_NE(timeout.Fingerprint(), base);
  TaskSpec env = FixedTask();
  env.env[0].second = "clang";
  EXPECT_NE(env.Fingerprint(), base);

  TaskSpec retries = FixedTask();
  retries.retries = 5;
  retries.retry_backoff = seconds(9);
  retries.name = "other";
  EXPECT_EQ(retries.Fingerprint(), base);
  TaskSpec reordered = FixedTask();
  reordered.env = {{"LD", "ld"}, {"CC", "gcc"}};
  TaskSpec ordered = FixedTask();
  ordered.env = {{"CC", "gcc"}, {"LD", "ld"}};
  EXPECT_EQ(reordered.Fingerprint(), ordered.Fingerprint());
}

// Given the same YAML loaded twice, should give the same fingerprints.
TEST(FingerprintTest, SameSpecSameFingerprint) {
  const std::string yaml = "version: 1\ntasks: {a: {run: \"echo ${matrix.i}\", matrix: {i: [1, 2]}}}\n";
  const JobSpec first = Spec(Load(yaml));
  const JobSpec second = Spec(Load(yaml));
  ASSERT_EQ(first.tasks.size(), 2u);
  ASSERT_EQ(second.tasks.size(), 2u);
  EXPECT_EQ(first.tasks[0].Fingerprint(), second.tasks[0].Fingerprint());
  EXPECT_NE(first.tasks[0].Fingerprint(), first.tasks[1].Fingerprint());
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
    const LoadResult r = LoadFile(file);
    EXPECT_TRUE(r.ok()) << file << ":\n" << Dump(r);
    if (r.spec) {
      EXPECT_FALSE(r.spec->tasks.empty()) << file;
    }
  }
}

}  // namespace
}  // namespace drover::spec

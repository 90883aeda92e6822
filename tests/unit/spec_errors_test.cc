// core/spec: the job spec loader's errors (docs/spec.md): every mistake a
// user can make in a job spec gets FILE:LINE:COL and a message that says
// what is wrong and, where it can, what was meant. The values of valid
// specs are in spec_test.cc, the matrices' errors in
// spec_matrix_errors_test.cc.
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

// ---------------------------------------------------------------- errors

// Given a NUL byte in a string, escaped or raw, in a command, an
// environment entry or any other value (issue 14: `run: "echo a\0b"` ran
// `echo a`; found again by tests/fuzz), should refuse the file at that
// string.
TEST(SpecErrorTest, NulByteInAStringIsRefused) {
  EXPECT_TRUE(HasOnlyError(Load("version: 1\ntasks:\n  a: {run: \"echo a\\0b\"}\n"), 3,
                           12, {"NUL byte"}));
  EXPECT_TRUE(HasOnlyError(
      Load("version: 1\ntasks:\n  a:\n    run: echo\n    env: {X: \"\\x00\"}\n"), 5, 14,
      {"NUL byte"}));
  // Raw, it is a control character, refused at the byte itself.
  EXPECT_TRUE(HasOnlyError(
      Load(std::string_view("version: 1\ntasks:\n  a: {run: \"echo a\0b\"}\n", 41)), 3,
      19, {"control character (byte 0x00)"}));
}

// Given a raw control character in a plain scalar (tests/fuzz found that
// yaml-cpp reads a raw NUL there as a lone 0x85 byte, a command that is not
// UTF-8 and a payload protobuf refuses) or anywhere else, should refuse the
// file at that byte; tab and the line breaks stay allowed.
TEST(SpecErrorTest, RawControlCharacterIsRefused) {
  EXPECT_TRUE(HasOnlyError(
      Load(std::string_view("version: 1\ntasks:\n  a: {run: echo a\3\0b}\n", 40)), 3, 18,
      {"control character (byte 0x03)", "escape"}));
  EXPECT_TRUE(HasOnlyError(Load("version: 1\ntasks:\n  a:\n    run: echo\x1b[0m\n"), 4,
                           14, {"control character (byte 0x1b)"}));
  EXPECT_TRUE(HasOnlyError(Load("version: 1\ntasks:\n  a: {run: echo \x7f}\n"), 3, 17,
                           {"control character (byte 0x7f)"}));
  EXPECT_TRUE(Load("version: 1\r\ntasks:\r\n  a: {run: \"echo\ta\"}\r\n").errors.empty());
}

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
  EXPECT_TRUE(HasOnlyError(
      r, 5, 5, {"unknown key 'neds'", "task 'build'", "did you mean 'needs'?"}));
}

// Given an unknown top-level key, should suggest the closest top-level key.
TEST(SpecErrorTest, UnknownTopLevelKeySuggestsClosestKey) {
  const LoadResult r = Load(R"(
version: 1
fail_fats: true
tasks: {a: {run: x}}
)");
  EXPECT_TRUE(
      HasOnlyError(r, 2, 1, {"unknown key 'fail_fats'", "did you mean 'fail_fast'?"}));
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
  EXPECT_TRUE(HasOnlyError(
      r, 5, 14, {"'retries'", "must be a non-negative integer", "got 'three'"}));
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
  EXPECT_TRUE(HasOnlyError(
      r, 6, 20, {"task 'test' needs unknown task 'biuld'", "did you mean 'build'?"}));
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
  EXPECT_TRUE(
      HasOnlyError(r, 5, 3, {"duplicate task 'build'", "first defined at line 3"}));
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
  EXPECT_TRUE(
      HasOnlyError(r, 6, 5, {"duplicate key 'retries'", "task 'a'", "first at line 5"}));
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
  EXPECT_EQ(r.errors[0].ToString().rfind("/nonexistent/drover/job.yaml: cannot read", 0),
            0u);
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
  EXPECT_TRUE(
      HasOnlyError(r, 2, 30, {"unknown backend 'spwan'", "did you mean 'spawn'?"}));
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
  EXPECT_TRUE(HasOnlyError(
      r, 5, 17,
      {"'${matrix.shrad}'", "task 'a'", "no key 'shrad'", "did you mean 'shard'?"}));
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
  EXPECT_TRUE(HasOnlyError(
      r, 2, 12, {"unknown key 'timout'", "'defaults'", "did you mean 'timeout'?"}));
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
      "job.yaml:9:3: task 'b' has backend fork but no 'pool' (the pool of processes to "
      "send "
      "its message to)",
      "job.yaml:10:13: dependency cycle: b -> c -> b (each task needs the next)",
      "job.yaml:12:3: duplicate task 'a' (first defined at line 4)",
  };
  EXPECT_EQ(got, want);
  EXPECT_FALSE(r.spec.has_value());
}

}  // namespace
}  // namespace drover::spec

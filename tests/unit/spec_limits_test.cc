// core/spec: `limits` of a spawn task (docs/spec.md, "limits"): the values
// it carries to the worker in SpawnTask.limits, `defaults` merged per limit,
// the errors (FILE:LINE:COL) for unknown keys and bad values, and what it
// does to a task's fingerprint.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "backends/spawn/spawn.pb.h"
#include "tests/unit/spec_test_util.h"

namespace drover::spec {
namespace {

using test_util::HasOnlyError;
using test_util::Load;
using test_util::Spec;

spawn::Limits LimitsOf(const TaskSpec& ts) {
  spawn::SpawnTask task;
  EXPECT_TRUE(task.ParseFromString(ts.payload)) << ts.name;
  return task.limits();
}

// Given every limit on a task, should carry each in the payload in the
// kernel's units (seconds, bytes, counts).
TEST(SpecLimitsTest, EveryLimitReachesThePayload) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    run: make
    limits: {cpu: 2m, memory: 512MiB, files: 1024, processes: 64}
)");
  const spawn::Limits l = LimitsOf(Spec(r).tasks.at(0));
  EXPECT_EQ(l.cpu_seconds(), 120u);
  EXPECT_EQ(l.memory_bytes(), 512ull << 20);
  EXPECT_EQ(l.files(), 1024u);
  EXPECT_EQ(l.processes(), 64u);
}

// Given limits in `defaults` and some on a task, should merge them per
// limit, the task's winning; a task without its own gets `defaults`'.
TEST(SpecLimitsTest, TaskLimitsMergeOverDefaultsOneByOne) {
  const LoadResult r = Load(R"(
version: 1
defaults: {limits: {cpu: 10s, files: 256}}
tasks:
  own: {run: a, limits: {files: 32, memory: 1GiB}}
  inherited: {run: b}
)");
  const spawn::Limits own = LimitsOf(Spec(r).tasks.at(0));
  EXPECT_EQ(own.cpu_seconds(), 10u);
  EXPECT_EQ(own.files(), 32u);
  EXPECT_EQ(own.memory_bytes(), 1ull << 30);
  EXPECT_EQ(own.processes(), 0u);
  const spawn::Limits inherited = LimitsOf(Spec(r).tasks.at(1));
  EXPECT_EQ(inherited.cpu_seconds(), 10u);
  EXPECT_EQ(inherited.files(), 256u);
  EXPECT_EQ(inherited.memory_bytes(), 0u);
}

// Given a task without limits, should leave SpawnTask.limits unset.
TEST(SpecLimitsTest, NoLimitsLeavesThePayloadWithout) {
  const LoadResult r = Load("version: 1\ntasks:\n  a: {run: make}\n");
  spawn::SpawnTask task;
  ASSERT_TRUE(task.ParseFromString(Spec(r).tasks.at(0).payload));
  EXPECT_FALSE(task.has_limits());
}

// Given a misspelt limit, should name it at its line and column and
// suggest the closest one.
TEST(SpecLimitsTest, UnknownLimitSuggestsTheClosest) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    run: make
    limits: {cpu: 1s, memroy: 1GiB}
)");
  EXPECT_TRUE(HasOnlyError(
      r, 5, 23,
      {"unknown key 'memroy'", "in 'limits' in task 'a'", "did you mean 'memory'?"}));
}

// Given `limits` that is not a map, should say what it must be.
TEST(SpecLimitsTest, LimitsMustBeAMap) {
  EXPECT_TRUE(
      HasOnlyError(Load("version: 1\ntasks:\n  a: {run: x, limits: 5}\n"), 3, 23,
                   {"'limits' in task 'a' must be a map of cpu, memory, files and "
                    "processes, got '5'"}));
}

// Given bad values (zero, negative, unparseable, a fraction of a second,
// absurdly large or small), should refuse each at its value.
TEST(SpecLimitsTest, BadValuesAreRefusedWhereWritten) {
  struct Case {
    std::string limits;
    int column;
    std::string words;
  } cases[] = {
      {"{cpu: 0s}", 29, "'cpu' in 'limits' in task 'a' must be longer than 0s"},
      {"{cpu: 1500ms}", 29, "must be a whole number of seconds"},
      {"{cpu: ten}", 29, "must be a duration"},
      {"{cpu: 9000h}", 29, "at most 8760h"},
      {"{memory: 0}", 32, "must be at least 1 byte"},
      {"{memory: 512KiB}", 32, "between 1MiB and 1024TiB"},
      {"{memory: lots}", 32, "must be a size"},
      {"{files: -1}", 31, "must be a number of open files, at least 1, got '-1'"},
      {"{files: 0}", 31, "at least 1"},
      {"{files: 99999999}", 31, "must be at most 1,048,576"},
      {"{processes: 0}", 35, "must be a number of processes, at least 1"},
      {"{processes: many}", 35, "must be a number of processes"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.limits);
    const LoadResult r =
        Load("version: 1\ntasks:\n  a: {run: x, limits: " + c.limits + "}\n");
    EXPECT_TRUE(HasOnlyError(r, 3, c.column, {c.words}));
  }
}

// Given a bad limit in `defaults`, should report it there, once.
TEST(SpecLimitsTest, BadDefaultsLimitIsReportedInDefaults) {
  const LoadResult r = Load(R"(
version: 1
defaults: {limits: {files: 0}}
tasks:
  a: {run: x}
  b: {run: y}
)");
  EXPECT_TRUE(
      HasOnlyError(r, 2, 28, {"'files' in 'limits' in 'defaults'", "at least 1"}));
}

// Given `limits` on a task of another backend, should say it only applies
// to backend spawn.
TEST(SpecLimitsTest, LimitsOnlyApplyToSpawnTasks) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a: {backend: threads, fn: noop, limits: {cpu: 1s}}
)");
  EXPECT_TRUE(HasOnlyError(r, 3, 35,
                           {"'limits' in task 'a' only applies to backend spawn",
                            "this task's backend is threads"}));
}

// Given the same task with and without limits, and with different limits,
// should give three different fingerprints (a task without limits keeps
// its version-1 value: spec_fingerprint_test.cc).
TEST(SpecLimitsTest, LimitsChangeTheFingerprint) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  none: {run: make}
  some: {run: make, limits: {cpu: 10s}}
  more: {run: make, limits: {cpu: 11s}}
  mem: {run: make, limits: {memory: 1GiB}}
)");
  const auto& tasks = Spec(r).tasks;
  ASSERT_EQ(tasks.size(), 4u);
  EXPECT_NE(tasks[0].fingerprint, tasks[1].fingerprint);
  EXPECT_NE(tasks[1].fingerprint, tasks[2].fingerprint);
  EXPECT_NE(tasks[1].fingerprint, tasks[3].fingerprint);
  EXPECT_NE(tasks[0].fingerprint, tasks[3].fingerprint);
}

}  // namespace
}  // namespace drover::spec

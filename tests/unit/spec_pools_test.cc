// core/spec: the fork backend's `pools:` and the `plugins:` list
// (docs/spec.md): their errors and their values. The tasks that use them
// are in spec_backends_test.cc.
//
// Error tests assert the exact line:column and the key words of the
// message. YAML snippets start on the line after R"( so that line 1 of the
// snippet is the first line written.
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "core/spec/job_spec.h"
#include "tests/unit/spec_test_util.h"

namespace drover::spec {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

using test_util::Dump;
using test_util::HasOnlyError;
using test_util::Load;
using test_util::Spec;

// ------------------------------------------------------------ pools: errors

// Given `pools` as a list, should say it must be a map.
TEST(SpecPoolErrorTest, PoolsNotAMap) {
  const LoadResult r = Load(R"(
version: 1
pools: [sorter]
tasks: {a: {run: x}}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 8, {"'pools' must be a map of pool name to pool", "got a list"}));
}

// Given `pools` that is not a map, should not also call every pool a task
// names unknown.
TEST(SpecPoolErrorTest, UnreadablePoolsDoNotMakeTaskPoolsUnknown) {
  const LoadResult r = Load(R"(
version: 1
pools: sorter
tasks: {a: {backend: fork, pool: sorter}}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 8, {"'pools' must be a map", "got 'sorter'"}));
}

// Given a process pool without `command`, should say it has none, at the
// pool's name.
TEST(SpecPoolErrorTest, ProcessPoolWithoutCommand) {
  const LoadResult r = Load(R"(
version: 1
pools:
  sorter:
    instances: 2
tasks: {a: {run: x}}
)");
  EXPECT_TRUE(HasOnlyError(r, 3, 3, {"pool 'sorter' has no 'command'", "mode: cow"}));
}

// Given `instances: 0`, should ask for an integer of at least 1.
TEST(SpecPoolErrorTest, ZeroInstances) {
  const LoadResult r = Load(R"(
version: 1
pools:
  sorter:
    command: [node, sort.js]
    instances: 0
tasks: {a: {run: x}}
)");
  EXPECT_TRUE(HasOnlyError(r, 5, 16, {"'instances' in pool 'sorter'",
                                      "must be an integer of at least 1", "got '0'"}));
}

// Given more instances than the cap, or a non-number, should refuse them.
TEST(SpecPoolErrorTest, InstancesOverCapOrNotANumber) {
  const LoadResult over = Load(R"(
version: 1
pools: {p: {command: x, instances: 1001}}
tasks: {a: {run: x}}
)");
  EXPECT_TRUE(HasOnlyError(over, 2, 36, {"'instances' in pool 'p'", "at most 1,000"}));
  const LoadResult word = Load(R"(
version: 1
pools: {p: {command: x, instances: two}}
tasks: {a: {run: x}}
)");
  EXPECT_TRUE(HasOnlyError(word, 2, 36, {"'instances' in pool 'p'", "got 'two'"}));
}

// Given a typo in a pool's keys, should suggest the key.
TEST(SpecPoolErrorTest, UnknownPoolKeySuggestsClosest) {
  const LoadResult r = Load(R"(
version: 1
pools:
  sorter:
    command: [node, sort.js]
    instanses: 2
tasks: {a: {run: x}}
)");
  EXPECT_TRUE(HasOnlyError(r, 5, 5, {"unknown key 'instanses' in pool 'sorter'",
                                     "did you mean 'instances'?"}));
}

// Given a mode other than process or cow, should suggest the closest.
TEST(SpecPoolErrorTest, UnknownModeSuggestsClosest) {
  const LoadResult r = Load(R"(
version: 1
pools: {z: {mode: cwo}}
tasks: {a: {run: x}}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 19, {"unknown mode 'cwo' in pool 'z'", "did you mean 'cow'?"}));
}

// Given a cow pool with a command, should say cow pools run functions.
TEST(SpecPoolErrorTest, CowPoolWithCommand) {
  const LoadResult r = Load(R"(
version: 1
pools:
  iso:
    mode: cow
    command: [node, x.js]
tasks: {a: {run: x}}
)");
  EXPECT_TRUE(HasOnlyError(r, 5, 5, {"'command' in pool 'iso'", "does not apply to mode cow"}));
}

// Given `idle_timeout: 0s`, should refuse it (leave the key out for none).
TEST(SpecPoolErrorTest, ZeroIdleTimeout) {
  const LoadResult r = Load(R"(
version: 1
pools: {p: {command: x, idle_timeout: 0s}}
tasks: {a: {run: x}}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 39, {"'idle_timeout' in pool 'p'", "longer than 0s"}));
}

// Given a negative max_tasks, should ask for a non-negative integer.
TEST(SpecPoolErrorTest, NegativeMaxTasks) {
  const LoadResult r = Load(R"(
version: 1
pools: {p: {command: x, max_tasks: -1}}
tasks: {a: {run: x}}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 36, {"'max_tasks' in pool 'p'", "non-negative integer"}));
}

// Given a pool name with a space and a pool that is a string, should
// report both; an empty command list too.
TEST(SpecPoolErrorTest, BadNamesAndShapes) {
  const LoadResult r = Load(R"(
version: 1
pools:
  "my pool": {command: x}
  short: node x.js
  empty: {command: []}
tasks: {a: {run: x}}
)");
  ASSERT_EQ(r.errors.size(), 3u) << Dump(r);
  EXPECT_EQ(r.errors[0].ToString(),
            "job.yaml:3:3: invalid pool name 'my pool': use letters, digits, '_', '.' and '-'");
  EXPECT_EQ(r.errors[1].ToString(),
            "job.yaml:4:10: pool 'short' must be a map with at least 'command', got 'node x.js'");
  EXPECT_EQ(r.errors[2].ToString(), "job.yaml:5:20: 'command' in pool 'empty' is an empty list");
}

// ---------------------------------------------------------- plugins: errors

// Given `plugins` as one string, should ask for a list.
TEST(SpecPluginErrorTest, PluginsNotAList) {
  const LoadResult r = Load(R"(
version: 1
plugins: lib/fns.so
tasks: {a: {run: x}}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 10, {"'plugins' must be a list of paths", "got 'lib/fns.so'"}));
}

// Given a map, an empty string and a repeat among the plugins, should
// report each at its item.
TEST(SpecPluginErrorTest, PluginItemsNotPaths) {
  const LoadResult r = Load(R"(
version: 1
plugins:
  - a.so
  - {path: b.so}
  - ""
  - a.so
tasks: {a: {run: x}}
)");
  ASSERT_EQ(r.errors.size(), 3u) << Dump(r);
  EXPECT_EQ(r.errors[0].ToString(),
            "job.yaml:4:5: 'plugins' item 2 must be a path (a string), got a map");
  EXPECT_EQ(r.errors[1].ToString(), "job.yaml:5:5: 'plugins' item 3 is empty");
  EXPECT_EQ(r.errors[2].ToString(), "job.yaml:6:5: duplicate plugin 'a.so' (first at line 3)");
}

// ---------------------------------------------------------- the happy path

// Given pools with every key, a string command and a cow pool, should fill
// PoolDecl, with the documented defaults where a key is left out.
TEST(SpecPoolTest, EveryKeyAndDefaults) {
  const LoadResult r = Load(R"(
version: 1
pools:
  sorter:
    command: [node, configs/examples/fork_sort.js]
    instances: 4
    max_tasks: 100
    idle_timeout: 5m
    mode: process
    env: {NODE_ENV: production, N: 1}
    cwd: /srv
  shell:
    command: exec python3 worker.py
  iso:
    mode: cow
    instances: 2
tasks: {a: {run: x}}
)");
  const JobSpec& spec = Spec(r);
  ASSERT_EQ(spec.pools.size(), 3u);
  const PoolDecl& sorter = spec.pools[0];
  EXPECT_EQ(sorter.name, "sorter");
  EXPECT_EQ(sorter.mode, "process");
  EXPECT_EQ(sorter.command, (std::vector<std::string>{"node", "configs/examples/fork_sort.js"}));
  EXPECT_EQ(sorter.instances, 4);
  EXPECT_EQ(sorter.max_tasks, 100);
  EXPECT_EQ(sorter.idle_timeout, minutes(5));
  EXPECT_EQ(sorter.env, (EnvList{{"NODE_ENV", "production"}, {"N", "1"}}));
  EXPECT_EQ(sorter.cwd, "/srv");
  EXPECT_EQ(sorter.where.file, "job.yaml");
  EXPECT_EQ(sorter.where.line, 3);
  EXPECT_EQ(sorter.where.column, 3);

  const PoolDecl& shell = spec.pools[1];
  EXPECT_EQ(shell.command,
            (std::vector<std::string>{"/bin/sh", "-c", "exec python3 worker.py"}));
  EXPECT_EQ(shell.mode, "process");
  EXPECT_EQ(shell.instances, 1);
  EXPECT_EQ(shell.max_tasks, 0);
  EXPECT_EQ(shell.idle_timeout, seconds(0));
  EXPECT_TRUE(shell.env.empty());
  EXPECT_EQ(shell.cwd, "");

  const PoolDecl& iso = spec.pools[2];
  EXPECT_EQ(iso.mode, "cow");
  EXPECT_TRUE(iso.command.empty());
  EXPECT_EQ(iso.instances, 2);

  EXPECT_EQ(spec.FindPool("iso"), &spec.pools[2]);
  EXPECT_EQ(spec.FindPool("nope"), nullptr);
}

// Given plugins, should keep them in order and as written (relative paths
// are resolved by the worker, not the loader).
TEST(SpecPoolTest, PluginsKeptAsWritten) {
  const LoadResult r = Load(R"(
version: 1
plugins: [build/plugins/fns.so, /opt/drover/more.so, ./local.so]
tasks: {a: {run: x}}
)");
  EXPECT_EQ(Spec(r).plugins, (std::vector<std::string>{"build/plugins/fns.so",
                                                       "/opt/drover/more.so", "./local.so"}));
}
}  // namespace
}  // namespace drover::spec

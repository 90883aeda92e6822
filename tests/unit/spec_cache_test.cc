// `cache:` and `inputs:` in a job spec (docs/spec.md, "Caching"): what a
// task keeps, `defaults`, and the errors at their positions.
#include <gtest/gtest.h>

#include <string>

#include "core/spec/fingerprint.h"
#include "tests/unit/spec_test_util.h"

namespace drover::spec {
namespace {

using test_util::HasOnlyError;
using test_util::Load;

// Given `cache` in defaults and on a task, and inputs with a glob, should
// keep them on every instance, a task's own `cache` winning.
TEST(SpecCacheTest, CacheAndInputsAreKept) {
  const LoadResult r = Load(R"(
version: 1
defaults: {cache: true}
tasks:
  a:
    matrix: {k: [x, y]}
    run: make
    inputs: [src/main.c, "src/*.h"]
  b: {run: make, cache: false, inputs: Makefile}
)");
  ASSERT_TRUE(r.ok()) << r.errors[0].ToString();
  ASSERT_EQ(r.spec->tasks.size(), 3u);
  for (int i : {0, 1}) {
    const TaskSpec& ts = r.spec->tasks[i];
    EXPECT_TRUE(ts.cache);
    ASSERT_EQ(ts.inputs.size(), 2u);
    EXPECT_EQ(ts.inputs[0].pattern, "src/main.c");
    EXPECT_EQ(ts.inputs[1].pattern, "src/*.h");
    EXPECT_EQ(ts.inputs[1].where.line, 7);
    EXPECT_EQ(ts.inputs[1].where.column, 26);
  }
  EXPECT_FALSE(r.spec->tasks[2].cache);
  ASSERT_EQ(r.spec->tasks[2].inputs.size(), 1u);
  EXPECT_EQ(r.spec->tasks[2].inputs[0].pattern, "Makefile");
}

// Given the same task with and without `cache` and `inputs`, its
// fingerprint should not change: they decide whether it runs, not how, and
// `--resume` must not re-run tasks because caching was turned on.
TEST(SpecCacheTest, CacheAndInputsLeaveTheFingerprintAlone) {
  const LoadResult plain = Load("version: 1\ntasks:\n  a: {run: make}\n");
  const LoadResult cached =
      Load("version: 1\ntasks:\n  a: {run: make, cache: true, inputs: [x.c]}\n");
  ASSERT_TRUE(plain.ok() && cached.ok());
  EXPECT_EQ(plain.spec->tasks[0].fingerprint, cached.spec->tasks[0].fingerprint);
}

// Given inputs that leave the working directory, are absolute or are not
// strings, should refuse each at its position.
TEST(SpecCacheTest, BadInputsAreRefusedAtTheirPosition) {
  EXPECT_TRUE(HasOnlyError(Load(R"(
version: 1
tasks:
  a: {run: make, cache: true, inputs: [ok.c, ../up.c]}
)"),
                           3, 46,
                           {"input '../up.c' leaves the directory", "in task 'a'"}));
  EXPECT_TRUE(HasOnlyError(Load(R"(
version: 1
tasks:
  a: {run: make, cache: true, inputs: /etc/passwd}
)"),
                           3, 39, {"input '/etc/passwd' is absolute"}));
  EXPECT_TRUE(HasOnlyError(Load(R"(
version: 1
tasks:
  a: {run: make, cache: true, inputs: [{x: 1}]}
)"),
                           3, 40,
                           {"'inputs' in task 'a' must list file paths or globs"}));
}

// Given `cache` that is not a boolean, or `inputs` in defaults, should say
// what is wrong where.
TEST(SpecCacheTest, CacheMustBeABooleanAndInputsArePerTask) {
  EXPECT_TRUE(HasOnlyError(Load(R"(
version: 1
tasks:
  a: {run: make, cache: maybe}
)"),
                           3, 25, {"cache"}));
  EXPECT_TRUE(HasOnlyError(Load(R"(
version: 1
defaults: {inputs: [x.c]}
tasks:
  a: {run: make}
)"),
                           2, 12, {"'inputs' cannot be in 'defaults'"}));
}

// Given a spec's text, MayNameInputs should be true whenever a task could
// have `inputs` (the key written plain, quoted, or spelt with an escape)
// and false for a text with neither the word nor a backslash; and every
// spec that loads with inputs should be one it says true for.
TEST(SpecCacheTest, MayNameInputsMissesNoWayOfWritingTheKey) {
  // The last spells the key across an escaped line break, in a
  // double-quoted explicit key ("inp\ at a line's end joins "uts").
  const std::string head =
      "version: 1\nname: j\ntasks:\n  a:\n    run: x\n    cache: true\n";
  const std::string with[] = {
      head + "    inputs: [f]\n",
      head + "    'inputs': [f]\n",
      head + "    \"\\x69nputs\": [f]\n",
      head + "    ? \"inp\\\n      uts\"\n    : [f]\n",
  };
  for (const std::string& text : with) {
    EXPECT_TRUE(MayNameInputs(text)) << text;
    auto loaded = Load(text);
    ASSERT_TRUE(loaded.ok()) << text << loaded.errors[0].ToString();
    ASSERT_EQ(loaded.spec->tasks[0].inputs.size(), 1u) << text;
  }
  EXPECT_FALSE(MayNameInputs("version: 1\nname: j\ntasks:\n  a: {run: echo in puts}\n"));
  EXPECT_FALSE(MayNameInputs(""));
}

}  // namespace
}  // namespace drover::spec

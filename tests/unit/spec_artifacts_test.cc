// `artifacts:` in a job spec (docs/spec.md, "artifacts"): what a spawn task
// declares, and the errors for bad paths and for backends without a
// working directory of their own.
#include <gtest/gtest.h>

#include "tests/unit/spec_test_util.h"

namespace drover::spec {
namespace {

using test_util::HasOnlyError;
using test_util::Load;

// Given a spawn task with a path, a glob and a matrix-filled path, should
// keep them in order on each instance, with the task's cwd beside them.
TEST(SpecArtifactsTest, SpawnTaskKeepsPatternsAndCwd) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    matrix: {k: [x, y]}
    run: make
    cwd: build
    artifacts: [dist, "*.tar", "out/${matrix.k}.txt"]
  b: {run: make, artifacts: one.txt}
)");
  ASSERT_TRUE(r.ok()) << r.errors[0].ToString();
  ASSERT_EQ(r.spec->tasks.size(), 3u);
  EXPECT_EQ(r.spec->tasks[0].artifacts,
            (std::vector<std::string>{"dist", "*.tar", "out/x.txt"}));
  EXPECT_EQ(r.spec->tasks[1].artifacts[2], "out/y.txt");
  EXPECT_EQ(r.spec->tasks[0].cwd, "build");
  EXPECT_EQ(r.spec->tasks[2].artifacts, (std::vector<std::string>{"one.txt"}));
  EXPECT_EQ(r.spec->tasks[2].cwd, "");
}

// Given an artifact path that leaves the working directory, should refuse
// it at its position.
TEST(SpecArtifactsTest, DotDotIsRefusedAtItsPosition) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a: {run: make, artifacts: [ok.txt, ../secret]}
)");
  EXPECT_TRUE(HasOnlyError(
      r, 3, 38, {"'../secret' leaves the task's working directory", "in task 'a'"}));
}

// Given an artifact path filled from the matrix whose values make it
// leave the working directory or absolute, should refuse it at load, at the
// path, naming the value, and accept a matrix whose values all keep it in
// (other keys at any value: a bad part is bad whatever they hold).
TEST(SpecArtifactsTest, MatrixValuesThatMakeABadPathAreRefusedAtLoad) {
  const LoadResult up = Load(R"(
version: 1
tasks:
  a:
    matrix: {d: [x, y], p: [ok, "..", /etc]}
    run: make
    artifacts: ["${matrix.d}/out", "${matrix.p}/passwd"]
)");
  EXPECT_TRUE(HasOnlyError(up, 6, 36,
                           {"'../passwd' leaves the task's working directory",
                            "(with matrix value p='..')", "in task 'a'"}));
  const LoadResult absolute = Load(R"(
version: 1
tasks:
  a:
    matrix: {p: [/etc, ok]}
    run: make
    artifacts: "${matrix.p}"
)");
  EXPECT_TRUE(HasOnlyError(absolute, 6, 16, {"'/etc' is absolute", "p='/etc'"}));
  const LoadResult fine = Load(R"(
version: 1
tasks:
  a:
    matrix: {d: [x, y], p: [a, b/c]}
    run: make
    artifacts: ["${matrix.d}/${matrix.p}.txt"]
)");
  EXPECT_TRUE(fine.ok()) << fine.errors[0].ToString();
}

// Given an absolute artifact path, should refuse it.
TEST(SpecArtifactsTest, AbsolutePathIsRefused) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a: {run: make, artifacts: /etc/passwd}
)");
  EXPECT_TRUE(HasOnlyError(r, 3, 29, {"'/etc/passwd' is absolute"}));
}

// Given artifacts on a threads task, should say they apply to spawn only.
TEST(SpecArtifactsTest, ThreadsTaskCannotDeclareArtifacts) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a: {backend: threads, fn: noop, artifacts: [x]}
)");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.errors[0].ToString().find(
                "'artifacts' in task 'a' only applies to backend spawn"),
            std::string::npos)
      << r.errors[0].ToString();
}

// Given a change to a task's artifacts, its fingerprint should change.
TEST(SpecArtifactsTest, ArtifactsArePartOfTheFingerprint) {
  const LoadResult a = Load("version: 1\ntasks:\n  a: {run: make, artifacts: [x]}\n");
  const LoadResult b = Load("version: 1\ntasks:\n  a: {run: make, artifacts: [y]}\n");
  const LoadResult c = Load("version: 1\ntasks:\n  a: {run: make}\n");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_NE(a.spec->tasks[0].fingerprint, b.spec->tasks[0].fingerprint);
  EXPECT_NE(a.spec->tasks[0].fingerprint, c.spec->tasks[0].fingerprint);
}

}  // namespace
}  // namespace drover::spec

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

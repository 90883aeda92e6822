// The task keys of placement: `on:` (worker labels) and `slots:`.
#include <gtest/gtest.h>

#include "core/spec/job_spec.h"
#include "tests/unit/spec_test_util.h"

namespace drover::spec {
namespace {

using test_util::HasOnlyError;
using test_util::Load;
using test_util::Options;
using test_util::Spec;

// Given `on:` and `slots:` on a matrix task, every instance should carry the
// labels sorted by key and the slot count; a task without them runs on any
// worker with one slot.
TEST(SpecSchedulingTest, OnAndSlotsReachEveryInstance) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  build:
    matrix: {n: [1, 2]}
    run: make
    on: {zone: b, arch: x86_64}
    slots: 4
  plain: {run: echo}
)");
  const JobSpec& spec = Spec(r);
  ASSERT_EQ(spec.tasks.size(), 3u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(spec.tasks[i].slots, 4u);
    EXPECT_EQ(spec.tasks[i].on,
              (EnvList{{"arch", "x86_64"}, {"zone", "b"}}));
  }
  EXPECT_EQ(spec.tasks[2].slots, 1u);
  EXPECT_TRUE(spec.tasks[2].on.empty());
}

// Given placement keys, the fingerprint should not change: where a task
// runs does not change what it does, so --resume does not re-run it.
TEST(SpecSchedulingTest, PlacementIsNotInTheFingerprint) {
  const LoadResult a = Load("version: 1\ntasks:\n  t: {run: echo}\n");
  const LoadResult b = Load("version: 1\ntasks:\n  t: {run: echo, on: {zone: a}, slots: 2}\n");
  EXPECT_EQ(Spec(a).tasks[0].fingerprint, Spec(b).tasks[0].fingerprint);
}

// Given bad values, each should be one located error.
TEST(SpecSchedulingTest, BadOnAndSlotsAreLocatedErrors) {
  EXPECT_TRUE(HasOnlyError(Load("version: 1\ntasks:\n  t: {run: echo, slots: 0}\n"), 3, 25,
                           {"'slots'", "positive integer"}));
  EXPECT_TRUE(HasOnlyError(Load("version: 1\ntasks:\n  t: {run: echo, slots: two}\n"), 3, 25,
                           {"'slots'"}));
  EXPECT_TRUE(HasOnlyError(Load("version: 1\ntasks:\n  t: {run: echo, on: zone}\n"), 3, 22,
                           {"'on'", "map of worker label"}));
  EXPECT_TRUE(HasOnlyError(Load("version: 1\ntasks:\n  t: {run: echo, on: {zone: [a]}}\n"),
                           3, 29, {"zone"}));
  EXPECT_TRUE(HasOnlyError(Load("version: 1\ntasks:\n  t: {run: echo, on: {'a b': x}}\n"), 3,
                           23, {"invalid label", "'a b'"}));
}

}  // namespace
}  // namespace drover::spec

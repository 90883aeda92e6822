// core/spec: TaskList, a job's instances with each static matrix held as
// one group and its instances made on demand: that a made instance is the
// one the expansion defines (name, matrix, payload, fingerprint), which
// accessors make instances and which do not, that made instances are
// kept until released, Find by name (values holding ',' and '='), and
// changes to what a matrix's instances share.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "tests/unit/spec_test_util.h"

namespace drover::spec {
namespace {

using test_util::Decode;
using test_util::Load;
using test_util::Spec;

constexpr char kJob[] = R"(
version: 1
tasks:
  setup: {run: "true"}
  grid:
    run: ["echo", "${matrix.os}", "${matrix.n}"]
    needs: [setup]
    retries: 2
    matrix: {os: [linux, "x=y"], n: [1, 2, 3]}
    artifacts: ["out-${matrix.n}.txt"]
  sum:
    backend: threads
    fn: sum
    args: ["${matrix.n}"]
    matrix: {n: ["7,8", 9]}
  last: {run: "true", needs: [grid]}
)";

// Given a matrix task, should make each instance with the name, matrix
// values, command and needs its position gives (the last key fastest).
TEST(TaskListTest, MakesEachInstanceFromItsPosition) {
  const LoadResult r = Load(kJob);
  const JobSpec& spec = Spec(r);
  ASSERT_EQ(spec.tasks.size(), 10u);
  const std::vector<std::string> names = {"setup",
                                          "grid[os=linux,n=1]",
                                          "grid[os=linux,n=2]",
                                          "grid[os=linux,n=3]",
                                          "grid[os=x=y,n=1]",
                                          "grid[os=x=y,n=2]",
                                          "grid[os=x=y,n=3]",
                                          "sum[n=7,8]",
                                          "sum[n=9]",
                                          "last"};
  for (uint32_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(spec.tasks.Name(i), names[i]);
    EXPECT_EQ(spec.tasks[i].name, names[i]);
  }
  const TaskSpec& g = spec.tasks[5];
  EXPECT_EQ(g.base_name, "grid");
  EXPECT_EQ(g.matrix, (EnvList{{"os", "x=y"}, {"n", "2"}}));
  EXPECT_EQ(Decode(g).argv, (std::vector<std::string>{"echo", "x=y", "2"}));
  EXPECT_EQ(g.artifacts, (std::vector<std::string>{"out-2.txt"}));
  EXPECT_EQ(g.needs, (std::vector<uint32_t>{0}));
  EXPECT_EQ(g.retries, 2);
  EXPECT_EQ(spec.tasks[9].needs, (std::vector<uint32_t>{1, 2, 3, 4, 5, 6}));
}

// Given two instances of one matrix, should give each its own fingerprint,
// the same one every time it is made.
TEST(TaskListTest, AnInstanceIsTheSameEachTimeItIsMade) {
  const LoadResult r = Load(kJob);
  const JobSpec& spec = Spec(r);
  std::set<uint64_t> fingerprints;
  for (uint32_t i = 1; i <= 6; ++i) {
    const TaskSpec made = spec.tasks.Make(i);
    EXPECT_NE(made.fingerprint, 0u);
    fingerprints.insert(made.fingerprint);
    const TaskSpec again = spec.tasks.Make(i);
    EXPECT_EQ(again.fingerprint, made.fingerprint);
    EXPECT_EQ(again.payload, made.payload);
    EXPECT_EQ(again.summary, made.summary);
    EXPECT_EQ(spec.tasks[i].payload, made.payload);
  }
  EXPECT_EQ(fingerprints.size(), 6u);
}

// Given a matrix, operator[] should keep what it made until Release, and
// Make, Name, Shared, iteration and Find should keep nothing.
TEST(TaskListTest, OnlyIndexingKeepsAMadeInstanceUntilReleased) {
  const LoadResult r = Load(kJob);
  const JobSpec& spec = Spec(r);
  for (const TaskSpec& ts : spec.tasks) EXPECT_FALSE(ts.name.empty());
  (void)spec.tasks.Make(3);
  (void)spec.tasks.Name(4);
  (void)spec.tasks.Shared(5);
  EXPECT_EQ(spec.Find("grid[os=linux,n=3]"), 3u);
  EXPECT_EQ(spec.tasks.made(), 0u);

  const TaskSpec& a = spec.tasks[2];
  const TaskSpec& b = spec.tasks[6];
  EXPECT_EQ(spec.tasks.made(), 2u);
  EXPECT_EQ(&spec.tasks[2], &a);  // kept, not made again
  EXPECT_EQ(b.name, "grid[os=x=y,n=3]");
  (void)spec.tasks[0];  // a whole instance is never made
  EXPECT_EQ(spec.tasks.made(), 2u);
  spec.tasks.Release(2);
  spec.tasks.Release(0);
  EXPECT_EQ(spec.tasks.made(), 1u);
  EXPECT_EQ(spec.tasks[2].name, "grid[os=linux,n=2]");
}

// Given instances made and released (their nodes are kept for the next
// ones), should make each later instance exactly as a fresh Make does,
// whatever instance, of whichever matrix, the reused node held before.
TEST(TaskListTest, AnInstanceMadeAfterReleasesIsTheOneItsPositionGives) {
  const LoadResult r = Load(kJob);
  const JobSpec& spec = Spec(r);
  const std::vector<uint32_t> matrix = {1, 2, 3, 4, 5, 6, 7, 8};
  for (uint32_t i : matrix) (void)spec.tasks[i];
  for (uint32_t i : matrix) spec.tasks.Release(i);
  EXPECT_EQ(spec.tasks.made(), 0u);
  // In the order they were released: the nodes are reused last released
  // first, so each instance gets another instance's node.
  for (uint32_t i : matrix) {
    const TaskSpec fresh = spec.tasks.Make(i);
    const TaskSpec& made = spec.tasks[i];
    EXPECT_EQ(made.name, fresh.name);
    EXPECT_EQ(made.matrix, fresh.matrix);
    EXPECT_EQ(made.payload, fresh.payload);
    EXPECT_EQ(made.summary, fresh.summary);
    EXPECT_EQ(made.artifacts, fresh.artifacts);
    EXPECT_EQ(made.backend, fresh.backend);
    EXPECT_EQ(made.needs, fresh.needs);
    EXPECT_EQ(made.fingerprint, fresh.fingerprint);
  }
  EXPECT_EQ(spec.tasks[7].name, "sum[n=7,8]");
  EXPECT_EQ(spec.tasks.made(), matrix.size());
}

// Given instance names, Find should give their index, matching values that
// hold '=' (or ',' in a one-key matrix) rather than splitting on them, and
// nothing for a name that is close but not an instance's.
TEST(TaskListTest, FindsAnInstanceByNameWithoutMakingAny) {
  const LoadResult r = Load(kJob);
  const JobSpec& spec = Spec(r);
  for (uint32_t i = 0; i < spec.tasks.size(); ++i) {
    EXPECT_EQ(spec.Find(spec.tasks.Name(i)), i) << spec.tasks.Name(i);
  }
  EXPECT_EQ(spec.Find("grid[os=x=y,n=1]"), 4u);
  EXPECT_EQ(spec.Find("sum[n=7,8]"), 7u);
  for (const char* absent :
       {"grid", "grid[]", "grid[os=linux]", "grid[os=linux,n=4]", "grid[n=1,os=linux]",
        "grid[os=linux,n=1]x", "grid[os=a,n=1]", "sum", "sum[n=7", "sum[n=7]",
        "grid[os=linux,n=1,m=2]"}) {
    EXPECT_FALSE(spec.Find(absent).has_value()) << absent;
  }
  EXPECT_EQ(spec.tasks.made(), 0u);
}

// Given a matrix, SpanOf, Shared and HasArtifacts should answer for the
// task as written: its instances, and what they share.
TEST(TaskListTest, AnswersForTheTaskAsWritten) {
  const LoadResult r = Load(kJob);
  const JobSpec& spec = Spec(r);
  EXPECT_EQ(spec.tasks.SpanOf(4).first, 1u);
  EXPECT_EQ(spec.tasks.SpanOf(4).count, 6u);
  EXPECT_EQ(spec.tasks.SpanOf(9).first, 9u);
  EXPECT_EQ(spec.tasks.SpanOf(9).count, 1u);
  EXPECT_FALSE(spec.tasks.IsWhole(4));
  EXPECT_TRUE(spec.tasks.IsWhole(0));
  EXPECT_EQ(spec.tasks.Shared(4).base_name, "grid");
  EXPECT_EQ(spec.tasks.Shared(4).retries, 2);
  EXPECT_EQ(spec.tasks.Shared(7).backend, "threads");
  EXPECT_TRUE(spec.tasks.HasArtifacts(1));
  EXPECT_FALSE(spec.tasks.HasArtifacts(0));
  EXPECT_FALSE(spec.tasks.HasArtifacts(7));

  std::vector<std::pair<uint32_t, uint32_t>> spans;
  spec.tasks.ForEachShared(
      [&](const TaskSpec&, TaskList::Span s) { spans.emplace_back(s.first, s.count); });
  EXPECT_EQ(spans,
            (std::vector<std::pair<uint32_t, uint32_t>>{{0, 1}, {1, 6}, {7, 2}, {9, 1}}));
}

// Given a change to what instances share, should apply it to the matrix,
// to its instances made before and after, and not to a copy of the list.
TEST(TaskListTest, ASharedChangeReachesMadeInstancesAndNotACopy) {
  const LoadResult r = Load(kJob);
  JobSpec spec = Spec(r);
  const JobSpec before = spec;
  const TaskSpec& kept = spec.tasks[3];
  spec.tasks.UpdateShared([](TaskSpec& ts) {
    if (ts.base_name == "grid") ts.needs.push_back(7);
  });
  EXPECT_EQ(kept.needs, (std::vector<uint32_t>{0, 7}));
  EXPECT_EQ(spec.tasks[5].needs, (std::vector<uint32_t>{0, 7}));
  EXPECT_EQ(spec.tasks.Make(1).needs, (std::vector<uint32_t>{0, 7}));
  EXPECT_EQ(before.tasks[5].needs, (std::vector<uint32_t>{0}));
}

// Given a matrix of a million instances, should load it as one group: the
// first and last instances are made on demand and nothing else is kept.
// Given the table of names taken from a list for some of its instances,
// should give each one's name, task and backend as the list does, and
// still give them after the list it came from changed and was destroyed
// (another thread reads it while the coordinator's loop changes the job).
TEST(TaskListTest, ItsNamesOutliveChangesToTheList) {
  const LoadResult r = Load(kJob);
  auto list = std::make_unique<TaskList>(Spec(r).tasks);
  const std::vector<uint32_t> all = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  const TaskList::Names names = list->NamesOf(all);
  for (uint32_t i : all) {
    EXPECT_EQ(names.Name(i), list->Name(i));
    EXPECT_EQ(names.Group(i), list->Shared(i).base_name);
    EXPECT_EQ(names.Backend(i), list->Shared(i).backend);
  }
  const TaskList::Names some = list->NamesOf({5, 8, 9});
  list->UpdateShared([](TaskSpec& ts) { ts.needs.clear(); });
  TaskSpec extra;
  extra.name = extra.base_name = "extra";
  list->push_back(extra);
  list.reset();
  EXPECT_EQ(names.Name(0), "setup");
  EXPECT_EQ(some.Name(5), "grid[os=x=y,n=2]");
  EXPECT_EQ(some.Group(5), "grid");
  EXPECT_EQ(some.Name(8), "sum[n=9]");
  EXPECT_EQ(some.Backend(8), "threads");
  EXPECT_EQ(some.Name(9), "last");
  EXPECT_EQ(some.Backend(9), "spawn");
}

TEST(TaskListTest, AMillionInstancesAreHeldAsTheirAxes) {
  std::string a;
  std::string b;
  for (int i = 0; i < 1000; ++i) {
    a += (i ? ", " : "") + std::to_string(i);
  }
  b = a;
  LoadOptions options;
  options.max_instances = 1'000'000;
  const LoadResult r = Load(
      "version: 1\ntasks:\n  t:\n    backend: threads\n    fn: noop\n"
      "    matrix: {a: [" +
          a + "], b: [" + b + "]}\n",
      options);
  const JobSpec& spec = Spec(r);
  ASSERT_EQ(spec.tasks.size(), 1'000'000u);
  EXPECT_EQ(spec.tasks.Name(0), "t[a=0,b=0]");
  EXPECT_EQ(spec.tasks[999'999].name, "t[a=999,b=999]");
  EXPECT_EQ(spec.Find("t[a=512,b=7]"), 512'007u);
  EXPECT_EQ(spec.tasks.made(), 1u);
}

}  // namespace
}  // namespace drover::spec

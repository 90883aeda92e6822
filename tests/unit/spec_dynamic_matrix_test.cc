// core/spec: dynamic matrices (docs/spec.md, "Dynamic matrix"):
// `matrix: {k: "${tasks.plan.outputs.K}"}` loads as one placeholder, its
// load-time errors, the parsing of the upstream's JSON list and the
// expansion into instances.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/spec/dynamic_matrix.h"
#include "core/spec/job_spec.h"
#include "core/spec/outputs.h"
#include "tests/unit/spec_test_util.h"

namespace drover::spec {
namespace {

using test_util::Decode;
using test_util::Dump;
using test_util::HasOnlyError;
using test_util::Load;

// Given a task whose matrix mixes a static key and a dynamic one, the load
// should give one placeholder named like the task, holding both keys, and
// its dependents should need the placeholder.
TEST(DynamicMatrixTest, LoadsAsOnePlaceholder) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  plan: {run: echo}
  fan:
    needs: [plan]
    matrix: {os: [linux, mac], shard: "${tasks.plan.outputs.shards}"}
    run: "work ${matrix.os} ${matrix.shard}"
  report: {needs: [fan], run: "echo ${tasks.fan.outputs.n}"}
)");
  ASSERT_TRUE(r.ok()) << Dump(r);
  ASSERT_EQ(r.spec->tasks.size(), 3u);
  const TaskSpec& fan = r.spec->tasks[1];
  EXPECT_EQ(fan.name, "fan");
  EXPECT_EQ(fan.base_name, "fan");
  ASSERT_TRUE(fan.dynamic);
  EXPECT_EQ(fan.needs, (std::vector<uint32_t>{0}));
  EXPECT_EQ(fan.dynamic->keys, (std::vector<std::string>{"os", "shard"}));
  ASSERT_EQ(fan.dynamic->sources.size(), 1u);
  EXPECT_EQ(fan.dynamic->sources[0].key, 1u);
  EXPECT_EQ(SourceIndex(fan.dynamic->sources[0].ref), 0u);
  EXPECT_EQ(FanoutWaitReason(fan), "fan-out waits for plan's output shards");
  const TaskSpec& report = r.spec->tasks[2];
  EXPECT_EQ(report.needs, (std::vector<uint32_t>{1}));
  ASSERT_TRUE(report.deferred);
  EXPECT_TRUE(report.deferred->refs[0].dynamic);
}

// Given the placeholder and values from the upstream, ExpandDynamic should
// give the product of the keys in static-matrix order (last key fastest),
// named, rendered and with the placeholder's needs.
TEST(DynamicMatrixTest, ExpandsLikeAStaticMatrix) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  plan: {run: echo}
  fan:
    needs: [plan]
    matrix: {os: [linux, mac], shard: "${tasks.plan.outputs.shards}"}
    run: ["work", "${matrix.os}", "${matrix.shard}"]
)");
  ASSERT_TRUE(r.ok()) << Dump(r);
  const TaskSpec& fan = r.spec->tasks[1];
  Result<MatrixValues> shards = ParseMatrixValues(R"(["a", 2])", /*several_keys=*/true);
  ASSERT_TRUE(shards.ok()) << shards.status().ToString();
  ASSERT_EQ(DynamicInstanceCount(fan, {*shards}), 4u);
  const std::vector<TaskSpec> instances = ExpandDynamic(fan, {*shards});
  ASSERT_EQ(instances.size(), 4u);
  EXPECT_EQ(instances[0].name, "fan[os=linux,shard=a]");
  EXPECT_EQ(instances[1].name, "fan[os=linux,shard=2]");
  EXPECT_EQ(instances[2].name, "fan[os=mac,shard=a]");
  EXPECT_EQ(instances[3].name, "fan[os=mac,shard=2]");
  for (const TaskSpec& ts : instances) {
    EXPECT_FALSE(ts.dynamic);
    EXPECT_EQ(ts.base_name, "fan");
    EXPECT_EQ(ts.needs, (std::vector<uint32_t>{0}));
    EXPECT_NE(ts.fingerprint, 0u);
  }
  EXPECT_EQ(Decode(instances[3]).argv, (std::vector<std::string>{"work", "mac", "2"}));
  EXPECT_EQ(instances[3].matrix, (EnvList{{"os", "mac"}, {"shard", "2"}}));
  EXPECT_NE(instances[0].fingerprint, instances[1].fingerprint);
}

// Given values of every JSON scalar type, `${matrix.KEY}` as a whole args
// value should take their JSON type, as a static matrix's plain values do.
TEST(DynamicMatrixTest, ValuesKeepTheirJsonType) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  plan: {run: echo}
  fan:
    backend: threads
    fn: echo
    needs: [plan]
    matrix: {v: "${tasks.plan.result}"}
    args: {v: "${matrix.v}"}
)");
  ASSERT_TRUE(r.ok()) << Dump(r);
  Result<MatrixValues> v = ParseMatrixValues(R"([1, "1x", true, 2.5])", false);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  const std::vector<TaskSpec> instances = ExpandDynamic(r.spec->tasks[1], {*v});
  ASSERT_EQ(instances.size(), 4u);
  EXPECT_EQ(Decode(instances[0]).args_json, R"({"v":1})");
  EXPECT_EQ(Decode(instances[1]).args_json, R"({"v":"1x"})");
  EXPECT_EQ(Decode(instances[2]).args_json, R"({"v":true})");
  EXPECT_EQ(Decode(instances[3]).args_json, R"({"v":2.5})");
}

// Given outputs that are not a JSON list of usable scalars,
// ParseMatrixValues should fail saying what is wrong with it.
TEST(DynamicMatrixTest, RefusesBadValueLists) {
  struct Case {
    const char* text;
    bool several_keys;
    const char* words;
  };
  for (const Case& c : std::vector<Case>{
           {"a,b", false, "not JSON"},
           {R"({"a": 1})", false, "not a JSON list"},
           {"[]", false, "empty list"},
           {R"(["a", ["b"]])", false, "item 2 is a list"},
           {R"(["a", null])", false, "item 2 is null"},
           {R"(["a", "a"])", false, "is a duplicate"},
           {R"(["a\nb"])", false, "control character"},
           {R"(["a,b"])", true, "holds ','"},
       }) {
    Result<MatrixValues> v = ParseMatrixValues(c.text, c.several_keys);
    ASSERT_FALSE(v.ok()) << c.text;
    EXPECT_NE(v.status().message().find(c.words), std::string::npos)
        << c.text << ": " << v.status().message();
  }
  EXPECT_TRUE(ParseMatrixValues(R"(["a,b"])", false).ok());
}

// Given a dynamic key whose reference names a task outside `needs`, the
// load should fail at the value with a "did you mean".
TEST(DynamicMatrixTest, ReferenceMustBeInNeeds) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  plan: {run: echo}
  plan2: {run: echo}
  fan:
    needs: [plan2]
    matrix: {shard: "${tasks.plan.outputs.shards}"}
    run: echo
)");
  EXPECT_TRUE(
      HasOnlyError(r, 7, 21, {"'plan' is not in its needs", "did you mean 'plan2'"}));
}

// Given a dynamic key that is more than one reference (text around it),
// the load should fail saying what a dynamic key must be.
TEST(DynamicMatrixTest, PartialStringIsAnError) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  plan: {run: echo}
  fan:
    needs: [plan]
    matrix: {shard: "x-${tasks.plan.outputs.shards}"}
    run: echo
)");
  EXPECT_TRUE(HasOnlyError(r, 6, 21, {"exactly one reference", "dynamic matrix"}));
}

// Given a dynamic key fed by a matrix task's output (one list per
// instance), the load should fail and say how to pick one instance; picking
// one is accepted.
TEST(DynamicMatrixTest, MatrixUpstreamNeedsAnInstance) {
  const LoadResult bad = Load(R"(
version: 1
tasks:
  plan: {matrix: {n: [1, 2]}, run: echo}
  fan:
    needs: [plan]
    matrix: {shard: "${tasks.plan.outputs.shards}"}
    run: echo
)");
  EXPECT_TRUE(HasOnlyError(bad, 6, 21, {"has a matrix", "${tasks.plan[KEY=VALUE]"}));
  const LoadResult good = Load(R"(
version: 1
tasks:
  plan: {matrix: {n: [1, 2]}, run: echo}
  fan:
    needs: [plan]
    matrix: {shard: "${tasks.plan[n=2].outputs.shards}"}
    run: echo
)");
  ASSERT_TRUE(good.ok()) << Dump(good);
  const TaskSpec& fan = good.spec->tasks[2];
  ASSERT_TRUE(fan.dynamic);
  EXPECT_EQ(SourceIndex(fan.dynamic->sources[0].ref), 1u);
  EXPECT_EQ(FanoutWaitReason(fan), "fan-out waits for plan[n=2]'s output shards");
}

// Given a dynamic matrix fed by another dynamic task, or a selector on a
// dynamic task, the load should fail: both need values known at load.
TEST(DynamicMatrixTest, NoNestedFanOutOrPicks) {
  const LoadResult nested = Load(R"(
version: 1
tasks:
  plan: {run: echo}
  a: {needs: [plan], matrix: {s: "${tasks.plan.outputs.s}"}, run: echo}
  b: {needs: [a], matrix: {t: "${tasks.a.outputs.t}"}, run: echo}
)");
  EXPECT_TRUE(
      HasOnlyError(nested, 5, 31, {"dynamic matrix itself", "no nested fan-out"}));
  const LoadResult pick = Load(R"(
version: 1
tasks:
  plan: {run: echo}
  a: {needs: [plan], matrix: {s: "${tasks.plan.outputs.s}"}, run: echo}
  b: {needs: [a], run: "echo ${tasks.a[s=x].outputs.t}"}
)");
  EXPECT_TRUE(HasOnlyError(pick, 5, 24, {"no instance can be picked"}));
}

// Given a dependent that refers to a dynamic task's outputs, the render
// should give the JSON list of its instances' outputs in `indices` order.
TEST(DynamicMatrixTest, DependentSeesTheListOfInstances) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  plan: {run: echo}
  fan: {needs: [plan], matrix: {s: "${tasks.plan.outputs.s}"}, run: echo}
  report: {needs: [fan], run: "echo ${tasks.fan.outputs.n}"}
)");
  ASSERT_TRUE(r.ok()) << Dump(r);
  TaskSpec report = r.spec->tasks[2];
  auto deferred = std::make_shared<DeferredRender>(*report.deferred);
  deferred->refs[0].indices = {1, 3};
  report.deferred = deferred;
  const Outputs one{{"n", "1"}}, three{{"n", "x"}};
  TaskSpec out = report;
  ASSERT_TRUE(RenderWithOutputs(
                  report,
                  [&](uint32_t i) -> const Outputs* {
                    return i == 1 ? &one : i == 3 ? &three : nullptr;
                  },
                  &out)
                  .ok());
  EXPECT_EQ(Decode(out).argv.back(), R"(echo [1,"x"])");
}

}  // namespace
}  // namespace drover::spec

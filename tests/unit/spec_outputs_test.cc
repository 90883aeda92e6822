// core/spec: references to upstream outputs (docs/spec.md, "Outputs"):
// `${tasks.NAME.outputs.KEY}` parsing, the load-time errors, and the
// dispatch-time render with the upstream outputs in scope.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "core/spec/job_spec.h"
#include "core/spec/outputs.h"
#include "tests/unit/spec_test_util.h"

namespace drover::spec {
namespace {

using test_util::Decode;
using test_util::Dump;
using test_util::HasOnlyError;
using test_util::Load;

// Renders instance `name` of `spec` with `outputs` by instance name.
Status RenderWith(const JobSpec& spec, const std::string& name,
                  const std::map<std::string, Outputs>& outputs, TaskSpec* out) {
  const std::optional<uint32_t> t = spec.Find(name);
  EXPECT_TRUE(t.has_value()) << name;
  *out = spec.tasks[*t];
  return RenderWithOutputs(
      spec.tasks[*t],
      [&](uint32_t index) -> const Outputs* {
        auto it = outputs.find(spec.tasks[index].name);
        return it == outputs.end() ? nullptr : &it->second;
      },
      out);
}

// Given the three forms of a reference, ParseOutputRef should split each
// into task, selector and key, and give its length.
TEST(OutputRefTest, ParsesEachForm) {
  size_t length = 0;
  Result<OutputRef> a = ParseOutputRef("${tasks.plan.outputs.shards} tail", &length);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->task, "plan");
  EXPECT_EQ(a->key, "shards");
  EXPECT_TRUE(a->select.empty());
  EXPECT_EQ(length, 28u);

  Result<OutputRef> b = ParseOutputRef("${tasks.sum.v2.result}", &length);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->task, "sum.v2");
  EXPECT_EQ(b->key, "result");

  Result<OutputRef> c =
      ParseOutputRef("${tasks.build[os=linux,arch=arm].outputs.digest}", &length);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->task, "build");
  EXPECT_EQ(c->select, (EnvList{{"os", "linux"}, {"arch", "arm"}}));
  EXPECT_EQ(c->key, "digest");
}

// Given malformed references, ParseOutputRef should fail saying how to
// write one.
TEST(OutputRefTest, RefusesMalformedReferences) {
  size_t length = 0;
  for (const char* bad : {"${tasks.plan", "${tasks.plan}", "${tasks.plan.outputs.}",
                          "${tasks.plan.outputs.a b}", "${tasks.build[os].outputs.x}",
                          "${tasks.build[os=linux.outputs.x}", "${tasks..result}"}) {
    Result<OutputRef> r = ParseOutputRef(bad, &length);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("${tasks.NAME.outputs.KEY}"), std::string::npos)
        << r.status().message();
  }
}

// Given a spawn task that refers to an upstream output in run, env and cwd,
// the load should keep the references as their text (for the summary and
// the fingerprint) and the dispatch-time render should put the values in.
TEST(SpecOutputsTest, SpawnReferencesRenderAtDispatch) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  plan: {run: echo}
  use:
    needs: [plan]
    run: "echo ${tasks.plan.outputs.version}"
    env: {V: "v${tasks.plan.outputs.version}"}
    cwd: "/tmp/${tasks.plan.outputs.dir}"
)");
  ASSERT_TRUE(r.ok()) << Dump(r);
  const TaskSpec& use = r.spec->tasks[1];
  ASSERT_TRUE(use.deferred);
  EXPECT_EQ(Decode(use).argv.back(), "echo ${tasks.plan.outputs.version}");
  EXPECT_FALSE(r.spec->tasks[0].deferred);

  TaskSpec out;
  ASSERT_TRUE(
      RenderWith(*r.spec, "use", {{"plan", {{"version", "1.2"}, {"dir", "x"}}}}, &out)
          .ok());
  const auto d = Decode(out);
  EXPECT_EQ(d.argv.back(), "echo 1.2");
  EXPECT_EQ(d.env, (EnvList{{"V", "v1.2"}}));
  EXPECT_EQ(d.cwd, "/tmp/x");
  EXPECT_EQ(out.fingerprint, use.fingerprint);
}

// Given threads args and a fork message with references, a whole value
// should take the output's JSON form (a number, a list) and a reference
// inside text should be escaped into the string, as ${matrix.KEY} is.
TEST(SpecOutputsTest, JsonReferencesAreTyped) {
  const LoadResult r = Load(R"(
version: 1
pools:
  p: {command: [node, x.js]}
tasks:
  plan: {run: echo}
  sum:
    backend: threads
    fn: sum
    needs: [plan]
    args: {numbers: "${tasks.plan.outputs.list}", n: "${tasks.plan.outputs.n}", s: "${tasks.plan.outputs.s}", t: "n=${tasks.plan.outputs.n}"}
  msg:
    backend: fork
    pool: p
    needs: [sum]
    message: "${tasks.sum.result}"
)");
  ASSERT_TRUE(r.ok()) << Dump(r);
  TaskSpec out;
  ASSERT_TRUE(RenderWith(*r.spec, "sum",
                         {{"plan", {{"list", "[1, 2,3]"}, {"n", "7"}, {"s", "a\"b"}}}},
                         &out)
                  .ok());
  EXPECT_EQ(Decode(out).args_json, R"({"numbers":[1,2,3],"n":7,"s":"a\"b","t":"n=7"})");
  ASSERT_TRUE(
      RenderWith(*r.spec, "msg", {{"sum", {{"result", "{\"a\": 1}"}}}}, &out).ok());
  EXPECT_EQ(Decode(out).message_json, R"({"a":1})");
}

// Given a reference to a matrix task, the value should be the JSON list
// of its instances' outputs in instance order, and [KEY=V] should pick one.
TEST(SpecOutputsTest, MatrixOutputsAreAListOrPicked) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  shard:
    matrix: {n: [1, 2, 3]}
    run: echo
  all:
    needs: [shard]
    run: "echo ${tasks.shard.outputs.count}"
  one:
    needs: [shard]
    run: "echo ${tasks.shard[n=2].outputs.count}"
)");
  ASSERT_TRUE(r.ok()) << Dump(r);
  const std::map<std::string, Outputs> outputs = {{"shard[n=1]", {{"count", "10"}}},
                                                  {"shard[n=2]", {{"count", "20"}}},
                                                  {"shard[n=3]", {{"count", "x"}}}};
  TaskSpec out;
  ASSERT_TRUE(RenderWith(*r.spec, "all", outputs, &out).ok());
  EXPECT_EQ(Decode(out).argv.back(), R"(echo [10,20,"x"])");
  ASSERT_TRUE(RenderWith(*r.spec, "one", outputs, &out).ok());
  EXPECT_EQ(Decode(out).argv.back(), "echo 20");
}

// Given an upstream that did not produce the key, the render should fail
// naming the reference, the task and the keys it has (not render "").
TEST(SpecOutputsTest, MissingKeyFailsTheRender) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  plan: {run: echo}
  use: {needs: [plan], run: "echo ${tasks.plan.outputs.version}"}
)");
  ASSERT_TRUE(r.ok()) << Dump(r);
  TaskSpec out;
  const Status s = RenderWith(*r.spec, "use", {{"plan", {{"verison", "1"}}}}, &out);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(
      s.message().find("${tasks.plan.outputs.version}: task 'plan' produced no output "
                       "'version' (its outputs: verison)"),
      std::string::npos)
      << s.message();
}

// Given a task without references, its fingerprint should not depend on
// this feature: the same as a task that only differs by a reference.
TEST(SpecOutputsTest, ReferenceTextIsPartOfTheFingerprint) {
  const LoadResult a = Load(
      "version: 1\ntasks:\n  p: {run: echo}\n  u: {needs: [p], run: "
      "\"echo ${tasks.p.outputs.a}\"}\n");
  const LoadResult b = Load(
      "version: 1\ntasks:\n  p: {run: echo}\n  u: {needs: [p], run: "
      "\"echo ${tasks.p.outputs.b}\"}\n");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a.spec->tasks[1].fingerprint, b.spec->tasks[1].fingerprint);
  EXPECT_EQ(a.spec->tasks[0].fingerprint, b.spec->tasks[0].fingerprint);
}

// Given a reference to a task that is not in needs, an unknown task, or a
// malformed reference, the load should fail at the value with a clear
// message (and a suggestion where one fits).
TEST(SpecOutputsTest, LoadTimeErrors) {
  EXPECT_TRUE(HasOnlyError(Load(R"(
version: 1
tasks:
  plan: {run: echo}
  use: {run: "echo ${tasks.plan.outputs.v}"}
)"),
                           4, 14, {"task 'plan' is not in its needs"}));
  EXPECT_TRUE(HasOnlyError(Load(R"(
version: 1
tasks:
  plan: {run: echo}
  use: {needs: [plan], run: "echo ${tasks.plna.outputs.v}"}
)"),
                           4, 29, {"unknown task 'plna'", "did you mean 'plan'?"}));
  EXPECT_TRUE(HasOnlyError(Load(R"(
version: 1
tasks:
  plan: {run: echo}
  use: {needs: [plan], run: "echo ${tasks.plan.output.v}"}
)"),
                           4, 29, {"malformed reference", "${tasks.NAME.outputs.KEY}"}));
  EXPECT_TRUE(HasOnlyError(Load(R"(
version: 1
tasks:
  s: {matrix: {n: [1, 2]}, run: echo}
  use: {needs: [s], run: "echo ${tasks.s[n=3].outputs.v}"}
)"),
                           4, 26, {"has no value '3' for key 'n'"}));
  EXPECT_TRUE(HasOnlyError(Load(R"(
version: 1
tasks:
  s: {matrix: {n: [1, 2]}, run: echo}
  use: {needs: [s], run: "echo ${tasks.s[m=1].outputs.v}"}
)"),
                           4, 26, {"is 'n', not 'm'"}));
}

}  // namespace
}  // namespace drover::spec

// A task kind registered by a test, beside the built-in ones: the loader
// reads its keys through TaskReader, reports them in tasks of other
// backends, and fingerprints its tasks with the generic formula.
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backends/kinds.h"
#include "core/spec/fingerprint.h"
#include "core/spec/task_kind.h"
#include "tests/unit/spec_test_util.h"

namespace drover::spec {
namespace {

using test_util::HasOnlyError;
using test_util::Load;
using test_util::Spec;

// `backend: echo` with `say: TEXT` (also in `defaults`): its payload is the
// text, rendered per instance.
class EchoKind : public TaskKind {
 public:
  class Compiled : public CompiledTask {
   public:
    Template say;
    void Render(const Instance& instance, TaskSpec* ts) const override {
      ts->payload = instance.Render(say);
      ts->summary = "echo " + ts->payload;
    }
  };

  std::vector<TaskKey> Keys() const override {
    return {{"say", KeyType::kText, true, "a string", "backend echo"}};
  }
  std::unique_ptr<CompiledTask> Read(TaskReader& r) const override {
    auto task = std::make_unique<Compiled>();
    if (const Located* say = r.Text("say")) {
      task->say = r.Compile(*say);
    } else {
      r.Error(r.where(), r.Ref() + " has backend echo but no 'say'");
    }
    return task;
  }
};

LoadOptions WithEcho() {
  static const TaskKinds* const kinds = [] {
    auto* k = new TaskKinds();
    AddBuiltinTaskKinds(k);
    k->Add("echo", std::make_unique<EchoKind>());
    return k;
  }();
  LoadOptions options;
  options.kinds = kinds;
  return options;
}

// Given a task of a registered kind with a matrix, should render its
// payload per instance and fingerprint it with the generic formula.
TEST(SpecKindsTest, RegisteredKindRendersItsPayload) {
  const LoadResult r = Load(R"(
version: 1
defaults: {say: hi}
tasks:
  a: {backend: echo, matrix: {n: [1, 2]}, say: "n=${matrix.n}"}
  b: {backend: echo}
)", WithEcho());
  const JobSpec& spec = Spec(r);
  ASSERT_EQ(spec.tasks.size(), 3u);
  EXPECT_EQ(spec.tasks[0].payload, "n=1");
  EXPECT_EQ(spec.tasks[1].payload, "n=2");
  EXPECT_EQ(spec.tasks[2].payload, "hi");
  EXPECT_EQ(spec.tasks[2].summary, "echo hi");
  EXPECT_EQ(spec.tasks[0].fingerprint, TaskFingerprint(spec.tasks[0]));
  EXPECT_NE(spec.tasks[0].fingerprint, spec.tasks[1].fingerprint);
}

// Given the kind's key in a spawn task, should say where it applies.
TEST(SpecKindsTest, ItsKeysApplyOnlyToIt) {
  const LoadResult r = Load(R"(
version: 1
tasks: {a: {run: x, say: hi}}
)", WithEcho());
  EXPECT_TRUE(HasOnlyError(r, 2, 21, {"'say' in task 'a' only applies to backend echo",
                                      "this task's backend is spawn"}));
}

// Given an unknown backend, should list the registered ones.
TEST(SpecKindsTest, UnknownBackendListsRegisteredOnes) {
  const LoadResult r = Load(R"(
version: 1
tasks: {a: {backend: klingon, run: x}}
)", WithEcho());
  EXPECT_TRUE(HasOnlyError(
      r, 2, 22, {"(the backends are spawn, fork, threads, cluster and echo)"}));
}

// Given no kinds at all, should refuse to load rather than guess.
TEST(SpecKindsTest, KindsAreRequired) {
  const LoadResult r = LoadString("version: 1\ntasks: {a: {run: x}}\n", "job.yaml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].message.find("LoadOptions::kinds"), std::string::npos);
}

}  // namespace
}  // namespace drover::spec

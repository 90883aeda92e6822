// Task caching end to end through `drover run` (docs/spec.md, "Caching"):
// a hit skips the task and hands its outputs and artifacts to dependents
// as if it had run; a miss runs it, and `drover explain` names the part of
// the key that changed (definition, input file, upstream output, upstream
// artifact); `--no-cache` runs everything. Real processes, a real SQLite
// file, no sleeps: each task appends a line to a counter file per run.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/integration/cli_test_util.h"

namespace drover {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::DroverCliTest;
using testing::ProcessResult;
using testing::ReadFile;
using testing::TasksByName;
using testing::WriteFile;

class CacheTest : public DroverCliTest {
 protected:
  // How many times `task` ran: the lines of its counter file.
  size_t Runs(const std::string& task) {
    const std::string text = ReadFile(work_ / ("count_" + task)).value_or("");
    size_t lines = 0;
    for (char c : text) lines += c == '\n';
    return lines;
  }

  // `drover explain TASK -o json`'s explanation of the latest job's task.
  std::string Explain(const std::string& task) {
    const ProcessResult r =
        Drover({"explain", task, "-o", "json", "--state-dir", state_.string()});
    EXPECT_EQ(r.exit_code, 0) << r.Describe();
    const json doc = json::parse(r.out, nullptr, false);
    if (!doc.is_object() || doc["tasks"].empty()) {
      ADD_FAILURE() << "explain " << task << ": " << r.out;
      return "";
    }
    return doc["tasks"][0]["explanation"].is_string()
               ? doc["tasks"][0]["explanation"].get<std::string>()
               : "";
  }

  // `yaml` with every "@W@" replaced by work_: task commands use absolute
  // paths, since a task with artifacts runs in a fresh directory of its own.
  std::string InWork(std::string yaml) {
    const std::string w = work_.string();
    for (size_t at = yaml.find("@W@"); at != std::string::npos;
         at = yaml.find("@W@", at)) {
      yaml.replace(at, 3, w);
      at += w.size();
    }
    return yaml;
  }

  // The pipeline of these tests; `build_word` changes build's definition.
  std::string PipelineSpec(const std::string& build_word = "built") {
    std::string yaml = InWork(R"yaml(version: 1
name: cache-pipeline
defaults: {cache: false}
tasks:
  gen:
    run: 'echo "version=$(cat @W@/ver.txt)" >> "$DROVER_OUTPUT"'
  art:
    artifacts: [data.txt]
    run: 'cat @W@/data.src > data.txt'
  build:
    cache: true
    inputs: [src/main.c, "src/*.h"]
    artifacts: [out/app]
    run: 'echo WORD >> @W@/count_build && mkdir -p out && cp @W@/src/main.c out/app && echo "sum=$(cksum < @W@/src/main.c | cut -d" " -f1)" >> "$DROVER_OUTPUT"'
  consume:
    cache: true
    needs: [gen]
    run: 'echo ${tasks.gen.outputs.version} >> @W@/count_consume'
  pack:
    cache: true
    needs: [art]
    run: 'cat "$DROVER_INPUTS/art/data.txt" >> @W@/count_pack'
  use:
    needs: [build]
    run: 'echo "${tasks.build.outputs.sum} $(cat "$DROVER_INPUTS/build/out/app")" > @W@/used.txt'
)yaml");
    yaml.replace(yaml.find("WORD"), 4, build_word);
    return Spec("cache.yaml", yaml);
  }

  void SetUp() override {
    DroverCliTest::SetUp();
    fs::create_directories(work_ / "src");
    WriteFile(work_ / "src" / "main.c", "int main() { return 0; }\n");
    WriteFile(work_ / "src" / "util.h", "#define ONE 1\n");
    WriteFile(work_ / "ver.txt", "1.0\n");
    WriteFile(work_ / "data.src", "data v1\n");
  }
};

// Given a pipeline run once, a second run with nothing changed should
// skip every `cache: true` task (state cached, from the first job and
// attempt) and its dependent should still get the cached task's outputs
// and artifacts; `drover explain` should say where each result came from.
TEST_F(CacheTest, HitSkipsTasksAndDependentsStillGetOutputsAndArtifacts) {
  const std::string spec = PipelineSpec();
  const ProcessResult first = Run(spec);
  ASSERT_EQ(first.exit_code, 0) << first.Describe();
  EXPECT_EQ(Runs("build"), 1u);
  EXPECT_EQ(Runs("consume"), 1u);
  EXPECT_EQ(Runs("pack"), 1u);
  EXPECT_EQ(Explain("build"), "ran: no earlier successful attempt");
  const json first_status = Status();
  const std::string first_job = first_status["job"]["id"].get<std::string>();
  const std::string used = ReadFile(work_ / "used.txt").value_or("");
  ASSERT_NE(used.find("int main() { return 0; }"), std::string::npos) << used;
  fs::remove(work_ / "used.txt");

  const ProcessResult second = Run(spec);
  ASSERT_EQ(second.exit_code, 0) << second.Describe();
  EXPECT_EQ(Runs("build"), 1u) << "a hit must not run the task";
  EXPECT_EQ(Runs("consume"), 1u);
  EXPECT_EQ(Runs("pack"), 1u);
  auto tasks = TasksByName(Status());
  EXPECT_EQ(tasks["build"]["status"], "cached");
  EXPECT_EQ(tasks["consume"]["status"], "cached");
  EXPECT_EQ(tasks["gen"]["status"], "succeeded");
  EXPECT_EQ(tasks["use"]["status"], "succeeded");
  EXPECT_NE(tasks["build"]["detail"].get<std::string>().find("job " + first_job),
            std::string::npos)
      << tasks["build"];
  EXPECT_FALSE(tasks["build"]["outputs"]["sum"].get<std::string>().empty());
  // The dependent ran again, with the cached task's output and artifact.
  EXPECT_EQ(ReadFile(work_ / "used.txt").value_or(""), used);
  EXPECT_EQ(Explain("build"),
            "cached: the same cache key as job " + first_job + ", task build, attempt 1");
  // The cached artifact is listed for the new job too.
  const ProcessResult listed =
      Drover({"artifacts", "build", "--state-dir", state_.string()});
  ASSERT_EQ(listed.exit_code, 0) << listed.Describe();
  EXPECT_NE(listed.out.find("out/app"), std::string::npos) << listed.out;
  const ProcessResult text = Drover({"explain", "build", "--state-dir", state_.string()});
  EXPECT_NE(text.out.find("input src/main.c"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("input src/util.h"), std::string::npos) << text.out;
}

// Given a cached pipeline, changing one part of a task's key at a time
// should re-run that task only, and `drover explain` should name the part:
// an input file, an upstream output, an upstream artifact, the definition.
TEST_F(CacheTest, ExplainNamesThePartOfTheKeyThatChanged) {
  ASSERT_EQ(Run(PipelineSpec()).exit_code, 0);
  ASSERT_EQ(Run(PipelineSpec()).exit_code, 0);
  ASSERT_EQ(Runs("build"), 1u);

  WriteFile(work_ / "src" / "main.c", "int main() { return 1; }\n");
  ProcessResult r = Run(PipelineSpec());
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(Runs("build"), 2u);
  EXPECT_EQ(Runs("consume"), 1u);
  EXPECT_EQ(Runs("pack"), 1u);
  EXPECT_EQ(
      Explain("build").rfind("ran: input src/main.c changed (since attempt 1 of job ", 0),
      0u)
      << Explain("build");

  WriteFile(work_ / "ver.txt", "2.0\n");
  r = Run(PipelineSpec());
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(Runs("consume"), 2u);
  EXPECT_EQ(Runs("build"), 2u);
  EXPECT_EQ(Explain("consume").rfind("ran: upstream gen's output version changed", 0), 0u)
      << Explain("consume");

  WriteFile(work_ / "data.src", "data v2\n");
  r = Run(PipelineSpec());
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(Runs("pack"), 2u);
  EXPECT_EQ(Runs("consume"), 2u);
  EXPECT_EQ(Explain("pack").rfind("ran: upstream art's artifact data.txt changed", 0), 0u)
      << Explain("pack");

  r = Run(PipelineSpec("rebuilt"));
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(Runs("build"), 3u);
  EXPECT_EQ(Explain("build").rfind("ran: definition changed", 0), 0u) << Explain("build");
  EXPECT_EQ(Explain("consume").rfind("cached: ", 0), 0u) << Explain("consume");

  // A new input file matched by a glob is a change too.
  WriteFile(work_ / "src" / "extra.h", "#define TWO 2\n");
  r = Run(PipelineSpec("rebuilt"));
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(Runs("build"), 4u);
  EXPECT_EQ(Explain("build").rfind("ran: input src/extra.h added", 0), 0u)
      << Explain("build");
}

// Given a cached pipeline, `--no-cache` should run every task and say so,
// and the run after it should be cached again (from the --no-cache run).
TEST_F(CacheTest, NoCacheRunsEverything) {
  ASSERT_EQ(Run(PipelineSpec()).exit_code, 0);
  ProcessResult r = Run(PipelineSpec(), {"--no-cache"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(Runs("build"), 2u);
  EXPECT_EQ(Runs("consume"), 2u);
  EXPECT_EQ(Runs("pack"), 2u);
  EXPECT_EQ(Explain("build"), "ran: the run was started with --no-cache");
  const std::string no_cache_job = Status()["job"]["id"].get<std::string>();

  r = Run(PipelineSpec());
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(Runs("build"), 2u);
  EXPECT_EQ(Explain("build"), "cached: the same cache key as job " + no_cache_job +
                                  ", task build, attempt 1");
}

// Given a job whose every task is cached, `--resume` of it should carry
// the cached tasks over, and the job should succeed without running any.
TEST_F(CacheTest, CachedCountsAsSuccessForResume) {
  const std::string spec = Spec("small.yaml", InWork(R"(version: 1
name: cache-small
defaults: {cache: true}
tasks:
  a: {run: 'echo a >> @W@/count_a'}
)"));
  ASSERT_EQ(Run(spec).exit_code, 0);
  ASSERT_EQ(Run(spec).exit_code, 0);
  EXPECT_EQ(Runs("a"), 1u);
  EXPECT_EQ(TasksByName(Status())["a"]["status"], "cached");
  const ProcessResult resumed = Run(spec, {"--resume"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.Describe();
  EXPECT_EQ(Runs("a"), 1u);
  EXPECT_EQ(TasksByName(Status())["a"]["status"], "cached");
}

// Given an input that matches no file, `drover run` should refuse the spec
// with FILE:LINE:COL naming the input and its task, and run nothing.
TEST_F(CacheTest, MissingInputIsAnErrorAtItsLine) {
  const std::string spec = Spec("missing.yaml", InWork(R"(version: 1
name: cache-missing
tasks:
  a:
    cache: true
    inputs: [nothere.c]
    run: 'echo a >> @W@/count_a'
)"));
  const ProcessResult r = Run(spec);
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_NE(
      r.err.find("missing.yaml:6:14: input 'nothere.c' of task 'a' matched no file in "),
      std::string::npos)
      << r.err;
  EXPECT_EQ(Runs("a"), 0u);
}

}  // namespace
}  // namespace drover

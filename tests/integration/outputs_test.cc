// Task outputs end to end through `drover run` (docs/spec.md, "Outputs"):
// $DROVER_OUTPUT of spawn tasks, the results of threads and fork tasks,
// the responses of cluster tasks, each reaching its dependents through
// `${tasks.NAME...}`; the failures (a missing key, a bad line, the cap);
// outputs kept in the store across runs (`--resume`); `drover outputs` and
// `drover status`. Real processes, a real SQLite file, no sleeps.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/integration/cli_test_util.h"

namespace drover {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::DroverCliTest;
using testing::LinesWith;
using testing::ProcessResult;
using testing::TasksByName;

size_t CountLinesIn(const fs::path& path) {
  std::ifstream in(path);
  return static_cast<size_t>(std::count(std::istreambuf_iterator<char>(in), {}, '\n'));
}

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Given a spawn task writing $DROVER_OUTPUT (one-line and multi-line), a
// threads task taking its list as typed args, a fork task taking the
// threads result as its message and a cluster task posting a multi-line
// output, a last task should see every upstream output through env.
TEST_F(DroverCliTest, OutputsOfEveryBackendReachDependents) {
  const std::string spec = Spec("all.yaml", std::string(R"(version: 1
name: outputs-all
pools:
  py: {command: [python3, )") + DROVER_SOURCE_DIR +
                                                R"(/configs/examples/ipc_worker.py]}
services:
  echo: {command: [drover, serve, echo]}
tasks:
  plan:
    run: |
      echo 'numbers=[3, 1, 2]' >> "$DROVER_OUTPUT"
      printf 'note<<END\nline one\nline two\nEND\n' >> "$DROVER_OUTPUT"
  sort:
    backend: threads
    fn: sort
    needs: [plan]
    args: {numbers: "${tasks.plan.outputs.numbers}"}
  stats:
    backend: fork
    pool: py
    needs: [sort]
    message: "${tasks.sort.result}"
  ask:
    backend: cluster
    service: echo
    needs: [plan]
    request: {method: POST, path: /, body: "${tasks.plan.outputs.note}"}
  check:
    needs: [plan, sort, stats, ask]
    env:
      SORTED: "${tasks.sort.result}"
      COUNT: "${tasks.stats.result}"
      STATUS: "${tasks.ask.outputs.status}"
      BODY: "${tasks.ask.outputs.body}"
    run: printf '%s|%s|%s|%s' "$SORTED" "$COUNT" "$STATUS" "$BODY" > seen.txt
)");
  const ProcessResult r = Run(spec);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(ReadAll(work_ / "seen.txt"),
            R"([1,2,3]|{"count":3,"sum":6.0,"min":1.0,"mean":2.0,"max":3.0}|200|line one)"
            "\nline two");

  // `drover outputs` prints them back in the $DROVER_OUTPUT syntax.
  const ProcessResult out = Drover({"outputs", "plan", "--state-dir", state_.string()});
  ASSERT_EQ(out.exit_code, 0) << out.Describe();
  EXPECT_EQ(out.out, "note<<EOF\nline one\nline two\nEOF\nnumbers=[3, 1, 2]\n");
  const ProcessResult js =
      Drover({"outputs", "ask", "--output", "json", "--state-dir", state_.string()});
  ASSERT_EQ(js.exit_code, 0) << js.Describe();
  const json doc = json::parse(js.out, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << js.out;
  EXPECT_EQ(doc["tasks"][0]["outputs"]["status"], "200");
  EXPECT_EQ(doc["tasks"][0]["outputs"]["body"], "line one\nline two");

  // `drover status` shows them, as text and as JSON.
  auto tasks = TasksByName(Status());
  EXPECT_EQ(tasks["sort"]["outputs"]["result"], "[1,2,3]");
  const ProcessResult table = Drover({"status", "--state-dir", state_.string()});
  EXPECT_EQ(LinesWith(table.out, "  plan", {"numbers=[3, 1, 2]"}).size(), 1u)
      << table.out;
}

// Given a dependent referring to a key its upstream did not write, the
// dependent should fail as missing-input naming the key and the keys there
// are, without running and without retries, and its own dependents be
// blocked.
TEST_F(DroverCliTest, MissingKeyFailsTheDependent) {
  const std::string spec = Spec("missing.yaml", R"(version: 1
name: outputs-missing
tasks:
  plan: {run: 'echo verison=1 >> "$DROVER_OUTPUT"'}
  use:
    needs: [plan]
    retries: 3
    run: "echo ${tasks.plan.outputs.version} > used.txt"
  after: {needs: [use], run: touch after.txt}
)");
  const ProcessResult r = Run(spec);
  ASSERT_EQ(r.exit_code, 1) << r.Describe();
  auto tasks = TasksByName(Status());
  EXPECT_EQ(tasks["plan"]["status"], "succeeded");
  EXPECT_EQ(tasks["use"]["status"], "failed");
  EXPECT_EQ(tasks["use"]["reason"], "missing-input");
  EXPECT_EQ(tasks["use"]["attempts"], 1);
  EXPECT_NE(tasks["use"]["detail"].get<std::string>().find(
                "produced no output 'version' (its outputs: verison)"),
            std::string::npos)
      << tasks["use"];
  EXPECT_EQ(tasks["after"]["status"], "blocked");
  EXPECT_FALSE(fs::exists(work_ / "used.txt"));
}

// Given a task whose $DROVER_OUTPUT has a bad line, and one past the size
// cap, each should fail as bad-outputs with the reason, though it exited 0.
TEST_F(DroverCliTest, BadOutputFileAndCapFailTheTask) {
  const std::string spec = Spec("bad.yaml", R"(version: 1
name: outputs-bad
tasks:
  badline: {run: 'printf "a=1\nnot an output\n" >> "$DROVER_OUTPUT"'}
  toobig: {run: 'head -c 1100000 /dev/zero | tr "\0" x | sed "s/^/big=/" >> "$DROVER_OUTPUT"'}
)");
  const ProcessResult r = Run(spec);
  ASSERT_EQ(r.exit_code, 1) << r.Describe();
  auto tasks = TasksByName(Status());
  EXPECT_EQ(tasks["badline"]["reason"], "bad-outputs");
  EXPECT_NE(tasks["badline"]["detail"].get<std::string>().find(
                "$DROVER_OUTPUT line 2: 'not an output' is neither KEY=VALUE nor"),
            std::string::npos)
      << tasks["badline"];
  EXPECT_EQ(tasks["toobig"]["reason"], "bad-outputs");
  EXPECT_NE(
      tasks["toobig"]["detail"].get<std::string>().find("more than the cap of 1048576"),
      std::string::npos)
      << tasks["toobig"];
}

// Given tasks run one after another on one slot, some leaving their
// $DROVER_OUTPUT empty (the worker renames such a file for the next
// attempt) and some writing it, each attempt should find its own file,
// named for it and empty, get only its own outputs, and the spool should
// hold no outputs file once the run is over.
TEST_F(DroverCliTest, EachAttemptGetsAnEmptyOutputsFileOfItsOwn) {
  std::string spec_text = R"(version: 1
name: outputs-fresh
tasks:
)";
  // Fails when the file is missing, not empty, or named like another's.
  const std::string check =
      R"(test -f "$DROVER_OUTPUT" && ! test -s "$DROVER_OUTPUT" && )"
      R"(case "$DROVER_OUTPUT" in */spool/*.outputs) ;; *) exit 9;; esac && )"
      R"(! grep -qxF "$DROVER_OUTPUT" seen 2>/dev/null && echo "$DROVER_OUTPUT" >> seen)";
  std::string previous;
  for (int i = 0; i < 8; ++i) {
    const std::string name = "t" + std::to_string(i);
    spec_text += "  " + name + ":\n    run: ['sh', '-c', '" + check;
    // Every third task writes an output: the next one gets a new file.
    if (i % 3 == 2) spec_text += " && echo v=" + name + " >> \"$DROVER_OUTPUT\"";
    spec_text += "']\n";
    if (!previous.empty()) spec_text += "    needs: [" + previous + "]\n";
    previous = name;
  }
  const ProcessResult r = Run(Spec("fresh.yaml", spec_text), {"-j", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe() << spec_text;
  auto tasks = TasksByName(Status());
  for (int i = 0; i < 8; ++i) {
    const std::string name = "t" + std::to_string(i);
    EXPECT_EQ(tasks[name]["status"], "succeeded") << tasks[name];
    if (i % 3 == 2) {
      EXPECT_EQ(tasks[name]["outputs"], json({{"v", name}})) << tasks[name];
    } else {
      EXPECT_TRUE(!tasks[name].contains("outputs") || tasks[name]["outputs"].empty())
          << tasks[name];
    }
  }
  EXPECT_EQ(CountLinesIn(work_ / "seen"), 8u);
  size_t left = 0;
  for (const auto& entry : fs::recursive_directory_iterator(state_ / "spool"))
    left += entry.path().extension() == ".outputs";
  EXPECT_EQ(left, 0u) << "outputs files left in the spool";
}

// Given a matrix task's outputs, a dependent should see them as a JSON list
// in instance order, or one instance's with [KEY=VALUE].
TEST_F(DroverCliTest, MatrixOutputsAreAListOrOneInstance) {
  const std::string spec = Spec("matrix.yaml", R"Y(version: 1
name: outputs-matrix
tasks:
  sq:
    matrix: {n: [1, 2, 3]}
    run: 'echo "v=$((${matrix.n} * ${matrix.n}))" >> "$DROVER_OUTPUT"'
  all:
    needs: [sq]
    env: {ALL: "${tasks.sq.outputs.v}", TWO: "${tasks.sq[n=2].outputs.v}"}
    run: 'printf "%s %s" "$ALL" "$TWO" > seen.txt'
)Y");
  const ProcessResult r = Run(spec);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(ReadAll(work_ / "seen.txt"), "[1,4,9] 4");
}

// Given a run whose dependent failed after its upstream succeeded, a
// `--resume` (a new coordinator on the same state directory) should re-run
// only the dependent, with the outputs the first run stored.
TEST_F(DroverCliTest, ResumeUsesStoredOutputs) {
  const std::string spec = Spec("resume.yaml", R"(version: 1
name: outputs-resume
tasks:
  plan: {run: 'echo "token=$$" >> "$DROVER_OUTPUT"; echo x >> plan.runs'}
  use:
    needs: [plan]
    env: {TOKEN: "${tasks.plan.outputs.token}"}
    run: 'test -e go && printf "%s" "$TOKEN" > seen.txt'
)");
  ProcessResult r = Run(spec);
  ASSERT_EQ(r.exit_code, 1) << r.Describe();
  const std::string token = TasksByName(Status())["plan"]["outputs"]["token"];
  ASSERT_FALSE(token.empty());
  std::ofstream(work_ / "go").close();
  r = Run(spec, {"--resume"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(ReadAll(work_ / "plan.runs"), "x\n");  // plan ran once
  EXPECT_EQ(ReadAll(work_ / "seen.txt"), token);
}

// Given `plan` printing shards=["a","b","c"] and a dynamic matrix over
// them, each instance should run once with its value and write its own
// output, a final task should see them as a list in instance order, and
// `drover status` list the instances.
TEST_F(DroverCliTest, DynamicMatrixFansOutOverAnOutput) {
  const std::string spec = Spec("fanout.yaml", R"Y(version: 1
name: outputs-fanout
tasks:
  plan: {run: 'echo ''shards=["a","b","c"]'' >> "$DROVER_OUTPUT"'}
  work:
    needs: [plan]
    matrix: {shard: "${tasks.plan.outputs.shards}"}
    run: 'echo ${matrix.shard} >> ran.txt; echo "up=$(echo ${matrix.shard} | tr a-z A-Z)" >> "$DROVER_OUTPUT"'
  report:
    needs: [work]
    env: {ALL: "${tasks.work.outputs.up}"}
    run: 'printf "%s" "$ALL" > seen.txt'
)Y");
  const ProcessResult r = Run(spec);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(ReadAll(work_ / "seen.txt"), R"(["A","B","C"])");
  std::string ran = ReadAll(work_ / "ran.txt");
  std::sort(ran.begin(), ran.end());
  EXPECT_EQ(ran, "\n\n\nabc");  // each instance once
  auto tasks = TasksByName(Status());
  EXPECT_EQ(tasks.size(), 5u);
  EXPECT_EQ(tasks["work[shard=b]"]["status"], "succeeded");
  EXPECT_EQ(tasks["work[shard=b]"]["outputs"]["up"], "B");
  EXPECT_EQ(tasks.count("work"), 0u);
}

// Given a fan-out whose upstream output is not a list, the task should fail
// as missing-input with the reason and its dependent be blocked; with an
// instance failing, `--resume` should re-run only that instance.
TEST_F(DroverCliTest, DynamicMatrixFailuresAndResume) {
  const std::string bad = Spec("fanbad.yaml", R"Y(version: 1
name: outputs-fanbad
tasks:
  plan: {run: 'echo "shards=a b" >> "$DROVER_OUTPUT"'}
  work:
    needs: [plan]
    matrix: {shard: "${tasks.plan.outputs.shards}"}
    run: echo ${matrix.shard}
  after: {needs: [work], run: echo after}
)Y");
  ProcessResult r = Run(bad);
  ASSERT_EQ(r.exit_code, 1) << r.Describe();
  auto tasks = TasksByName(Status());
  EXPECT_EQ(tasks["work"]["status"], "failed");
  EXPECT_EQ(tasks["work"]["reason"], "missing-input");
  EXPECT_NE(tasks["work"]["detail"].get<std::string>().find("it is not JSON"),
            std::string::npos)
      << tasks["work"];
  EXPECT_EQ(tasks["after"]["status"], "blocked");

  const std::string flaky = Spec("fanflaky.yaml", R"Y(version: 1
name: outputs-fanflaky
tasks:
  plan: {run: 'echo "shards=[1, 2, 3]" >> "$DROVER_OUTPUT"; echo x >> plan.runs'}
  work:
    needs: [plan]
    matrix: {n: "${tasks.plan.outputs.shards}"}
    run: 'echo ${matrix.n} >> work.runs; test ${matrix.n} != 2 || test -e go'
)Y");
  r = Run(flaky);
  ASSERT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_EQ(TasksByName(Status())["work[n=2]"]["status"], "failed");
  std::ofstream(work_ / "go").close();
  r = Run(flaky, {"--resume"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(ReadAll(work_ / "plan.runs"), "x\n");
  std::string runs = ReadAll(work_ / "work.runs");
  std::sort(runs.begin(), runs.end());
  EXPECT_EQ(runs, "\n\n\n\n1223");  // 2 ran twice, 1 and 3 once
  tasks = TasksByName(Status());
  EXPECT_EQ(tasks["work[n=2]"]["attempts"], 2);
  EXPECT_EQ(tasks["work[n=1]"]["attempts"], 1);
}

// Given the default, relative state directory (.drover) and a task that
// declares artifacts (so it runs in a directory of its own), the task
// should still write $DROVER_OUTPUT and its dependent read both the
// output and the artifact: the spool path it is given is absolute.
TEST_F(DroverCliTest, OutputsAndArtifactsWithTheDefaultRelativeStateDir) {
  const std::string spec = Spec("rel.yaml", R"Y(version: 1
name: outputs-relative
tasks:
  make:
    run: 'echo 42 > out.txt; echo "v=42" >> "$DROVER_OUTPUT"'
    artifacts: [out.txt]
  use:
    needs: [make]
    run: 'test "${tasks.make.outputs.v}" = 42 && test "$(cat "$DROVER_INPUTS/make/out.txt")" = 42'
)Y");
  const ProcessResult r = Drover({"run", spec, "--no-progress"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_TRUE(fs::is_directory(work_ / ".drover" / "spool"));
}

}  // namespace
}  // namespace drover

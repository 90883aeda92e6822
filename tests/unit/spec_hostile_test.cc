// The spec loader against hostile or broken files: YAML aliases that
// expand past what the coordinator can hold, unclosed quotes, control
// characters in the job's name, files that are not regular files, CR line
// endings.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/spec/job_spec.h"
#include "tests/unit/spec_test_util.h"

namespace drover::spec {
namespace {

using test_util::Load;
using test_util::Options;

std::string Dump(const LoadResult& r) {
  std::string out;
  for (const SpecError& e : r.errors) out += "  " + e.ToString() + "\n";
  return out;
}

// A YAML flow list of `n` distinct strings of `size` bytes: about n * size
// bytes of text, standing for as much each time an alias repeats it.
std::string BigList(int n, size_t size) {
  std::string out = "[";
  for (int i = 0; i < n; ++i) {
    if (i > 0) out += ", ";
    std::string item = "v" + std::to_string(i);
    item.resize(size, 'x');
    out += item;
  }
  return out + "]";
}

// Checks that `r` holds one error, at the alias "*NAME" of task tK's line,
// naming the alias, the task and the cap, with tK past the first few
// dozen tasks (64 MiB of 1 MB copies).
void ExpectRefusedAtAlias(const LoadResult& r, const std::string& yaml,
                          const std::string& alias, const std::string& key) {
  ASSERT_EQ(r.errors.size(), 1u) << Dump(r);
  const SpecError& e = r.errors[0];
  const std::string prefix = "the alias " + alias + " for '" + key + "' in task 't";
  ASSERT_EQ(e.message.rfind(prefix, 0), 0u) << Dump(r);
  EXPECT_NE(e.message.find("takes the job past 64 MiB"), std::string::npos) << Dump(r);
  const int task = std::stoi(e.message.substr(prefix.size()));
  EXPECT_GT(task, 40);
  EXPECT_LT(task, 80);
  // The error's line is that task's, its column that of the alias.
  size_t line_start = 0;
  for (int line = 1; line < e.where.line; ++line)
    line_start = yaml.find('\n', line_start) + 1;
  const std::string line =
      yaml.substr(line_start, yaml.find('\n', line_start) - line_start);
  EXPECT_EQ(line.rfind("  t" + std::to_string(task) + ":", 0), 0u) << line;
  EXPECT_EQ(static_cast<size_t>(e.where.column), line.find(alias) + 1) << line;
}

// `first` (task t0, with the anchor) then 99 tasks `tK: REST`.
std::string Repeated(const std::string& first, const std::string& rest) {
  std::string yaml = "version: 1\ntasks:\n  t0: " + first + "\n";
  for (int i = 1; i < 100; ++i) yaml += "  t" + std::to_string(i) + ": " + rest + "\n";
  return yaml;
}

// Given a 1 MB command anchored in one task and repeated by an alias in
// 99 others (the audit's 10 GB file, scaled down), should refuse the job
// at the alias that takes it past the expansion cap, before copying.
TEST(SpecExpansionTest, AliasedRunIsRefusedAtTheAlias) {
  const std::string yaml =
      Repeated("{run: &r [echo, " + BigList(1000, 1000).substr(1) + "}", "{run: *r}");
  ExpectRefusedAtAlias(Load(yaml), yaml, "*r", "run");
}

// Given the same with `env`, `cwd`, `matrix` or `args` aliased, should
// refuse each at its alias.
TEST(SpecExpansionTest, AliasedEnvCwdMatrixAndArgsAreRefusedAtTheAlias) {
  std::string env = "{";
  for (int i = 0; i < 1000; ++i) {
    env += (i ? ", V" : "V") + std::to_string(i) + ": " + std::string(1000, 'x');
  }
  env += "}";
  std::string yaml = Repeated("{run: x, env: &e " + env + "}", "{run: x, env: *e}");
  ExpectRefusedAtAlias(Load(yaml), yaml, "*e", "env");

  yaml = Repeated("{run: x, cwd: &c " + std::string(1'000'000, 'd') + "}",
                  "{run: x, cwd: *c}");
  ExpectRefusedAtAlias(Load(yaml), yaml, "*c", "cwd");

  yaml = Repeated("{run: x, matrix: &m {i: " + BigList(1000, 1000) + "}}",
                  "{run: x, matrix: *m}");
  ExpectRefusedAtAlias(Load(yaml), yaml, "*m", "matrix");

  yaml = Repeated("{backend: threads, fn: f, args: &a " + BigList(1000, 1000) + "}",
                  "{backend: threads, fn: f, args: *a}");
  ExpectRefusedAtAlias(Load(yaml), yaml, "*a", "args");
}

// Given `defaults` of 1 MB, which every task copies, and 99 tasks,
// should refuse the job at the task whose copy passes the cap.
TEST(SpecExpansionTest, DefaultsCopiedIntoEveryTaskCountTowardTheCap) {
  std::string env = "{";
  for (int i = 0; i < 1000; ++i) {
    env += (i ? ", V" : "V") + std::to_string(i) + ": " + std::string(1000, 'x');
  }
  std::string yaml = "version: 1\ndefaults: {env: " + env + "}}\ntasks:\n";
  for (int i = 0; i < 99; ++i) yaml += "  t" + std::to_string(i) + ": {run: x}\n";
  const LoadResult r = Load(yaml);
  ASSERT_EQ(r.errors.size(), 1u) << Dump(r);
  EXPECT_EQ(r.errors[0].where.column, 3);
  EXPECT_NE(
      r.errors[0].message.find("with its copy of 'defaults' takes the job past 64 MiB"),
      std::string::npos)
      << Dump(r);
}

// Given 2,000 tasks sharing a 1 KB env through an alias, and a 100,000-
// value matrix (what the benchmarks write), should load them: the cap is
// far above what a spec without a bomb in it expands to.
TEST(SpecExpansionTest, LegitimateAliasesAndLargeMatricesLoad) {
  std::string yaml =
      "version: 1\ntasks:\n  t0: {run: x, env: &e {A: " + std::string(1000, 'a') + "}}\n";
  for (int i = 1; i < 2000; ++i)
    yaml += "  t" + std::to_string(i) + ": {run: x, env: *e}\n";
  yaml += "  m:\n    run: [\"true\", \"${matrix.i}\"]\n    matrix: {i: [";
  for (int i = 0; i < 100'000; ++i) yaml += (i ? ", " : "") + std::to_string(i);
  yaml += "]}\n";
  const LoadResult r = Load(yaml);
  ASSERT_TRUE(r.ok()) << Dump(r);
  EXPECT_EQ(r.spec->tasks.size(), 2000u + 100'000u);
}

// Given a double-quoted string left open, the rest of the file inside it,
// should refuse it at the opening quote instead of reading one task whose
// command is the rest of the file.
TEST(SpecQuoteTest, UnclosedDoubleQuoteIsAnErrorAtTheQuote) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    run: "echo start
  b:
    run: echo b
  c: {run: echo c}
)");
  ASSERT_EQ(r.errors.size(), 1u) << Dump(r);
  EXPECT_EQ(r.errors[0].ToString(),
            "job.yaml:4:10: not valid YAML: the string opened here has no closing quote");
}

// The same with single quotes.
TEST(SpecQuoteTest, UnclosedSingleQuoteIsAnErrorAtTheQuote) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a: {run: echo a}
  b:
    run: 'echo start
  c: {run: echo c}
)");
  ASSERT_EQ(r.errors.size(), 1u) << Dump(r);
  EXPECT_EQ(r.errors[0].ToString(),
            "job.yaml:5:10: not valid YAML: the string opened here has no closing quote");
}

// Given an unclosed quoted string after an anchor or a tag, should find
// its quote past them.
TEST(SpecQuoteTest, UnclosedQuoteAfterAnAnchorOrATag) {
  for (const std::string value : {"&x \"echo", "!!str 'echo", "&x !!str\n      \"echo"}) {
    const LoadResult r =
        Load("version: 1\ntasks:\n  a:\n    run: " + value + "\n  b: {run: b}\n");
    ASSERT_EQ(r.errors.size(), 1u) << value << Dump(r);
    EXPECT_NE(r.errors[0].message.find("has no closing quote"), std::string::npos)
        << Dump(r);
    EXPECT_EQ(r.errors[0].where.column,
              value.find('\n') == std::string::npos
                  ? static_cast<int>(10 + value.find_first_of("\"'"))
                  : 7)
        << value << Dump(r);
  }
}

// Given quotes closed after escapes (\" and ''), quotes inside plain text
// and comments, and a quoted string at the very end, should load them.
TEST(SpecQuoteTest, ClosedQuotesWithEscapesLoad) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a: {run: "say \"hi\" \\"}    # a comment with a " in it
  b: {run: 'it''s'}
  c: {run: echo it's, env: {Q: "x"}}
  d: {run: ["a", 'b']}
  e: {run: "multi
    line"}
  f: {run: 'end'})");
  ASSERT_TRUE(r.ok()) << Dump(r);
  EXPECT_EQ(r.spec->tasks.size(), 6u);
}

// Given a job name with a line break, an escape sequence or a C1 control
// (which would forge a log line or drive a terminal), should refuse it
// where it is written, as task names are; a name with spaces stays fine.
TEST(SpecJobNameTest, ControlCharactersAreRefused) {
  for (const std::string name :
       {"\"a\\nb\"", "\"a\\e[31mred\"", "\"a\\u009bb\"", "\"a\\tb\""}) {
    const LoadResult r = Load("version: 1\nname: " + name + "\ntasks: {a: {run: x}}\n");
    ASSERT_EQ(r.errors.size(), 1u) << name << Dump(r);
    EXPECT_EQ(r.errors[0].where.line, 2) << name;
    EXPECT_EQ(r.errors[0].where.column, 7) << name;
    EXPECT_NE(r.errors[0].message.find("'name'"), std::string::npos) << Dump(r);
    EXPECT_NE(r.errors[0].message.find("control characters"), std::string::npos)
        << Dump(r);
  }
  const LoadResult r =
      Load("version: 1\nname: nightly build (ü)\ntasks: {a: {run: x}}\n");
  ASSERT_TRUE(r.ok()) << Dump(r);
  EXPECT_EQ(r.spec->name, "nightly build (ü)");
}

// Given a file saved with CR line endings only, should say so rather than
// "illegal map value" at column 22 of the one line yaml-cpp sees.
TEST(SpecLineEndingTest, LoneCrLineEndingsAreNamed) {
  const LoadResult r =
      LoadString("version: 1\rtasks:\r  a: {run: x}\r", "job.yaml", Options());
  ASSERT_EQ(r.errors.size(), 1u) << Dump(r);
  EXPECT_EQ(r.errors[0].where.column, 11);
  EXPECT_NE(r.errors[0].message.find("CR"), std::string::npos) << Dump(r);
  EXPECT_TRUE(
      LoadString("version: 1\r\ntasks:\r\n  a: {run: x}\r\n", "job.yaml", Options())
          .ok());
}

class SpecFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) / "drover-spec-file-test";
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

// Given a file one byte over the spec limit (the 4 MiB a submit carries),
// should refuse it, as `drover submit` does, without reading it.
TEST_F(SpecFileTest, FileOverTheLimitIsRefused) {
  const std::filesystem::path path = dir_ / "big.yaml";
  {
    std::ofstream out(path, std::ios::binary);
    out << "version: 1\ntasks: {a: {run: x}}\n#" << std::string(kMaxSpecBytes, 'x');
  }
  const LoadResult r = LoadFile(path, Options());
  ASSERT_EQ(r.errors.size(), 1u) << Dump(r);
  EXPECT_EQ(r.errors[0].ToString(), path.string() + ": the file is larger than 4 MiB");
  const Result<std::string> text = ReadSpecFile(path.string());
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().message(), path.string() + ": the file is larger than 4 MiB");
}

// Given /dev/zero (no end), should stop one byte past the limit and
// refuse it instead of growing until the process dies.
TEST_F(SpecFileTest, EndlessDeviceIsRefusedAtTheLimit) {
  const LoadResult r = LoadFile("/dev/zero", Options());
  ASSERT_EQ(r.errors.size(), 1u) << Dump(r);
  EXPECT_EQ(r.errors[0].ToString(), "/dev/zero: the file is larger than 4 MiB");
}

// Given a directory, should say so the same way for every command.
TEST_F(SpecFileTest, DirectoryIsRefused) {
  const Result<std::string> text = ReadSpecFile(dir_.string());
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().message(),
            dir_.string() + ": cannot read the file: it is a directory");
}

// Given a FIFO no process writes to, should read it as empty at once
// (open(2) used to wait for a writer forever).
TEST_F(SpecFileTest, FifoWithoutWriterDoesNotBlock) {
  const std::filesystem::path path = dir_ / "fifo";
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  const LoadResult r = LoadFile(path, Options());
  ASSERT_EQ(r.errors.size(), 1u) << Dump(r);
  EXPECT_NE(r.errors[0].message.find("the file is empty"), std::string::npos) << Dump(r);
}

// Given a pipe holding a spec, named as /dev/fd/N (what the shell's
// process substitution, `drover validate <(cat job.yaml)`, passes),
// should read and load it.
TEST_F(SpecFileTest, ProcessSubstitutionPipeLoads) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const std::string yaml = "version: 1\ntasks: {a: {run: echo a}}\n";
  ASSERT_EQ(::write(fds[1], yaml.data(), yaml.size()), static_cast<ssize_t>(yaml.size()));
  ::close(fds[1]);
  const std::string path = "/dev/fd/" + std::to_string(fds[0]);
  const LoadResult r = LoadFile(path, Options());
  ::close(fds[0]);
  ASSERT_TRUE(r.ok()) << Dump(r);
  EXPECT_EQ(r.spec->tasks.size(), 1u);
}

}  // namespace
}  // namespace drover::spec

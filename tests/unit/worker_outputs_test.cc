// worker/outputs.h: the $DROVER_OUTPUT file syntax (GitHub Actions'
// KEY=VALUE and KEY<<DELIMITER), and what a finished attempt hands on.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "worker/outputs.h"

namespace drover {
namespace {

// Given one-line and multi-line values, a repeated key and empty lines,
// the parser should give each key its (last) value.
TEST(OutputFileTest, ParsesBothForms) {
  Result<Outputs> o = ParseOutputFile(
      "version=1.2\n\nempty=\nurl=a=b\nnotes<<EOF\nline 1\n\nline 3\nEOF\nversion=1.3\n"
      "one<<X\nX\nlast=no newline");
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(*o, (Outputs{{"version", "1.3"},
                         {"empty", ""},
                         {"url", "a=b"},
                         {"notes", "line 1\n\nline 3"},
                         {"one", ""},
                         {"last", "no newline"}}));
}

// Given each kind of bad line, the parser should fail naming its line.
TEST(OutputFileTest, BadLinesNameTheirLine) {
  struct Case {
    const char* text;
    const char* words;
  };
  for (const Case& c :
       {Case{"a=1\njust text\n", "line 2: 'just text' is neither"},
        Case{"a b=1\n", "line 1: 'a b' is not an output name"},
        Case{"=1\n", "line 1: '' is not an output name"},
        Case{"a=1\nk<<\n", "line 2: 'k<<' has no delimiter"},
        Case{"a=1\n\nk<<EOF\nx\n", "line 3: the value of 'k' has no closing"}}) {
    Result<Outputs> o = ParseOutputFile(c.text);
    ASSERT_FALSE(o.ok()) << c.text;
    EXPECT_NE(o.status().message().find(c.words), std::string::npos)
        << o.status().message();
  }
}

class CollectOutputsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("outputs-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    file_ = dir_ / "1.outputs";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& text) { std::ofstream(file_, std::ios::binary) << text; }
  std::filesystem::path dir_, file_;
};

// Given a successful attempt with a file and a JSON string result, the
// outputs should hold both, `result` decoded, and the file be removed.
TEST_F(CollectOutputsTest, FileAndResult) {
  Write("a=1\n");
  AttemptOutcome o;
  o.exit_code = 0;
  o.result_json = "\"v1\"";
  CollectOutputs(file_, &o);
  EXPECT_TRUE(o.ok()) << o.message;
  EXPECT_EQ(o.outputs, (Outputs{{"a", "1"}, {"result", "v1"}}));
  EXPECT_FALSE(std::filesystem::exists(file_));

  AttemptOutcome list;
  list.result_json = "[1,2]";
  CollectOutputs(file_, &list);
  EXPECT_EQ(list.outputs, (Outputs{{"result", "[1,2]"}}));
}

// Given a malformed file, the success should become bad-outputs naming
// the line; a failed attempt keeps its reason and hands on nothing.
TEST_F(CollectOutputsTest, MalformedFileFailsTheAttempt) {
  Write("ok=1\noops\n");
  AttemptOutcome o;
  CollectOutputs(file_, &o);
  EXPECT_EQ(o.reason, FailureReason::kBadOutputs);
  EXPECT_NE(o.message.find("$DROVER_OUTPUT line 2"), std::string::npos) << o.message;
  EXPECT_TRUE(o.outputs.empty());

  Write("ok=1\n");
  AttemptOutcome failed;
  failed.reason = FailureReason::kExit;
  failed.exit_code = 3;
  CollectOutputs(file_, &failed);
  EXPECT_EQ(failed.reason, FailureReason::kExit);
  EXPECT_TRUE(failed.outputs.empty());
  EXPECT_FALSE(std::filesystem::exists(file_));
}

// Given outputs past the size or the key cap, the attempt should fail
// with bad-outputs saying which cap.
TEST_F(CollectOutputsTest, CapsAreEnforced) {
  Write("big=" + std::string(kMaxOutputBytes, 'x') + "\n");
  AttemptOutcome o;
  CollectOutputs(file_, &o);
  EXPECT_EQ(o.reason, FailureReason::kBadOutputs);
  EXPECT_NE(o.message.find("more than the cap of 1048576 bytes"), std::string::npos)
      << o.message;

  std::string many;
  for (size_t i = 0; i <= kMaxOutputKeys; ++i) many += "k" + std::to_string(i) + "=1\n";
  Write(many);
  AttemptOutcome keys;
  CollectOutputs(file_, &keys);
  EXPECT_EQ(keys.reason, FailureReason::kBadOutputs);
  EXPECT_NE(keys.message.find("1001 outputs, more than the cap of 1000"),
            std::string::npos)
      << keys.message;
}

// Given keep_empty, a file the task left empty should stay in place for
// the worker to rename (true), and any other file go as before: one with
// outputs, a symbolic link (to an empty file elsewhere) and a file with a
// second name, whose later writes would reach that other name.
TEST_F(CollectOutputsTest, KeepsOnlyAnEmptyFileOfItsOwn) {
  Write("");
  AttemptOutcome empty;
  EXPECT_TRUE(CollectOutputs(file_, &empty, /*keep_empty=*/true));
  EXPECT_TRUE(empty.ok()) << empty.message;
  EXPECT_TRUE(empty.outputs.empty());
  EXPECT_TRUE(std::filesystem::exists(file_));

  AttemptOutcome not_asked;
  EXPECT_FALSE(CollectOutputs(file_, &not_asked));
  EXPECT_FALSE(std::filesystem::exists(file_));

  Write("a=1\n");
  AttemptOutcome written;
  EXPECT_FALSE(CollectOutputs(file_, &written, /*keep_empty=*/true));
  EXPECT_EQ(written.outputs, (Outputs{{"a", "1"}}));
  EXPECT_FALSE(std::filesystem::exists(file_));

  const std::filesystem::path elsewhere = dir_ / "elsewhere";
  std::ofstream(elsewhere).flush();
  std::filesystem::create_symlink(elsewhere, file_);
  AttemptOutcome linked;
  EXPECT_FALSE(CollectOutputs(file_, &linked, /*keep_empty=*/true));
  EXPECT_FALSE(std::filesystem::is_symlink(file_));
  EXPECT_TRUE(std::filesystem::exists(elsewhere)) << "the link's target was removed";

  std::filesystem::create_hard_link(elsewhere, file_);
  AttemptOutcome second_name;
  EXPECT_FALSE(CollectOutputs(file_, &second_name, /*keep_empty=*/true));
  EXPECT_FALSE(std::filesystem::exists(file_));
  EXPECT_TRUE(std::filesystem::exists(elsewhere));

  AttemptOutcome missing;
  EXPECT_FALSE(CollectOutputs(file_, &missing, /*keep_empty=*/true));
}

}  // namespace
}  // namespace drover

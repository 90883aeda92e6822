// ReadWholeFile (core/base/files.h) on what a user may name instead of a
// regular file: a directory, an endless device, a FIFO without a writer,
// a pipe; and its size limit.
#include "core/base/files.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>

namespace drover {
namespace {

class ReadWholeFileLimitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) / "drover-files-test";
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path Write(const std::string& name, const std::string& bytes) {
    const std::filesystem::path path = dir_ / name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  std::filesystem::path dir_;
};

// Given a regular file of exactly the limit, and one a byte longer,
// should read the first and refuse the second (EFBIG) without reading it.
TEST_F(ReadWholeFileLimitTest, RegularFileOverTheLimitIsRefusedUnread) {
  std::string text;
  EXPECT_EQ(ReadWholeFile(Write("at", std::string(100, 'a')).string(), &text, 100), 0);
  EXPECT_EQ(text, std::string(100, 'a'));
  text.clear();
  EXPECT_EQ(ReadWholeFile(Write("over", std::string(101, 'a')).string(), &text, 100),
            EFBIG);
  EXPECT_EQ(text, "");
}

// Given /dev/zero, which has no end, should stop one byte past the limit.
TEST_F(ReadWholeFileLimitTest, EndlessDeviceStopsPastTheLimit) {
  std::string text;
  EXPECT_EQ(ReadWholeFile("/dev/zero", &text, 200'000), EFBIG);
  EXPECT_EQ(text.size(), 200'001u);
}

// Given a directory, should return EISDIR whatever the limit.
TEST_F(ReadWholeFileLimitTest, DirectoryIsEisdir) {
  std::string text;
  EXPECT_EQ(ReadWholeFile(dir_.string(), &text, 1000), EISDIR);
  EXPECT_EQ(ReadWholeFile(dir_.string(), &text), EISDIR);
}

// Given a FIFO that no process has open for writing, should return at
// once with nothing read, instead of blocking in open(2) forever.
TEST_F(ReadWholeFileLimitTest, FifoWithoutWriterReadsAsEmpty) {
  const std::filesystem::path path = dir_ / "fifo";
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  std::string text;
  EXPECT_EQ(ReadWholeFile(path.string(), &text, 1000), 0);
  EXPECT_EQ(text, "");
}

// Given a pipe named as /dev/fd/N (the shell's process substitution),
// should read it to its end, and refuse it past the limit.
TEST_F(ReadWholeFileLimitTest, PipeIsReadToItsEndWithinTheLimit) {
  for (const size_t limit : {size_t{1000}, size_t{10}}) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    ASSERT_EQ(::write(fds[1], "version: 1\n", 11), 11);
    ::close(fds[1]);
    std::string text;
    const int err = ReadWholeFile("/dev/fd/" + std::to_string(fds[0]), &text, limit);
    ::close(fds[0]);
    if (limit == 1000) {
      EXPECT_EQ(err, 0);
      EXPECT_EQ(text, "version: 1\n");
    } else {
      EXPECT_EQ(err, EFBIG);
    }
  }
}

}  // namespace
}  // namespace drover

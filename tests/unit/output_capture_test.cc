// OutputCapture: the tail-keeping, file-backed capture of one output stream.
#include "backends/process/output_capture.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>

namespace drover {
namespace {

namespace fs = std::filesystem;

class OutputCaptureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "drover-capture-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  static std::string Slurp(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }

  // A stream of `n` bytes that never repeats within a short window, so a
  // misplaced chunk changes the content.
  static std::string Pattern(size_t n) {
    std::string s;
    s.reserve(n);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; ++i) {
      x = x * 1103515245u + 12345u;
      s.push_back(static_cast<char>('a' + (x >> 16) % 26));
    }
    return s;
  }

  // Feeds `data` to a capture with `limit` in chunks of `chunk` bytes and
  // checks the file and the counters against the expected tail.
  void CheckTail(size_t total, uint64_t limit, size_t chunk) {
    SCOPED_TRACE("total " + std::to_string(total) + " limit " + std::to_string(limit) +
                 " chunk " + std::to_string(chunk));
    fs::path path = dir_ / ("out-" + std::to_string(total) + "-" + std::to_string(limit) +
                            "-" + std::to_string(chunk));
    std::string data = Pattern(total);
    OutputCapture capture(path, limit);
    for (size_t at = 0; at < total; at += chunk) {
      ASSERT_TRUE(capture.Append(data.data() + at, std::min(chunk, total - at)).ok());
    }
    ASSERT_TRUE(capture.Finish().ok());
    uint64_t kept = std::min<uint64_t>(total, limit);
    EXPECT_EQ(Slurp(path), data.substr(total - kept));
    EXPECT_EQ(capture.info().bytes, kept);
    EXPECT_EQ(capture.info().dropped, total - kept);
    EXPECT_FALSE(fs::exists(path.string() + ".rotating"));
  }

  fs::path dir_;
};

// Given output below the limit, should write it unchanged and drop nothing.
TEST_F(OutputCaptureTest, KeepsEverythingBelowTheLimit) {
  OutputCapture capture(dir_ / "out.log", 100);
  ASSERT_TRUE(capture.Append("hello ", 6).ok());
  ASSERT_TRUE(capture.Append("world\n", 6).ok());
  ASSERT_TRUE(capture.Finish().ok());
  EXPECT_EQ(Slurp(dir_ / "out.log"), "hello world\n");
  EXPECT_EQ(capture.info().bytes, 12u);
  EXPECT_EQ(capture.info().dropped, 0u);
}

// Given a stream that produced nothing, should create no file at all.
TEST_F(OutputCaptureTest, CreatesNoFileForASilentStream) {
  OutputCapture capture(dir_ / "silent.log", 100);
  ASSERT_TRUE(capture.Append("", 0).ok());
  ASSERT_TRUE(capture.Finish().ok());
  EXPECT_FALSE(fs::exists(dir_ / "silent.log"));
  EXPECT_EQ(capture.info().bytes, 0u);
  EXPECT_EQ(capture.info().dropped, 0u);
}

// Given a path whose directories do not exist, should create them with the
// first byte.
TEST_F(OutputCaptureTest, CreatesParentDirectories) {
  fs::path path = dir_ / "a" / "b" / "c" / "out.log";
  OutputCapture capture(path, 100);
  EXPECT_FALSE(fs::exists(dir_ / "a"));
  ASSERT_TRUE(capture.Append("x", 1).ok());
  ASSERT_TRUE(capture.Finish().ok());
  EXPECT_EQ(Slurp(path), "x");
}

// Given output over the limit in chunks of every shape (smaller than, equal
// to, larger than the limit, and wrapping at odd offsets), should keep
// exactly the last `limit` bytes in order.
TEST_F(OutputCaptureTest, KeepsExactlyTheTailOverTheLimit) {
  for (size_t chunk : {1u, 7u, 100u, 333u, 1000u, 4096u}) {
    CheckTail(10000, 1000, chunk);
  }
  CheckTail(1000, 1000, 64);    // exactly the limit: nothing dropped
  CheckTail(3000, 1000, 250);   // a multiple of the limit: no rotation needed
  CheckTail(1001, 1000, 1001);  // one byte over, in one chunk
  CheckTail(2500, 1, 3);        // a one-byte limit
  CheckTail(200000, 65536, 65536);
}

// Given a long stream, should never let the file grow past the limit while
// it is being written (memory and disk stay bounded).
TEST_F(OutputCaptureTest, FileNeverGrowsPastTheLimit) {
  fs::path path = dir_ / "bounded.log";
  OutputCapture capture(path, 500);
  std::string data = Pattern(10000);
  for (size_t at = 0; at < data.size(); at += 300) {
    ASSERT_TRUE(
        capture.Append(data.data() + at, std::min<size_t>(300, data.size() - at)).ok());
    EXPECT_LE(fs::file_size(path), 500u);
  }
  ASSERT_TRUE(capture.Finish().ok());
  EXPECT_EQ(Slurp(path), data.substr(data.size() - 500));
}

// Given a limit of zero, should keep nothing, create no file, and count
// every byte as dropped.
TEST_F(OutputCaptureTest, ZeroLimitKeepsNothing) {
  OutputCapture capture(dir_ / "zero.log", 0);
  ASSERT_TRUE(capture.Append("abc", 3).ok());
  ASSERT_TRUE(capture.Finish().ok());
  EXPECT_FALSE(fs::exists(dir_ / "zero.log"));
  EXPECT_EQ(capture.info().bytes, 0u);
  EXPECT_EQ(capture.info().dropped, 3u);
}

// Given a path that cannot be created, should report the error once, keep
// counting bytes, and claim nothing as kept.
TEST_F(OutputCaptureTest, ReportsAnUncreatableFileOnce) {
  std::ofstream(dir_ / "not-a-dir") << "x";
  OutputCapture capture(dir_ / "not-a-dir" / "out.log", 100);
  Status first = capture.Append("abc", 3);
  EXPECT_FALSE(first.ok());
  EXPECT_NE(first.message().find("not-a-dir"), std::string::npos) << first.message();
  EXPECT_TRUE(capture.Append("def", 3).ok());
  EXPECT_FALSE(capture.Finish().ok());
  EXPECT_EQ(capture.info().bytes, 0u);
  EXPECT_EQ(capture.info().dropped, 6u);
}

// Given Finish called twice, should rotate once and leave the tail intact.
TEST_F(OutputCaptureTest, FinishIsIdempotent) {
  fs::path path = dir_ / "twice.log";
  OutputCapture capture(path, 4);
  ASSERT_TRUE(capture.Append("0123456789", 10).ok());
  ASSERT_TRUE(capture.Finish().ok());
  ASSERT_TRUE(capture.Finish().ok());
  EXPECT_EQ(Slurp(path), "6789");
}

}  // namespace
}  // namespace drover

// The threads backend's functions without threads: the registry (names,
// duplicates, Invoke's mapping of results and errors to outcomes) and every
// built-in (SHA-256 itself is core/artifacts', tested in sha256_test.cc). No sleeps: the only
// "sleep" calls are of zero length or on an already-cancelled token.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <limits>
#include <random>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "backends/functions/builtins.h"
#include "backends/functions/function.h"
#include "backends/functions/registry.h"
#include "core/artifacts/sha256.h"

namespace drover {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A registry with the built-ins, and a helper to call them.
class BuiltinsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(RegisterBuiltins(registry_).ok()); }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(files_, ec);
  }

  AttemptOutcome Call(const std::string& fn, const std::string& args) {
    return registry_.Invoke(fn, args, token_);
  }
  // The result of a call that must succeed, parsed.
  json Ok(const std::string& fn, const std::string& args) {
    AttemptOutcome o = Call(fn, args);
    EXPECT_TRUE(o.ok()) << fn << "(" << args << "): " << o.message;
    EXPECT_EQ(o.exit_code, 0);
    return o.ok() ? json::parse(o.result_json) : json();
  }
  // Writes `content` to a fresh file and returns its path.
  // Removed with everything in it by TearDown.
  fs::path WriteFile(const std::string& name, const std::string& content) {
    fs::create_directories(files_);
    const fs::path path = files_ / name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  FunctionRegistry registry_;
  CancelToken token_;
  const fs::path files_ =
      fs::path(::testing::TempDir()) / ("functions_test_" + std::to_string(::getpid()));
};

// ---------------------------------------------------------------------------
// CancelToken

// Given a fresh token, should not be cancelled, have no deadline, and a zero
// sleep should complete.
TEST(CancelTokenTest, FreshTokenIsQuiet) {
  CancelToken token;
  EXPECT_FALSE(token.cancelled());
  EXPECT_EQ(token.deadline(), SteadyTime::max());
  EXPECT_TRUE(token.SleepFor(Duration(0)));
}

// Given a cancelled token, should return at once from an hour-long sleep
// with false.
TEST(CancelTokenTest, CancelledTokenCutsSleepsShort) {
  CancelToken token;
  token.Cancel();
  token.Cancel();  // idempotent
  EXPECT_TRUE(token.cancelled());
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(token.SleepFor(std::chrono::hours(1)));
  EXPECT_FALSE(token.SleepUntil(SteadyTime::max()));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30));
}

// ---------------------------------------------------------------------------
// FunctionRegistry

Result<json> Echo(const json& args, const CancelToken&) { return args; }

// Given two functions under one name, should refuse the second naming both
// sources, and keep the first.
TEST(FunctionRegistryTest, DuplicateNameNamesBothSources) {
  FunctionRegistry registry;
  ASSERT_TRUE(registry.Add("echo", Echo, "plugin /a/one.so").ok());
  const Status s = registry.Add("echo", Echo, "plugin /b/two.so");
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
  EXPECT_NE(s.message().find("'echo'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("plugin /a/one.so"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("plugin /b/two.so"), std::string::npos) << s.message();
  EXPECT_EQ(registry.SourceOf("echo"), "plugin /a/one.so");
  EXPECT_EQ(registry.size(), 1u);
}

// Given bad names or an empty function, should refuse them and stay empty.
TEST(FunctionRegistryTest, RejectsBadNamesAndEmptyFunctions) {
  FunctionRegistry registry;
  EXPECT_EQ(registry.Add("", Echo, "test").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(registry.Add("has space", Echo, "test").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(registry.Add(std::string(129, 'x'), Echo, "test").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(registry.Add("empty", Function(), "test").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(registry.size(), 0u);
  EXPECT_TRUE(registry.Add("ns:name-1.v_2", Echo, "test").ok());
}

// Given registered functions, should find them and list the names sorted.
TEST(FunctionRegistryTest, FindsAndListsNames) {
  FunctionRegistry registry;
  ASSERT_TRUE(registry.Add("zeta", Echo, "test").ok());
  ASSERT_TRUE(registry.Add("alpha", Echo, "test").ok());
  EXPECT_NE(registry.Find("zeta"), nullptr);
  EXPECT_EQ(registry.Find("beta"), nullptr);
  EXPECT_EQ(registry.Names(), (std::vector<std::string>{"alpha", "zeta"}));
}

// Given an unknown name, should fail as launch-failed listing the known ones.
TEST(FunctionRegistryTest, UnknownFunctionIsLaunchFailedWithKnownNames) {
  FunctionRegistry registry;
  ASSERT_TRUE(registry.Add("echo", Echo, "test").ok());
  ASSERT_TRUE(registry.Add("again", Echo, "test").ok());
  CancelToken token;
  const AttemptOutcome o = registry.Invoke("ehco", "{}", token);
  EXPECT_EQ(o.reason, FailureReason::kLaunchFailed);
  EXPECT_EQ(o.message, "no function 'ehco' (known: again, echo)");
}

// Given args that are not JSON, should fail as launch-failed with the parse
// error, without calling the function.
TEST(FunctionRegistryTest, BadArgsJsonIsLaunchFailedWithParseError) {
  FunctionRegistry registry;
  bool called = false;
  ASSERT_TRUE(registry
                  .Add("f",
                       [&](const json&, const CancelToken&) -> Result<json> {
                         called = true;
                         return json(1);
                       },
                       "test")
                  .ok());
  CancelToken token;
  const AttemptOutcome o = registry.Invoke("f", "{\"n\": ", token);
  EXPECT_EQ(o.reason, FailureReason::kLaunchFailed);
  EXPECT_NE(o.message.find("bad args for 'f'"), std::string::npos) << o.message;
  EXPECT_NE(o.message.find("parse error"), std::string::npos) << o.message;
  EXPECT_FALSE(called);
}

// Given a function that succeeds, should record its result as JSON text with
// exit code 0; empty or "null" args should arrive as null.
TEST(FunctionRegistryTest, SuccessRecordsResultJson) {
  FunctionRegistry registry;
  ASSERT_TRUE(registry.Add("echo", Echo, "test").ok());
  CancelToken token;
  AttemptOutcome o = registry.Invoke("echo", R"({"a": [1, "x"]})", token);
  EXPECT_TRUE(o.ok());
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.result_json, R"({"a":[1,"x"]})");
  EXPECT_EQ(registry.Invoke("echo", "", token).result_json, "null");
  EXPECT_EQ(registry.Invoke("echo", " null\n", token).result_json, "null");
}

// Given a function that throws, returns an error, or returns a string that
// is not UTF-8, should fail as `exit` with code 1 and a message saying why.
TEST(FunctionRegistryTest, ErrorsAndExceptionsAreExitOneWithMessage) {
  FunctionRegistry registry;
  ASSERT_TRUE(registry
                  .Add("throws",
                       [](const json&, const CancelToken&) -> Result<json> {
                         throw std::runtime_error("the disk is on fire");
                       },
                       "test")
                  .ok());
  ASSERT_TRUE(registry
                  .Add("throws_int",
                       [](const json&, const CancelToken&) -> Result<json> { throw 42; },
                       "test")
                  .ok());
  ASSERT_TRUE(registry
                  .Add("errs",
                       [](const json&, const CancelToken&) -> Result<json> {
                         return InvalidArgument("n must be positive");
                       },
                       "test")
                  .ok());
  ASSERT_TRUE(registry
                  .Add("latin1",
                       [](const json&, const CancelToken&) -> Result<json> {
                         return json(std::string("caf\xe9"));
                       },
                       "test")
                  .ok());
  CancelToken token;
  AttemptOutcome o = registry.Invoke("throws", "", token);
  EXPECT_EQ(o.reason, FailureReason::kExit);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_EQ(o.message, "the disk is on fire");

  o = registry.Invoke("throws_int", "", token);
  EXPECT_EQ(o.reason, FailureReason::kExit);
  EXPECT_NE(o.message.find("non-standard exception"), std::string::npos) << o.message;

  o = registry.Invoke("errs", "", token);
  EXPECT_EQ(o.reason, FailureReason::kExit);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_EQ(o.message, "n must be positive");

  o = registry.Invoke("latin1", "", token);
  EXPECT_EQ(o.reason, FailureReason::kExit);
  EXPECT_NE(o.message.find("'latin1' returned a result that is not valid JSON"),
            std::string::npos)
      << o.message;
}

// ---------------------------------------------------------------------------
// Built-ins

// Given the built-ins, should register exactly the six documented names, and
// refuse to register them twice.
TEST_F(BuiltinsTest, RegistersTheSixBuiltinsOnce) {
  EXPECT_EQ(registry_.Names(),
            (std::vector<std::string>{"fib", "noop", "sha256", "sleep", "sort", "wordcount"}));
  EXPECT_EQ(registry_.SourceOf("sort"), "built-in");
  EXPECT_EQ(RegisterBuiltins(registry_).code(), StatusCode::kAlreadyExists);
}

// Given any args, noop should return null.
TEST_F(BuiltinsTest, NoopReturnsNull) {
  EXPECT_EQ(Call("noop", "").result_json, "null");
  EXPECT_EQ(Call("noop", R"({"ignored": true})").result_json, "null");
}

// Given a zero-length sleep in each accepted form, should return null.
TEST_F(BuiltinsTest, SleepAcceptsSecondsMsAndANumber) {
  EXPECT_TRUE(Ok("sleep", R"({"seconds": 0})").is_null());
  EXPECT_TRUE(Ok("sleep", R"({"ms": 0})").is_null());
  EXPECT_TRUE(Ok("sleep", "0").is_null());
}

// Given a cancelled token, sleep should return at once as cancelled rather
// than sleep for an hour.
TEST_F(BuiltinsTest, SleepReturnsEarlyWhenCancelled) {
  token_.Cancel();
  const auto t0 = std::chrono::steady_clock::now();
  const AttemptOutcome o = Call("sleep", R"({"seconds": 3600})");
  EXPECT_EQ(o.reason, FailureReason::kExit);
  EXPECT_EQ(o.message, "sleep: cancelled");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30));
}

// Given bad sleep args, should fail with a message naming sleep.
TEST_F(BuiltinsTest, SleepRejectsBadArgs) {
  for (const char* args : {R"({"secs": 1})", R"({"seconds": -1})", R"("1s")", "1e30"}) {
    const AttemptOutcome o = Call("sleep", args);
    EXPECT_EQ(o.reason, FailureReason::kExit) << args;
    EXPECT_EQ(o.message.rfind("sleep: ", 0), 0u) << o.message;
  }
}

// Given numbers as an object or a bare array, sort should return them in
// ascending order, keeping integers integers.
TEST_F(BuiltinsTest, SortSortsIntegersAndMixedNumbers) {
  EXPECT_EQ(Ok("sort", R"({"numbers": [5, -4, 3, 2, 1, 3]})"), json::parse("[-4,1,2,3,3,5]"));
  EXPECT_EQ(Ok("sort", "[3, 1, 2]"), json::parse("[1,2,3]"));
  EXPECT_EQ(Ok("sort", "[]"), json::array());
  EXPECT_EQ(Call("sort", "[2.5, 1, -0.5, 2]").result_json, "[-0.5,1,2,2.5]");
  EXPECT_EQ(Call("sort", "[18446744073709551615, -1, 0]").result_json,
            "[-1,0,18446744073709551615]");
}

// Given something other than numbers, sort should fail naming itself.
// SortIntegers is a radix sort above 255 numbers, on the numbers'
// distances from the smallest: 32-bit keys when the range fits, 64-bit
// ones otherwise. Given arrays of sizes around that threshold, with
// negatives, the int64 extremes, duplicates, one shared value, values
// sharing their low bits (passes skipped), narrow ranges at either end of
// int64 and ranges on both sides of 2^32, it should give what std::sort
// gives.
TEST(SortIntegersTest, MatchesStdSort) {
  std::mt19937_64 rng(13);
  const std::vector<std::function<int64_t()>> shapes = {
      [&] { return static_cast<int64_t>(rng()); },                // full range
      [&] { return static_cast<int64_t>(rng() % 1000000000); },   // 3 passes
      [&] { return static_cast<int64_t>(rng() % 2001) - 1000; },  // +-, dups
      [&] { return int64_t{42}; },                                // one value
      [&] { return static_cast<int64_t>(rng() % 1000) << 40; },   // low bits shared
      [&] {
        return std::numeric_limits<int64_t>::max() - static_cast<int64_t>(rng() % 5000);
      },
      [&] {
        return std::numeric_limits<int64_t>::min() + static_cast<int64_t>(rng() % 5000);
      },
      [&] {
        switch (rng() % 4) {
          case 0:
            return std::numeric_limits<int64_t>::min();
          case 1:
            return std::numeric_limits<int64_t>::max();
          case 2:
            return int64_t{-1};
          default:
            return int64_t{0};
        }
      },
  };
  for (size_t n : {0u, 1u, 2u, 255u, 256u, 257u, 1000u, 65537u}) {
    for (size_t s = 0; s < shapes.size(); ++s) {
      std::vector<int64_t> v(n);
      for (int64_t& x : v) x = shapes[s]();
      std::vector<int64_t> want = v;
      std::sort(want.begin(), want.end());
      SortIntegers(v);
      EXPECT_EQ(v, want) << "n=" << n << " shape " << s;
    }
  }
}

// Given ranges on either side of 2^32 (the widest that 32-bit keys hold),
// starting anywhere in int64, SortIntegers should give what std::sort
// gives: both ends of each range are in the input.
TEST(SortIntegersTest, RangesAroundTheKeyWidth) {
  std::mt19937_64 rng(17);
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  for (uint64_t range : {(uint64_t{1} << 32) - 2, (uint64_t{1} << 32) - 1,
                         uint64_t{1} << 32, (uint64_t{1} << 33) + 1}) {
    for (int64_t lo :
         {int64_t{-7}, kMin, static_cast<int64_t>(static_cast<uint64_t>(kMax) - range)}) {
      std::vector<int64_t> v(1000);
      for (int64_t& x : v)
        x = static_cast<int64_t>(static_cast<uint64_t>(lo) + rng() % (range + 1));
      v[10] = lo;
      v[20] = static_cast<int64_t>(static_cast<uint64_t>(lo) + range);
      std::vector<int64_t> want = v;
      std::sort(want.begin(), want.end());
      SortIntegers(v);
      EXPECT_EQ(v, want) << "range=" << range << " lo=" << lo;
    }
  }
}

TEST_F(BuiltinsTest, SortRejectsNonNumbers) {
  for (const char* args : {R"({"numbers": [1, "2"]})", R"({"nums": [1]})", "\"abc\"", ""}) {
    const AttemptOutcome o = Call("sort", args);
    EXPECT_EQ(o.reason, FailureReason::kExit) << args;
    EXPECT_EQ(o.message.rfind("sort: args must be", 0), 0u) << o.message;
  }
}

// Given a string or a file, sha256 should return the hex digest of its bytes.
TEST_F(BuiltinsTest, Sha256HashesStringsAndFiles) {
  EXPECT_EQ(Ok("sha256", R"({"string": "abc"})"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // Larger than one read chunk, so several reads are hashed.
  const std::string content(200'000, 'q');
  const fs::path file = WriteFile("hash_me", content);
  EXPECT_EQ(Ok("sha256", json{{"file", file.string()}}.dump()), artifacts::Sha256Hex(content));
}

// Given a missing file, sha256 should fail naming the path and the errno text.
TEST_F(BuiltinsTest, Sha256MissingFileNamesPath) {
  const AttemptOutcome o = Call("sha256", R"({"file": "/nonexistent/drover/x"})");
  EXPECT_EQ(o.reason, FailureReason::kExit);
  EXPECT_EQ(o.message, "sha256: cannot open /nonexistent/drover/x: No such file or directory");
  EXPECT_EQ(Call("sha256", R"({"path": "x"})").reason, FailureReason::kExit);
}

// Given a file, wordcount should count lines, words and bytes as wc does.
TEST_F(BuiltinsTest, WordcountCountsLikeWc) {
  // wc prints "3 5 26" for this: three newlines, a last line without one.
  const std::string text = "hello world\n  foo\tbar\n\nbaz";
  const fs::path file = WriteFile("words", text);
  EXPECT_EQ(Ok("wordcount", json{{"file", file.string()}}.dump()),
            (json{{"lines", 3}, {"words", 5}, {"bytes", text.size()}}));
  EXPECT_EQ(Ok("wordcount", R"({"string": ""})"),
            (json{{"lines", 0}, {"words", 0}, {"bytes", 0}}));
  const AttemptOutcome o = Call("wordcount", R"({"file": "/nonexistent/drover/y"})");
  EXPECT_EQ(o.reason, FailureReason::kExit);
  EXPECT_NE(o.message.find("/nonexistent/drover/y"), std::string::npos) << o.message;
}

// Given a cancelled token, reading a file should stop as cancelled.
TEST_F(BuiltinsTest, FileFunctionsStopWhenCancelled) {
  const fs::path file = WriteFile("cancel_me", "some text");
  token_.Cancel();
  EXPECT_EQ(Call("wordcount", json{{"file", file.string()}}.dump()).message,
            "wordcount: cancelled");
  EXPECT_EQ(Call("sha256", json{{"file", file.string()}}.dump()).message, "sha256: cancelled");
}

// Given n, fib should return the n-th Fibonacci number.
TEST_F(BuiltinsTest, FibComputesFibonacci) {
  EXPECT_EQ(Ok("fib", R"({"n": 0})"), 0);
  EXPECT_EQ(Ok("fib", R"({"n": 1})"), 1);
  EXPECT_EQ(Ok("fib", R"({"n": 10})"), 55);
  EXPECT_EQ(Ok("fib", "25"), 75025);
}

// Given n out of range or not an integer, fib should refuse it.
TEST_F(BuiltinsTest, FibRejectsBadN) {
  for (const char* args : {R"({"n": -1})", R"({"n": 93})", R"({"n": 2.5})", "{}"}) {
    const AttemptOutcome o = Call("fib", args);
    EXPECT_EQ(o.reason, FailureReason::kExit) << args;
    EXPECT_EQ(o.message.rfind("fib: args must be", 0), 0u) << o.message;
  }
}

// Given a cancelled token, fib(92) (centuries of work) should stop at its
// first poll and report cancelled.
TEST_F(BuiltinsTest, FibStopsWhenCancelled) {
  token_.Cancel();
  const AttemptOutcome o = Call("fib", R"({"n": 92})");
  EXPECT_EQ(o.reason, FailureReason::kExit);
  EXPECT_EQ(o.message, "fib: cancelled");
}

}  // namespace
}  // namespace drover

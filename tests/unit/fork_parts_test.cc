// The fork backend's pure pieces: the JSON reply scanner, the cow request
// handler, the IPC line framing and the pool policy. No processes; the
// framing test uses an in-process socketpair.
#include <sys/socket.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "backends/fork/cow_child.h"
#include "backends/fork/ipc_channel.h"
#include "backends/fork/json_scan.h"
#include "backends/fork/pool.h"
#include "backends/functions/builtins.h"

namespace drover {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Given valid and invalid JSON texts, ValidateJson should agree with
// nlohmann::json::accept on each.
TEST(JsonScanTest, ValidateAgreesWithNlohmann) {
  const std::vector<std::string> texts = {
      "null", "true", "false", "0", "-0", "12", "-12.5e+3", "1E9", " [1, 2] ", "{}",
      "[]", R"({"a": [1, {"b": null}], "c": "x\"y\\u00e9"})", "\"\xc3\xa9\"",
      "\"\xf0\x9f\x98\x80\"", R"("\ud83d\ude00")", "[[[[]]]]",
      // invalid
      "", " ", "nul", "01", "1.", ".5", "-", "1e", "[1,]", "[1 2]", "{\"a\" 1}", "{a:1}",
      "{\"a\":1,}", "[", "]", "\"abc", "\"\x01\"", "\"\xc3\"", "\"\xed\xa0\x80\"",
      "\"\xc0\xaf\"", R"("\ud800")", R"("\udc00x")", R"("\x")", "1 2", "[1]]", "tru",
      "\"\xf4\x90\x80\x80\"",
      // beyond a double (found by tests/fuzz), and just within
      "[3333e331,3]", "1e309", "-1E+400", std::string(400, '9'), "1.7e308", "1e-400"};
  for (const std::string& text : texts) {
    EXPECT_EQ(ValidateJson(text).ok(), json::accept(text)) << "text: " << text;
  }
  EXPECT_EQ(ValidateJson("[1, x]").message(), "unexpected character at byte 4");
  EXPECT_TRUE(ValidateJson("\"caf\xC3\xA9 \xF0\x9F\x98\x80\"").ok());
  EXPECT_EQ(ValidateJson("\"\xC0\xAF\"").message(), "invalid UTF-8 at byte 1");
  EXPECT_FALSE(ValidateJson(std::string(2000, '[') + std::string(2000, ']')).ok());
}

// Given random integer arrays, the fast codec should parse them and print
// exactly what nlohmann prints, and refuse anything that is not one.
TEST(JsonScanTest, IntArrayCodecMatchesNlohmann) {
  std::mt19937_64 rng(42);
  for (int round = 0; round < 50; ++round) {
    std::vector<int64_t> numbers(static_cast<size_t>(rng() % 100));
    for (int64_t& n : numbers) n = static_cast<int64_t>(rng());
    const std::string text = json(numbers).dump(round % 2 ? 1 : -1);
    std::optional<std::vector<int64_t>> parsed = ParseIntArray(text);
    ASSERT_TRUE(parsed.has_value()) << text;
    EXPECT_EQ(*parsed, numbers);
    std::string out;
    AppendIntArray(numbers, &out);
    EXPECT_EQ(out, json(numbers).dump());
  }
  for (const char* text : {"[1.5]", "[1e3]", "[01]", "[1,]", "{}", "[\"1\"]",
                           "[9223372036854775808]", "[1] x", "[[1]]"}) {
    EXPECT_FALSE(ParseIntArray(text).has_value()) << text;
  }
}

// Given edge cases of the integer-array reader (simdjson On-Demand since it
// replaced the hand-written one), it should read exactly what nlohmann
// reads as an array of int64s and refuse the rest, and a reader reused
// after a refusal or a larger text should read the next one right.
TEST(JsonScanTest, IntArrayEdgeCasesMatchNlohmann) {
  const std::vector<std::string> texts = {"[]",
                                          " [ ] ",
                                          "[-0]",
                                          "[0]",
                                          " [ 1 ,\t-2 ]\n",
                                          "[9223372036854775807]",
                                          "[-9223372036854775808]",
                                          "[-9223372036854775809]",
                                          "[18446744073709551615]",
                                          "[1E2]",
                                          "[-]",
                                          "[--1]",
                                          "[+1]",
                                          "[1,,2]",
                                          "[,1]",
                                          "[1 2]",
                                          "[1]]",
                                          "[1][2]",
                                          "[1",
                                          "[",
                                          "",
                                          " ",
                                          "1",
                                          "[true]",
                                          "[null]",
                                          "[1a]",
                                          "[0x10]",
                                          "[1.]",
                                          "[-01]",
                                          "[\"\\u0031\"]",
                                          "[1,\n2\r,3]",
                                          std::string("[1]\0", 4),
                                          std::string("[\0]", 3),
                                          "[1]\xff",
                                          "\xef\xbb\xbf[1]",
                                          "[1]/*c*/"};
  IntArrayReader reader;
  for (const std::string& text : texts) {
    std::optional<std::vector<int64_t>> expected;
    // nlohmann takes a NUL byte for the end of its input and skips a UTF-8
    // byte order mark; the reader refuses both (RFC 8259 has neither), and
    // the caller's full parser then reads the text.
    const bool bom = text.rfind("\xef\xbb\xbf", 0) == 0;
    if (!bom && text.find('\0') == std::string::npos && json::accept(text)) {
      const json parsed = json::parse(text);
      if (parsed.is_array() &&
          std::all_of(parsed.begin(), parsed.end(), [](const json& v) {
            return v.is_number_integer() &&
                   (v.is_number_unsigned() ? v.get<uint64_t>() <= INT64_MAX : true);
          })) {
        expected = parsed.get<std::vector<int64_t>>();
      }
    }
    EXPECT_EQ(ParseIntArray(text), expected) << "text: " << text;
    EXPECT_EQ(reader.Parse(text), expected) << "text (reused reader): " << text;
    // Parsed where it is, in a buffer whose 64 bytes after the text would
    // change its meaning if they were read as part of it.
    const std::string buffer = text + std::string(64, ']');
    EXPECT_EQ(reader.Parse(std::string_view(buffer).substr(0, text.size()), buffer.size()),
              expected)
        << "text (in place): " << text;
    const std::string digits = text + std::string(64, '7');
    EXPECT_EQ(reader.Parse(std::string_view(digits).substr(0, text.size()), digits.size()),
              expected)
        << "text (in place, digits after): " << text;
  }
  std::vector<int64_t> many(100'000);
  for (size_t i = 0; i < many.size(); ++i)
    many[i] = static_cast<int64_t>(i * 7919) - 50'000;
  EXPECT_EQ(reader.Parse(json(many).dump()), many);
  EXPECT_EQ(reader.Parse("[3,2]"), (std::vector<int64_t>{3, 2}));
}

// Given requests, the cow handler should answer like the registry, with
// the sort fast path giving byte-identical results.
TEST(CowChildTest, RequestsAreAnsweredLikeTheRegistry) {
  FunctionRegistry registry;
  ASSERT_TRUE(RegisterBuiltins(registry).ok());
  std::string reply;
  HandleCowRequest(registry, R"({"fn":"sort","args":[3,-1,2]})", &reply);
  EXPECT_EQ(reply, "{\"result\":[-1,2,3]}\n");
  reply.clear();
  HandleCowRequest(registry, R"({ "args": {"numbers": [3, 1]}, "fn": "sort" })", &reply);
  EXPECT_EQ(reply, "{\"result\":[1,3]}\n");
  reply.clear();
  HandleCowRequest(registry, R"({"fn":"nope","args":null})", &reply);
  json error = json::parse(reply);
  EXPECT_EQ(error["reason"], "launch-failed");
  reply.clear();
  HandleCowRequest(registry, "not json", &reply);
  EXPECT_EQ(json::parse(reply)["reason"], "launch-failed");

  std::mt19937_64 rng(7);
  std::vector<int64_t> numbers(1000);
  for (int64_t& n : numbers) n = static_cast<int64_t>(rng() % 2000) - 1000;
  const std::string args = json(numbers).dump();
  reply.clear();
  HandleCowRequest(registry, R"({"fn":"sort","args":)" + args + "}", &reply);
  CancelToken token;
  AttemptOutcome slow = registry.Invoke("sort", args, token);
  EXPECT_EQ(reply, "{\"result\":" + slow.result_json + "}\n");
}

// Given bytes arriving in pieces, LineReader should hand out whole lines.
TEST(IpcChannelTest, LineReaderSplitsAStream) {
  UniqueFd a, b;
  ASSERT_TRUE(MakeSocketPair(SOCK_STREAM, &a, &b).ok());
  LineReader reader;
  std::string_view line;
  ASSERT_EQ(::write(a.get(), "[1,", 3), 3);
  ASSERT_EQ(reader.FillFrom(b.get()), LineReader::Fill::kData);
  EXPECT_FALSE(reader.NextLine(&line));
  ASSERT_EQ(::write(a.get(), "2]\n\"x\"\n{", 8), 8);
  ASSERT_EQ(reader.FillFrom(b.get()), LineReader::Fill::kData);
  ASSERT_TRUE(reader.NextLine(&line));
  EXPECT_EQ(line, "[1,2]");
  ASSERT_TRUE(reader.NextLine(&line));
  EXPECT_EQ(line, "\"x\"");
  EXPECT_FALSE(reader.NextLine(&line));
  EXPECT_EQ(reader.pending(), 1u);
  a.Reset();
  EXPECT_EQ(reader.FillFrom(b.get()), LineReader::Fill::kEof);
}

// Given Node's internal messages and look-alikes, should tell them apart.
TEST(IpcChannelTest, RecognisesNodeInternalMessages) {
  EXPECT_TRUE(IsNodeInternalMessage(R"({"cmd":"NODE_HANDLE_ACK"})"));
  EXPECT_TRUE(IsNodeInternalMessage(R"({"x":1,"cmd":"NODE_CLUSTER"})"));
  EXPECT_FALSE(IsNodeInternalMessage(R"({"cmd":"NODE_"})"));
  EXPECT_FALSE(IsNodeInternalMessage(R"({"cmd":"node_x"})"));
  EXPECT_FALSE(IsNodeInternalMessage(R"(["NODE_X"])"));
  EXPECT_FALSE(IsNodeInternalMessage(R"({"note":"NODE_X"})"));
}

// Given repeated quick exits, the backoff should double from 100 ms to 30 s.
TEST(PoolTest, CrashBackoffDoublesUpToTheCap) {
  EXPECT_EQ(CrashBackoff(1), milliseconds(100));
  EXPECT_EQ(CrashBackoff(2), milliseconds(200));
  EXPECT_EQ(CrashBackoff(5), milliseconds(1600));
  EXPECT_EQ(CrashBackoff(20), seconds(30));
  EXPECT_EQ(CrashBackoff(1000), seconds(30));
}

// Given two declarations that differ in any field, their fingerprints
// should differ; equal ones should match.
TEST(PoolTest, FingerprintCoversTheDeclaration) {
  PoolSpec a;
  a.name = "p";
  a.command = {"node", "x.js"};
  PoolSpec b = a;
  EXPECT_EQ(PoolFingerprint(a), PoolFingerprint(b));
  b.command = {"node", "y.js"};
  EXPECT_NE(PoolFingerprint(a), PoolFingerprint(b));
  b = a;
  b.instances = 2;
  EXPECT_NE(PoolFingerprint(a), PoolFingerprint(b));
  b = a;
  b.env = {{"A", "1"}};
  EXPECT_NE(PoolFingerprint(a), PoolFingerprint(b));
  b = a;
  b.command = {"node x.js"};  // not the same argv
  EXPECT_NE(PoolFingerprint(a), PoolFingerprint(b));
}

}  // namespace
}  // namespace drover

// The fork backend's pure pieces: the JSON reply scanner, the cow request
// handler, the IPC line framing and the pool policy. No processes; the
// framing test uses an in-process socketpair.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "backends/fork/cow_child.h"
#include "backends/fork/fork_attempt.h"
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

// Given strings of 0 to 40 plain bytes with one byte that needs a look of
// its own (a quote, an escape, a control character, the start of a UTF-8
// sequence, valid or not) at every offset, and the same bytes after the
// closing quote, ValidateJson (which skips plain bytes eight at a time)
// should agree with nlohmann::json::accept on each, and name the byte of
// a control character exactly.
TEST(JsonScanTest, ValidateFindsEveryStringByteAtEveryOffset) {
  const std::vector<std::string> specials = {"\"",
                                             "\\\"",
                                             "\\n",
                                             "\\u00e9",
                                             "\\x",
                                             "\x01",
                                             "\x1f",
                                             "\x7f",
                                             "\xc3\xa9",
                                             "\xc3",
                                             "\xe2\x98\x83",
                                             "\xed\xa0\x80",
                                             "\xf0\x9f\x98\x80",
                                             "\xff",
                                             "\\",
                                             std::string(1, '\0')};
  for (size_t length = 0; length <= 40; ++length) {
    for (size_t at = 0; at <= length; ++at) {
      for (const std::string& special : specials) {
        std::string body(length, 'a');
        for (size_t k = 0; k < length; ++k)
          body[k] = static_cast<char>('!' + (k * 7) % 90);
        std::replace(body.begin(), body.end(), '"', 'q');
        std::replace(body.begin(), body.end(), '\\', 'b');
        body.insert(at, special);
        for (const std::string& text :
             {"\"" + body + "\"", "[\"" + body + "\", 1]", "{\"k\": \"" + body + "\"}"}) {
          const bool nul = text.find('\0') != std::string::npos;
          EXPECT_EQ(ValidateJson(text).ok(), !nul && json::accept(text))
              << "text: "
              << json(text).dump(-1, ' ', true, json::error_handler_t::replace);
        }
      }
      const std::string control =
          "\"" + std::string(at, 'a') + "\x02" + std::string(length, 'b') + "\"";
      EXPECT_EQ(ValidateJson(control).message(),
                "control character in a string at byte " + std::to_string(at + 1));
    }
  }
}

// Given random integer arrays (some longer than the block AppendIntArray
// writes at a time, some holding the int64 extremes), the fast codec should
// parse them and print exactly what nlohmann prints, and refuse anything
// that is not one.
TEST(JsonScanTest, IntArrayCodecMatchesNlohmann) {
  std::mt19937_64 rng(42);
  for (int round = 0; round < 56; ++round) {
    static constexpr size_t kLong[] = {1023, 1024, 1025, 2048, 2049, 5000};
    std::vector<int64_t> numbers(round < 50 ? static_cast<size_t>(rng() % 100)
                                            : kLong[round - 50]);
    for (int64_t& n : numbers) n = static_cast<int64_t>(rng());
    if (numbers.size() > 2) {
      numbers.front() = std::numeric_limits<int64_t>::min();
      numbers.back() = std::numeric_limits<int64_t>::max();
    }
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

// Given edge cases of the integer-array reader, it should read exactly
// what nlohmann reads as an array of int64s, with their smallest and
// largest, and refuse the rest; text just past the view (digits, a closing
// bracket) must not change what it reads.
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
    std::optional<IntArray> read = ReadIntArray(text);
    ASSERT_EQ(read.has_value(), expected.has_value()) << "text: " << text;
    if (read && !read->numbers.empty()) {
      EXPECT_EQ(read->min, *std::min_element(expected->begin(), expected->end())) << text;
      EXPECT_EQ(read->max, *std::max_element(expected->begin(), expected->end())) << text;
    }
    // In a buffer whose bytes after the text would change its meaning if
    // they were read as part of it.
    for (char after : {']', '7'}) {
      const std::string buffer = text + std::string(64, after);
      EXPECT_EQ(ParseIntArray(std::string_view(buffer).substr(0, text.size())), expected)
          << "text (with '" << after << "' after it): " << text;
    }
  }
}

// Given integers of every length from 1 to 20 digits, each sign, at every
// offset from the text's end (the reader takes eight digits at a time
// where 24 bytes are left, a byte at a time after), in arrays with and
// without spaces, it should read what std::from_chars reads and refuse
// what does not fit int64 or has a leading zero, as nlohmann does.
TEST(JsonScanTest, IntArrayReadsEveryLengthAtEveryOffset) {
  std::mt19937_64 rng(39);
  for (int length = 1; length <= 20; ++length) {
    for (int round = 0; round < 40; ++round) {
      std::string digits;
      for (int i = 0; i < length; ++i) digits += static_cast<char>('0' + rng() % 10);
      if (round % 4 != 3 && length > 1 && digits[0] == '0') digits[0] = '1';
      if (round == 0) digits = std::string(static_cast<size_t>(length), '9');
      const std::string number = (round % 2 ? "-" : "") + digits;
      for (size_t tail = 0; tail < 30; ++tail) {
        // `number` as the first of two, `tail` bytes of small numbers after it.
        std::string text = "[" + number + (round % 3 ? "," : " , ") + "1";
        while (text.size() < number.size() + 5 + tail) text += ",2";
        text += "]";
        std::optional<std::vector<int64_t>> expected;
        if (json::accept(text)) {
          const json parsed = json::parse(text);
          if (parsed[0].is_number_integer() && !(parsed[0].is_number_unsigned() &&
                                                 parsed[0].get<uint64_t>() > INT64_MAX)) {
            expected = parsed.get<std::vector<int64_t>>();
            int64_t want = 0;
            ASSERT_EQ(
                std::from_chars(number.data(), number.data() + number.size(), want).ec,
                std::errc());
            EXPECT_EQ((*expected)[0], want) << number;
          }
        }
        EXPECT_EQ(ParseIntArray(text), expected) << "text: " << text;
      }
    }
  }
}

// Given long arrays mutated a byte at a time (a digit, a sign, a dot, an
// 'e', a space, a comma, a bracket, a deleted byte), the reader should
// agree with nlohmann on every one: the numbers it reads, or a refusal.
TEST(JsonScanTest, IntArrayMutantsMatchNlohmann) {
  std::mt19937_64 rng(3939);
  static constexpr char kBytes[] = "0123456789-+.eE ,[]\n\t";
  std::vector<int64_t> numbers(40);
  for (int round = 0; round < 3000; ++round) {
    for (int64_t& n : numbers) {
      n = static_cast<int64_t>(rng() >> (rng() % 64));
      if (rng() % 2) n = -n;
    }
    std::string text = json(numbers).dump(round % 5 == 0 ? 1 : -1);
    for (int k = 1 + static_cast<int>(rng() % 3); k > 0; --k) {
      const size_t at = rng() % text.size();
      if (rng() % 4 == 0) {
        text.erase(at, 1);
      } else {
        text[at] = kBytes[rng() % (sizeof kBytes - 1)];
      }
    }
    std::optional<std::vector<int64_t>> expected;
    if (json::accept(text)) {
      const json parsed = json::parse(text);
      if (parsed.is_array() &&
          std::all_of(parsed.begin(), parsed.end(), [](const json& v) {
            return v.is_number_integer() &&
                   !(v.is_number_unsigned() && v.get<uint64_t>() > INT64_MAX);
          })) {
        expected = parsed.get<std::vector<int64_t>>();
      }
    }
    ASSERT_EQ(ParseIntArray(text), expected) << "text: " << text;
  }
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

// Given a fork task whose message and args reference a service, decoding
// it for an attempt that has that service should expand the references
// (leaving a reference to an unknown service as it is), and decoding it
// for an attempt without services should leave the text exactly as sent.
TEST(ForkAttemptTest, DecodingExpandsServiceReferences) {
  PoolSpec pool;
  pool.name = "p";
  pool.mode = "cow";
  const std::string args =
      R"({"port": ${services.db.port}, "host": "${services.db.host}",)"
      R"( "other": "${services.cache.port}"})";
  TaskAttempt call;
  call.payload = ForkCallPayload(pool, "echo", args);
  call.services["db"] = ServiceAddress{"10.0.0.7", 5432};
  Result<ForkAttempt> decoded = DecodeForkAttempt(call, {});
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->fn, "echo");
  EXPECT_EQ(decoded->args_json,
            R"({"port": 5432, "host": "10.0.0.7", "other": "${services.cache.port}"})");
  EXPECT_TRUE(decoded->payload.empty());

  TaskAttempt message;
  message.payload = ForkMessagePayload(pool, "[\"${services.db.host}\"]");
  message.services["db"] = ServiceAddress{"db.internal", 1};
  decoded = DecodeForkAttempt(message, {});
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->message_json, "[\"db.internal\"]");

  call.services.clear();
  decoded = DecodeForkAttempt(call, {});
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->args_json, args);
}

// Given a sort of 300,000 numbers and a sender for parts, the cow request
// handler should send the reply in several parts of at least 1 MiB (all
// but the last) and leave the rest in `reply`: together, byte for byte the
// reply it gives without a sender. A request off the fast path sends none.
TEST(CowChildTest, ALargeReplyGoesOutInParts) {
  FunctionRegistry registry;
  ASSERT_TRUE(RegisterBuiltins(registry).ok());
  std::mt19937_64 rng(7);
  std::vector<int64_t> numbers(300000);
  for (int64_t& n : numbers) n = static_cast<int64_t>(rng() % 1000000000) - 500000000;
  std::string args;
  AppendIntArray(numbers, &args);
  const std::string request = R"({"fn":"sort","args":)" + args + "}";

  std::string whole;
  HandleCowRequest(registry, request, &whole);
  std::string sent, rest;
  std::vector<size_t> parts;
  HandleCowRequest(registry, request, &rest, [&](std::string* part) {
    parts.push_back(part->size());
    sent += *part;
    part->clear();
  });
  EXPECT_GE(parts.size(), 2u);
  for (size_t size : parts) EXPECT_GE(size, size_t{1} << 20);
  EXPECT_EQ(sent + rest, whole);
  std::sort(numbers.begin(), numbers.end());
  std::string want = R"({"result":)";
  AppendIntArray(numbers, &want);
  EXPECT_EQ(whole, want + "}\n");

  parts.clear();
  rest.clear();
  HandleCowRequest(registry, R"({"fn":"sort","args":{"numbers":[2,1]}})", &rest,
                   [&](std::string* part) { parts.push_back(part->size()); });
  EXPECT_TRUE(parts.empty());
  EXPECT_EQ(rest, "{\"result\":[1,2]}\n");
}

// Given the system's cap on send buffers, a stream pair's ends should have
// asked for kChannelSendBuffer (the kernel grants the smaller of it and the
// cap, and reports twice that), and a control pair's should not.
TEST(IpcChannelTest, StreamPairsHaveRoomForLargeMessages) {
  std::ifstream cap_file("/proc/sys/net/core/wmem_max");
  int cap = 0;
  ASSERT_TRUE(cap_file >> cap);
  const int want = 2 * std::min(cap, kChannelSendBuffer);
  auto send_buffer = [](const UniqueFd& fd) {
    int bytes = 0;
    socklen_t size = sizeof bytes;
    EXPECT_EQ(::getsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &bytes, &size), 0);
    return bytes;
  };
  UniqueFd a, b;
  ASSERT_TRUE(MakeSocketPair(SOCK_STREAM, &a, &b).ok());
  EXPECT_EQ(send_buffer(a), want);
  EXPECT_EQ(send_buffer(b), want);
  UniqueFd c, d;
  ASSERT_TRUE(MakeSocketPair(SOCK_SEQPACKET, &c, &d).ok());
  EXPECT_NE(send_buffer(c), want);
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

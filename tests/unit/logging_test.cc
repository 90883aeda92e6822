// --log-format json: each record is one line of valid JSON with time,
// level, logger and message, whatever bytes the message holds.
#include "core/base/logging.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace drover {
namespace {

std::string Line(std::string_view payload, spdlog::level::level_enum level) {
  const spdlog::details::log_msg msg(
      spdlog::source_loc{}, "drover", level,
      spdlog::string_view_t(payload.data(), payload.size()));
  return JsonLogLine(msg);
}

// Given a plain message, should give one line with the four fields.
TEST(LoggingTest, JsonLineHasTimeLevelLoggerMessage) {
  const std::string line = Line("worker w1 registered", spdlog::level::info);
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  const auto doc = nlohmann::json::parse(line);
  EXPECT_EQ(doc["level"], "info");
  EXPECT_EQ(doc["logger"], "drover");
  EXPECT_EQ(doc["message"], "worker w1 registered");
  // 2026-12-02T09:54:15.123Z
  EXPECT_EQ(doc["time"].get<std::string>().size(), 24u) << doc["time"];
  EXPECT_EQ(doc["time"].get<std::string>().back(), 'Z');
  EXPECT_EQ(nlohmann::json::parse(Line("x", spdlog::level::warn))["level"], "warning");
}

// Given quotes, backslashes, newlines, control bytes and bytes that are not
// UTF-8, should escape them so that the line stays one valid JSON object.
TEST(LoggingTest, JsonLineEscapesEverything) {
  const std::string nasty = std::string("a \"quoted\" \\path\\\nnext\tline\r\x01\x7f") +
                            "caf\xc3\xa9 \xff\xfe end";
  const std::string line = Line(nasty, spdlog::level::err);
  EXPECT_EQ(line.find('\n'), line.size() - 1) << line;
  const auto doc = nlohmann::json::parse(line);
  EXPECT_EQ(doc["message"],
            "a \"quoted\" \\path\\\nnext\tline\r\x01\x7f"
            "caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd end");
  EXPECT_EQ(doc["level"], "error");
}

// Given the format names, should accept text and json only.
TEST(LoggingTest, ParseLogFormat) {
  EXPECT_EQ(ParseLogFormat("json"), LogFormat::kJson);
  EXPECT_EQ(ParseLogFormat("text"), LogFormat::kText);
  EXPECT_EQ(ParseLogFormat("JSON"), std::nullopt);
}

}  // namespace
}  // namespace drover

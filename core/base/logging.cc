#include "core/base/logging.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>

#include "core/base/utf8.h"

namespace drover {
namespace {

// Appends `s` as the body of a JSON string (RFC 8259): quote, backslash and
// control characters escaped; a byte that does not start a well-formed
// UTF-8 sequence becomes U+FFFD, so every line is valid JSON whatever a
// task or a peer put into a message.
void AppendJsonEscaped(std::string_view s, std::string& out) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        ++i;
        continue;
      case '\\':
        out += "\\\\";
        ++i;
        continue;
      case '\n':
        out += "\\n";
        ++i;
        continue;
      case '\r':
        out += "\\r";
        ++i;
        continue;
      case '\t':
        out += "\\t";
        ++i;
        continue;
      default:
        break;
    }
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
      ++i;
      continue;
    }
    const size_t len = Utf8SequenceLength(s, i);
    if (len == 0) {
      out += "\\ufffd";
      ++i;
      continue;
    }
    out.append(s.substr(i, len));
    i += len;
  }
}

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string line = JsonLogLine(msg);
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

}  // namespace

std::optional<LogFormat> ParseLogFormat(std::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return std::nullopt;
}

std::string JsonLogLine(const spdlog::details::log_msg& msg) {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  const auto since_epoch = msg.time.time_since_epoch();
  const int64_t ms = duration_cast<milliseconds>(since_epoch).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm = {};
  gmtime_r(&secs, &tm);
  char time_text[40];
  const size_t n = std::strftime(time_text, sizeof time_text, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(time_text + n, sizeof time_text - n, ".%03dZ",
                static_cast<int>(ms % 1000));

  std::string out;
  out.reserve(96 + msg.payload.size());
  out += "{\"time\":\"";
  out += time_text;
  out += "\",\"level\":\"";
  const auto level = spdlog::level::to_string_view(msg.level);
  AppendJsonEscaped(std::string_view(level.data(), level.size()), out);
  out += "\",\"logger\":\"";
  AppendJsonEscaped(std::string_view(msg.logger_name.data(), msg.logger_name.size()),
                    out);
  out += "\",\"message\":\"";
  AppendJsonEscaped(std::string_view(msg.payload.data(), msg.payload.size()), out);
  out += "\"}\n";
  return out;
}

void SetupLogging(std::string_view level, spdlog::level::level_enum fallback,
                  LogFormat format) {
  std::string name(level);
  if (name.empty()) {
    if (const char* env = std::getenv("DROVER_LOG")) name = env;
  }
  auto lvl = name.empty() ? fallback : spdlog::level::from_str(name);
  auto logger = spdlog::stderr_logger_mt("drover");
  spdlog::set_default_logger(logger);
  if (format == LogFormat::kJson) {
    spdlog::set_formatter(std::make_unique<JsonFormatter>());
  } else {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  }
  spdlog::set_level(lvl);
}

}  // namespace drover
